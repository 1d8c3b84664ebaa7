//! Groups by name; who is in each is kept twice, in one transaction: on
//! the account's record (read with every session check) and in
//! `group_members`.

use super::users::{lock_user, store_user};
use super::{PgStore, id_i64, id_u64, transaction};
use crate::domain::{Group, GroupName, Membership, UserId};
use crate::store::record::{decode, encode_text};
use crate::store::{GroupStore, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;

/// The groups of `wanted` that exist, sorted and without repeats (their
/// rows locked against a delete until the transaction ends).
pub(super) async fn existing(
    t: &Transaction<'_>,
    mut wanted: Vec<GroupName>,
) -> anyhow::Result<Vec<GroupName>> {
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let names: Vec<&str> = wanted.iter().map(GroupName::as_str).collect();
    let rows = t
        .query(
            &t.prepare_cached("SELECT name FROM user_groups WHERE name = ANY($1) FOR SHARE")
                .await?,
            &[&names],
        )
        .await?;
    let found: std::collections::BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(wanted
        .into_iter()
        .filter(|g| found.contains(g.as_str()))
        .collect())
}

async fn group_exists(t: &Transaction<'_>, name: &GroupName) -> anyhow::Result<bool> {
    Ok(t.query_opt(
        &t.prepare_cached("SELECT 1 FROM user_groups WHERE name = $1 FOR SHARE")
            .await?,
        &[&name.as_str()],
    )
    .await?
    .is_some())
}

/// The members of a group, by id.
async fn members_of(t: &Transaction<'_>, name: &GroupName) -> anyhow::Result<Vec<UserId>> {
    let rows = t
        .query(
            &t.prepare_cached(
                "SELECT user_id FROM group_members WHERE group_name = $1 ORDER BY user_id",
            )
            .await?,
            &[&name.as_str()],
        )
        .await?;
    Ok(rows.iter().map(|r| UserId(id_u64(r.get(0)))).collect())
}

impl PgStore {
    async fn set_membership(
        &self,
        group: &GroupName,
        user: UserId,
        member: bool,
    ) -> StoreResult<Membership> {
        transaction!(self, |t| {
            if !group_exists(&t, group).await? {
                return Ok(Membership::NoGroup);
            }
            let Some(mut record) = lock_user(&t, user).await? else {
                return Ok(Membership::NoUser);
            };
            match (record.groups.binary_search(group), member) {
                (Ok(_), true) | (Err(_), false) => return Ok(Membership::Unchanged),
                (Err(i), true) => record.groups.insert(i, group.clone()),
                (Ok(i), false) => {
                    record.groups.remove(i);
                }
            }
            store_user(&t, &record).await?;
            let sql = if member {
                "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2)"
            } else {
                "DELETE FROM group_members WHERE group_name = $1 AND user_id = $2"
            };
            t.execute(
                &t.prepare_cached(sql).await?,
                &[&group.as_str(), &id_i64(user.0)],
            )
            .await?;
            anyhow::Ok(Membership::Changed)
        })
    }
}

#[async_trait]
impl GroupStore for PgStore {
    async fn create_group(&self, group: Group) -> StoreResult<bool> {
        let n = self
            .execute(
                "INSERT INTO user_groups (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&group.name.as_str(), &encode_text(&group)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn groups(&self) -> StoreResult<Vec<(Group, usize)>> {
        let rows = self
            .query(
                "SELECT g.record, (SELECT count(*) FROM group_members m WHERE m.group_name = g.name) \
                 FROM user_groups g ORDER BY g.name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let group: Group = decode(r.get::<_, &str>(0).as_bytes(), "group")?;
                Ok((group, usize::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
            })
            .collect::<anyhow::Result<_>>()?)
    }

    async fn group_members(&self, name: &GroupName) -> StoreResult<Option<Vec<UserId>>> {
        transaction!(self, |t| {
            if !group_exists(&t, name).await? {
                return Ok(None);
            }
            let members = members_of(&t, name).await?;
            anyhow::Ok(Some(members))
        })
    }

    async fn delete_group(&self, name: &GroupName) -> StoreResult<Option<usize>> {
        transaction!(self, |t| {
            let gone = t
                .query_opt(
                    &t.prepare_cached("SELECT 1 FROM user_groups WHERE name = $1 FOR UPDATE")
                        .await?,
                    &[&name.as_str()],
                )
                .await?;
            if gone.is_none() {
                return Ok(None);
            }
            let members = members_of(&t, name).await?;
            for member in &members {
                if let Some(mut user) = lock_user(&t, *member).await? {
                    user.groups.retain(|g| g != name);
                    store_user(&t, &user).await?;
                }
            }
            // Its memberships go with it (ON DELETE CASCADE).
            t.execute(
                &t.prepare_cached("DELETE FROM user_groups WHERE name = $1")
                    .await?,
                &[&name.as_str()],
            )
            .await?;
            anyhow::Ok(Some(members.len()))
        })
    }

    async fn add_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership> {
        self.set_membership(group, user, true).await
    }

    async fn remove_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership> {
        self.set_membership(group, user, false).await
    }
}
