//! The command line (SPEC §7): clap definitions and dispatch. Output is
//! for people by default and JSON with `--json`; exit codes are 0 ok,
//! 1 failed, 2 bad usage. Admin commands run through `admin` (on the
//! running server when there is one).

mod access;
pub mod admin;
mod audit;
mod backup;
mod explain;
pub mod group;
mod invite;
mod mail;
mod migrate;
mod oidc;
mod proxy;
mod serve;
pub mod user;

use crate::config::{Config, PolicyName, ServeArgs};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
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

/// The server settings an admin command needs when it runs without the
/// server (with a running server, the server's own settings apply).
#[derive(Args, Debug, Default, Clone)]
pub struct SettingsArgs {
    /// The server's config file.
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The public URL of gatehouse, for links.
    #[arg(long, global = true, env = "GATEHOUSE_BASE_URL", value_name = "URL")]
    pub base_url: Option<url::Url>,
    /// bcrypt cost of new password hashes.
    #[arg(long, global = true, env = "GATEHOUSE_BCRYPT_COST", value_name = "N")]
    pub bcrypt_cost: Option<u32>,
    /// Password rule: seed or nist.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_PASSWORD_POLICY",
        value_name = "seed|nist"
    )]
    pub password_policy: Option<PolicyName>,
    /// Minimum password length.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_PASSWORD_MIN_LENGTH",
        value_name = "N"
    )]
    pub password_min_length: Option<usize>,
    /// The server's PostgreSQL database, if it uses one: then commands
    /// work on it directly, whether servers run or not.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// A file holding the --database password.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub database_password_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the login pages and API.
    Serve(Box<ServeArgs>),
    /// Manage user accounts.
    User {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Manage groups of users (what access rules name).
    Group {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Check what the access rules say about a URL (forward auth).
    Access {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: access::AccessCommand,
    },
    /// Put an app behind gatehouse: a reverse proxy's config, and a live
    /// check of a protected URL.
    Proxy {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: proxy::ProxyCommand,
    },
    /// Single sign-on for apps (OpenID Connect): their registrations and
    /// the ID-token signing keys.
    Oidc {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: oidc::OidcCommand,
    },
    /// Manage invitations to sign up.
    Invite {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        command: invite::InviteCommand,
    },
    /// Show the audit log of security events.
    Audit(audit::AuditArgs),
    /// Copy the database consistently, also while the server runs.
    Backup(backup::BackupArgs),
    /// Copy the whole store to PostgreSQL (--to postgres://…) or back to
    /// an embedded database (--to DIR), and check the copy table by table.
    Migrate {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        args: migrate::MigrateArgs,
    },
    /// Check outgoing mail.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Explain the server's settings.
    #[command(subcommand)]
    Config(explain::ConfigCommand),
    /// Exit 0 when the server answers its health check.
    Healthcheck(explain::HealthcheckArgs),
}

/// A mistake in how a command was called (exit code 2), as opposed to a
/// failure while doing it (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--data-dir`, or the default.
pub fn data_dir_or_default(data_dir: Option<PathBuf>) -> PathBuf {
    data_dir.unwrap_or_else(|| crate::config::DEFAULT_DATA_DIR.into())
}

/// The settings of an admin command run without the server.
pub fn settings_of(cli: &Cli) -> anyhow::Result<Config> {
    let s = match &cli.command {
        Command::User { settings, .. }
        | Command::Group { settings, .. }
        | Command::Access { settings, .. }
        | Command::Proxy { settings, .. }
        | Command::Invite { settings, .. }
        | Command::Oidc { settings, .. }
        | Command::Migrate { settings, .. } => settings.clone(),
        // Commands without settings of their own still find the database
        // the environment names.
        _ => SettingsArgs {
            config: std::env::var_os("GATEHOUSE_CONFIG").map(PathBuf::from),
            database: std::env::var("GATEHOUSE_DATABASE").ok(),
            database_password_file: std::env::var_os("GATEHOUSE_DATABASE_PASSWORD_FILE")
                .map(PathBuf::from),
            ..SettingsArgs::default()
        },
    };
    let args = ServeArgs {
        config: s.config,
        base_url: s.base_url,
        bcrypt_cost: s.bcrypt_cost,
        password_policy: s.password_policy,
        password_min_length: s.password_min_length,
        database: s.database,
        database_password_file: s.database_password_file,
        ..Default::default()
    };
    Config::load(cli.data_dir.clone(), &args)
        .map(|(c, _)| c)
        .map_err(|e| UsageError(format!("{e:#}")).into())
}

/// Runs a parsed command line and turns its outcome into an exit code,
/// printing any error as one plain line.
pub fn run(cli: Cli) -> ExitCode {
    if admin::is_admin(&cli.command) {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let response = admin::run(cli, argv);
        let _ = std::io::stdout().write_all(response.stdout.as_bytes());
        let _ = std::io::stderr().write_all(response.stderr.as_bytes());
        return ExitCode::from(response.code);
    }
    let result = match cli.command {
        Command::Proxy { ref command, .. } => {
            settings_of(&cli).and_then(|config| proxy::run(&config, command))
        }
        Command::Serve(args) => serve::run(cli.data_dir, &args),
        Command::Mail(cmd) => mail::run(cli.data_dir, cmd),
        Command::Config(cmd) => explain::run(cli.data_dir, cmd),
        Command::Healthcheck(args) => explain::healthcheck(cli.data_dir, &args),
        Command::Oidc {
            command: oidc::OidcCommand::NewSecret,
            ..
        } => {
            println!("{}", oidc::new_secret_text());
            Ok(())
        }
        Command::Migrate { ref args, .. } => {
            settings_of(&cli).and_then(|config| migrate::run(&config, args))
        }
        _ => unreachable!("admin commands are handled above"),
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
