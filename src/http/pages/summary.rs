//! The Summary page (SPEC §6): the machine's resource use as bars, and the
//! user's own account. The script refreshes the figures from
//! `/api/v1/summary`; elements carry `data-field` names matching its JSON.

use crate::http::routes::summary::SummaryJson;
use maud::{Markup, html};

/// A labelled bar: an SVG whose fill width is the percentage.
fn meter(key: &str, label: &str, percent: f64, text: &str) -> Markup {
    let pct = percent.clamp(0.0, 100.0);
    let level = if pct >= 90.0 {
        "high"
    } else if pct >= 70.0 {
        "mid"
    } else {
        "low"
    };
    html! {
        article.card.meter-card data-meter=(key) {
            h2 { (label) }
            div.meter role="meter" aria-label=(label) aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=(format!("{pct:.0}")) aria-valuetext=(text) data-level=(level) {
                svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false" {
                    rect.meter-track x="0" y="0" width="100" height="10" rx="5" {}
                    rect.meter-fill x="0" y="0" width=(format!("{pct:.1}")) height="10" rx="5" {}
                }
            }
            p.meter-text data-field=(format!("{key}_text")) { (text) }
        }
    }
}

pub fn content(s: &SummaryJson) -> Markup {
    let h = &s.host;
    let failed = s.account.failed_since_last_login;
    html! {
        @if failed > 0 {
            p.notice.error role="alert" id="failed-logins" {
                strong { (failed) @if failed == 1 { " failed login" } @else { " failed logins" } }
                " on your account since your previous login. If they were not you, "
                a href="/account" { "change your password" } " and look at your recent logins."
            }
        }
        section aria-labelledby="usage-heading" {
            div.section-head {
                h2 id="usage-heading" { "Current resource usage" }
                p.muted { "Updated " span data-field="sampled" { "just now" } "; refreshes every few seconds." }
            }
            div.cards id="usage-cards" {
                (meter("cpu", "CPU", h.cpu.percent, &h.cpu.text))
                (meter("memory", "Memory", h.memory.percent, &h.memory.text))
                (meter("disk", "Disk (data)", h.disk.percent, &h.disk.text))
                (meter("load", "Load (1 min)", h.load.percent, &h.load.text))
                article.card.stat-card {
                    h2 { "Uptime" }
                    p.stat data-field="uptime_text" { (s.host.uptime_text) }
                    p.muted { "gatehouse: " span data-field="gatehouse_uptime_text" { (s.gatehouse.uptime_text) } }
                }
            }
        }
        section aria-labelledby="account-heading" {
            h2 id="account-heading" { "Your account" }
            dl.facts {
                dt { "Signed in as" } dd { (s.account.username) " (" (s.account.email) ")" }
                dt { "Role" } dd { (s.account.role) }
                dt { "Last login before this one" }
                dd data-field="last_login" {
                    @match &s.account.last_login {
                        Some(l) => { time datetime=(l.at) { (l.at) } " from " (l.ip) },
                        None => "This is your first login.",
                    }
                }
                dt { "Active sessions" } dd data-field="active_sessions" { (s.account.active_sessions) }
            }
        }
    }
}
