//! Settings of `gatehouse serve`: defaults <- TOML file (`--config`) <-
//! `GATEHOUSE_*` environment <- flags (SPEC §7). clap reads flags and the
//! environment (flags win); the file fills what both left unset; the
//! defaults fill the rest. `validate` then refuses impossible values with
//! an error that says what to set.
//!
//! Every setting is declared once, in the table below: its key (the
//! TOML key; the flag and the `GATEHOUSE_*` variable are made from it),
//! its type, its default, its value name and help. `settings.rs` turns the
//! table into the flags, the file's keys, the `Config` fields, their
//! defaults, the layering and the rows of `config explain`; `kinds.rs`
//! says how each type is parsed, read from the file and shown.

mod access;
mod kinds;
mod oidc_clients;
#[macro_use]
mod settings;

use crate::domain::PasswordPolicy;
use crate::domain::lockout::LockoutPolicy;
use crate::domain::oidc::OidcPolicy;
use crate::domain::session::SessionPolicy;
use crate::http::client::TrustedProxies;
use crate::mail::SmtpSettings;
use crate::store::postgres::Database;
pub use access::{load as load_access, parse as parse_access};
use anyhow::{Context, bail};
use kinds::FileValue;
pub use kinds::{CookieDomains, GroupList, HostList, Kind, MetricsListen, MinLength, OnOff};
pub use oidc_clients::{load as load_oidc_clients, parse as parse_oidc_clients};
use serde::Deserialize;
pub use settings::Setting;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The data directory when nothing else is said.
pub const DEFAULT_DATA_DIR: &str = "./gatehouse-data";

// The table, in the order of `--help` and `config explain`. A new setting
// is one entry, `key: Kind = DEFAULT, "VALUE NAME", "help";`, where
// DEFAULT is the value as a user would type it ("15m"), `(expr, "what
// --help says")` when it must be computed, or `none`. Groups such as
// `lockout: LockoutPolicy { threshold <- lockout_threshold: … }` fill a
// field of a `Config` field (other forms and the kinds: settings.rs,
// kinds.rs). Then describe it in docs/configuration.md and
// packaging/gatehouse.example.toml; tests/api/packaging.rs fails until
// both have it.
settings! {
    listen: SocketAddr = "127.0.0.1:8080", "ADDR:PORT",
        "Address and port to listen on";
    // Unset, it is derived from the bound address at start (base_url_for).
    base_url: Option<Url> = (None, "http://<listen>"), "URL",
        "The public URL users reach gatehouse at, used in links and as the pinned API endpoint";
    endpoint_editable: bool = "false", "BOOL",
        "Let users type another gatehouse URL in the login form's API endpoint";
    secure_cookies: bool = "false", "BOOL",
        "Mark cookies Secure even when --base-url is http:// (behind a TLS proxy)";
    bcrypt_cost: u32 = "12", "N",
        "bcrypt cost of new password hashes, 4..=31";
    hash_workers: usize = (cores(), "one per core"), "N",
        "Threads that hash passwords at once";
    hash_queue: usize = "32", "N",
        "Logins that may wait for a hashing thread; beyond it: 503";
    lockout: LockoutPolicy {
        threshold <- lockout_threshold: u32 = "10", "N",
            "Failed logins in a row one ID may make; one more locks it";
        duration <- lockout_duration: Duration = "20m", "DURATION",
            "How long a first lock lasts; each lock in a row lasts twice as long";
        max_duration <- lockout_max_duration: Duration = "24h", "DURATION",
            "The longest a lock grows to";
    }
    login_rate_per_minute: NonZeroU32 = "60", "N",
        "Login tries per minute from one client address";
    password_change_attempts: NonZeroU32 = "5", "N",
        "Password changes one account may try per --password-change-window";
    password_change_window: Duration = "15m", "DURATION",
        "The time --password-change-attempts are counted in";
    session: SessionPolicy {
        idle_timeout <- session_idle_timeout: Duration = "24h", "DURATION",
            "A session unused this long ends";
        lifetime <- session_lifetime: Duration = "7d", "DURATION",
            "A session ends this long after login, used or not";
    }
    max_sessions_per_user: usize = "10", "N",
        "Sessions one account may have at once; a new login beyond it ends the oldest";
    // The rule comes with its own minimum length; a given length then
    // replaces it (MinLength), whichever rule it is.
    password_policy: PolicyName = "seed", "seed|nist",
        "Password rule for new passwords: seed or nist";
    password_policy <- password_min_length: MinLength = "9 for seed, 15 for nist", "N",
        "Minimum password length";
    signup: SignupMode = "invite", "open|invite|closed",
        "Who may sign up: open, invite (a valid invitation is needed) or closed";
    signup_rate_per_minute: NonZeroU32 = "10", "N",
        "Signups per minute from one client address";
    signup_global_limit: NonZeroU32 = "100", "N",
        "Signups from all clients together per --signup-global-window";
    signup_global_window: Duration = "1h", "DURATION",
        "The time --signup-global-limit signups are counted in";
    terms_file: Option<PathBuf> = none, "FILE",
        "Terms of Service to show instead of the template (Markdown, or HTML if it ends in .html)";
    privacy_file: Option<PathBuf> = none, "FILE",
        "Privacy Policy to show instead of the template (Markdown, or HTML if it ends in .html)";
    mail: MailConfig {
        smtp <- smtp_url: Option<SmtpSettings> = none, "URL",
            "SMTP server for outgoing mail: smtp://user:pass@host:587 (STARTTLS), \
            smtps://user:pass@host:465 (TLS) or smtp://localhost:25?tls=none \
            (plain, a relay on this host). Without it, mail goes to the log", secret;
        // Unset, the sender is made from the base URL once it is known.
        from <- mail_from: Option<String> = (None, "gatehouse@<base-url host>"), "ADDRESS",
            "Sender of outgoing mail, such as \"Login <login@example.com>\"";
        ca_file <- smtp_ca_file: Option<PathBuf> = (None, "the system's CAs"), "FILE",
            "PEM file of the CA that signed the SMTP server's certificate";
        timeout <- smtp_timeout: Duration = "15s", "DURATION",
            "Longest wait for the SMTP server to connect or answer";
    }
    // Unset, it follows smtp_url (Config::load).
    require_verification: bool = (false, "on when --smtp-url is set"), "BOOL",
        "New accounts must confirm their email address before they log in";
    password_reset: OnOff = "on", "on|off",
        "Let users reset a forgotten password by email: on or off";
    reset_token_ttl: Duration = "1h", "DURATION",
        "How long a password reset link works";
    verify_token_ttl: Duration = "24h", "DURATION",
        "How long an email verification link works";
    mail_rate_per_minute: NonZeroU32 = "10", "N",
        "Forgot-password and resend-link requests per minute from one client address";
    mail_per_address: NonZeroU32 = "3", "N",
        "Verification and reset mails to one address per --mail-per-address-window";
    mail_per_address_window: Duration = "15m", "DURATION",
        "The time --mail-per-address mails are counted in";
    audit_retention: Duration = "90d", "DURATION",
        "How long audit events are kept";
    audit_max_events: usize = "1000000", "N",
        "The most audit events kept; beyond it the oldest are deleted";
    request_timeout: Duration = "30s", "DURATION",
        "Longest time one request may take";
    header_read_timeout: Duration = "10s", "DURATION",
        "Longest time a client may take to send a request's headers; also how long an idle connection stays open";
    max_connections: usize = "1024", "N",
        "Connections open at once; beyond it new ones are closed at once";
    max_connections_per_client: usize = "64", "N",
        "Connections open at once from one client address (trusted proxies are not counted)";
    trusted_proxies: TrustedProxies = "none", "CIDR,...|loopback|none",
        "Reverse proxies whose X-Forwarded-For, X-Real-IP or Forwarded header names the client";
    allowed_hosts: HostList = (Vec::new(), "the base URL's host"), "HOST,...",
        "Other Host names gatehouse answers to; a request for any other host gets 421";
    metrics_listen: MetricsListen = "127.0.0.1:9464", "ADDR:PORT|off",
        "Where /metrics is served: a listener of its own (loopback by default), or off";
    cookie_domain: CookieDomains = (Vec::new(), "none: each host its own"), "DOMAIN[=LOGIN_URL],...",
        "Domains the session cookie is set for, so apps on their sub-domains share the login (forward auth); each may name its own login URL";
    oidc: OidcPolicy {
        access_token_lifetime <- oidc_access_token_lifetime: Duration = "1h", "DURATION",
            "How long an access token issued to an app (OpenID Connect) works";
        id_token_lifetime <- oidc_id_token_lifetime: Duration = "1h", "DURATION",
            "How long an ID token issued to an app is valid";
        refresh_token_lifetime <- oidc_refresh_token_lifetime: Duration = "30d", "DURATION",
            "How long a refresh token works (from its issue; each use issues a new one)";
    }
    two_factor: TwoFactorPolicy {
        require <- require_2fa: Require2fa = "off", "off|admins|all",
            "Who must have a second factor (an authenticator app): off, admins or all; without one they enrol right after the password";
        groups <- require_2fa_groups: GroupList = (Vec::new(), "none"), "GROUP,...",
            "Groups whose members must have a second factor too";
    }
    database: Option<Database> = (None, "the embedded database in --data-dir"), "URL",
        "A PostgreSQL database shared by several replicas: postgres://USER@HOST:5432/DB?sslmode=verify-full", secret;
    database_password_file: Option<PathBuf> = none, "FILE",
        "A file holding the --database password (such as a systemd credential)";
}

/// Threads for hashing when nothing is said: one per core.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Who may sign up (SPEC §3).
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Anyone.
    Open,
    /// Only with a valid invitation token.
    Invite,
    /// Nobody; admins create accounts with the CLI.
    Closed,
}

/// Who must have a second factor (`--require-2fa`, SPEC §12).
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Require2fa {
    #[default]
    Off,
    Admins,
    All,
}

/// `--require-2fa` and `--require-2fa-groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwoFactorPolicy {
    pub require: Require2fa,
    pub groups: Vec<crate::domain::GroupName>,
}

impl TwoFactorPolicy {
    /// Must `user` have a second factor before it gets a session?
    pub fn requires(&self, user: &crate::domain::User) -> bool {
        match self.require {
            Require2fa::All => true,
            Require2fa::Admins if user.is_admin() => true,
            _ => user.groups.iter().any(|g| self.groups.contains(g)),
        }
    }
}

/// The password rule, as typed (`--password-policy`).
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    Seed,
    Nist,
}

/// How mail leaves gatehouse.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// None: mail is written to the log.
    pub smtp: Option<crate::mail::SmtpSettings>,
    /// None: `gatehouse@<base-url host>`, decided once the base URL is known.
    pub from: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl Config {
    /// Layers the file, environment and flags over the defaults.
    /// `data_dir` is the global `--data-dir` / `GATEHOUSE_DATA_DIR`, if given.
    /// Also returns warnings: unknown file keys and `GATEHOUSE_*` variables.
    pub fn load(
        data_dir: Option<PathBuf>,
        args: &ServeArgs,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let (mut file, mut warnings) = match &args.config {
            Some(path) => read_file(path)?,
            None => (FileConfig::default(), Vec::new()),
        };
        warnings.extend(unknown_env_vars());
        let data_dir = data_dir
            .or(file.data_dir.take())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let verification_given =
            args.require_verification.is_some() || file.require_verification.is_some();
        let mut c = Self::defaults(data_dir);
        c.layer(args, file)?;
        // Verification needs mail: unless it is said, it is on with SMTP.
        if !verification_given {
            c.require_verification = c.mail.smtp.is_some();
        }
        c.access = access::load(args.config.as_deref())?;
        c.oidc_clients = oidc_clients::load(args.config.as_deref())?;
        c.file.clone_from(&args.config);
        c.validate()?;
        Ok((c, warnings))
    }

    /// The PostgreSQL database to open, with the password of
    /// `--database-password-file` (read only now, when it is needed).
    pub fn database(&self) -> anyhow::Result<Option<Database>> {
        match (&self.database, &self.database_password_file) {
            (Some(db), Some(file)) => Ok(Some(db.clone().with_password_file(file)?)),
            (db, _) => Ok(db.clone()),
        }
    }

    /// Refuses settings that cannot work, saying what to set instead.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.database_password_file.is_some() && self.database.is_none() {
            bail!("--database-password-file needs --database (the password is for that database)");
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            bail!(
                "--bcrypt-cost must be between 4 and 31 (12 is the default; each step doubles the time)"
            );
        }
        if self.hash_workers == 0 {
            bail!("--hash-workers must be at least 1");
        }
        if self.lockout.threshold == 0 {
            bail!("--lockout-threshold must be at least 1 (the seed's rule is 10)");
        }
        if self.lockout.duration.is_zero() {
            bail!("--lockout-duration must be longer than zero, such as 20m");
        }
        if self.lockout.max_duration < self.lockout.duration {
            bail!(
                "--lockout-max-duration must be at least --lockout-duration ({}): such as 24h",
                short_duration(self.lockout.duration)
            );
        }
        if self.session.idle_timeout.is_zero() || self.session.lifetime.is_zero() {
            bail!(
                "--session-idle-timeout and --session-lifetime must be longer than zero, such as 24h and 7d"
            );
        }
        if self.request_timeout.is_zero() {
            bail!("--request-timeout must be longer than zero, such as 30s");
        }
        if self.audit_max_events == 0 {
            bail!("--audit-max-events must be at least 1 (the default is 1000000)");
        }
        if self.signup_global_window.is_zero() {
            bail!("--signup-global-window must be longer than zero, such as 1h");
        }
        if self.signup == SignupMode::Open && self.mail.smtp.is_some() && !self.require_verification
        {
            bail!(
                "--signup open with --smtp-url needs --require-verification on (its default with SMTP): \
                 otherwise anyone can take any address. Leave --require-verification out, or use --signup invite"
            );
        }
        if self.max_sessions_per_user == 0 {
            bail!("--max-sessions-per-user must be at least 1 (the default is 10)");
        }
        if self.header_read_timeout.is_zero() {
            bail!("--header-read-timeout must be longer than zero, such as 10s");
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            bail!(
                "--max-connections and --max-connections-per-client must be at least 1 (defaults: 1024 and 64)"
            );
        }
        if self
            .metrics_listen
            .is_some_and(|m| m == self.listen && m.port() != 0)
        {
            bail!(
                "--metrics-listen must differ from --listen ({}): choose another port, such as 127.0.0.1:9464, or off",
                self.listen
            );
        }
        if self.oidc.access_token_lifetime.is_zero()
            || self.oidc.id_token_lifetime.is_zero()
            || self.oidc.refresh_token_lifetime.is_zero()
        {
            bail!(
                "--oidc-access-token-lifetime, --oidc-id-token-lifetime and --oidc-refresh-token-lifetime must be longer than zero, such as 1h, 1h and 30d"
            );
        }
        if self.password_change_window.is_zero() {
            bail!("--password-change-window must be longer than zero, such as 15m");
        }
        if self.mail_per_address_window.is_zero() {
            bail!("--mail-per-address-window must be longer than zero, such as 15m");
        }
        let min = self.password_policy.min_len();
        match self.password_policy {
            PasswordPolicy::Seed { .. } if !(9..=1024).contains(&min) => {
                bail!(
                    "--password-min-length must be between 9 and 1024 with --password-policy seed"
                )
            }
            PasswordPolicy::Nist { .. } if !(15..=1024).contains(&min) => {
                bail!(
                    "--password-min-length must be between 15 and 1024 with --password-policy nist"
                )
            }
            _ => {}
        }
        if let Some(url) = &self.base_url {
            check_base_url(url)?;
            let host = url.host_str().unwrap_or_default();
            if let Some(d) = self
                .cookie_domain
                .iter()
                .find(|d| d.login_url.is_none() && !d.covers(host))
            {
                bail!(
                    "--cookie-domain {}: the base URL's host {host} is not inside it, so the login there cannot set its cookie. \
                     Give the domain the login page for it: --cookie-domain {}=https://auth.{}/ (and serve gatehouse there too)",
                    d.domain,
                    d.domain,
                    d.domain
                );
            }
        }
        if self.mail.timeout.is_zero()
            || self.reset_token_ttl.is_zero()
            || self.verify_token_ttl.is_zero()
        {
            bail!(
                "--smtp-timeout, --reset-token-ttl and --verify-token-ttl must be longer than zero, such as 15s, 1h and 24h"
            );
        }
        if let Some(from) = &self.mail.from {
            crate::mail::parse_mailbox(from)
                .with_context(|| format!("--mail-from {from:?} is not a mail address; write it as login@example.com or \"Login <login@example.com>\""))?;
        }
        Ok(())
    }

    /// Every setting by its file key, as text; secrets masked.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut rows = self.rows();
        // Where an unset setting means more than "-", say what.
        for (key, value) in &mut rows {
            match *key {
                "base_url" if self.base_url.is_none() => {
                    *value = format!("{} (from listen)", self.base_url_for(self.listen));
                }
                "smtp_url" if self.mail.smtp.is_none() => {
                    *value = "- (mail goes to the log)".into();
                }
                "mail_from" if self.mail.from.is_none() => {
                    *value = "- (gatehouse@<base-url host>)".into();
                }
                _ => {}
            }
        }
        rows
    }

    /// The base URL, once the listener's real address is known.
    /// A base URL given with port 0 takes the bound port (tests that
    /// listen on port 0 under a name of their own).
    pub fn base_url_for(&self, bound: SocketAddr) -> Url {
        if let Some(mut url) = self.base_url.clone().filter(|u| u.port() == Some(0)) {
            let _ = url.set_port(Some(bound.port()));
            return url;
        }
        self.base_url.clone().unwrap_or_else(|| {
            let host = if bound.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                bound.ip().to_string()
            };
            let host = if bound.is_ipv6() && !bound.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            Url::parse(&format!("http://{host}:{}/", bound.port()))
                .expect("a host and port make a URL")
        })
    }
}

/// A duration the way it is written in settings: `90d`, `24h`, `20m`,
/// `30s` (the largest unit that divides it exactly).
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn check_base_url(url: &Url) -> anyhow::Result<()> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!(
            "--base-url must be an http:// or https:// URL with a host, such as https://login.example.com"
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--base-url must not have a query or fragment");
    }
    Ok(())
}

/// The file's settings, and a warning for each key it does not know.
fn read_file(path: &Path) -> anyhow::Result<(FileConfig, Vec<String>)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the config file {}; check --config",
            path.display()
        )
    })?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
    let warnings = table
        .keys()
        .filter(|k| !FILE_KEYS.contains(&k.as_str()) && !matches!(k.as_str(), "access" | "oidc_client"))
        .map(|k| format!("the config file {} has an unknown key {k:?}: it is ignored; see packaging/gatehouse.example.toml for the keys", path.display()))
        .collect();
    let file = toml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))?;
    Ok((file, warnings))
}

/// `GATEHOUSE_*` variables that no setting reads (a typo, most likely).
fn unknown_env_vars() -> Vec<String> {
    use clap::CommandFactory;
    let known: Vec<String> = crate::cli::Cli::command()
        .get_subcommands()
        .flat_map(|c| {
            c.get_arguments()
                .chain(c.get_subcommands().flat_map(|s| s.get_arguments()))
                .collect::<Vec<_>>()
        })
        .chain(crate::cli::Cli::command().get_arguments())
        .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_owned))
        .chain(["GATEHOUSE_LOG", "GATEHOUSE_LOG_FORMAT"].map(String::from))
        .collect();
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("GATEHOUSE_") && !known.contains(k))
        .map(|k| format!("the environment variable {k} is not a gatehouse setting: it is ignored (check its spelling)"))
        .collect()
}

#[cfg(test)]
mod tests;
