//! `GET /` (the Summary page) and `GET /api/v1/summary` (the same as JSON,
//! which the page polls).

use crate::app::AppState;
use crate::clock::Timestamp;
use crate::domain::LoginRecord;
use crate::host::HostSnapshot;
use crate::http::cookies::Browser;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiUser, Authenticated, PageUser};
use crate::http::pages::layout::Nav;
use crate::http::pages::summary;
use axum::extract::State;
use axum::{Extension, Json};
use maud::Markup;
use serde::Serialize;
use std::time::Duration;

/// A figure as a percentage and a sentence.
#[derive(Serialize)]
pub struct Gauge {
    pub percent: f64,
    pub text: String,
}

#[derive(Serialize)]
pub struct HostJson {
    pub cpu: Gauge,
    pub memory: Gauge,
    pub disk: Gauge,
    pub load: Gauge,
    pub uptime_text: String,
    #[serde(flatten)]
    pub raw: HostSnapshot,
}

#[derive(Serialize)]
pub struct GatehouseJson {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub uptime_text: String,
}

#[derive(Serialize)]
pub struct AccountJson {
    pub email: String,
    pub username: String,
    pub role: String,
    /// The login before the current one.
    pub last_login: Option<LoginRecord>,
    pub active_sessions: usize,
    /// Failed tries on this account between the previous login and this one.
    pub failed_since_last_login: usize,
}

#[derive(Serialize)]
pub struct SummaryJson {
    pub now: Timestamp,
    pub host: HostJson,
    pub gatehouse: GatehouseJson,
    pub account: AccountJson,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// "3d 4h 12m": to the minute.
fn duration_text(secs: u64) -> String {
    if secs < 60 {
        return "less than a minute".into();
    }
    humantime::format_duration(Duration::from_secs(secs - secs % 60)).to_string()
}

async fn build(state: &AppState, me: &Authenticated) -> Result<SummaryJson, AppError> {
    let h = state.host.snapshot();
    let now = state.clock.now();
    let overview = state.account().overview(me.user.id).await?;
    let cpus = h.cpus.max(1);
    let up = state.started.elapsed().as_secs();
    Ok(SummaryJson {
        now,
        host: HostJson {
            cpu: Gauge {
                percent: f64::from(h.cpu_percent),
                text: format!("{:.0}% of {cpus} cores", h.cpu_percent),
            },
            memory: Gauge {
                percent: percent(h.memory_used, h.memory_total),
                text: format!("{} of {} used", bytes(h.memory_used), bytes(h.memory_total)),
            },
            disk: Gauge {
                percent: percent(h.disk_used, h.disk_total),
                text: format!("{} of {} used", bytes(h.disk_used), bytes(h.disk_total)),
            },
            load: Gauge {
                percent: h.load_one * 100.0 / cpus as f64,
                text: format!(
                    "{:.2} · {:.2} · {:.2} (1, 5, 15 min) on {cpus} cores",
                    h.load_one, h.load_five, h.load_fifteen
                ),
            },
            uptime_text: duration_text(h.uptime_seconds),
            raw: h,
        },
        gatehouse: GatehouseJson {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: up,
            uptime_text: duration_text(up),
        },
        account: AccountJson {
            email: me.user.email.to_string(),
            username: me.user.username.to_string(),
            role: me.user.role.to_string(),
            last_login: me.user.previous_login.clone(),
            active_sessions: overview.active_sessions,
            failed_since_last_login: overview.failed_since_last_login,
        },
    })
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    PageUser(me): PageUser,
) -> Result<Markup, AppError> {
    let data = build(&state, &me).await?;
    Ok(super::shell_page(
        &state,
        &browser,
        &me,
        Nav::Summary,
        "Summary",
        summary::content(&data),
    ))
}

pub async fn api(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
) -> Result<Json<SummaryJson>, ApiError> {
    Ok(Json(build(&state, &me).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(duration_text(30), "less than a minute");
        assert_eq!(duration_text(90_061), "1day 1h 1m");
        assert_eq!(percent(1, 0), 0.0);
    }
}
