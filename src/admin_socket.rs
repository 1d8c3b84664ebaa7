//! The admin socket, a transport like `http/`: `<data-dir>/gatehouse.sock`,
//! created by the running server, file mode 0600, and a peer-credential
//! check on every connection (only the user the server runs as may use
//! it). One JSON `Request` (the command line, standard input, working
//! directory, who asks) in; one JSON `Response` out. What a request does
//! is the `Handler`'s business (the CLI's admin commands, wired in
//! `app.rs`): this module only carries it.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// What one admin command printed and how it ended.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Runs one request on the server.
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// The socket belongs to another user (exit code 2: run it as that user).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WrongUser(pub String);

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
            return Err(WrongUser(format!(
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

/// How long a client may take to send its command.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the admin socket until `stop` changes, then removes it.
pub async fn serve(
    path: PathBuf,
    listener: tokio::net::UnixListener,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) {
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
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            if let Err(e) = handle(handler, stream, me).await {
                tracing::warn!(error = format!("{e:#}"), "an admin command failed");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(
    handler: Handler,
    mut stream: tokio::net::UnixStream,
    me: Option<u32>,
) -> anyhow::Result<()> {
    let peer = stream
        .peer_cred()
        .context("cannot read the peer's credentials")?
        .uid();
    // The request is read whoever sent it: closing a socket with unread
    // data makes the kernel reset the connection, and the refused peer
    // saw "Connection reset by peer" instead of the reason (issue 11).
    let mut body = Vec::new();
    tokio::time::timeout(
        READ_TIMEOUT,
        (&mut stream).take(MAX_REQUEST).read_to_end(&mut body),
    )
    .await
    .context("the command did not arrive in time")?
    .context("failed to read the command")?;
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
        let req: Request =
            serde_json::from_slice(&body).context("the command could not be read")?;
        handler(req).await
    };
    let reply = serde_json::to_vec(&response).context("failed to encode the answer")?;
    stream.write_all(&reply).await.context("failed to answer")?;
    stream.shutdown().await.ok();
    Ok(())
}
