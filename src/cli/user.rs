//! `gatehouse user add | list | unlock`, working on the database directly.
//! While a server holds the database they say so (RedbStore's InUse
//! error); reaching a running server is a later issue.

use super::UsageError;
use crate::auth::lockout::Gate;
use crate::auth::password::hash_now;
use crate::clock::Clock;
use crate::config::{Config, DEFAULT_DATA_DIR, PolicyName, ServeArgs};
use crate::domain::{
    CommonPasswords, EmailAddress, LoginId, NewPassword, Role, UserStatus, Username,
};
use crate::store::redb::RedbStore;
use crate::store::{
    CreateUserError, LockoutStore, MailStore, NewUser, OneTimeToken, Store, TokenPurpose,
    UserStore, lockout_keys_of,
};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// The account's email address.
        email: String,
        /// Its username [default: from the email's local part].
        #[arg(long)]
        username: Option<String>,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (one line). Without it, a
        /// one-time link where the owner sets the password is printed.
        #[arg(long)]
        password_stdin: bool,
        /// The server's config file, for its password settings and base URL.
        #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// The public URL of gatehouse, for the link [default: the server's].
        #[arg(long, env = "GATEHOUSE_BASE_URL", value_name = "URL")]
        base_url: Option<url::Url>,
        /// bcrypt cost [default: 12, or the config file's].
        #[arg(long, env = "GATEHOUSE_BCRYPT_COST", value_name = "N")]
        bcrypt_cost: Option<u32>,
        /// Password rule: seed or nist [default: seed, or the config file's].
        #[arg(long, env = "GATEHOUSE_PASSWORD_POLICY", value_name = "seed|nist")]
        password_policy: Option<PolicyName>,
        /// Minimum password length [default: 9 for seed, 15 for nist].
        #[arg(long, env = "GATEHOUSE_PASSWORD_MIN_LENGTH", value_name = "N")]
        password_min_length: Option<usize>,
    },
    /// List accounts.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Mark an account's email address as confirmed, so that it can log in.
    Verify {
        /// Email address or username.
        id: String,
    },
    /// Lift the lockout of an ID (email or username) at once.
    Unlock {
        /// Email address or username.
        id: String,
    },
}

pub fn run(data_dir: Option<PathBuf>, cmd: UserCommand) -> anyhow::Result<()> {
    let dir = data_dir.clone().unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    match cmd {
        UserCommand::Add {
            email,
            username,
            admin,
            password_stdin,
            config,
            base_url,
            bcrypt_cost,
            password_policy,
            password_min_length,
        } => {
            let args = ServeArgs {
                config,
                base_url,
                bcrypt_cost,
                password_policy,
                password_min_length,
                ..Default::default()
            };
            let config = Config::load(data_dir, &args).map_err(|e| UsageError(format!("{e:#}")))?;
            add(
                &config.data_dir,
                &config,
                &email,
                username.as_deref(),
                admin,
                password_stdin,
            )
        }
        UserCommand::List { json } => list(&open_existing(&dir)?, &dir, json),
        UserCommand::Unlock { id } => unlock(&open_existing(&dir)?, &id),
        UserCommand::Verify { id } => verify(&open_existing(&dir)?, &id),
    }
}

fn open(dir: &Path) -> anyhow::Result<RedbStore> {
    Ok(RedbStore::open(dir)?)
}

/// Opens a database that must exist already: reading or changing accounts
/// in a directory without one is a mistyped --data-dir, not a wish for a
/// new, empty database.
pub(super) fn open_existing(dir: &Path) -> anyhow::Result<RedbStore> {
    let file = dir.join(crate::store::DATABASE_FILE);
    if !file.exists() {
        return Err(UsageError(format!(
            "there is no gatehouse database at {}; check --data-dir (or GATEHOUSE_DATA_DIR)",
            file.display()
        ))
        .into());
    }
    open(dir)
}

fn add(
    dir: &Path,
    config: &Config,
    email: &str,
    username: Option<&str>,
    admin: bool,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email =
        EmailAddress::parse(email).map_err(|m| UsageError(format!("{m} (got {email:?})")))?;
    let username = match username {
        Some(u) => Username::parse(u).map_err(|m| UsageError(format!("{m} (got {u:?})")))?,
        None => Username::from_email_local_part(email.as_str()).ok_or_else(|| {
            UsageError(
                "cannot make a username from this email address; give one with --username".into(),
            )
        })?,
    };
    let password = if password_stdin {
        Some(read_password(config, &email, &username)?)
    } else {
        None
    };
    let store = open(dir)?;
    // Without a password, the account gets one nobody knows, and the link
    // printed below lets its owner choose one.
    let hash = match &password {
        Some(p) => hash_now(&store.password_key(), config.bcrypt_cost, p.expose()),
        None => hash_now(
            &store.password_key(),
            config.bcrypt_cost,
            &crate::auth::random_token::<32>(),
        ),
    };
    let new = NewUser {
        email,
        username,
        password_hash: hash,
        role: if admin { Role::Admin } else { Role::User },
        status: UserStatus::Active,
        created_at: Clock::system().now(),
        // Not accepted yet: asked at the first login.
        consent: None,
    };
    let user = match store.create_user(new, None) {
        Ok(u) => u,
        Err(CreateUserError::EmailTaken) => anyhow::bail!(
            "an account with this email address already exists; see `gatehouse user list`"
        ),
        Err(CreateUserError::UsernameTaken) => {
            anyhow::bail!("the username is taken; choose another with --username")
        }
        Err(CreateUserError::Other(e)) => return Err(e.context("failed to create the account")),
        Err(CreateUserError::Invite(problem)) => anyhow::bail!("{problem}"),
    };
    println!(
        "created {} {} <{}> (id {})",
        user.role, user.username, user.email, user.id
    );
    if password.is_none() {
        let secret = crate::auth::random_token::<32>();
        let now = Clock::system().now();
        let token = OneTimeToken {
            purpose: TokenPurpose::Reset,
            user: user.id,
            created_at: now,
            expires_at: now.plus(SETUP_LINK_TTL),
        };
        store.issue_token(crate::auth::sha256(secret.as_bytes()), token, None)?;
        let mut link = config
            .base_url_for(config.listen)
            .join("reset-password")
            .expect("a base URL joins a path");
        link.query_pairs_mut().append_pair("token", &secret);
        println!(
            "\nSend this one-time link to {}; it sets the account's password and works for 7 days:\n\n  {link}\n",
            user.email
        );
    }
    Ok(())
}

/// How long the password link of `user add` (without a password) works.
const SETUP_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// One line of standard input, checked against the password rule.
fn read_password(
    config: &Config,
    email: &EmailAddress,
    username: &Username,
) -> anyhow::Result<NewPassword> {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .context("failed to read the password from standard input")?;
    let raw = raw
        .strip_suffix('\n')
        .map(|r| r.strip_suffix('\r').unwrap_or(r))
        .unwrap_or(&raw)
        .to_string();
    NewPassword::parse(
        config.password_policy,
        &CommonPasswords::embedded(),
        raw,
        &[email.as_str(), username.as_str()],
    )
    .map_err(|problems| {
        let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
        UsageError(format!("the password was refused: {}", why.join(" "))).into()
    })
}

fn list(store: &RedbStore, dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let now = Clock::system().now();
    // The lockout rule's duration does not matter for reading a lock.
    let policy = Config::defaults(dir.to_path_buf()).lockout;
    let mut rows = Vec::new();
    for user in store.users()? {
        let mut locked_until = None;
        for key in lockout_keys_of(&user) {
            if let Gate::Locked { until } = policy.gate(&store.lockout(&key)?, now) {
                locked_until = locked_until.max(Some(until));
            }
        }
        rows.push((user, locked_until));
    }
    if as_json {
        let out: Vec<_> = rows
            .iter()
            .map(|(u, locked)| {
                json!({
                    "id": u.id, "email": u.email, "username": u.username, "role": u.role,
                    "status": u.status, "created_at": u.created_at.to_string(),
                    "last_login": u.last_login.as_ref().map(|l| l.at.to_string()),
                    "locked_until": locked.map(|t| t.to_string()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "No accounts yet. Create one with: gatehouse user add EMAIL --admin --password-stdin"
        );
        return Ok(());
    }
    println!(
        "{:<5} {:<32} {:<20} {:<6} {:<22} {:<20} LOCKED UNTIL",
        "ID", "EMAIL", "USERNAME", "ROLE", "STATUS", "LAST LOGIN"
    );
    for (u, locked) in rows {
        println!(
            "{:<5} {:<32} {:<20} {:<6} {:<22} {:<20} {}",
            u.id.0,
            u.email.as_str(),
            u.username.as_str(),
            u.role.to_string(),
            u.status.to_string(),
            u.last_login
                .map_or("never".to_string(), |l| l.at.to_string()),
            locked.map_or("-".to_string(), |t| t.to_string()),
        );
    }
    Ok(())
}

fn unlock(store: &RedbStore, raw: &str) -> anyhow::Result<()> {
    let id = LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?;
    let user = store.user_by_login_id(&id)?;
    let mut keys = user.as_ref().map(lockout_keys_of).unwrap_or_default();
    if !keys.contains(&id.lockout_key()) {
        keys.push(id.lockout_key());
    }
    let cleared = store.clear_lockouts(&keys)?;
    match (user, cleared) {
        (Some(u), 0) => println!(
            "{} <{}> had no failed logins or lock; nothing to do",
            u.username, u.email
        ),
        (Some(u), _) => println!(
            "unlocked {} <{}>: the next login with the right password gets in",
            u.username, u.email
        ),
        (None, 0) => println!("no account has the ID {id:?}, and it had no failed logins or lock"),
        (None, _) => println!("cleared the failed logins of {id:?} (no account has this ID)"),
    }
    Ok(())
}

fn verify(store: &RedbStore, raw: &str) -> anyhow::Result<()> {
    let id = LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?;
    let Some(user) = store.user_by_login_id(&id)? else {
        return Err(UsageError(format!(
            "no account has the ID {id:?}; see `gatehouse user list`"
        ))
        .into());
    };
    match user.status {
        UserStatus::PendingVerification => {
            store.set_status(user.id, UserStatus::Active)?;
            println!(
                "verified {} <{}>: the account can log in now",
                user.username, user.email
            );
        }
        UserStatus::Active => println!(
            "{} <{}> is verified already; nothing to do",
            user.username, user.email
        ),
        UserStatus::Disabled => println!(
            "{} <{}> is disabled; verifying does not enable it",
            user.username, user.email
        ),
    }
    Ok(())
}
