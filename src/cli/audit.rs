//! `gatehouse audit [--since 1h] [--user ID] [--json]`: the security events.

use super::UsageError;
use super::admin::{Ctx, Out};
use crate::domain::LoginId;
use clap::Args;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only events this recent, such as 1h or 7d.
    #[arg(long, value_name = "DURATION")]
    since: Option<humantime::Duration>,
    /// Only events about this account (email or username).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// One JSON array instead of lines.
    #[arg(long)]
    json: bool,
}

pub async fn exec(ctx: &Ctx<'_>, args: AuditArgs, out: &mut Out) -> anyhow::Result<()> {
    let user = args
        .user
        .as_deref()
        .map(|raw| LoginId::parse(raw).map_err(|m| UsageError(m.to_string())))
        .transpose()?;
    let events = ctx
        .admin
        .audit_events(args.since.map(Into::into), user.as_ref(), args.limit)
        .await?;
    if args.json {
        let list: Vec<_> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "at": e.at.to_string(), "kind": e.kind, "actor": e.actor, "user": e.user,
                    "subject": e.subject, "ip": e.ip, "detail": e.detail,
                })
            })
            .collect();
        out.line(serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if events.is_empty() {
        out.line("No events.");
        return Ok(());
    }
    for e in events {
        let mut line = format!("{}  {:<21} {}", e.at, e.kind.as_str(), e.actor);
        if let Some(u) = e.user {
            line.push_str(&format!("  user={u}"));
        }
        if let Some(s) = &e.subject {
            line.push_str(&format!("  id={s:?}"));
        }
        if let Some(ip) = &e.ip {
            line.push_str(&format!("  ip={ip}"));
        }
        if let Some(d) = &e.detail {
            line.push_str(&format!("  {d}"));
        }
        out.line(line);
    }
    Ok(())
}
