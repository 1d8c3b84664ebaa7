//! The command line (SPEC §7): clap definitions and dispatch. Output is
//! for people by default and JSON with `--json`; exit codes are 0 ok,
//! 1 failed, 2 bad usage.

mod invite;
mod mail;
mod serve;
mod user;

use crate::config::ServeArgs;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse",
    version,
    about = "A self-hosted front door for small teams: sign up, log in, lockout, sessions."
)]
pub struct Cli {
    /// Directory of the database [default: ./gatehouse-data].
    #[arg(long, global = true, env = "GATEHOUSE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the login pages and API.
    Serve(Box<ServeArgs>),
    /// Manage user accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage invitations to sign up.
    #[command(subcommand)]
    Invite(invite::InviteCommand),
    /// Check outgoing mail.
    #[command(subcommand)]
    Mail(mail::MailCommand),
}

/// `--data-dir`, or the default.
pub fn data_dir_or_default(data_dir: Option<PathBuf>) -> PathBuf {
    data_dir.unwrap_or_else(|| crate::config::DEFAULT_DATA_DIR.into())
}

/// A mistake in how a command was called (exit code 2), as opposed to a
/// failure while doing it (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs a parsed command line and turns its outcome into an exit code,
/// printing any error as one plain line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve::run(cli.data_dir, &args),
        Command::User(cmd) => user::run(cli.data_dir, cmd),
        Command::Invite(cmd) => invite::run(cli.data_dir, cmd),
        Command::Mail(cmd) => mail::run(cli.data_dir, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
