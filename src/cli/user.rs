//! `gatehouse user …`: accounts (SPEC §7). Run through `admin::execute`,
//! on the running server's store or on the database directly.

use super::UsageError;
use super::admin::{Ctx, Out, stdin_password};
use crate::auth::lockout::{Gate, LockoutState};
use crate::auth::password::hash_now;
use crate::domain::{EmailAddress, LoginId, NewPassword, Role, User, UserStatus, Username};
use crate::store::{
    AuditEvent, AuditKind, CreateUserError, NewUser, OneTimeToken, TokenPurpose, lockout_keys_of,
};
use clap::Subcommand;
use serde_json::json;
use std::time::Duration;

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
    },
    /// List accounts.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account: status, role, logins, lock, sessions.
    Show {
        /// Email address or username.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Set an account's password (from standard input); its sessions end
    /// and its lock is lifted.
    SetPassword {
        id: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Lock an account: no login until `unlock` (or the time given).
    Lock {
        id: String,
        /// How long, such as 2h [default: until unlocked].
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<humantime::Duration>,
    },
    /// Lift the lockout of an ID (email or username) at once.
    Unlock { id: String },
    /// Mark an account's email address as confirmed, so that it can log in.
    Verify { id: String },
    /// Disable an account: it cannot log in and its sessions end now.
    Disable { id: String },
    /// Enable a disabled account again.
    Enable { id: String },
    /// Delete an account, its sessions and tokens (its audit events stay).
    Delete { id: String },
    /// Make an account an administrator.
    Promote { id: String },
    /// Make an administrator an ordinary user.
    Demote { id: String },
}

/// "Until unlocked": a lock far in the future.
const INDEFINITE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub fn exec(ctx: &Ctx<'_>, cmd: UserCommand, out: &mut Out) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            email,
            username,
            admin,
            password_stdin,
        } => add(ctx, &email, username.as_deref(), admin, password_stdin, out),
        UserCommand::List { json } => list(ctx, json, out),
        UserCommand::Show { id, json } => show(ctx, &id, json, out),
        UserCommand::SetPassword { id, .. } => set_password(ctx, &id, out),
        UserCommand::Lock { id, duration } => lock(ctx, &id, duration.map(Into::into), out),
        UserCommand::Unlock { id } => unlock(ctx, &id, out),
        UserCommand::Verify { id } => verify(ctx, &id, out),
        UserCommand::Disable { id } => disable(ctx, &id, out),
        UserCommand::Enable { id } => {
            let user = find(ctx, &id)?;
            ctx.store.set_status(user.id, UserStatus::Active)?;
            audit(ctx, &user, "enable")?;
            out.line(format!("enabled {}", name(&user)));
            Ok(())
        }
        UserCommand::Delete { id } => delete(ctx, &id, out),
        UserCommand::Promote { id } => {
            let user = find(ctx, &id)?;
            ctx.store.set_role(user.id, Role::Admin)?;
            audit(ctx, &user, "promote")?;
            out.line(format!("{} is an administrator now", name(&user)));
            Ok(())
        }
        UserCommand::Demote { id } => {
            let user = find(ctx, &id)?;
            refuse_if_last_admin(ctx, &user, "demote")?;
            ctx.store.set_role(user.id, Role::User)?;
            audit(ctx, &user, "demote")?;
            out.line(format!("{} is an ordinary user now", name(&user)));
            Ok(())
        }
    }
}

fn name(u: &User) -> String {
    format!("{} <{}>", u.username, u.email)
}

fn find(ctx: &Ctx<'_>, raw: &str) -> anyhow::Result<User> {
    let id = LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?;
    ctx.store.user_by_login_id(&id)?.ok_or_else(|| {
        UsageError(format!(
            "no account has the ID {raw:?}; see `gatehouse user list`"
        ))
        .into()
    })
}

/// Records what an admin did.
fn audit(ctx: &Ctx<'_>, user: &User, what: &str) -> anyhow::Result<()> {
    let event = AuditEvent::new(ctx.clock.now(), AuditKind::Admin, ctx.actor.clone())
        .user(user.id)
        .detail(format!("user {what}"));
    ctx.store.audit(vec![event])
}

/// An instance must keep an active administrator.
fn refuse_if_last_admin(ctx: &Ctx<'_>, user: &User, what: &str) -> anyhow::Result<()> {
    if user.role != Role::Admin || user.status != UserStatus::Active {
        return Ok(());
    }
    let others = ctx
        .store
        .users()?
        .iter()
        .filter(|u| u.id != user.id && u.role == Role::Admin && u.status == UserStatus::Active)
        .count();
    if others == 0 {
        return Err(UsageError(format!(
            "refusing to {what} {}: it is the last active administrator. Promote another account first (`gatehouse user promote ID`)",
            name(user)
        ))
        .into());
    }
    Ok(())
}

fn check_password(
    ctx: &Ctx<'_>,
    raw: String,
    email: &str,
    username: &str,
) -> anyhow::Result<NewPassword> {
    NewPassword::parse(
        ctx.config.password_policy,
        &crate::domain::CommonPasswords::embedded(),
        raw,
        &[email, username],
    )
    .map_err(|problems| {
        let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
        UsageError(format!("the password was refused: {}", why.join(" "))).into()
    })
}

fn add(
    ctx: &Ctx<'_>,
    email: &str,
    username: Option<&str>,
    admin: bool,
    password_stdin: bool,
    out: &mut Out,
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
        Some(check_password(
            ctx,
            stdin_password(ctx)?,
            email.as_str(),
            username.as_str(),
        )?)
    } else {
        None
    };
    let key = ctx.store.password_key();
    // Without a password, the account gets one nobody knows, and the link
    // printed below lets its owner choose one.
    let hash = match &password {
        Some(p) => hash_now(&key, ctx.config.bcrypt_cost, p.expose()),
        None => hash_now(
            &key,
            ctx.config.bcrypt_cost,
            &crate::auth::random_token::<32>(),
        ),
    };
    let now = ctx.clock.now();
    let new = NewUser {
        email,
        username,
        password_hash: hash,
        role: if admin { Role::Admin } else { Role::User },
        status: UserStatus::Active,
        created_at: now,
        // Not accepted yet: asked at the first login.
        consent: None,
    };
    let user = match ctx.store.create_user(new, None) {
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
    audit(ctx, &user, "add")?;
    out.line(format!(
        "created {} {} <{}> (id {})",
        user.role, user.username, user.email, user.id
    ));
    if password.is_none() {
        let link = password_link(ctx, &user)?;
        out.line(format!("\nSend this one-time link to {}; it sets the account's password and works for 7 days:\n\n  {link}\n", user.email));
    }
    Ok(())
}

/// A reset token for `user`, valid 7 days, as a link.
fn password_link(ctx: &Ctx<'_>, user: &User) -> anyhow::Result<String> {
    let secret = crate::auth::random_token::<32>();
    let now = ctx.clock.now();
    let token = OneTimeToken {
        purpose: TokenPurpose::Reset,
        user: user.id,
        created_at: now,
        expires_at: now.plus(Duration::from_secs(7 * 24 * 3600)),
    };
    ctx.store
        .issue_token(crate::auth::sha256(secret.as_bytes()), token, None)?;
    let mut link = ctx
        .config
        .base_url_for(ctx.config.listen)
        .join("reset-password")
        .expect("a base URL joins a path");
    link.query_pairs_mut().append_pair("token", &secret);
    Ok(link.into())
}

fn locked_until(ctx: &Ctx<'_>, user: &User) -> anyhow::Result<Option<crate::clock::Timestamp>> {
    let now = ctx.clock.now();
    let mut until = None;
    for key in lockout_keys_of(user) {
        if let Gate::Locked { until: t } = ctx.config.lockout.gate(&ctx.store.lockout(&key)?, now) {
            until = until.max(Some(t));
        }
    }
    Ok(until)
}

fn list(ctx: &Ctx<'_>, as_json: bool, out: &mut Out) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for user in ctx.store.users()? {
        let locked = locked_until(ctx, &user)?;
        rows.push((user, locked));
    }
    if as_json {
        let list: Vec<_> = rows
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
        out.line(serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if rows.is_empty() {
        out.line(
            "No accounts yet. Create one with: gatehouse user add EMAIL --admin --password-stdin",
        );
        return Ok(());
    }
    out.line(format!(
        "{:<5} {:<32} {:<20} {:<6} {:<22} {:<20} LOCKED UNTIL",
        "ID", "EMAIL", "USERNAME", "ROLE", "STATUS", "LAST LOGIN"
    ));
    for (u, locked) in rows {
        out.line(format!(
            "{:<5} {:<32} {:<20} {:<6} {:<22} {:<20} {}",
            u.id.0,
            u.email.as_str(),
            u.username.as_str(),
            u.role.to_string(),
            u.status.to_string(),
            u.last_login
                .map_or("never".to_string(), |l| l.at.to_string()),
            locked.map_or("-".to_string(), |t| t.to_string()),
        ));
    }
    Ok(())
}

fn show(ctx: &Ctx<'_>, raw: &str, as_json: bool, out: &mut Out) -> anyhow::Result<()> {
    let u = find(ctx, raw)?;
    let locked = locked_until(ctx, &u)?;
    let sessions = ctx.store.sessions_of(u.id)?;
    if as_json {
        let value = json!({
            "id": u.id, "email": u.email, "username": u.username, "role": u.role, "status": u.status,
            "created_at": u.created_at.to_string(),
            "last_login": u.last_login.as_ref().map(|l| json!({"at": l.at.to_string(), "ip": l.ip})),
            "locked_until": locked.map(|t| t.to_string()),
            "sessions": sessions.len(),
            "consented": u.consent.as_ref().map(|c| c.at.to_string()),
        });
        out.line(serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    out.line(format!("id:           {}", u.id));
    out.line(format!("email:        {}", u.email));
    out.line(format!("username:     {}", u.username));
    out.line(format!("role:         {}", u.role));
    out.line(format!("status:       {}", u.status));
    out.line(format!("created:      {}", u.created_at));
    out.line(format!(
        "last login:   {}",
        u.last_login
            .map_or("never".into(), |l| format!("{} from {}", l.at, l.ip))
    ));
    out.line(format!(
        "locked until: {}",
        locked.map_or("-".into(), |t| t.to_string())
    ));
    out.line(format!("sessions:     {}", sessions.len()));
    Ok(())
}

fn set_password(ctx: &Ctx<'_>, raw: &str, out: &mut Out) -> anyhow::Result<()> {
    let user = find(ctx, raw)?;
    let password = check_password(
        ctx,
        stdin_password(ctx)?,
        user.email.as_str(),
        user.username.as_str(),
    )?;
    let hash = hash_now(
        &ctx.store.password_key(),
        ctx.config.bcrypt_cost,
        password.expose(),
    );
    ctx.store.set_password_hash(user.id, hash)?;
    let ended = ctx.store.end_sessions(user.id)?;
    ctx.store.clear_lockouts(&lockout_keys_of(&user))?;
    audit(ctx, &user, "set-password")?;
    out.line(format!(
        "set the password of {}; {ended} session(s) ended, any lock lifted",
        name(&user)
    ));
    Ok(())
}

fn lock(ctx: &Ctx<'_>, raw: &str, duration: Option<Duration>, out: &mut Out) -> anyhow::Result<()> {
    let user = find(ctx, raw)?;
    let now = ctx.clock.now();
    let until = now.plus(duration.unwrap_or(INDEFINITE));
    for key in lockout_keys_of(&user) {
        ctx.store.update_lockout(
            &key,
            &mut |_| {
                (
                    LockoutState {
                        failures: 0,
                        last_failure: Some(now),
                        locked_until: Some(until),
                        by_admin: true,
                    },
                    Vec::new(),
                )
            },
            None,
        )?;
    }
    let ended = ctx.store.end_sessions(user.id)?;
    audit(ctx, &user, &format!("lock until {until}"))?;
    match duration {
        Some(_) => out.line(format!(
            "locked {} until {until}; {ended} session(s) ended",
            name(&user)
        )),
        None => out.line(format!(
            "locked {} until `gatehouse user unlock`; {ended} session(s) ended",
            name(&user)
        )),
    }
    Ok(())
}

fn unlock(ctx: &Ctx<'_>, raw: &str, out: &mut Out) -> anyhow::Result<()> {
    let id = LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?;
    let user = ctx.store.user_by_login_id(&id)?;
    let mut keys = user.as_ref().map(lockout_keys_of).unwrap_or_default();
    if !keys.contains(&id.lockout_key()) {
        keys.push(id.lockout_key());
    }
    let cleared = ctx.store.clear_lockouts(&keys)?;
    if cleared > 0 {
        let event = AuditEvent::new(ctx.clock.now(), AuditKind::LockCleared, ctx.actor.clone())
            .maybe_user(user.as_ref().map(|u| u.id))
            .subject(id.to_string());
        ctx.store.audit(vec![event])?;
    }
    match (user, cleared) {
        (Some(u), 0) => out.line(format!(
            "{} had no failed logins or lock; nothing to do",
            name(&u)
        )),
        (Some(u), _) => out.line(format!(
            "unlocked {}: the next login with the right password gets in",
            name(&u)
        )),
        (None, 0) => out.line(format!(
            "no account has the ID {id:?}, and it had no failed logins or lock"
        )),
        (None, _) => out.line(format!(
            "cleared the failed logins of {id:?} (no account has this ID)"
        )),
    }
    Ok(())
}

fn verify(ctx: &Ctx<'_>, raw: &str, out: &mut Out) -> anyhow::Result<()> {
    let user = find(ctx, raw)?;
    match user.status {
        UserStatus::PendingVerification => {
            ctx.store.set_status(user.id, UserStatus::Active)?;
            audit(ctx, &user, "verify")?;
            out.line(format!(
                "verified {}: the account can log in now",
                name(&user)
            ));
        }
        UserStatus::Active => out.line(format!(
            "{} is verified already; nothing to do",
            name(&user)
        )),
        UserStatus::Disabled => out.line(format!(
            "{} is disabled; verifying does not enable it",
            name(&user)
        )),
    }
    Ok(())
}

fn disable(ctx: &Ctx<'_>, raw: &str, out: &mut Out) -> anyhow::Result<()> {
    let user = find(ctx, raw)?;
    refuse_if_last_admin(ctx, &user, "disable")?;
    ctx.store.set_status(user.id, UserStatus::Disabled)?;
    let ended = ctx.store.end_sessions(user.id)?;
    audit(ctx, &user, "disable")?;
    out.line(format!(
        "disabled {}; {ended} session(s) ended",
        name(&user)
    ));
    Ok(())
}

fn delete(ctx: &Ctx<'_>, raw: &str, out: &mut Out) -> anyhow::Result<()> {
    let user = find(ctx, raw)?;
    refuse_if_last_admin(ctx, &user, "delete")?;
    let sessions = ctx.store.sessions_of(user.id)?.len();
    ctx.store.delete_user(user.id)?;
    audit(ctx, &user, "delete")?;
    out.line(format!(
        "deleted {}; {sessions} session(s) ended",
        name(&user)
    ));
    Ok(())
}
