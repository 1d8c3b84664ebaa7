//! `GET /healthz`: 200 `ok` when the store answers a read and the outbox
//! is not stuck (no mail failing for over an hour), else 503 `degraded:`
//! and which of the two, never an error's text. For load balancers,
//! container health checks and `gatehouse healthcheck`; says nothing about
//! users. And `GET /metrics` (Prometheus text), served on the metrics
//! listener only (`--metrics-listen`).

use crate::app::AppState;
use crate::metrics::Gauges;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// A mail failing for this long makes the outbox "stuck".
const STUCK_AFTER: Duration = Duration::from_secs(3600);

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let outbox = match state.store.outbox().await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "health check: the store does not answer"
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "degraded: store unavailable; the log says why\n".into(),
            );
        }
    };
    let now = state.clock.now();
    let stuck: Vec<_> = outbox
        .iter()
        .filter(|e| {
            e.attempts > 0 && e.next_attempt_at.is_some() && now >= e.created_at.plus(STUCK_AFTER)
        })
        .collect();
    if !stuck.is_empty() {
        // The SMTP server's words stay in the log (the outbox worker logs
        // each failure): they can name hosts, users and addresses, and
        // anyone may ask /healthz.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded: outbox stuck, mail undelivered for over an hour; the log says why, \
             `gatehouse mail test --to ADDR` tries the SMTP settings\n"
                .into(),
        );
    }
    (StatusCode::OK, "ok\n".into())
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match gauges(&state).await {
        Ok(g) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state.metrics.render(&g),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "metrics: the store does not answer"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn gauges(state: &AppState) -> crate::store::StoreResult<Gauges> {
    Ok(Gauges {
        outbox_depth: state
            .store
            .outbox()
            .await?
            .iter()
            .filter(|e| e.next_attempt_at.is_some())
            .count(),
        active_sessions: state.store.session_count().await?,
        hash_queue_depth: state.passwords.pool().depth(),
        users: state.store.user_count().await?,
    })
}
