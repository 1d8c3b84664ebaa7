//! The admin socket: `<data-dir>/gatehouse.sock`, created by the running
//! server, file mode 0600, and a peer-credential check on every connection
//! (only the user the server runs as may use it). One JSON request (the
//! command line, standard input, working directory, who asks) in; one
//! JSON `Response` out.

use super::admin::{self, Ctx, Response};
use super::{Cli, UsageError};
use crate::app::AppState;
use anyhow::Context;
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub const SOCKET_FILE: &str = "gatehouse.sock";

/// Larger than any command line with a password.
const MAX_REQUEST: u64 = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The command line after the program name.
    pub argv: Vec<String>,
    pub stdin: Option<String>,
    pub cwd: PathBuf,
    pub actor: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Sends a command to the running server. `None`: no server listens (run
/// the command locally).
pub fn request(data_dir: &Path, req: &Request) -> anyhow::Result<Option<Response>> {
    let path = path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        // A socket file left by a server that is gone.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            return Ok(None);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(UsageError(format!(
                "the running server's admin socket {} belongs to another user: run this command as the user the server runs as (for example `sudo -u gatehouse gatehouse …`)",
                path.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot reach the running server at {}", path.display()));
        }
    };
    let body = serde_json::to_vec(req).context("failed to encode the command")?;
    stream
        .write_all(&body)
        .context("failed to send the command to the server")?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .context("failed to send the command to the server")?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .context("the server did not answer the command")?;
    let response =
        serde_json::from_slice(&reply).context("the server's answer could not be read")?;
    Ok(Some(response))
}

/// Opens the admin socket (at start, before the server answers anything,
/// so that a command never finds the database held and no socket). A
/// socket that cannot be opened is logged: admin commands then need the
/// server stopped.
pub fn bind(data_dir: &Path) -> Option<tokio::net::UnixListener> {
    let path = path(data_dir);
    // The database is ours (its lock is held): a socket file here is left
    // from a server that stopped without cleaning up.
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open the admin socket; admin commands need the server stopped (a data directory path shorter than 100 characters avoids the socket path limit)");
            return None;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::error!(error = %e, "cannot make the admin socket owner-only; closing it");
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(listener)
}

/// Serves the admin socket until `stop` changes, then removes it.
pub async fn serve(
    state: AppState,
    listener: tokio::net::UnixListener,
    mut stop: watch::Receiver<bool>,
) {
    let path = path(&state.config.data_dir);
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket accept failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(state, stream, me).await {
                tracing::warn!(error = format!("{e:#}"), "an admin command failed");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(
    state: AppState,
    mut stream: tokio::net::UnixStream,
    me: Option<u32>,
) -> anyhow::Result<()> {
    let peer = stream
        .peer_cred()
        .context("cannot read the peer's credentials")?
        .uid();
    let response = if me != Some(peer) {
        tracing::warn!(
            peer_uid = peer,
            "refused an admin command from another user"
        );
        Response {
            stderr: "error: the admin socket answers only the user the server runs as\n".into(),
            code: 1,
            ..Default::default()
        }
    } else {
        let mut body = Vec::new();
        (&mut stream)
            .take(MAX_REQUEST)
            .read_to_end(&mut body)
            .await
            .context("failed to read the command")?;
        let req: Request =
            serde_json::from_slice(&body).context("the command could not be read")?;
        run(state, req).await
    };
    let reply = serde_json::to_vec(&response).context("failed to encode the answer")?;
    stream.write_all(&reply).await.context("failed to answer")?;
    stream.shutdown().await.ok();
    Ok(())
}

async fn run(state: AppState, req: Request) -> Response {
    let argv = std::iter::once("gatehouse".to_string()).chain(req.argv);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            return Response {
                stderr: e.to_string(),
                code: 2,
                ..Default::default()
            };
        }
    };
    if !admin::is_admin(&cli.command) {
        return Response {
            stderr: "error: only admin commands can be sent to the server\n".into(),
            code: 2,
            ..Default::default()
        };
    }
    let result = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            store: state.store.as_ref(),
            config: &state.config,
            actor: req.actor,
            stdin: req.stdin,
            cwd: req.cwd,
            clock: state.clock.clone(),
            via_server: true,
        };
        let response = admin::execute(&ctx, cli.command);
        // Mail a command queued (if any) goes out now.
        state.outbox.wake();
        response
    })
    .await;
    result.unwrap_or_else(|_| Response {
        stderr: "error: the command failed inside the server; see its log\n".into(),
        code: 1,
        ..Default::default()
    })
}
