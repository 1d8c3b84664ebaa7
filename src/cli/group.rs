//! `gatehouse group add | list | show | delete | add-member | remove-member`
//! (SPEC §9). What they do is `services::admin`; run through
//! `admin::execute`, on the running server or on the database directly.

use super::UsageError;
use super::admin::{Ctx, Out};
use crate::domain::{GroupName, LoginId, User};
use crate::services::admin::name;
use clap::Subcommand;
use serde_json::json;

/// A group name as an argument (clap's value parser).
pub fn group_arg(raw: &str) -> Result<GroupName, String> {
    GroupName::parse(raw).map_err(|m| format!("{m} (got {raw:?})"))
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        #[arg(value_parser = group_arg)]
        name: GroupName,
    },
    /// List groups and how many members each has.
    List {
        #[arg(long)]
        json: bool,
    },
    /// List a group's members.
    Show {
        #[arg(value_parser = group_arg)]
        name: GroupName,
        #[arg(long)]
        json: bool,
    },
    /// Delete a group; its members leave it (their accounts stay).
    Delete {
        #[arg(value_parser = group_arg)]
        name: GroupName,
    },
    /// Put an account (email address or username) in a group.
    AddMember {
        #[arg(value_parser = group_arg)]
        name: GroupName,
        id: String,
    },
    /// Take an account out of a group.
    RemoveMember {
        #[arg(value_parser = group_arg)]
        name: GroupName,
        id: String,
    },
}

pub async fn exec(ctx: &Ctx<'_>, cmd: GroupCommand, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    match cmd {
        GroupCommand::Add { name } => {
            let group = admin.add_group(name).await?;
            out.line(format!(
                "created the group {}; add accounts with `gatehouse group add-member {} ID`",
                group.name, group.name
            ));
        }
        GroupCommand::List { json } => {
            let groups = admin.groups().await?;
            if json {
                let rows: Vec<_> = groups
                    .iter()
                    .map(|(g, n)| json!({"name": g.name, "members": n, "created_at": g.created_at.to_string()}))
                    .collect();
                out.line(serde_json::to_string_pretty(&rows)?);
            } else if groups.is_empty() {
                out.line("No groups yet. Create one with: gatehouse group add NAME");
            } else {
                out.line(format!("{:<32} {:<8} CREATED", "GROUP", "MEMBERS"));
                for (g, n) in groups {
                    out.line(format!("{:<32} {:<8} {}", g.name.as_str(), n, g.created_at));
                }
            }
        }
        GroupCommand::Show { name, json } => {
            let members = admin.group_members(&name).await?;
            if json {
                let rows: Vec<_> = members
                    .iter()
                    .map(|u| json!({"id": u.id, "username": u.username, "email": u.email}))
                    .collect();
                out.line(serde_json::to_string_pretty(
                    &json!({"name": name, "members": rows}),
                )?);
            } else if members.is_empty() {
                out.line(format!(
                    "the group {name} has no members; add one with `gatehouse group add-member {name} ID`"
                ));
            } else {
                out.line(format!("the group {name} has {} member(s):", members.len()));
                for u in &members {
                    out.line(format!("  {}", self::name(u)));
                }
            }
        }
        GroupCommand::Delete { name } => {
            let members = admin.delete_group(&name).await?;
            out.line(format!(
                "deleted the group {name}; {members} member(s) left it (their accounts stay). Access rules that name it now match nobody"
            ));
        }
        GroupCommand::AddMember { name, id } => {
            let user = find(ctx, &id).await?;
            out.line(if admin.add_member(&name, &user).await? {
                format!("{} is in the group {name} now", self::name(&user))
            } else {
                format!(
                    "{} is in the group {name} already; nothing to do",
                    self::name(&user)
                )
            });
        }
        GroupCommand::RemoveMember { name, id } => {
            let user = find(ctx, &id).await?;
            out.line(if admin.remove_member(&name, &user).await? {
                format!("{} is no longer in the group {name}", self::name(&user))
            } else {
                format!(
                    "{} is not in the group {name}; nothing to do",
                    self::name(&user)
                )
            });
        }
    }
    Ok(())
}

async fn find(ctx: &Ctx<'_>, raw: &str) -> anyhow::Result<User> {
    let id = LoginId::parse(raw).map_err(|m| UsageError(m.to_string()))?;
    Ok(ctx.admin.find(&id).await?)
}
