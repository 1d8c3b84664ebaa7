//! `GET /healthz`: 200 when the store answers a read, else 503. For load
//! balancers and container health checks; says nothing about users.

use crate::app::AppState;
use crate::domain::LoginId;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let probe = LoginId::parse("healthz").expect("a valid id");
    match state.store.lockout(&probe.lockout_key()) {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "health check: the store does not answer"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
}
