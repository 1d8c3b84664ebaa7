//! Sessions by key (the token's hash), indexed by user; and the login
//! transaction that creates one.

use super::mail::insert_mail;
use super::{
    LOCKOUTS, LOGINS, RedbStore, SESSIONS, SESSIONS_BY_USER, USERS, decode, encode, record_attempt,
};
use crate::auth::session::{Session, SessionKey};
use crate::clock::Timestamp;
use crate::domain::{User, UserId};
use crate::mail::Mail;
use crate::store::{CompletedLogin, LoginAttempt, SessionStore};
use anyhow::Context;
use redb::{
    Durability, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

impl SessionStore for RedbStore {
    fn complete_login(&self, login: CompletedLogin) -> anyhow::Result<()> {
        self.write(|txn| {
            if let Some(old) = login.replaces {
                remove_session(txn, &old)?;
            }
            let mut sessions = txn.open_table(SESSIONS)?;
            sessions.insert(login.key.0, encode(&login.session).as_slice())?;
            txn.open_multimap_table(SESSIONS_BY_USER)?
                .insert(login.user.0, login.key.0)?;
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

    fn session(&self, key: &SessionKey) -> anyhow::Result<Option<Session>> {
        let txn = self.read()?;
        let table = txn.open_table(SESSIONS)?;
        let found = table.get(key.0)?;
        found.map(|v| decode(v.value(), "session")).transpose()
    }

    fn session_with_user(&self, key: &SessionKey) -> anyhow::Result<Option<(Session, User)>> {
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
        Ok(Some((session, user)))
    }

    fn delete_session(&self, key: &SessionKey) -> anyhow::Result<bool> {
        self.write(|txn| remove_session(txn, key))
    }

    fn sessions_of(&self, user: UserId) -> anyhow::Result<Vec<(SessionKey, Session)>> {
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

    fn session_count(&self) -> anyhow::Result<usize> {
        let txn = self.read()?;
        Ok(usize::try_from(txn.open_table(SESSIONS)?.len()?).unwrap_or(usize::MAX))
    }

    fn end_sessions(&self, user: UserId) -> anyhow::Result<usize> {
        self.write(|txn| remove_user_sessions(txn, user, None))
    }

    fn login_history(&self, user: UserId) -> anyhow::Result<Vec<LoginAttempt>> {
        let txn = self.read()?;
        let table = txn.open_table(LOGINS)?;
        let mut out = Vec::new();
        for row in table.range((user.0, 0)..=(user.0, u64::MAX))?.rev() {
            let (_, v) = row?;
            out.push(decode(v.value(), "login attempt")?);
        }
        Ok(out)
    }

    fn change_password(
        &self,
        user: UserId,
        new_hash: String,
        keep: SessionKey,
        notice: Mail,
        now: Timestamp,
    ) -> anyhow::Result<usize> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(user.0)?.map(|v| v.value().to_vec());
            let mut u: User = decode(&stored.context("the user is gone")?, "user")?;
            u.password_hash = new_hash;
            users.insert(user.0, encode(&u).as_slice())?;
            drop(users);
            let ended = remove_user_sessions(txn, user, Some(keep))?;
            insert_mail(txn, notice, now)?;
            Ok(ended)
        })
    }

    fn touch_sessions(&self, seen: &[(SessionKey, Timestamp)]) -> anyhow::Result<()> {
        let mut txn = self
            .db
            .begin_write()
            .context("failed to begin a write transaction")?;
        // Last-seen times are a convenience: losing the latest batch to a
        // crash only shortens an idle timeout, so skip the fsync.
        txn.set_durability(Durability::None)
            .context("failed to set durability")?;
        {
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
        }
        txn.commit().context("failed to commit last-seen times")
    }

    fn purge_sessions(&self, expired: &dyn Fn(&Session) -> bool) -> anyhow::Result<usize> {
        let doomed: Vec<SessionKey> = {
            let txn = self.read()?;
            let table = txn.open_table(SESSIONS)?;
            let mut doomed = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                if expired(&decode::<Session>(v.value(), "session")?) {
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
    Ok(n)
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
