//! Prometheus metrics (`GET /metrics` on the metrics listener, text format
//! 0.0.4; SPEC §8):
//! counters of security events, request latency by route, and gauges read
//! at scrape time (outbox depth, active sessions, hashing queue).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// How a login try ended.
#[derive(Clone, Copy)]
pub enum LoginOutcome {
    Ok,
    Failed,
    RefusedLocked,
    Busy,
}

#[derive(Default)]
pub struct Metrics {
    login_ok: AtomicU64,
    login_failed: AtomicU64,
    login_refused_locked: AtomicU64,
    login_busy: AtomicU64,
    locks_set: AtomicU64,
    signups: AtomicU64,
    mail_failures: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: AtomicU64,
    connections_timed_out: AtomicU64,
    /// route -> method -> latency histogram (looked up by `&str`: no
    /// allocation once a route has been seen).
    requests: Mutex<BTreeMap<String, BTreeMap<String, Histogram>>>,
}

/// Values read from elsewhere when scraped.
pub struct Gauges {
    pub outbox_depth: usize,
    pub active_sessions: usize,
    pub hash_queue_depth: usize,
    pub users: usize,
}

impl Metrics {
    pub fn login(&self, outcome: LoginOutcome) {
        let counter = match outcome {
            LoginOutcome::Ok => &self.login_ok,
            LoginOutcome::Failed => &self.login_failed,
            LoginOutcome::RefusedLocked => &self.login_refused_locked,
            LoginOutcome::Busy => &self.login_busy,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn lock_set(&self) {
        self.locks_set.fetch_add(1, Ordering::Relaxed);
    }

    pub fn signup(&self) {
        self.signups.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery attempt failed. Mails sent are not counted: a counter
    /// that moves when a reset mail goes out tells whoever watches it,
    /// right after a forgot-password request, whether the address has an
    /// account (issue 11). Failures and the outbox depth stay, for the
    /// admin; with a working SMTP server they do not move per request.
    pub fn mail_failed(&self) {
        self.mail_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closed at once: `--max-connections` or the per-client cap was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Closed for sending no request within `--header-read-timeout`.
    pub fn connection_timed_out(&self) {
        self.connections_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// `route` must come from a fixed set (a matched route pattern or
    /// `unmatched`); the method is reduced to one (`method_label`), so
    /// that no request can add a series (issue 11: 20,000 made-up methods
    /// grew /metrics to 325 MB).
    pub fn request(&self, method: &str, route: &str, took: Duration) {
        let method = method_label(method);
        let secs = took.as_secs_f64();
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(route) {
            map.insert(route.to_string(), BTreeMap::new());
        }
        let by_method = map.get_mut(route).expect("inserted above");
        if !by_method.contains_key(method) {
            by_method.insert(method.to_string(), Histogram::default());
        }
        let h = by_method.get_mut(method).expect("inserted above");
        h.count += 1;
        h.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// The text exposition.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, values: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "gatehouse_logins_total",
            "Login tries by outcome.",
            &[
                ("{outcome=\"ok\"}", load(&self.login_ok)),
                ("{outcome=\"failed\"}", load(&self.login_failed)),
                (
                    "{outcome=\"refused_locked\"}",
                    load(&self.login_refused_locked),
                ),
                ("{outcome=\"busy\"}", load(&self.login_busy)),
            ],
        );
        counter(
            &mut out,
            "gatehouse_locks_set_total",
            "IDs locked after repeated failures.",
            &[("", load(&self.locks_set))],
        );
        counter(
            &mut out,
            "gatehouse_signups_total",
            "Accounts created by signing up.",
            &[("", load(&self.signups))],
        );
        counter(
            &mut out,
            "gatehouse_mail_failures_total",
            "Mail delivery attempts that failed (the log says why).",
            &[("", load(&self.mail_failures))],
        );
        counter(
            &mut out,
            "gatehouse_connections_refused_total",
            "Connections closed at once because --max-connections or --max-connections-per-client was reached.",
            &[("", load(&self.connections_refused))],
        );
        counter(
            &mut out,
            "gatehouse_connections_timed_out_total",
            "Connections closed for sending no request within --header-read-timeout.",
            &[("", load(&self.connections_timed_out))],
        );
        let gauge = |out: &mut String, name: &str, help: &str, v: usize| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "gatehouse_outbox_depth",
            "Mails waiting in the outbox.",
            g.outbox_depth,
        );
        gauge(
            &mut out,
            "gatehouse_active_sessions",
            "Sessions in the store.",
            g.active_sessions,
        );
        gauge(
            &mut out,
            "gatehouse_hash_queue_depth",
            "Password hashes running or waiting.",
            g.hash_queue_depth,
        );
        gauge(&mut out, "gatehouse_users", "Accounts.", g.users);
        gauge(
            &mut out,
            "gatehouse_connections_open",
            "HTTP connections open now.",
            usize::try_from(load(&self.connections_open)).unwrap_or(usize::MAX),
        );
        let name = "gatehouse_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer a request, by route.\n# TYPE {name} histogram"
        );
        let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for (route, by_method) in map.iter() {
            for (method, h) in by_method.iter() {
                let labels = format!(
                    "method=\"{method}\",route=\"{}\"",
                    route.replace('\\', "\\\\").replace('"', "\\\"")
                );
                for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}

/// The method as a label: the standard ones, else `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.request("GET", "/login", Duration::from_millis(3));
        m.request("GET", "/login", Duration::from_millis(300));
        let text = m.render(&Gauges {
            outbox_depth: 0,
            active_sessions: 0,
            hash_queue_depth: 0,
            users: 0,
        });
        assert!(text.contains(r#"gatehouse_request_duration_seconds_bucket{method="GET",route="/login",le="0.005"} 1"#), "{text}");
        assert!(text.contains(
            r#"gatehouse_request_duration_seconds_bucket{method="GET",route="/login",le="0.5"} 2"#
        ));
        assert!(text.contains(
            r#"gatehouse_request_duration_seconds_count{method="GET",route="/login"} 2"#
        ));
    }
}
