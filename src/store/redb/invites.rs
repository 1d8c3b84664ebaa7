//! Invitations by id, indexed by the hash of their token.

use super::{
    INVITES, INVITES_BY_HASH, META_NEXT_INVITE, RedbStore, USERS, decode, encode, next_id,
};
use crate::clock::Timestamp;
use crate::domain::{Invitation, Role, User};
use crate::store::StoreResult;
use crate::store::{FirstRun, InviteStore, NewInvite};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

fn insert_invite(txn: &WriteTransaction, new: NewInvite) -> anyhow::Result<Invitation> {
    let id = next_id(txn, META_NEXT_INVITE)?;
    let invite = Invitation {
        id,
        created_at: new.created_at,
        expires_at: new.expires_at,
        max_uses: new.max_uses,
        email: new.email,
        role: new.role,
        revoked_at: None,
        first_run: new.first_run,
        redeemed: Vec::new(),
        groups: new.groups,
    };
    txn.open_table(INVITES)?
        .insert(id, encode(&invite).as_slice())?;
    txn.open_table(INVITES_BY_HASH)?
        .insert(new.token_hash, id)?;
    Ok(invite)
}

#[async_trait]
impl InviteStore for RedbStore {
    async fn create_invite(&self, new: NewInvite) -> StoreResult<Invitation> {
        self.write(|txn| insert_invite(txn, new))
    }

    async fn invite_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Invitation>> {
        let txn = self.read()?;
        let Some(id) = txn
            .open_table(INVITES_BY_HASH)?
            .get(*token_hash)?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let table = txn.open_table(INVITES)?;
        let found = table.get(id)?;
        Ok(found.map(|v| decode(v.value(), "invitation")).transpose()?)
    }

    async fn invites(&self) -> StoreResult<Vec<Invitation>> {
        let txn = self.read()?;
        let table = txn.open_table(INVITES)?;
        Ok(table
            .iter()?
            .map(|row| {
                let (_, v) = row?;
                decode(v.value(), "invitation")
            })
            .collect::<anyhow::Result<_>>()?)
    }

    async fn revoke_invite(&self, id: u64, at: Timestamp) -> StoreResult<bool> {
        self.write(|txn| {
            let mut table = txn.open_table(INVITES)?;
            let stored = table.get(id)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(false);
            };
            let mut invite: Invitation = decode(&bytes, "invitation")?;
            if invite.revoked_at.is_none() {
                invite.revoked_at = Some(at);
                table.insert(id, encode(&invite).as_slice())?;
            }
            Ok(true)
        })
    }

    async fn replace_first_run_invite(
        &self,
        new: NewInvite,
        keep_since: Option<Timestamp>,
    ) -> StoreResult<FirstRun> {
        self.write(|txn| {
            let has_admin = {
                let users = txn.open_table(USERS)?;
                let mut found = false;
                for row in users.iter()? {
                    let (_, v) = row?;
                    if decode::<User>(v.value(), "user")?.role == Role::Admin {
                        found = true;
                        break;
                    }
                }
                found
            };
            if has_admin {
                return Ok(FirstRun::AdminExists);
            }
            // Only the newest printed link works: a link from an earlier
            // start that leaked into an old log is worthless.
            let mut table = txn.open_table(INVITES)?;
            let mut earlier = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                let invite: Invitation = decode(v.value(), "invitation")?;
                if invite.first_run && invite.revoked_at.is_none() {
                    earlier.push(invite);
                }
            }
            if let Some(kept) = kept_first_run(&earlier, keep_since, new.created_at) {
                return Ok(kept);
            }
            for mut invite in earlier {
                invite.revoked_at = Some(new.created_at);
                table.insert(invite.id, encode(&invite).as_slice())?;
            }
            drop(table);
            insert_invite(txn, new).map(FirstRun::Made)
        })
    }
}

/// The live, unused first-run invitation made at or after `keep_since`
/// that stays, if there is one (both backends use this rule).
pub(crate) fn kept_first_run(
    earlier: &[Invitation],
    keep_since: Option<Timestamp>,
    now: Timestamp,
) -> Option<FirstRun> {
    let since = keep_since?;
    earlier
        .iter()
        .filter(|i| {
            i.revoked_at.is_none()
                && i.redeemed.is_empty()
                && i.created_at >= since
                && i.expires_at.is_none_or(|e| e > now)
        })
        .map(|i| i.created_at)
        .max()
        .map(|made_at| FirstRun::Kept { made_at })
}
