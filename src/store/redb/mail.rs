//! The outbox, and one-time tokens (verification, password reset) whose
//! mail is stored in the same transaction as the token.

use super::sessions::remove_user_sessions;
use super::{
    LOCKOUTS, META_NEXT_MAIL, OUTBOX, RedbStore, TOKENS, TOKENS_BY_USER, USERS, decode, encode,
    next_id,
};
use crate::clock::Timestamp;
use crate::domain::Mail;
use crate::domain::User;
use crate::domain::lockout::LockoutState;
use crate::domain::{OneTimeToken, OutboxEntry, TokenProblem, TokenPurpose, lockout_keys_of};
use crate::store::MailStore;
use crate::store::StoreResult;
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

pub(super) fn insert_mail(
    txn: &WriteTransaction,
    mail: Mail,
    now: Timestamp,
) -> anyhow::Result<u64> {
    let id = next_id(txn, META_NEXT_MAIL)?;
    let entry = OutboxEntry {
        id,
        mail,
        created_at: now,
        attempts: 0,
        next_attempt_at: Some(now),
        last_error: None,
        held_until: None,
    };
    txn.open_table(OUTBOX)?
        .insert(id, encode(&entry).as_slice())?;
    Ok(id)
}

/// Takes a token out of the tables if it is live; says why not otherwise.
fn take_token(
    txn: &WriteTransaction,
    hash: &[u8; 32],
    purpose: TokenPurpose,
    now: Timestamp,
) -> anyhow::Result<Result<OneTimeToken, TokenProblem>> {
    let mut tokens = txn.open_table(TOKENS)?;
    let stored = tokens.get(*hash)?.map(|v| v.value().to_vec());
    let Some(bytes) = stored else {
        return Ok(Err(TokenProblem::Unknown));
    };
    let token: OneTimeToken = decode(&bytes, "token")?;
    if let Err(problem) = token.check(purpose, now) {
        return Ok(Err(problem));
    }
    tokens.remove(*hash)?;
    txn.open_table(TOKENS_BY_USER)?
        .remove((token.user.0, purpose.code()))?;
    Ok(Ok(token))
}

fn load_user(txn: &WriteTransaction, token: &OneTimeToken) -> anyhow::Result<Option<User>> {
    let users = txn.open_table(USERS)?;
    let found = users.get(token.user.0)?;
    found.map(|v| decode(v.value(), "user")).transpose()
}

fn store_user(txn: &WriteTransaction, user: &User) -> anyhow::Result<()> {
    txn.open_table(USERS)?
        .insert(user.id.0, encode(user).as_slice())?;
    Ok(())
}

#[async_trait]
impl MailStore for RedbStore {
    async fn enqueue_mail(&self, mail: Mail, now: Timestamp) -> StoreResult<u64> {
        self.write(|txn| insert_mail(txn, mail, now))
    }

    async fn issue_token(
        &self,
        hash: [u8; 32],
        token: OneTimeToken,
        mail: Option<Mail>,
    ) -> StoreResult<()> {
        self.write(|txn| {
            let slot = (token.user.0, token.purpose.code());
            let mut by_user = txn.open_table(TOKENS_BY_USER)?;
            let mut tokens = txn.open_table(TOKENS)?;
            // A new request replaces the old link: only the newest works.
            if let Some(old) = by_user.insert(slot, hash)?.map(|v| v.value()) {
                tokens.remove(old)?;
            }
            tokens.insert(hash, encode(&token).as_slice())?;
            drop((tokens, by_user));
            if let Some(mail) = mail {
                insert_mail(txn, mail, token.created_at)?;
            }
            Ok(())
        })
    }

    async fn token(&self, hash: &[u8; 32]) -> StoreResult<Option<OneTimeToken>> {
        let txn = self.read()?;
        let table = txn.open_table(TOKENS)?;
        let found = table.get(*hash)?;
        Ok(found.map(|v| decode(v.value(), "token")).transpose()?)
    }

    async fn consume_verification(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Result<User, TokenProblem>> {
        self.write(|txn| {
            let token = match take_token(txn, hash, TokenPurpose::Verify, now)? {
                Ok(t) => t,
                Err(p) => return Ok(Err(p)),
            };
            let Some(mut user) = load_user(txn, &token)? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            user.confirm_email(now);
            store_user(txn, &user)?;
            Ok(Ok(user))
        })
    }

    async fn consume_reset(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
        new_hash: String,
        notice: Mail,
    ) -> StoreResult<Result<User, TokenProblem>> {
        self.write(|txn| {
            let token = match take_token(txn, hash, TokenPurpose::Reset, now)? {
                Ok(t) => t,
                Err(p) => return Ok(Err(p)),
            };
            let Some(user) = load_user(txn, &token)? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            let Some(user) = user.after_reset(new_hash, now) else {
                return Ok(Err(TokenProblem::Unknown));
            };
            store_user(txn, &user)?;
            remove_user_sessions(txn, user.id, None)?;
            let mut lockouts = txn.open_table(LOCKOUTS)?;
            for key in lockout_keys_of(&user) {
                let survives = lockouts
                    .get(key.as_str())?
                    .map(|v| decode::<LockoutState>(v.value(), "lockout"))
                    .transpose()?
                    .is_some_and(|l| l.survives_reset());
                if !survives {
                    lockouts.remove(key.as_str())?;
                }
            }
            drop(lockouts);
            insert_mail(txn, notice, now)?;
            Ok(Ok(user))
        })
    }

    async fn purge_tokens(&self, now: Timestamp) -> StoreResult<usize> {
        self.write(|txn| {
            let mut tokens = txn.open_table(TOKENS)?;
            let mut expired = Vec::new();
            for row in tokens.iter()? {
                let (k, v) = row?;
                let token: OneTimeToken = decode(v.value(), "token")?;
                if now >= token.expires_at {
                    expired.push((k.value(), token));
                }
            }
            let mut by_user = txn.open_table(TOKENS_BY_USER)?;
            for (hash, token) in &expired {
                tokens.remove(*hash)?;
                by_user.remove((token.user.0, token.purpose.code()))?;
            }
            Ok(expired.len())
        })
    }

    async fn due_mail(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let is_due = |e: &OutboxEntry| {
            e.next_attempt_at.is_some_and(|t| t <= now) && e.held_until.is_none_or(|h| h <= now)
        };
        // A read first: most rounds find nothing and write nothing.
        if !self.outbox().await?.iter().any(is_due) {
            return Ok(Vec::new());
        }
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            let mut due = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                let entry: OutboxEntry = decode(v.value(), "outbox")?;
                if is_due(&entry) {
                    due.push(entry);
                }
            }
            due.sort_by_key(|e| (e.next_attempt_at, e.id));
            due.truncate(limit);
            for entry in &mut due {
                entry.held_until = Some(hold_until);
                table.insert(entry.id, encode(&*entry).as_slice())?;
            }
            Ok(due)
        })
    }

    async fn mail_sent(&self, id: u64) -> StoreResult<()> {
        self.write(|txn| {
            txn.open_table(OUTBOX)?.remove(id)?;
            Ok(())
        })
    }

    async fn mail_failed(
        &self,
        id: u64,
        attempts: u32,
        next: Option<Timestamp>,
        error: String,
    ) -> StoreResult<()> {
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            let stored = table.get(id)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else { return Ok(()) };
            let mut entry: OutboxEntry = decode(&bytes, "outbox")?;
            entry.attempts = attempts;
            entry.next_attempt_at = next;
            entry.last_error = Some(error);
            entry.held_until = None;
            table.insert(id, encode(&entry).as_slice())?;
            Ok(())
        })
    }

    async fn outbox(&self) -> StoreResult<Vec<OutboxEntry>> {
        let txn = self.read()?;
        let table = txn.open_table(OUTBOX)?;
        Ok(table
            .iter()?
            .map(|row| {
                let (_, v) = row?;
                decode(v.value(), "outbox")
            })
            .collect::<anyhow::Result<_>>()?)
    }
}
