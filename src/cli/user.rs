//! `gatehouse user …`: accounts (SPEC §7). The clap commands and how their
//! results are printed; what they do is `services::admin`. Run through
//! `admin::execute`, on the running server or on the database directly.

use super::UsageError;
use super::admin::{Ctx, Out, stdin_password};
use crate::domain::{EmailAddress, GroupName, LoginId, User, Username};
use crate::services::admin::{Unlocked, Verified, join_groups, name};
use clap::Subcommand;
use serde_json::json;

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
        /// Put the account in this group (repeatable; see `gatehouse group list`).
        #[arg(long = "group", value_name = "GROUP", value_parser = super::group::group_arg)]
        groups: Vec<GroupName>,
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
    /// How many stored password hashes there are per scheme and cost, and
    /// how many are left to upgrade (each is, at its owner's next login).
    RehashReport {
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// An account's second factors (authenticator app, recovery codes).
    #[command(name = "2fa", subcommand)]
    TwoFactor(TwoFactorCommand),
    /// End an account's sessions now: it must log in again. With --all,
    /// every account's.
    Logout {
        /// Email address or username.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every session of every account.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TwoFactorCommand {
    /// Remove an account's authenticator app and recovery codes, for a
    /// lost device: its password alone logs in again (or the policy asks it
    /// to set up a new one). Audited; the owner is mailed.
    Reset {
        /// Email address or username.
        id: String,
    },
}

pub async fn exec(ctx: &Ctx<'_>, cmd: UserCommand, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    match cmd {
        UserCommand::Add {
            email,
            username,
            admin: make_admin,
            password_stdin,
            groups,
        } => {
            let new = NewAccount {
                email: &email,
                username: username.as_deref(),
                admin: make_admin,
                password_stdin,
                groups,
            };
            add(ctx, new, out).await
        }
        UserCommand::List { json } => list(ctx, json, out).await,
        UserCommand::Show { id, json } => show(ctx, &id, json, out).await,
        UserCommand::SetPassword { id, .. } => set_password(ctx, &id, out).await,
        UserCommand::Lock { id, duration } => lock(ctx, &id, duration, out).await,
        UserCommand::Unlock { id } => unlock(ctx, &id, out).await,
        UserCommand::TwoFactor(TwoFactorCommand::Reset { id }) => {
            let user = find(ctx, &id).await?;
            out.line(if admin.reset_second_factors(&user).await? {
                format!(
                    "removed the second factors of {}; its owner is mailed, and its next login needs only the password (or sets up a new factor, if --require-2fa asks for one)",
                    name(&user)
                )
            } else {
                format!("{} has no second factor; nothing to do", name(&user))
            });
            Ok(())
        }
        UserCommand::Verify { id } => verify(ctx, &id, out).await,
        UserCommand::Disable { id } => {
            let user = find(ctx, &id).await?;
            let ended = admin.disable(&user).await?;
            out.line(format!(
                "disabled {}; {ended} session(s) ended",
                name(&user)
            ));
            Ok(())
        }
        UserCommand::Enable { id } => {
            let user = find(ctx, &id).await?;
            admin.enable(&user).await?;
            out.line(format!("enabled {}", name(&user)));
            Ok(())
        }
        UserCommand::Delete { id } => {
            let user = find(ctx, &id).await?;
            let sessions = admin.delete(&user).await?;
            out.line(format!(
                "deleted {}; {sessions} session(s) ended",
                name(&user)
            ));
            Ok(())
        }
        UserCommand::RehashReport { json } => rehash_report(ctx, json, out).await,
        UserCommand::Logout { id: Some(id), .. } => {
            let user = find(ctx, &id).await?;
            let ended = admin.logout(&user).await?;
            out.line(format!(
                "logged {} out: {ended} session(s) ended",
                name(&user)
            ));
            Ok(())
        }
        UserCommand::Logout { id: None, .. } => {
            let (accounts, ended) = admin.logout_all().await?;
            out.line(format!(
                "logged everyone out: {ended} session(s) of {accounts} account(s) ended"
            ));
            Ok(())
        }
        UserCommand::Promote { id } => {
            let user = find(ctx, &id).await?;
            admin.promote(&user).await?;
            out.line(format!("{} is an administrator now", name(&user)));
            Ok(())
        }
        UserCommand::Demote { id } => {
            let user = find(ctx, &id).await?;
            admin.demote(&user).await?;
            out.line(format!("{} is an ordinary user now", name(&user)));
            Ok(())
        }
    }
}

async fn rehash_report(ctx: &Ctx<'_>, json: bool, out: &mut Out) -> anyhow::Result<()> {
    use crate::auth::password::Scheme;
    let census = ctx.admin.hash_census().await?;
    let cost = ctx.admin.passwords.cost();
    let outdated =
        |k: &crate::auth::password::HashKind| k.scheme != Scheme::Ours || k.cost != Some(cost);
    let left: usize = census
        .0
        .iter()
        .filter(|(k, _)| outdated(k))
        .map(|(_, n)| n)
        .sum();
    let unusable: usize = census
        .0
        .iter()
        .filter(|(k, _)| k.scheme == Scheme::Unknown || k.cost.is_none())
        .map(|(_, n)| n)
        .sum();
    let dummy = census.most_common_cost().unwrap_or(cost);
    if json {
        let kinds: Vec<_> = census
            .0
            .iter()
            .map(|(k, n)| {
                json!({
                    "scheme": match k.scheme {
                        Scheme::Ours => "hmac-sha256-bcrypt".to_string(),
                        Scheme::Imported(p) => format!("bcrypt {p}"),
                        Scheme::Unknown => "unknown".to_string(),
                    },
                    "cost": k.cost,
                    "count": n,
                    "upgrade_at_next_login": outdated(k) && k.scheme != Scheme::Unknown && k.cost.is_some(),
                })
            })
            .collect();
        out.line(
            json!({
                "configured_cost": cost,
                "unknown_id_cost": dummy,
                "total": census.total(),
                "left_to_upgrade": left - unusable,
                "unusable": unusable,
                "kinds": kinds,
            })
            .to_string(),
        );
        return Ok(());
    }
    out.line(format!(
        "{} password hash(es); new ones are bcrypt cost {cost} (--bcrypt-cost)",
        census.total()
    ));
    for (k, n) in &census.0 {
        let what = match (k.scheme, k.cost) {
            (Scheme::Ours, Some(c)) => format!("bcrypt cost {c}"),
            (Scheme::Imported(p), Some(c)) => format!("bcrypt cost {c} (imported, {p})"),
            _ => "unknown or damaged".to_string(),
        };
        let note = if k.scheme == Scheme::Unknown || k.cost.is_none() {
            "  cannot log in: give them a new password with `gatehouse user set-password`"
        } else if outdated(k) {
            "  upgraded at their next login"
        } else {
            ""
        };
        out.line(format!("  {what}: {n}{note}"));
    }
    out.line(format!(
        "{} left to upgrade; an unknown ID is checked at cost {dummy}, the cost most hashes have",
        left - unusable
    ));
    Ok(())
}

async fn set_password(ctx: &Ctx<'_>, id: &str, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    let user = find(ctx, id).await?;
    let password = admin.check_password(
        stdin_password(ctx)?,
        user.email.as_str(),
        user.username.as_str(),
    )?;
    let ended = admin.set_password(&user, &password).await?;
    out.line(format!(
        "set the password of {}; {ended} session(s) ended, any lock lifted",
        name(&user)
    ));
    Ok(())
}

async fn lock(
    ctx: &Ctx<'_>,
    id: &str,
    duration: Option<humantime::Duration>,
    out: &mut Out,
) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    let user = find(ctx, id).await?;
    let duration = duration.map(Into::into);
    let (until, ended) = admin.lock(&user, duration).await?;
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

async fn unlock(ctx: &Ctx<'_>, id: &str, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    let id = login_id(id)?;
    let (user, done) = admin.unlock(&id).await?;
    out.line(match (user, done) {
        (Some(u), Unlocked::Nothing) => {
            format!("{} had no failed logins or lock; nothing to do", name(&u))
        }
        (Some(u), Unlocked::Cleared) => format!(
            "unlocked {}: the next login with the right password gets in",
            name(&u)
        ),
        (None, Unlocked::Nothing) => {
            format!("no account has the ID {id:?}, and it had no failed logins or lock")
        }
        (None, Unlocked::Cleared) => {
            format!("cleared the failed logins of {id:?} (no account has this ID)")
        }
    });
    Ok(())
}

async fn verify(ctx: &Ctx<'_>, id: &str, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    let user = find(ctx, id).await?;
    out.line(match admin.verify(&user).await? {
        Verified::Now => format!("verified {}: the account can log in now", name(&user)),
        Verified::Already => format!("{} is verified already; nothing to do", name(&user)),
        Verified::Disabled => {
            format!("{} is disabled; verifying does not enable it", name(&user))
        }
    });
    Ok(())
}

fn login_id(raw: &str) -> anyhow::Result<LoginId> {
    Ok(LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?)
}

async fn find(ctx: &Ctx<'_>, raw: &str) -> anyhow::Result<User> {
    Ok(ctx.admin.find(&login_id(raw)?).await?)
}

/// `user add`'s arguments.
struct NewAccount<'a> {
    email: &'a str,
    username: Option<&'a str>,
    admin: bool,
    password_stdin: bool,
    groups: Vec<GroupName>,
}

async fn add(ctx: &Ctx<'_>, new: NewAccount<'_>, out: &mut Out) -> anyhow::Result<()> {
    let NewAccount {
        email,
        username,
        admin,
        password_stdin,
        groups,
    } = new;
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
        Some(
            ctx.admin
                .check_password(stdin_password(ctx)?, email.as_str(), username.as_str())?,
        )
    } else {
        None
    };
    let added = ctx
        .admin
        .add_user(email, username, admin, password, groups)
        .await?;
    let user = &added.user;
    out.line(format!(
        "created {} {} <{}> (id {}){}",
        user.role,
        user.username,
        user.email,
        user.id,
        if user.groups.is_empty() {
            String::new()
        } else {
            format!(", in {}", join_groups(&user.groups))
        }
    ));
    if let Some(link) = added.password_link {
        out.line(format!("\nSend this one-time link to {}; it sets the account's password and works for 7 days:\n\n  {link}\n", user.email));
    }
    Ok(())
}

async fn list(ctx: &Ctx<'_>, as_json: bool, out: &mut Out) -> anyhow::Result<()> {
    let rows = ctx.admin.list_users().await?;
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(u, locked)| {
                json!({
                    "id": u.id, "email": u.email, "username": u.username, "role": u.role,
                    "status": u.status, "created_at": u.created_at.to_string(),
                    "groups": u.groups,
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

async fn show(ctx: &Ctx<'_>, raw: &str, as_json: bool, out: &mut Out) -> anyhow::Result<()> {
    let u = find(ctx, raw).await?;
    let locked = ctx.admin.locked_until(&u).await?;
    let sessions = ctx.admin.session_count(u.id).await?;
    let factors = ctx.admin.second_factors(&u).await?;
    if as_json {
        let value = json!({
            "id": u.id, "email": u.email, "username": u.username, "role": u.role, "status": u.status,
            "created_at": u.created_at.to_string(),
            "last_login": u.last_login.as_ref().map(|l| json!({"at": l.at.to_string(), "ip": l.ip})),
            "locked_until": locked.map(|t| t.to_string()),
            "sessions": sessions,
            "groups": u.groups,
            "consented": u.consent.as_ref().map(|c| c.at.to_string()),
            "second_factor": {
                "app": factors.has_app(),
                "passkeys": factors.passkeys.len(),
                "recovery_codes": factors.recovery.len(),
            },
        });
        out.line(serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    out.line(format!("id:           {}", u.id));
    out.line(format!("email:        {}", u.email));
    out.line(format!("username:     {}", u.username));
    out.line(format!("role:         {}", u.role));
    out.line(format!("status:       {}", u.status));
    out.line(format!(
        "groups:       {}",
        if u.groups.is_empty() {
            "-".to_string()
        } else {
            join_groups(&u.groups)
        }
    ));
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
    out.line(format!("sessions:     {sessions}"));
    let mut parts = Vec::new();
    if factors.has_app() {
        parts.push("authenticator app".to_string());
    }
    match factors.passkeys.len() {
        0 => {}
        1 => parts.push("1 passkey".into()),
        n => parts.push(format!("{n} passkeys")),
    }
    out.line(format!(
        "2nd factor:   {}",
        if parts.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{}; {} unused recovery code(s)",
                parts.join(", "),
                factors.recovery.len()
            )
        }
    ));
    Ok(())
}
