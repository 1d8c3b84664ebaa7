//! Sessions by key (the token's hash), indexed by user; and the login
//! transaction that creates one.

use super::mail::insert_mail;
use super::{
    LOCKOUTS, LOGINS, RedbStore, SESSIONS, SESSIONS_BY_USER, USERS, decode, encode, record_attempt,
};
use crate::clock::Timestamp;
use crate::domain::LoginAttempt;
use crate::domain::Mail;
use crate::domain::session::{Session, SessionKey, SessionPolicy};
use crate::domain::{User, UserId};
use crate::store::StoreResult;
use crate::store::{CompletedLogin, SessionStore};
use anyhow::Context;
use async_trait::async_trait;
use redb::{
    Durability, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

#[async_trait]
impl SessionStore for RedbStore {
    async fn complete_login(&self, login: CompletedLogin) -> StoreResult<()> {
        self.write(|txn| {
            if let Some(old) = login.replaces {
                remove_session(txn, &old)?;
            }
            let mut sessions = txn.open_table(SESSIONS)?;
            sessions.insert(login.key.0, encode(&login.session).as_slice())?;
            drop(sessions);
            txn.open_multimap_table(SESSIONS_BY_USER)?
                .insert(login.user.0, login.key.0)?;
            // The new session is the newest: never the one evicted.
            evict_beyond(txn, login.user, login.session_cap.max(1), &login.key)?;
            let mut lockouts = txn.open_table(LOCKOUTS)?;
            for key in &login.reset_lockouts {
                lockouts.remove(key.as_str())?;
            }
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(login.user.0)?.map(|v| v.value().to_vec());
            let mut user: User = decode(&stored.context("the user logging in is gone")?, "user")?;
            record_attempt(
                txn,
                login.user,
                &LoginAttempt {
                    at: login.login.at,
                    ip: login.login.ip.clone(),
                    ok: true,
                },
            )?;
            super::audit::record(txn, &login.audit)?;
            user.previous_login = user.last_login.take();
            user.last_login = Some(login.login);
            if let Some(hash) = login.new_password_hash {
                user.password_hash = hash;
            }
            users.insert(login.user.0, encode(&user).as_slice())?;
            Ok(())
        })
    }

    async fn session(&self, key: &SessionKey) -> StoreResult<Option<Session>> {
        let txn = self.read()?;
        let table = txn.open_table(SESSIONS)?;
        let found = table.get(key.0)?;
        Ok(found.map(|v| decode(v.value(), "session")).transpose()?)
    }

    async fn session_with_user(&self, key: &SessionKey) -> StoreResult<Option<(Session, User)>> {
        if let Some(found) = self.sessions_read.get(&key.0) {
            return Ok(Some(found));
        }
        let generation = self.sessions_read.generation();
        let txn = self.read()?;
        let sessions = txn.open_table(SESSIONS)?;
        let Some(found) = sessions.get(key.0)? else {
            return Ok(None);
        };
        let session: Session = decode(found.value(), "session")?;
        let users = txn.open_table(USERS)?;
        let Some(user) = users.get(session.user.0)? else {
            return Ok(None);
        };
        let user: User = decode(user.value(), "user")?;
        self.sessions_read.put(key.0, generation, &session, &user);
        Ok(Some((session, user)))
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.write(|txn| remove_session(txn, key))
    }

    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<(SessionKey, Session)>> {
        let txn = self.read()?;
        let index = txn.open_multimap_table(SESSIONS_BY_USER)?;
        let sessions = txn.open_table(SESSIONS)?;
        let mut out = Vec::new();
        for key in index.get(user.0)? {
            let key = key?.value();
            if let Some(v) = sessions.get(key)? {
                out.push((SessionKey(key), decode(v.value(), "session")?));
            }
        }
        Ok(out)
    }

    async fn session_count(&self) -> StoreResult<usize> {
        let txn = self.read()?;
        Ok(usize::try_from(txn.open_table(SESSIONS)?.len()?).unwrap_or(usize::MAX))
    }

    async fn end_sessions(&self, user: UserId) -> StoreResult<usize> {
        self.write(|txn| remove_user_sessions(txn, user, None))
    }

    async fn login_history(&self, user: UserId) -> StoreResult<Vec<LoginAttempt>> {
        let txn = self.read()?;
        let table = txn.open_table(LOGINS)?;
        let mut out = Vec::new();
        for row in table.range((user.0, 0)..=(user.0, u64::MAX))?.rev() {
            let (_, v) = row?;
            out.push(decode(v.value(), "login attempt")?);
        }
        Ok(out)
    }

    async fn change_password(
        &self,
        user: UserId,
        new_hash: String,
        keep: SessionKey,
        renewed: SessionKey,
        notice: Mail,
        now: Timestamp,
    ) -> StoreResult<usize> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(user.0)?.map(|v| v.value().to_vec());
            let mut u: User = decode(&stored.context("the user is gone")?, "user")?;
            u.password_hash = new_hash;
            users.insert(user.0, encode(&u).as_slice())?;
            drop(users);
            let ended = remove_user_sessions(txn, user, Some(keep))?;
            let current = txn
                .open_table(SESSIONS)?
                .get(keep.0)?
                .map(|v| v.value().to_vec());
            if let Some(bytes) = current {
                remove_session(txn, &keep)?;
                txn.open_table(SESSIONS)?
                    .insert(renewed.0, bytes.as_slice())?;
                txn.open_multimap_table(SESSIONS_BY_USER)?
                    .insert(user.0, renewed.0)?;
            }
            insert_mail(txn, notice, now)?;
            Ok(ended)
        })
    }

    async fn touch_sessions(&self, seen: &[(SessionKey, Timestamp)]) -> StoreResult<()> {
        // Last-seen times are a convenience: losing the latest batch to a
        // crash only shortens an idle timeout, so skip the fsync.
        self.write_with(Durability::None, |txn| {
            let mut sessions = txn.open_table(SESSIONS)?;
            for (key, at) in seen {
                let stored = sessions.get(key.0)?.map(|v| v.value().to_vec());
                let Some(bytes) = stored else { continue };
                let mut session: Session = decode(&bytes, "session")?;
                if *at > session.last_seen {
                    session.last_seen = *at;
                    sessions.insert(key.0, encode(&session).as_slice())?;
                }
            }
            Ok(())
        })
    }

    async fn purge_sessions(&self, policy: SessionPolicy, now: Timestamp) -> StoreResult<usize> {
        let doomed: Vec<SessionKey> = {
            let txn = self.read()?;
            let table = txn.open_table(SESSIONS)?;
            let mut doomed = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let session: Session = decode(v.value(), "session")?;
                if policy.is_expired(&session, session.last_seen, now) {
                    doomed.push(SessionKey(k.value()));
                }
            }
            doomed
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        self.write(|txn| {
            let mut n = 0;
            for key in &doomed {
                if remove_session(txn, key)? {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

/// Ends every session of `user` but `keep`; returns how many ended.
pub(super) fn remove_user_sessions(
    txn: &WriteTransaction,
    user: UserId,
    keep: Option<SessionKey>,
) -> anyhow::Result<usize> {
    let keys: Vec<[u8; 32]> = {
        let index = txn.open_multimap_table(SESSIONS_BY_USER)?;
        let mut keys = Vec::new();
        for key in index.get(user.0)? {
            keys.push(key?.value());
        }
        keys
    };
    let mut n = 0;
    for key in keys
        .into_iter()
        .map(SessionKey)
        .filter(|k| Some(*k) != keep)
    {
        if remove_session(txn, &key)? {
            n += 1;
        }
    }
    // The apps' tokens end with the sessions (a reset, a new password,
    // "log out everywhere", a disabled or deleted account).
    super::oidc::remove_user_tokens(txn, user, None)?;
    Ok(n)
}

/// Ends the oldest sessions of `user` (by creation) beyond `cap`; never
/// `new`, the one just made (sessions made in the same millisecond tie).
fn evict_beyond(
    txn: &WriteTransaction,
    user: UserId,
    cap: usize,
    new: &SessionKey,
) -> anyhow::Result<usize> {
    let mut theirs: Vec<(Timestamp, SessionKey)> = {
        let index = txn.open_multimap_table(SESSIONS_BY_USER)?;
        let sessions = txn.open_table(SESSIONS)?;
        let mut theirs = Vec::new();
        for key in index.get(user.0)? {
            let key = key?.value();
            if let Some(v) = sessions.get(key)? {
                let session: Session = decode(v.value(), "session")?;
                theirs.push((session.created_at, SessionKey(key)));
            }
        }
        theirs
    };
    if theirs.len() <= cap {
        return Ok(0);
    }
    theirs.sort_by_key(|(created, key)| (key == new, *created));
    let excess = theirs.len() - cap;
    for (_, key) in &theirs[..excess] {
        remove_session(txn, key)?;
    }
    Ok(excess)
}

fn remove_session(txn: &WriteTransaction, key: &SessionKey) -> anyhow::Result<bool> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let removed = sessions.remove(key.0)?.map(|v| v.value().to_vec());
    let Some(bytes) = removed else {
        return Ok(false);
    };
    let session: Session = decode(&bytes, "session")?;
    txn.open_multimap_table(SESSIONS_BY_USER)?
        .remove(session.user.0, key.0)?;
    Ok(true)
}
