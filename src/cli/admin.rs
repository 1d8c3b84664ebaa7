//! Admin commands (`user`, `invite`, `audit`, `backup`) run the same code
//! whether the server is running or not (SPEC §7):
//! - server stopped: this process opens the database itself;
//! - server running (it holds the database): the command line is sent over
//!   the server's owner-only Unix socket (`socket.rs`) and the server runs
//!   it on its own store, so the change takes effect at once.
//!
//! Either way the command writes into a `Response` (stdout, stderr, exit
//! code) that the CLI prints: the output is the same.

use super::{Cli, Command, UsageError, socket};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What one admin command printed and how it ended.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Where and as whom a command runs.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    /// The running server's settings, or those given to this command.
    pub config: &'a Config,
    /// `cli:<user>`: recorded in the audit log.
    pub actor: String,
    /// Standard input, read by the client (for `--password-stdin`).
    pub stdin: Option<String>,
    /// The client's working directory (relative paths are the client's).
    pub cwd: PathBuf,
    pub clock: Clock,
    /// Whether a server is running this command (its sessions are live).
    pub via_server: bool,
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
        Command::User { .. } | Command::Invite { .. } | Command::Audit(_) | Command::Backup(_)
    )
}

/// Runs `cmd` with `ctx`, turning errors into stderr and an exit code.
pub fn execute(ctx: &Ctx<'_>, cmd: Command) -> Response {
    let mut out = Out::default();
    let result = match cmd {
        Command::User { command, .. } => super::user::exec(ctx, command, &mut out),
        Command::Invite { command, .. } => super::invite::exec(ctx, command, &mut out),
        Command::Audit(c) => super::audit::exec(ctx, c, &mut out),
        Command::Backup(c) => super::backup::exec(ctx, c, &mut out),
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
            code: if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            },
        },
    }
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
    let data_dir = match super::settings_of(&cli) {
        Ok(config) => config.data_dir,
        Err(e) => return failed(&e),
    };
    let stdin = wants_stdin(&argv).then(read_stdin);
    let actor = format!("cli:{}", os_user());
    let cwd = std::env::current_dir().unwrap_or_default();
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
        code: if e.downcast_ref::<UsageError>().is_some() {
            2
        } else {
            1
        },
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
    let store = if creates {
        crate::store::redb::RedbStore::open(&config.data_dir)?
    } else {
        open_existing(data_dir)?
    };
    let ctx = Ctx {
        store: &store,
        config: &config,
        actor,
        stdin,
        cwd,
        clock: Clock::system(),
        via_server: false,
    };
    Ok(execute(&ctx, cli.command))
}

/// Opens a database that must exist already: reading or changing accounts
/// in a directory without one is a mistyped --data-dir, not a wish for a
/// new, empty database.
pub fn open_existing(dir: &Path) -> anyhow::Result<crate::store::redb::RedbStore> {
    let file = dir.join(crate::store::DATABASE_FILE);
    if !file.exists() {
        return Err(UsageError(format!(
            "there is no gatehouse database at {}; check --data-dir (or GATEHOUSE_DATA_DIR)",
            file.display()
        ))
        .into());
    }
    Ok(crate::store::redb::RedbStore::open(dir)?)
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
