//! The outbox, and one-time tokens (verification, password reset) whose
//! mail is stored in the same transaction as the token.

use super::sessions::remove_user_sessions;
use super::{
    LOCKOUTS, META_NEXT_MAIL, OUTBOX, RedbStore, TOKENS, TOKENS_BY_USER, USERS, decode, encode,
    next_id,
};
use crate::clock::Timestamp;
use crate::domain::{User, UserStatus};
use crate::mail::Mail;
use crate::store::{
    MailStore, OneTimeToken, OutboxEntry, TokenProblem, TokenPurpose, lockout_keys_of,
};
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
    if token.purpose != purpose {
        return Ok(Err(TokenProblem::Unknown));
    }
    if now >= token.expires_at {
        return Ok(Err(TokenProblem::Expired));
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

impl MailStore for RedbStore {
    fn enqueue_mail(&self, mail: Mail, now: Timestamp) -> anyhow::Result<u64> {
        self.write(|txn| insert_mail(txn, mail, now))
    }

    fn issue_token(
        &self,
        hash: [u8; 32],
        token: OneTimeToken,
        mail: Option<Mail>,
    ) -> anyhow::Result<()> {
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

    fn token(&self, hash: &[u8; 32]) -> anyhow::Result<Option<OneTimeToken>> {
        let txn = self.read()?;
        let table = txn.open_table(TOKENS)?;
        let found = table.get(*hash)?;
        found.map(|v| decode(v.value(), "token")).transpose()
    }

    fn consume_verification(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> anyhow::Result<Result<User, TokenProblem>> {
        self.write(|txn| {
            let token = match take_token(txn, hash, TokenPurpose::Verify, now)? {
                Ok(t) => t,
                Err(p) => return Ok(Err(p)),
            };
            let Some(mut user) = load_user(txn, &token)? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            if user.status == UserStatus::PendingVerification {
                user.status = UserStatus::Active;
                store_user(txn, &user)?;
            }
            Ok(Ok(user))
        })
    }

    fn consume_reset(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
        new_hash: String,
        notice: &dyn Fn(&User) -> Mail,
    ) -> anyhow::Result<Result<User, TokenProblem>> {
        self.write(|txn| {
            let token = match take_token(txn, hash, TokenPurpose::Reset, now)? {
                Ok(t) => t,
                Err(p) => return Ok(Err(p)),
            };
            let Some(mut user) = load_user(txn, &token)? else {
                return Ok(Err(TokenProblem::Unknown));
            };
            // A disabled account stays out, whatever link it holds.
            if user.status == UserStatus::Disabled {
                return Ok(Err(TokenProblem::Unknown));
            }
            user.password_hash = new_hash;
            // Following the mailed link proves the address too.
            if user.status == UserStatus::PendingVerification {
                user.status = UserStatus::Active;
            }
            store_user(txn, &user)?;
            remove_user_sessions(txn, user.id, None)?;
            // Failure locks end with the reset (the owner's way out); a lock
            // an admin set stays until the admin lifts it.
            let mut lockouts = txn.open_table(LOCKOUTS)?;
            for key in lockout_keys_of(&user) {
                let admin_lock = lockouts
                    .get(key.as_str())?
                    .map(|v| decode::<crate::auth::lockout::LockoutState>(v.value(), "lockout"))
                    .transpose()?
                    .is_some_and(|l| l.by_admin);
                if !admin_lock {
                    lockouts.remove(key.as_str())?;
                }
            }
            drop(lockouts);
            insert_mail(txn, notice(&user), now)?;
            Ok(Ok(user))
        })
    }

    fn purge_tokens(&self, now: Timestamp) -> anyhow::Result<usize> {
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

    fn due_mail(&self, now: Timestamp, limit: usize) -> anyhow::Result<Vec<OutboxEntry>> {
        let mut due: Vec<OutboxEntry> = self
            .outbox()?
            .into_iter()
            .filter(|e| e.next_attempt_at.is_some_and(|t| t <= now))
            .collect();
        due.sort_by_key(|e| (e.next_attempt_at, e.id));
        due.truncate(limit);
        Ok(due)
    }

    fn mail_sent(&self, id: u64) -> anyhow::Result<()> {
        self.write(|txn| {
            txn.open_table(OUTBOX)?.remove(id)?;
            Ok(())
        })
    }

    fn mail_failed(
        &self,
        id: u64,
        attempts: u32,
        next: Option<Timestamp>,
        error: String,
    ) -> anyhow::Result<()> {
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            let stored = table.get(id)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else { return Ok(()) };
            let mut entry: OutboxEntry = decode(&bytes, "outbox")?;
            entry.attempts = attempts;
            entry.next_attempt_at = next;
            entry.last_error = Some(error);
            table.insert(id, encode(&entry).as_slice())?;
            Ok(())
        })
    }

    fn outbox(&self) -> anyhow::Result<Vec<OutboxEntry>> {
        let txn = self.read()?;
        let table = txn.open_table(OUTBOX)?;
        table
            .iter()?
            .map(|row| {
                let (_, v) = row?;
                decode(v.value(), "outbox")
            })
            .collect()
    }
}
