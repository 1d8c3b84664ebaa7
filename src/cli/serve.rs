//! `gatehouse serve`: load the settings, bind, serve until SIGTERM/Ctrl-C.

use super::UsageError;
use crate::app::App;
use crate::clock::Clock;
use crate::config::{Config, ServeArgs};
use crate::store::DATABASE_FILE;
use anyhow::Context;
use std::path::PathBuf;

pub fn run(data_dir: Option<PathBuf>, args: &ServeArgs) -> anyhow::Result<()> {
    // A setting that cannot work is bad usage (exit code 2).
    let (config, warnings) =
        Config::load(data_dir, args).map_err(|e| UsageError(format!("{e:#}")))?;
    for w in &warnings {
        eprintln!("warning: {w}");
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        let db = match &config.database {
            Some(db) => format!("PostgreSQL {}", db.shown()),
            None => config.data_dir.join(DATABASE_FILE).display().to_string(),
        };
        let app = App::build(config, Clock::system()).await?;
        let state = app.state().clone();
        say(format!(
            "gatehouse {} listening on {} (bound to {}), data in {}",
            env!("CARGO_PKG_VERSION"),
            state.base_url,
            app.local_addr(),
            db
        ));
        tracing::info!(base_url = %state.base_url, addr = %app.local_addr(), data = %db, "serving");
        if let Some(metrics) = app.metrics_addr() {
            say(format!("metrics on http://{metrics}/metrics"));
        }
        if state.mailer.is_log() {
            say(
                "WARNING: no SMTP server is set (--smtp-url), so nobody receives mail: verification, \
                 password-reset and lock-notice mails are only written to the log (their links work from there)."
                    .into(),
            );
            tracing::warn!("no --smtp-url: mail goes to the log only; nobody receives it");
        }
        if state.config.signup == crate::config::SignupMode::Open && !state.config.require_verification {
            say(
                "WARNING: --signup open without email verification: anyone can sign up under any address, \
                 including addresses of people who never asked. Set --smtp-url (verification then follows), \
                 or use --signup invite."
                    .into(),
            );
            tracing::warn!("open signup without email verification: anyone can claim any address");
        }
        // The ID-token signing key is made at the first start, beside
        // serving (an RSA key takes a moment; a token request meanwhile
        // makes it itself; replicas starting together keep one).
        let keys = app.state().clone();
        tokio::spawn(async move {
            if let Err(e) = keys.oidc().signing_keys().await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "could not make or read the OpenID Connect signing key; it is tried again at the first token request"
                );
            }
        });
        let first_run = app.first_run().await?;
        if let crate::app::FirstRunLink::MadeElsewhere(at) = &first_run {
            say(format!(
                "\nNo admin account yet. Another gatehouse on this database printed the link to create it at {at} \
                 (it works once, for 24 hours): look in that one's output. Or make one here: \
                 gatehouse invite create --admin"
            ));
        }
        if let crate::app::FirstRunLink::Link(link) = first_run {
            say(format!(
                "\nNo admin account yet. Open this link in a browser to create the first (admin) account.\n\
                 It works once, for 24 hours; a restart before then prints a new one:\n\n  {link}\n"
            ));
            tracing::info!(link = %link, "first-run admin invitation");
        } else if state.store.user_count().await? == 0 {
            // Signup is closed: the first account comes from the CLI. Say it
            // with the very command and data directory in use.
            let me = std::env::args().next().unwrap_or_else(|| "gatehouse".into());
            say(format!(
                "No accounts yet, and signing up is closed. To make the first one, run (also while the server runs):\n  \
                 printf '%s' 'a-strong-Passw0rd!' | {me} --data-dir {} user add you@example.com --admin --password-stdin",
                state.config.data_dir.display()
            ));
        }
        if !state.config.access.is_empty() {
            say(format!(
                "{} access rule(s) for forward auth from {}; `kill -HUP` reads them again",
                state.config.access.0.len(),
                state.config.file.as_ref().map_or("-".into(), |f| f.display().to_string())
            ));
        }
        let reload = reload_on_hangup(state.clone())?;
        drop(state);
        app.run_until(async move {
            shutdown.await;
            reload.abort();
        })
        .await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Prints a line for the person at the terminal. A closed or broken
/// standard output (a detached service) must not stop the server, so
/// errors are ignored where `println!` would panic.
fn say(text: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// On SIGHUP, reads the config file's `[[access]]` rules and
/// `[[oidc_client]]` apps again and puts them in force (sessions stay); a
/// file with a mistake leaves what is in force and says why. Other
/// settings need a restart.
fn reload_on_hangup(state: crate::app::AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match state.reload_access() {
                Ok(n) => {
                    say(format!("SIGHUP: {n} access rule(s) in force now"));
                    tracing::info!(rules = n, "access rules reloaded");
                }
                Err(e) => {
                    eprintln!(
                        "error: SIGHUP: the access rules were not reloaded, the old ones stay in force: {e:#}"
                    );
                    tracing::error!(
                        error = format!("{e:#}"),
                        "access rules not reloaded; the old ones stay in force"
                    );
                }
            }
            match state.reload_declared_clients().await {
                Ok(s) => say(format!(
                    "SIGHUP: apps from the config file: {} added, {} updated, {} removed",
                    s.added, s.updated, s.removed
                )),
                Err(e) => {
                    eprintln!("error: SIGHUP: the config file's apps were not reloaded: {e:#}");
                    tracing::error!(
                        error = format!("{e:#}"),
                        "config file apps (OpenID Connect) not reloaded"
                    );
                }
            }
        }
    }))
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and container runtimes
/// send). The handlers are installed when this is called, not when it is
/// first awaited: a SIGTERM that comes while the server is still starting
/// must shut it down cleanly, not kill it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}
