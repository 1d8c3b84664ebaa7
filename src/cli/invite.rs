//! `gatehouse invite create | list | revoke` (SPEC §3, §7). Run through
//! `admin::execute`, on the running server's store or the database.

use super::UsageError;
use super::admin::{Ctx, Out};
use crate::domain::{EmailAddress, GroupName};
use crate::services::admin::join_groups;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum InviteCommand {
    /// Make an invitation and print its signup link (shown only now).
    Create {
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// How long it stays valid, such as 7d or 12h; `never` for no expiry.
        #[arg(long, default_value = "7d", value_name = "DURATION|never")]
        expires: String,
        /// Only this email address may use it.
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
        /// Accounts made with it are administrators.
        #[arg(long)]
        admin: bool,
        /// Accounts made with it join this group (repeatable).
        #[arg(long = "group", value_name = "GROUP", value_parser = super::group::group_arg)]
        groups: Vec<GroupName>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List invitations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an invitation by its number (see `invite list`).
    Revoke { id: u64 },
}

pub async fn exec(ctx: &Ctx<'_>, cmd: InviteCommand, out: &mut Out) -> anyhow::Result<()> {
    match cmd {
        InviteCommand::Create {
            uses,
            expires,
            email,
            admin,
            groups,
            json,
        } => {
            let wanted = Wanted {
                uses,
                email: email.as_deref(),
                admin,
                groups,
            };
            create(ctx, wanted, &expires, json, out).await
        }
        InviteCommand::List { json } => list(ctx, json, out).await,
        InviteCommand::Revoke { id } => {
            ctx.admin.revoke_invite(id).await?;
            out.line(format!("revoked invitation {id}: its link no longer works"));
            Ok(())
        }
    }
}

/// What an invitation is to give.
struct Wanted<'a> {
    uses: u32,
    email: Option<&'a str>,
    admin: bool,
    groups: Vec<GroupName>,
}

async fn create(
    ctx: &Ctx<'_>,
    wanted: Wanted<'_>,
    expires: &str,
    as_json: bool,
    out: &mut Out,
) -> anyhow::Result<()> {
    let Wanted {
        uses,
        email,
        admin,
        groups,
    } = wanted;
    if uses == 0 {
        return Err(UsageError("--uses must be at least 1".into()).into());
    }
    let lifetime = match expires.trim() {
        "never" => None,
        text => Some(humantime::parse_duration(text).map_err(|e| {
            UsageError(format!(
                "--expires {text:?}: {e}; write a duration such as 7d or 12h, or `never`"
            ))
        })?),
    };
    let email = email
        .map(|e| EmailAddress::parse(e).map_err(|m| UsageError(format!("--email: {m}"))))
        .transpose()?;
    let config = ctx.config;
    let (invite, link) = ctx
        .admin
        .create_invite(uses, lifetime, email, admin, groups)
        .await?;
    if as_json {
        let value = json!({
            "id": invite.id, "link": link, "role": invite.role, "uses": invite.max_uses,
            "expires_at": invite.expires_at.map(|t| t.to_string()), "email": invite.email,
            "groups": invite.groups,
        });
        out.line(serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    out.line(format!(
        "invitation {} ({} account{}, {}{}{}):\n\n  {link}\n\nSend this link to the person to invite. It is shown only now: gatehouse keeps only its hash.",
        invite.id,
        invite.max_uses,
        if invite.max_uses == 1 { "" } else { "s" },
        if admin { "admin, " } else { "" },
        invite
            .expires_at
            .map_or("never expires".to_string(), |t| format!("expires {t}")),
        invite
            .email
            .as_ref()
            .map_or(String::new(), |e| format!(", only for {e}")),
    ));
    if !invite.groups.is_empty() {
        out.line(format!(
            "Accounts made with it join: {}",
            join_groups(&invite.groups)
        ));
    }
    if config.base_url.is_none() {
        out.line(format!(
            "(The link uses {}; set --base-url or GATEHOUSE_BASE_URL to the address people reach gatehouse at.)",
            config.base_url_for(config.listen)
        ));
    }
    Ok(())
}

async fn list(ctx: &Ctx<'_>, as_json: bool, out: &mut Out) -> anyhow::Result<()> {
    let now = ctx.admin.clock.now();
    let invites = ctx.admin.invites().await?;
    if as_json {
        let rows: Vec<_> = invites
            .iter()
            .map(|i| {
                json!({
                    "id": i.id, "status": i.status(now).to_string(), "role": i.role,
                    "uses": i.max_uses, "uses_left": i.uses_left(),
                    "created_at": i.created_at.to_string(),
                    "expires_at": i.expires_at.map(|t| t.to_string()),
                    "email": i.email, "first_run": i.first_run, "groups": i.groups,
                    "redeemed_by": i.redeemed.iter().map(|r| json!({"user": r.user, "username": r.username, "at": r.at.to_string()})).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.line(serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if invites.is_empty() {
        out.line("No invitations. Make one with: gatehouse invite create [--uses N] [--expires 7d] [--email ADDR] [--admin]");
        return Ok(());
    }
    out.line(format!(
        "{:<4} {:<8} {:<6} {:<9} {:<21} {:<28} REDEEMED BY",
        "ID", "STATUS", "ROLE", "USES LEFT", "EXPIRES", "EMAIL"
    ));
    for i in invites {
        let redeemed: Vec<_> = i.redeemed.iter().map(|r| r.username.as_str()).collect();
        out.line(format!(
            "{:<4} {:<8} {:<6} {:<9} {:<21} {:<28} {}",
            i.id,
            i.status(now).to_string(),
            i.role.to_string(),
            format!("{}/{}", i.uses_left(), i.max_uses),
            i.expires_at.map_or("never".into(), |t| t.to_string()),
            i.email.as_ref().map_or("-", |e| e.as_str()),
            if redeemed.is_empty() {
                "-".into()
            } else {
                redeemed.join(", ")
            },
        ));
    }
    Ok(())
}
