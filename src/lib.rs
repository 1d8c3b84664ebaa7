//! gatehouse: a self-hosted front door for small teams.
//!
//! The binary (`src/main.rs`) only parses the command line and dispatches
//! into this library, so that tests drive the very same code: `App::build`
//! binds a real listener (port 0 in tests) and `http::router` can be called
//! without a socket. See `docs/architecture.md` for how a request flows.

pub mod admin_socket;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod documents;
pub mod domain;
pub mod host;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod services;
pub mod store;
pub mod telemetry;

pub use app::{App, AppState};
pub use clock::Clock;
pub use config::Config;
