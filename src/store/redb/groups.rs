//! Groups by name; who is in each is kept twice, in one transaction: on
//! the account (`User::groups`, read with every session check) and in
//! `GROUP_MEMBERS` (so that a group's members are found without reading
//! every account).

use super::{GROUP_MEMBERS, GROUPS, RedbStore, USERS, decode, encode};
use crate::domain::{Group, GroupName, Membership, User, UserId};
use crate::store::{GroupStore, StoreResult};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

/// The groups of `wanted` that exist, sorted and without repeats, with
/// `user` added to each (for a new account).
pub(super) fn join_existing(
    txn: &WriteTransaction,
    user: u64,
    mut wanted: Vec<GroupName>,
) -> anyhow::Result<Vec<GroupName>> {
    wanted.sort();
    wanted.dedup();
    let groups = txn.open_table(GROUPS)?;
    let mut members = txn.open_multimap_table(GROUP_MEMBERS)?;
    let mut joined = Vec::new();
    for g in wanted {
        if groups.get(g.as_str())?.is_some() {
            members.insert(g.as_str(), user)?;
            joined.push(g);
        }
    }
    Ok(joined)
}

/// Removes a deleted account from every group it was in.
pub(super) fn leave_all(txn: &WriteTransaction, user: &User) -> anyhow::Result<()> {
    let mut members = txn.open_multimap_table(GROUP_MEMBERS)?;
    for g in &user.groups {
        members.remove(g.as_str(), user.id.0)?;
    }
    Ok(())
}

impl RedbStore {
    /// Changes one membership (`member`: the account is to be
    /// in the group), in one transaction.
    fn set_membership(
        &self,
        group: &GroupName,
        user: UserId,
        member: bool,
    ) -> StoreResult<Membership> {
        self.write(|txn| {
            if txn.open_table(GROUPS)?.get(group.as_str())?.is_none() {
                return Ok(Membership::NoGroup);
            }
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(user.0)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(Membership::NoUser);
            };
            let mut record: User = decode(&bytes, "user")?;
            let at = record.groups.binary_search(group);
            match (at, member) {
                (Ok(_), true) | (Err(_), false) => return Ok(Membership::Unchanged),
                (Err(i), true) => record.groups.insert(i, group.clone()),
                (Ok(i), false) => {
                    record.groups.remove(i);
                }
            }
            users.insert(user.0, encode(&record).as_slice())?;
            let mut members = txn.open_multimap_table(GROUP_MEMBERS)?;
            if member {
                members.insert(group.as_str(), user.0)?;
            } else {
                members.remove(group.as_str(), user.0)?;
            }
            Ok(Membership::Changed)
        })
    }
}

#[async_trait]
impl GroupStore for RedbStore {
    async fn create_group(&self, group: Group) -> StoreResult<bool> {
        self.write(|txn| {
            let mut groups = txn.open_table(GROUPS)?;
            if groups.get(group.name.as_str())?.is_some() {
                return Ok(false);
            }
            groups.insert(group.name.as_str(), encode(&group).as_slice())?;
            Ok(true)
        })
    }

    async fn groups(&self) -> StoreResult<Vec<(Group, usize)>> {
        let txn = self.read()?;
        let groups = txn.open_table(GROUPS)?;
        let members = txn.open_multimap_table(GROUP_MEMBERS)?;
        let mut out = Vec::new();
        for row in groups.iter()? {
            let (name, value) = row?;
            let group: Group = decode(value.value(), "group")?;
            let count = usize::try_from(members.get(name.value())?.len()).unwrap_or(usize::MAX);
            out.push((group, count));
        }
        Ok(out)
    }

    async fn group_members(&self, name: &GroupName) -> StoreResult<Option<Vec<UserId>>> {
        let txn = self.read()?;
        if txn.open_table(GROUPS)?.get(name.as_str())?.is_none() {
            return Ok(None);
        }
        let members = txn.open_multimap_table(GROUP_MEMBERS)?;
        let ids = members
            .get(name.as_str())?
            .map(|v| v.map(|id| UserId(id.value())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ids))
    }

    async fn delete_group(&self, name: &GroupName) -> StoreResult<Option<usize>> {
        self.write(|txn| {
            if txn.open_table(GROUPS)?.remove(name.as_str())?.is_none() {
                return Ok(None);
            }
            let ids: Vec<u64> = txn
                .open_multimap_table(GROUP_MEMBERS)?
                .remove_all(name.as_str())?
                .map(|v| v.map(|id| id.value()))
                .collect::<Result<_, _>>()?;
            let mut users = txn.open_table(USERS)?;
            for id in &ids {
                let stored = users.get(*id)?.map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut user: User = decode(&bytes, "user")?;
                    user.groups.retain(|g| g != name);
                    users.insert(*id, encode(&user).as_slice())?;
                }
            }
            Ok(Some(ids.len()))
        })
    }

    async fn add_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership> {
        self.set_membership(group, user, true)
    }

    async fn remove_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership> {
        self.set_membership(group, user, false)
    }
}
