//! Settings of `gatehouse serve`: defaults <- TOML file (`--config`) <-
//! `GATEHOUSE_*` environment <- flags (SPEC §7). clap reads flags and the
//! environment (flags win); the file fills what both left unset; the
//! defaults fill the rest. `validate` then refuses impossible values with
//! an error that says what to set.

use crate::domain::PasswordPolicy;
use crate::domain::lockout::LockoutPolicy;
use crate::domain::session::SessionPolicy;
use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The data directory when nothing else is said.
pub const DEFAULT_DATA_DIR: &str = "./gatehouse-data";

/// Flags of `serve`. Every one is optional so that an unset flag can fall
/// through to the environment, the file, then the default.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GATEHOUSE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The public URL users reach gatehouse at, used in links and as the
    /// pinned API endpoint [default: http://<listen>].
    #[arg(long, env = "GATEHOUSE_BASE_URL", value_name = "URL")]
    pub base_url: Option<Url>,
    /// Let users type another gatehouse URL in the login form's API endpoint.
    #[arg(long, env = "GATEHOUSE_ENDPOINT_EDITABLE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub endpoint_editable: Option<bool>,
    /// Mark cookies Secure even when --base-url is http:// (behind a TLS proxy).
    #[arg(long, env = "GATEHOUSE_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub secure_cookies: Option<bool>,
    /// bcrypt cost of new password hashes, 4..=31 [default: 12].
    #[arg(long, env = "GATEHOUSE_BCRYPT_COST", value_name = "N")]
    pub bcrypt_cost: Option<u32>,
    /// Threads that hash passwords at once [default: one per core].
    #[arg(long, env = "GATEHOUSE_HASH_WORKERS", value_name = "N")]
    pub hash_workers: Option<usize>,
    /// Logins that may wait for a hashing thread; beyond it: 503 [default: 32].
    #[arg(long, env = "GATEHOUSE_HASH_QUEUE", value_name = "N")]
    pub hash_queue: Option<usize>,
    /// Failed logins in a row one ID may make; one more locks it [default: 10].
    #[arg(long, env = "GATEHOUSE_LOCKOUT_THRESHOLD", value_name = "N")]
    pub lockout_threshold: Option<u32>,
    /// How long a locked ID stays locked [default: 20m].
    #[arg(long, env = "GATEHOUSE_LOCKOUT_DURATION", value_name = "DURATION")]
    pub lockout_duration: Option<humantime::Duration>,
    /// Login tries per minute from one client address [default: 60].
    #[arg(long, env = "GATEHOUSE_LOGIN_RATE_PER_MINUTE", value_name = "N")]
    pub login_rate_per_minute: Option<u32>,
    /// A session unused this long ends [default: 24h].
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_TIMEOUT", value_name = "DURATION")]
    pub session_idle_timeout: Option<humantime::Duration>,
    /// A session ends this long after login, used or not [default: 7d].
    #[arg(long, env = "GATEHOUSE_SESSION_LIFETIME", value_name = "DURATION")]
    pub session_lifetime: Option<humantime::Duration>,
    /// Password rule for new passwords: seed or nist [default: seed].
    #[arg(long, env = "GATEHOUSE_PASSWORD_POLICY", value_name = "seed|nist")]
    pub password_policy: Option<PolicyName>,
    /// Minimum password length [default: 9 for seed, 15 for nist].
    #[arg(long, env = "GATEHOUSE_PASSWORD_MIN_LENGTH", value_name = "N")]
    pub password_min_length: Option<usize>,
    /// Who may sign up: open, invite (a valid invitation is needed) or closed [default: invite].
    #[arg(long, env = "GATEHOUSE_SIGNUP", value_name = "open|invite|closed")]
    pub signup: Option<SignupMode>,
    /// Signups per minute from one client address [default: 10].
    #[arg(long, env = "GATEHOUSE_SIGNUP_RATE_PER_MINUTE", value_name = "N")]
    pub signup_rate_per_minute: Option<u32>,
    /// Terms of Service to show instead of the template (Markdown, or HTML if it ends in .html).
    #[arg(long, env = "GATEHOUSE_TERMS_FILE", value_name = "FILE")]
    pub terms_file: Option<PathBuf>,
    /// Privacy Policy to show instead of the template (Markdown, or HTML if it ends in .html).
    #[arg(long, env = "GATEHOUSE_PRIVACY_FILE", value_name = "FILE")]
    pub privacy_file: Option<PathBuf>,
    /// SMTP server for outgoing mail: smtp://user:pass@host:587 (STARTTLS),
    /// smtps://user:pass@host:465 (TLS) or smtp://localhost:25?tls=none
    /// (plain, a relay on this host). Without it, mail goes to the log.
    #[arg(
        long,
        env = "GATEHOUSE_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail, such as "Login <login@example.com>" [default: gatehouse@<base-url host>].
    #[arg(long, env = "GATEHOUSE_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// PEM file of the CA that signed the SMTP server's certificate [default: the system's CAs].
    #[arg(long, env = "GATEHOUSE_SMTP_CA_FILE", value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Longest wait for the SMTP server to connect or answer [default: 15s].
    #[arg(long, env = "GATEHOUSE_SMTP_TIMEOUT", value_name = "DURATION")]
    pub smtp_timeout: Option<humantime::Duration>,
    /// New accounts must confirm their email address before they log in [default: on when --smtp-url is set].
    #[arg(long, env = "GATEHOUSE_REQUIRE_VERIFICATION", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub require_verification: Option<bool>,
    /// Let users reset a forgotten password by email: on or off [default: on].
    #[arg(long, env = "GATEHOUSE_PASSWORD_RESET", value_parser = BoolishValueParser::new(), value_name = "on|off")]
    pub password_reset: Option<bool>,
    /// How long a password reset link works [default: 1h].
    #[arg(long, env = "GATEHOUSE_RESET_TOKEN_TTL", value_name = "DURATION")]
    pub reset_token_ttl: Option<humantime::Duration>,
    /// How long an email verification link works [default: 24h].
    #[arg(long, env = "GATEHOUSE_VERIFY_TOKEN_TTL", value_name = "DURATION")]
    pub verify_token_ttl: Option<humantime::Duration>,
    /// How long audit events are kept [default: 90d].
    #[arg(long, env = "GATEHOUSE_AUDIT_RETENTION", value_name = "DURATION")]
    pub audit_retention: Option<humantime::Duration>,
    /// Longest time one request may take [default: 30s].
    #[arg(long, env = "GATEHOUSE_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<humantime::Duration>,
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

#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    Seed,
    Nist,
}

/// The TOML file: the same settings, snake_case keys. Unknown keys are
/// warned about at start (issue 5), so a misspelt setting is noticed.
#[derive(Deserialize, Debug, Default)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    base_url: Option<Url>,
    endpoint_editable: Option<bool>,
    secure_cookies: Option<bool>,
    bcrypt_cost: Option<u32>,
    hash_workers: Option<usize>,
    hash_queue: Option<usize>,
    lockout_threshold: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    lockout_duration: Option<humantime::Duration>,
    login_rate_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    session_idle_timeout: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "duration")]
    session_lifetime: Option<humantime::Duration>,
    password_policy: Option<PolicyName>,
    password_min_length: Option<usize>,
    signup: Option<SignupMode>,
    signup_rate_per_minute: Option<u32>,
    terms_file: Option<PathBuf>,
    privacy_file: Option<PathBuf>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    smtp_ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    smtp_timeout: Option<humantime::Duration>,
    require_verification: Option<bool>,
    password_reset: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    reset_token_ttl: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "duration")]
    verify_token_ttl: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "duration")]
    audit_retention: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "duration")]
    request_timeout: Option<humantime::Duration>,
}

/// The effective settings of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `None`: derived from the bound address at start.
    pub base_url: Option<Url>,
    pub endpoint_editable: bool,
    pub secure_cookies: bool,
    pub bcrypt_cost: u32,
    pub hash_workers: usize,
    pub hash_queue: usize,
    pub lockout: LockoutPolicy,
    pub login_rate_per_minute: NonZeroU32,
    pub session: SessionPolicy,
    pub password_policy: PasswordPolicy,
    pub signup: SignupMode,
    pub signup_rate_per_minute: NonZeroU32,
    pub terms_file: Option<PathBuf>,
    pub privacy_file: Option<PathBuf>,
    pub mail: MailConfig,
    pub require_verification: bool,
    pub password_reset: bool,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    pub audit_retention: Duration,
    pub request_timeout: Duration,
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
    /// The defaults, with data in `data_dir`.
    pub fn defaults(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            endpoint_editable: false,
            secure_cookies: false,
            bcrypt_cost: 12,
            hash_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hash_queue: 32,
            lockout: LockoutPolicy {
                threshold: 10,
                duration: Duration::from_secs(20 * 60),
            },
            login_rate_per_minute: NonZeroU32::new(60).expect("60 is not zero"),
            session: SessionPolicy {
                idle_timeout: Duration::from_secs(24 * 3600),
                lifetime: Duration::from_secs(7 * 24 * 3600),
            },
            password_policy: PasswordPolicy::Seed { min_len: 9 },
            signup: SignupMode::Invite,
            signup_rate_per_minute: NonZeroU32::new(10).expect("10 is not zero"),
            terms_file: None,
            privacy_file: None,
            mail: MailConfig {
                smtp: None,
                from: None,
                ca_file: None,
                timeout: Duration::from_secs(15),
            },
            require_verification: false,
            password_reset: true,
            reset_token_ttl: Duration::from_secs(3600),
            verify_token_ttl: Duration::from_secs(24 * 3600),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Layers the file, environment and flags over the defaults.
    /// `data_dir` is the global `--data-dir` / `GATEHOUSE_DATA_DIR`, if given.
    /// Also returns warnings: unknown file keys and `GATEHOUSE_*` variables.
    pub fn load(
        data_dir: Option<PathBuf>,
        args: &ServeArgs,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let (file, mut warnings) = match &args.config {
            Some(path) => read_file(path)?,
            None => (FileConfig::default(), Vec::new()),
        };
        warnings.extend(unknown_env_vars());
        let data_dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let mut c = Self::defaults(data_dir);
        macro_rules! layer {
            ($field:ident => $target:expr) => {
                if let Some(v) = args.$field.clone().or(file.$field.clone()) {
                    $target = v.into();
                }
            };
        }
        layer!(listen => c.listen);
        if let Some(url) = args.base_url.clone().or(file.base_url) {
            c.base_url = Some(url);
        }
        layer!(endpoint_editable => c.endpoint_editable);
        layer!(secure_cookies => c.secure_cookies);
        layer!(bcrypt_cost => c.bcrypt_cost);
        layer!(hash_workers => c.hash_workers);
        layer!(hash_queue => c.hash_queue);
        layer!(lockout_threshold => c.lockout.threshold);
        layer!(lockout_duration => c.lockout.duration);
        layer!(session_idle_timeout => c.session.idle_timeout);
        layer!(session_lifetime => c.session.lifetime);
        layer!(request_timeout => c.request_timeout);
        layer!(signup => c.signup);
        if let Some(path) = args.terms_file.clone().or(file.terms_file) {
            c.terms_file = Some(path);
        }
        if let Some(path) = args.privacy_file.clone().or(file.privacy_file) {
            c.privacy_file = Some(path);
        }
        if let Some(url) = args.smtp_url.clone().or(file.smtp_url) {
            c.mail.smtp = Some(crate::mail::SmtpSettings::parse(&url)?);
        }
        if let Some(from) = args.mail_from.clone().or(file.mail_from) {
            c.mail.from = Some(from);
        }
        if let Some(path) = args.smtp_ca_file.clone().or(file.smtp_ca_file) {
            c.mail.ca_file = Some(path);
        }
        layer!(smtp_timeout => c.mail.timeout);
        c.require_verification = c.mail.smtp.is_some();
        layer!(require_verification => c.require_verification);
        layer!(password_reset => c.password_reset);
        layer!(reset_token_ttl => c.reset_token_ttl);
        layer!(verify_token_ttl => c.verify_token_ttl);
        layer!(audit_retention => c.audit_retention);
        if let Some(n) = args.signup_rate_per_minute.or(file.signup_rate_per_minute) {
            c.signup_rate_per_minute =
                NonZeroU32::new(n).context("--signup-rate-per-minute must be at least 1")?;
        }
        if let Some(n) = args.login_rate_per_minute.or(file.login_rate_per_minute) {
            c.login_rate_per_minute =
                NonZeroU32::new(n).context("--login-rate-per-minute must be at least 1")?;
        }
        let policy = args
            .password_policy
            .or(file.password_policy)
            .unwrap_or(PolicyName::Seed);
        let min = args.password_min_length.or(file.password_min_length);
        c.password_policy = match policy {
            PolicyName::Seed => PasswordPolicy::Seed {
                min_len: min.unwrap_or(9),
            },
            PolicyName::Nist => PasswordPolicy::Nist {
                min_len: min.unwrap_or(15),
            },
        };
        c.validate()?;
        Ok((c, warnings))
    }

    /// Refuses settings that cannot work, saying what to set instead.
    pub fn validate(&self) -> anyhow::Result<()> {
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
        if self.session.idle_timeout.is_zero() || self.session.lifetime.is_zero() {
            bail!(
                "--session-idle-timeout and --session-lifetime must be longer than zero, such as 24h and 7d"
            );
        }
        if self.request_timeout.is_zero() {
            bail!("--request-timeout must be longer than zero, such as 30s");
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
        let d = short_duration;
        let opt = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("-".to_string(), |p| p.display().to_string())
        };
        let smtp = self
            .mail
            .smtp
            .as_ref()
            .map_or("- (mail goes to the log)".to_string(), |s| {
                let user = s
                    .credentials
                    .as_ref()
                    .map_or(String::new(), |(u, _)| format!("{u}:****@"));
                let scheme = if s.security == crate::mail::Security::Tls {
                    "smtps"
                } else {
                    "smtp"
                };
                let plain = if s.security == crate::mail::Security::Plain {
                    "?tls=none"
                } else {
                    ""
                };
                format!("{scheme}://{user}{}:{}{plain}", s.host, s.port)
            });
        let (policy, min) = match self.password_policy {
            PasswordPolicy::Seed { min_len } => ("seed", min_len),
            PasswordPolicy::Nist { min_len } => ("nist", min_len),
        };
        vec![
            ("data_dir", self.data_dir.display().to_string()),
            ("listen", self.listen.to_string()),
            (
                "base_url",
                self.base_url.as_ref().map_or(
                    format!("{} (from listen)", self.base_url_for(self.listen)),
                    |u| u.to_string(),
                ),
            ),
            ("endpoint_editable", self.endpoint_editable.to_string()),
            ("secure_cookies", self.secure_cookies.to_string()),
            ("bcrypt_cost", self.bcrypt_cost.to_string()),
            ("hash_workers", self.hash_workers.to_string()),
            ("hash_queue", self.hash_queue.to_string()),
            ("lockout_threshold", self.lockout.threshold.to_string()),
            ("lockout_duration", d(self.lockout.duration)),
            (
                "login_rate_per_minute",
                self.login_rate_per_minute.to_string(),
            ),
            ("session_idle_timeout", d(self.session.idle_timeout)),
            ("session_lifetime", d(self.session.lifetime)),
            ("password_policy", policy.to_string()),
            ("password_min_length", min.to_string()),
            ("signup", format!("{:?}", self.signup).to_lowercase()),
            (
                "signup_rate_per_minute",
                self.signup_rate_per_minute.to_string(),
            ),
            ("terms_file", opt(&self.terms_file)),
            ("privacy_file", opt(&self.privacy_file)),
            ("smtp_url", smtp),
            (
                "mail_from",
                self.mail
                    .from
                    .clone()
                    .unwrap_or_else(|| "- (gatehouse@<base-url host>)".into()),
            ),
            ("smtp_ca_file", opt(&self.mail.ca_file)),
            ("smtp_timeout", d(self.mail.timeout)),
            (
                "require_verification",
                self.require_verification.to_string(),
            ),
            (
                "password_reset",
                if self.password_reset { "on" } else { "off" }.to_string(),
            ),
            ("reset_token_ttl", d(self.reset_token_ttl)),
            ("verify_token_ttl", d(self.verify_token_ttl)),
            ("audit_retention", d(self.audit_retention)),
            ("request_timeout", d(self.request_timeout)),
        ]
    }

    /// The base URL, once the listener's real address is known.
    pub fn base_url_for(&self, bound: SocketAddr) -> Url {
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

/// Durations in the file are strings such as "20m" or "7d", as on the
/// command line.
fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<humantime::Duration>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{e}: write a duration such as \"30s\", \"20m\", \"24h\" or \"7d\""
        ))
    })
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

/// Every key the file may hold.
pub const FILE_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "base_url",
    "endpoint_editable",
    "secure_cookies",
    "bcrypt_cost",
    "hash_workers",
    "hash_queue",
    "lockout_threshold",
    "lockout_duration",
    "login_rate_per_minute",
    "session_idle_timeout",
    "session_lifetime",
    "password_policy",
    "password_min_length",
    "signup",
    "signup_rate_per_minute",
    "terms_file",
    "privacy_file",
    "smtp_url",
    "mail_from",
    "smtp_ca_file",
    "smtp_timeout",
    "require_verification",
    "password_reset",
    "reset_token_ttl",
    "verify_token_ttl",
    "audit_retention",
    "request_timeout",
];

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
        .filter(|k| !FILE_KEYS.contains(&k.as_str()))
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
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(
            &file,
            "lockout_threshold = 5\nbcrypt_cost = 10\nlisten = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let probe = Probe::try_parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--bcrypt-cost",
            "11",
        ])
        .unwrap();
        let (c, _) = Config::load(None, &probe.serve).unwrap();
        assert_eq!(c.bcrypt_cost, 11);
        assert_eq!(c.lockout.threshold, 5);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.lockout.duration, Duration::from_secs(1200));
    }

    #[test]
    fn unknown_file_keys_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(&file, "lockout_treshold = 5\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        let (_, warnings) = Config::load(None, &args).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("lockout_treshold")),
            "{warnings:?}"
        );
    }

    #[test]
    fn impossible_values_say_what_to_set() {
        let mut c = Config::defaults("d".into());
        c.bcrypt_cost = 3;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--bcrypt-cost")
        );
        let mut c = Config::defaults("d".into());
        c.base_url = Some(Url::parse("ftp://x").unwrap());
        assert!(c.validate().unwrap_err().to_string().contains("--base-url"));
    }
}
