//! What every test file shares: `app` (spawn an app on port 0 with a
//! manual clock, a client with one helper per route), `cli` (the real
//! binary, with a failure report that shows the whole run), and the
//! assertions below. Set `TEST_LOG=info` (or `debug`) to see the server's
//! log of a failing test (cargo shows a test's output only when it fails).

pub mod app;
pub mod backend;
pub mod cli;

pub use app::*;

use reqwest::{Response, StatusCode};

/// The response is a `303 See Other` to `location`.
#[track_caller]
pub fn assert_redirect_to(r: &Response, location: &str) {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<none>"),
        location,
        "redirected elsewhere"
    );
}

impl TestApp {
    /// Whether this client's session cookie opens the API (a live session
    /// of an active, consenting account).
    pub async fn session_is_live(&self) -> bool {
        match self.get("/api/v1/session").await.status() {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            other => panic!("/api/v1/session answered {other}"),
        }
    }
}

/// Starts the log once for the whole test binary when `TEST_LOG` is set:
/// to the test's captured output, at the level it names.
pub fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let filter = tracing_subscriber::EnvFilter::try_new(if level.is_empty() {
                "info"
            } else {
                level.as_str()
            })
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}
