//! The outbox (each mail held by one sender at a time, so that replicas
//! never send it twice) and one-time tokens with the mail that carries
//! them.

use super::sessions::end_sessions_in;
use super::users::{lock_user, store_user};
use super::{PgStore, id_i64, ms, next_val, transaction};
use crate::clock::Timestamp;
use crate::domain::lockout::LockoutState;
use crate::domain::{
    Mail, OneTimeToken, OutboxEntry, TokenProblem, TokenPurpose, User, lockout_keys_of,
};
use crate::store::record::{decode, encode_text};
use crate::store::{MailStore, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;

pub(super) async fn insert_mail(
    t: &Transaction<'_>,
    mail: Mail,
    now: Timestamp,
) -> anyhow::Result<u64> {
    let id = next_val(t, "gatehouse_mail_ids").await?;
    let entry = OutboxEntry {
        id,
        mail,
        created_at: now,
        attempts: 0,
        next_attempt_at: Some(now),
        last_error: None,
        held_until: None,
    };
    t.execute(
        &t.prepare_cached(
            "INSERT INTO outbox (id, next_attempt_at, claimed_until, record) VALUES ($1, $2, NULL, $3)",
        )
        .await?,
        &[&id_i64(id), &ms(now), &encode_text(&entry)],
    )
    .await?;
    Ok(id)
}

fn entry_of(record: &str) -> anyhow::Result<OutboxEntry> {
    decode(record.as_bytes(), "outbox")
}

fn token_of(record: &str) -> anyhow::Result<OneTimeToken> {
    decode(record.as_bytes(), "token")
}

/// Takes a live token out of the table (locked: a second use waits, then
/// finds it gone); says why not otherwise.
async fn take_token(
    t: &Transaction<'_>,
    hash: &[u8; 32],
    purpose: TokenPurpose,
    now: Timestamp,
) -> anyhow::Result<Result<OneTimeToken, TokenProblem>> {
    let row = t
        .query_opt(
            &t.prepare_cached("SELECT record FROM tokens WHERE hash = $1 FOR UPDATE")
                .await?,
            &[&&hash[..]],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Err(TokenProblem::Unknown));
    };
    let token = token_of(row.get(0))?;
    if let Err(problem) = token.check(purpose, now) {
        return Ok(Err(problem));
    }
    t.execute(
        &t.prepare_cached("DELETE FROM tokens WHERE hash = $1")
            .await?,
        &[&&hash[..]],
    )
    .await?;
    Ok(Ok(token))
}

#[async_trait]
impl MailStore for PgStore {
    async fn enqueue_mail(&self, mail: Mail, now: Timestamp) -> StoreResult<u64> {
        transaction!(self, |t| insert_mail(&t, mail.clone(), now).await)
    }

    async fn issue_token(
        &self,
        hash: [u8; 32],
        token: OneTimeToken,
        mail: Option<Mail>,
    ) -> StoreResult<()> {
        transaction!(self, |t| {
            // A new request replaces the old link: only the newest works.
            t.execute(
                &t.prepare_cached("DELETE FROM tokens WHERE user_id = $1 AND purpose = $2")
                    .await?,
                &[&id_i64(token.user.0), &i16::from(token.purpose.code())],
            )
            .await?;
            t.execute(
                &t.prepare_cached(
                    "INSERT INTO tokens (hash, user_id, purpose, expires_at, record) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .await?,
                &[
                    &&hash[..],
                    &id_i64(token.user.0),
                    &i16::from(token.purpose.code()),
                    &ms(token.expires_at),
                    &encode_text(&token),
                ],
            )
            .await?;
            if let Some(mail) = &mail {
                insert_mail(&t, mail.clone(), token.created_at).await?;
            }
            anyhow::Ok(())
        })
    }

    async fn token(&self, hash: &[u8; 32]) -> StoreResult<Option<OneTimeToken>> {
        let row = self
            .query_opt("SELECT record FROM tokens WHERE hash = $1", &[&&hash[..]])
            .await?;
        Ok(row.map(|r| token_of(r.get(0))).transpose()?)
    }

    async fn consume_verification(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Result<User, TokenProblem>> {
        transaction!(self, |t| {
            let token = match take_token(&t, hash, TokenPurpose::Verify, now).await? {
                Ok(token) => token,
                Err(p) => return Ok(Err(p)),
            };
            let Some(mut user) = lock_user(&t, token.user).await? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            user.confirm_email(now);
            store_user(&t, &user).await?;
            anyhow::Ok(Ok(user))
        })
    }

    async fn consume_reset(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
        new_hash: String,
        notice: Mail,
    ) -> StoreResult<Result<User, TokenProblem>> {
        transaction!(self, |t| {
            let token = match take_token(&t, hash, TokenPurpose::Reset, now).await? {
                Ok(token) => token,
                Err(p) => return Ok(Err(p)),
            };
            let Some(user) = lock_user(&t, token.user).await? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            let Some(user) = user.after_reset(new_hash.clone(), now) else {
                return Ok(Err(TokenProblem::Unknown));
            };
            store_user(&t, &user).await?;
            end_sessions_in(&t, user.id, None).await?;
            for key in lockout_keys_of(&user) {
                let row = t
                    .query_opt(
                        &t.prepare_cached("SELECT record FROM lockouts WHERE key = $1 FOR UPDATE")
                            .await?,
                        &[&key],
                    )
                    .await?;
                let survives = row
                    .map(|r| decode::<LockoutState>(r.get::<_, &str>(0).as_bytes(), "lockout"))
                    .transpose()?
                    .is_some_and(|l| l.survives_reset());
                if !survives {
                    t.execute(
                        &t.prepare_cached("DELETE FROM lockouts WHERE key = $1")
                            .await?,
                        &[&key],
                    )
                    .await?;
                }
            }
            insert_mail(&t, notice.clone(), now).await?;
            anyhow::Ok(Ok(user))
        })
    }

    async fn purge_tokens(&self, now: Timestamp) -> StoreResult<usize> {
        let n = self
            .execute("DELETE FROM tokens WHERE expires_at <= $1", &[&ms(now)])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn due_mail(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // SKIP LOCKED: two replicas asking at once take different mails.
        let rows = transaction!(self, |t| {
            let rows = t
                .query(
                    &t.prepare_cached(
                        "UPDATE outbox SET claimed_until = $2 WHERE id IN (\
                           SELECT id FROM outbox WHERE next_attempt_at <= $1 \
                           AND (claimed_until IS NULL OR claimed_until <= $1) \
                           ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                         RETURNING record",
                    )
                    .await?,
                    &[&ms(now), &ms(hold_until), &limit],
                )
                .await?;
            anyhow::Ok(rows)
        })?;
        let mut due = rows
            .iter()
            .map(|r| {
                let mut e = entry_of(r.get(0))?;
                e.held_until = Some(hold_until);
                Ok(e)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        due.sort_by_key(|e| (e.next_attempt_at, e.id));
        Ok(due)
    }

    async fn mail_sent(&self, id: u64) -> StoreResult<()> {
        self.execute("DELETE FROM outbox WHERE id = $1", &[&id_i64(id)])
            .await?;
        Ok(())
    }

    async fn mail_failed(
        &self,
        id: u64,
        attempts: u32,
        next: Option<Timestamp>,
        error: String,
    ) -> StoreResult<()> {
        transaction!(self, |t| {
            let row = t
                .query_opt(
                    &t.prepare_cached("SELECT record FROM outbox WHERE id = $1 FOR UPDATE")
                        .await?,
                    &[&id_i64(id)],
                )
                .await?;
            let Some(row) = row else { return Ok(()) };
            let mut entry = entry_of(row.get(0))?;
            entry.attempts = attempts;
            entry.next_attempt_at = next;
            entry.last_error = Some(error.clone());
            entry.held_until = None;
            t.execute(
                &t.prepare_cached(
                    "UPDATE outbox SET next_attempt_at = $2, claimed_until = NULL, record = $3 \
                     WHERE id = $1",
                )
                .await?,
                &[&id_i64(id), &next.map(ms), &encode_text(&entry)],
            )
            .await?;
            anyhow::Ok(())
        })
    }

    async fn outbox(&self) -> StoreResult<Vec<OutboxEntry>> {
        let rows = self
            .query("SELECT record, claimed_until FROM outbox ORDER BY id", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut e = entry_of(r.get(0))?;
                e.held_until = r.get::<_, Option<i64>>(1).map(Timestamp::from_millis);
                Ok(e)
            })
            .collect::<anyhow::Result<_>>()?)
    }
}
