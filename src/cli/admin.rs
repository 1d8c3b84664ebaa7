//! Admin commands (`user`, `invite`, `audit`, `backup`) run the same code
//! whether the server is running or not (SPEC §7):
//! - server stopped: this process opens the database itself;
//! - server running (it holds the database): the command line is sent over
//!   the server's owner-only Unix socket (`admin_socket`) and the server
//!   runs it with its own parts, so the change takes effect at once.
//!
//! Either way the command calls `services::admin` and writes into a
//! `Response` (stdout, stderr, exit code) that the CLI prints: the output
//! is the same.

use super::{Cli, Command, UsageError};
use crate::admin_socket::{self as socket, Response};
use crate::app::AppState;
use crate::auth::password::Passwords;
use crate::auth::pool::HashPool;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::CommonPasswords;
use crate::services::Links;
use crate::services::admin::{Admin, AdminError};
use crate::store::redb::RedbStore;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where and as whom a command runs.
pub struct Ctx<'a> {
    /// The operations, on the server's parts or on this process's own.
    pub admin: Admin<'a>,
    /// The running server's settings, or those given to this command.
    pub config: &'a Config,
    /// The access rules in force (the running server's, or the config
    /// file's).
    pub access: std::sync::Arc<crate::domain::access::AccessRules>,
    /// Standard input, read by the client (for `--password-stdin`).
    pub stdin: Option<String>,
    /// The client's working directory (relative paths are the client's).
    pub cwd: PathBuf,
}

/// Output lines of a command.
#[derive(Default)]
pub struct Out(pub String);

impl Out {
    pub fn line(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.0, "{}", text.as_ref());
    }
}

/// The admin commands.
pub fn is_admin(command: &Command) -> bool {
    matches!(
        command,
        Command::User { .. }
            | Command::Group { .. }
            | Command::Access { .. }
            | Command::Invite { .. }
            | Command::Oidc {
                command: super::oidc::OidcCommand::Client { .. }
                    | super::oidc::OidcCommand::RotateKey { .. }
                    | super::oidc::OidcCommand::Keys { .. },
                ..
            }
            | Command::Audit(_)
            | Command::Backup(_)
    )
}

/// Runs `cmd` with `ctx`, turning errors into stderr and an exit code.
pub async fn execute(ctx: &Ctx<'_>, cmd: Command) -> Response {
    let mut out = Out::default();
    let result = match cmd {
        Command::User { command, .. } => super::user::exec(ctx, command, &mut out).await,
        Command::Group { command, .. } => super::group::exec(ctx, command, &mut out).await,
        Command::Access { command, .. } => super::access::exec(ctx, command, &mut out).await,
        Command::Invite { command, .. } => super::invite::exec(ctx, command, &mut out).await,
        Command::Oidc { command, .. } => super::oidc::exec(ctx, command, &mut out).await,
        Command::Audit(c) => super::audit::exec(ctx, c, &mut out).await,
        Command::Backup(c) => super::backup::exec(ctx, c, &mut out).await,
        _ => Err(UsageError("this command does not work on the database".into()).into()),
    };
    match result {
        Ok(()) => Response {
            stdout: out.0,
            stderr: String::new(),
            code: 0,
        },
        Err(e) => Response {
            stdout: out.0,
            stderr: format!("error: {e:#}\n"),
            code: exit_code(&e),
        },
    }
}

/// 2 for bad usage (also a refused admin operation: the text says what
/// to change), 1 for a failure while doing it.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<socket::WrongUser>().is_some()
        || matches!(e.downcast_ref::<AdminError>(), Some(AdminError::Refused(_)));
    if usage { 2 } else { 1 }
}

/// The OS user running this process, for the audit log.
pub fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            std::fs::metadata("/proc/self").map_or("unknown".into(), |m| format!("uid {}", m.uid()))
        })
}

/// Runs an admin command from the command line: through the running
/// server when there is one, else on the database directly.
pub fn run(cli: Cli, argv: Vec<String>) -> Response {
    // The data directory as the settings give it (a config file may name
    // it), so that the running server's socket is found.
    let (data_dir, shared) = match super::settings_of(&cli) {
        Ok(config) => (config.data_dir, config.database.is_some()),
        Err(e) => return failed(&e),
    };
    let stdin = wants_stdin(&argv).then(read_stdin);
    let actor = format!("cli:{}", os_user());
    let cwd = std::env::current_dir().unwrap_or_default();
    // A shared database is worked on directly: every replica reads each
    // change at its next request. (`access check` asks this host's server
    // for its rules, which live in its config, not in the database.)
    if shared && !matches!(cli.command, Command::Access { .. }) {
        return local(cli, &data_dir, stdin, actor, cwd).unwrap_or_else(|e| failed(&e));
    }
    match socket::request(
        &data_dir,
        &socket::Request {
            argv: argv.clone(),
            stdin: stdin.clone(),
            cwd: cwd.clone(),
            actor: actor.clone(),
        },
    ) {
        Ok(Some(response)) => return response,
        Ok(None) => {}
        Err(e) => return failed(&e),
    }
    local(cli, &data_dir, stdin, actor, cwd).unwrap_or_else(|e| failed(&e))
}

/// An error as a response: exit code 2 for bad usage, else 1.
fn failed(e: &anyhow::Error) -> Response {
    Response {
        stderr: format!("error: {e:#}\n"),
        code: exit_code(e),
        ..Default::default()
    }
}

fn local(
    cli: Cli,
    data_dir: &Path,
    stdin: Option<String>,
    actor: String,
    cwd: PathBuf,
) -> anyhow::Result<Response> {
    let config = super::settings_of(&cli)?;
    // Creating accounts and invitations may start a database (before the
    // first start); everything else needs one.
    let creates = matches!(
        &cli.command,
        Command::User {
            command: super::user::UserCommand::Add { .. },
            ..
        } | Command::Invite {
            command: super::invite::InviteCommand::Create { .. },
            ..
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let crate::store::Opened { store, backup } = match config.database()? {
        Some(db) => runtime.block_on(crate::store::open(data_dir, Some(&db)))?,
        None => {
            let store = std::sync::Arc::new(if creates {
                RedbStore::open(&config.data_dir)?
            } else {
                open_existing(data_dir)?
            });
            crate::store::Opened {
                backup: Some(
                    std::sync::Arc::clone(&store) as std::sync::Arc<dyn crate::store::Backup>
                ),
                store,
            }
        }
    };
    // One hashing thread: this process hashes at most one password.
    let passwords = Passwords::new(
        store.password_key(),
        config.bcrypt_cost,
        HashPool::new(1, 1).context("failed to start the password hashing thread")?,
    );
    let common_passwords = CommonPasswords::embedded();
    let ctx = Ctx {
        admin: Admin {
            store: store.as_ref(),
            backup: backup.as_deref(),
            passwords: &passwords,
            password_policy: config.password_policy,
            common_passwords: &common_passwords,
            lockout: config.lockout,
            links: Links::new(config.base_url_for(config.listen)),
            clock: Clock::system(),
            actor,
        },
        access: std::sync::Arc::new(config.access.clone()),
        config: &config,
        stdin,
        cwd,
    };
    Ok(runtime.block_on(execute(&ctx, cli.command)))
}

/// Opens a database that must exist already: reading or changing accounts
/// in a directory without one is a mistyped --data-dir, not a wish for a
/// new, empty database.
pub fn open_existing(dir: &Path) -> anyhow::Result<RedbStore> {
    let file = dir.join(crate::store::DATABASE_FILE);
    match std::fs::metadata(&file) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UsageError(format!(
                "there is no gatehouse database at {}; check --data-dir (or GATEHOUSE_DATA_DIR)",
                file.display()
            ))
            .into());
        }
        // Not "there is none": it is there, but not for this user.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(UsageError(format!(
                "permission denied: {} belongs to another user; run this command as the user gatehouse runs as (for example `sudo -u gatehouse gatehouse …`)",
                dir.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot read the database at {}", file.display())));
        }
    }
    Ok(RedbStore::open(dir)?)
}

fn wants_stdin(argv: &[String]) -> bool {
    argv.iter().any(|a| a == "--password-stdin")
}

fn read_stdin() -> String {
    use std::io::Read;
    let mut text = String::new();
    let _ = std::io::stdin().read_to_string(&mut text);
    text
}

/// The password a command read from standard input: one line.
pub fn stdin_password(ctx: &Ctx<'_>) -> anyhow::Result<String> {
    let raw = ctx
        .stdin
        .clone()
        .ok_or_else(|| UsageError("give the password on standard input".into()))?;
    Ok(raw
        .strip_suffix('\n')
        .map(|r| r.strip_suffix('\r').unwrap_or(r))
        .unwrap_or(&raw)
        .to_string())
}

/// The server's side of an admin command sent over the socket: parse the
/// command line with the same `Cli`, accept only admin commands, run it
/// on the server's store and settings.
pub fn socket_handler(state: AppState) -> socket::Handler {
    std::sync::Arc::new(move |req| Box::pin(serve_request(state.clone(), req)))
}

async fn serve_request(state: AppState, req: socket::Request) -> Response {
    use clap::Parser;
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
    if !is_admin(&cli.command) {
        return Response {
            stderr: "error: only admin commands can be sent to the server\n".into(),
            code: 2,
            ..Default::default()
        };
    }
    let ctx = Ctx {
        admin: state.admin(req.actor),
        access: state.access_rules(),
        config: &state.config,
        stdin: req.stdin,
        cwd: req.cwd,
    };
    let response = execute(&ctx, cli.command).await;
    // Mail a command queued (if any) goes out now.
    state.outbox.wake();
    response
}
