//! Invitations by id, found by the hash of their token.

use super::{PgStore, id_i64, next_val, transaction};
use crate::clock::Timestamp;
use crate::domain::Invitation;
use crate::store::record::{decode, encode_text};
use crate::store::{FirstRun, InviteStore, NewInvite, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;

fn invite_of(record: &str) -> anyhow::Result<Invitation> {
    decode(record.as_bytes(), "invitation")
}

pub(super) async fn store_invite(t: &Transaction<'_>, invite: &Invitation) -> anyhow::Result<()> {
    t.execute(
        &t.prepare_cached("UPDATE invites SET record = $2 WHERE id = $1")
            .await?,
        &[&id_i64(invite.id), &encode_text(invite)],
    )
    .await?;
    Ok(())
}

async fn insert_invite(t: &Transaction<'_>, new: &NewInvite) -> anyhow::Result<Invitation> {
    let id = next_val(t, "gatehouse_invite_ids").await?;
    let invite = Invitation {
        id,
        created_at: new.created_at,
        expires_at: new.expires_at,
        max_uses: new.max_uses,
        email: new.email.clone(),
        role: new.role,
        revoked_at: None,
        first_run: new.first_run,
        redeemed: Vec::new(),
        groups: new.groups.clone(),
    };
    t.execute(
        &t.prepare_cached(
            "INSERT INTO invites (id, token_hash, first_run, record) VALUES ($1, $2, $3, $4)",
        )
        .await?,
        &[
            &id_i64(id),
            &&new.token_hash[..],
            &new.first_run,
            &encode_text(&invite),
        ],
    )
    .await?;
    Ok(invite)
}

#[async_trait]
impl InviteStore for PgStore {
    async fn create_invite(&self, new: NewInvite) -> StoreResult<Invitation> {
        transaction!(self, |t| insert_invite(&t, &new).await)
    }

    async fn invite_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Invitation>> {
        let row = self
            .query_opt(
                "SELECT record FROM invites WHERE token_hash = $1",
                &[&&token_hash[..]],
            )
            .await?;
        Ok(row.map(|r| invite_of(r.get(0))).transpose()?)
    }

    async fn invites(&self) -> StoreResult<Vec<Invitation>> {
        let rows = self
            .query("SELECT record FROM invites ORDER BY id", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| invite_of(r.get(0)))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn revoke_invite(&self, id: u64, at: Timestamp) -> StoreResult<bool> {
        transaction!(self, |t| {
            let row = t
                .query_opt(
                    &t.prepare_cached("SELECT record FROM invites WHERE id = $1 FOR UPDATE")
                        .await?,
                    &[&id_i64(id)],
                )
                .await?;
            let Some(row) = row else { return Ok(false) };
            let mut invite = invite_of(row.get(0))?;
            if invite.revoked_at.is_none() {
                invite.revoked_at = Some(at);
                store_invite(&t, &invite).await?;
            }
            anyhow::Ok(true)
        })
    }

    async fn replace_first_run_invite(
        &self,
        new: NewInvite,
        keep_since: Option<Timestamp>,
    ) -> StoreResult<FirstRun> {
        transaction!(self, |t| {
            // One replica at a time: the others wait here, then see what
            // it did.
            t.execute(
                &t.prepare_cached(
                    "SELECT value FROM gatehouse_meta WHERE name = 'first_run' FOR UPDATE",
                )
                .await?,
                &[],
            )
            .await?;
            let admins = t
                .query_one(
                    &t.prepare_cached("SELECT count(*) FROM users WHERE role = 'admin'")
                        .await?,
                    &[],
                )
                .await?;
            if admins.get::<_, i64>(0) > 0 {
                return Ok(FirstRun::AdminExists);
            }
            // Only the newest printed link works: a link from an earlier
            // start that leaked into an old log is worthless.
            let rows = t
                .query(
                    &t.prepare_cached(
                        "SELECT record FROM invites WHERE first_run = TRUE FOR UPDATE",
                    )
                    .await?,
                    &[],
                )
                .await?;
            let earlier = rows
                .iter()
                .map(|r| invite_of(r.get(0)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(kept) =
                crate::store::redb::kept_first_run(&earlier, keep_since, new.created_at)
            {
                return Ok(kept);
            }
            for mut invite in earlier {
                if invite.revoked_at.is_none() {
                    invite.revoked_at = Some(new.created_at);
                    store_invite(&t, &invite).await?;
                }
            }
            insert_invite(&t, &new).await.map(FirstRun::Made)
        })
    }
}
