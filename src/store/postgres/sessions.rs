//! Sessions by key (the token's hash) in plain columns; the login
//! transaction that makes one.

use super::users::{lock_user, store_user, user_of};
use super::{PgStore, id_i64, id_u64, ms, record_attempt, transaction};
use crate::clock::Timestamp;
use crate::domain::session::{Session, SessionKey, SessionPolicy};
use crate::domain::{LoginAttempt, Mail, User, UserId};
use crate::store::record::decode;
use crate::store::{CompletedLogin, SessionStore, StoreResult};
use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

const SESSION_COLUMNS: &str = "user_id, created_at, last_seen, ip, user_agent";

/// A session from the columns `SESSION_COLUMNS`, starting at `at`.
fn session_of(row: &Row, at: usize) -> Session {
    Session {
        user: UserId(id_u64(row.get(at))),
        created_at: Timestamp::from_millis(row.get(at + 1)),
        last_seen: Timestamp::from_millis(row.get(at + 2)),
        ip: row.get(at + 3),
        user_agent: row.get(at + 4),
    }
}

fn key_of(row: &Row, at: usize) -> anyhow::Result<SessionKey> {
    let bytes: &[u8] = row.get(at);
    Ok(SessionKey(
        <[u8; 32]>::try_from(bytes).context("a stored session key is not 32 bytes")?,
    ))
}

async fn insert_session(t: &Transaction<'_>, key: &SessionKey, s: &Session) -> anyhow::Result<()> {
    t.execute(
        &t.prepare_cached(
            "INSERT INTO sessions (key, user_id, created_at, last_seen, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?,
        &[
            &&key.0[..],
            &id_i64(s.user.0),
            &ms(s.created_at),
            &ms(s.last_seen),
            &s.ip,
            &s.user_agent,
        ],
    )
    .await?;
    Ok(())
}

async fn delete_session_in(t: &Transaction<'_>, key: &SessionKey) -> anyhow::Result<bool> {
    let n = t
        .execute(
            &t.prepare_cached("DELETE FROM sessions WHERE key = $1")
                .await?,
            &[&&key.0[..]],
        )
        .await?;
    Ok(n > 0)
}

/// Ends every session of `user` but `keep`; returns how many ended.
pub(super) async fn end_sessions_in(
    t: &Transaction<'_>,
    user: UserId,
    keep: Option<&SessionKey>,
) -> anyhow::Result<usize> {
    let keep: &[u8] = keep.map_or(&[], |k| &k.0[..]);
    let n = t
        .execute(
            &t.prepare_cached("DELETE FROM sessions WHERE user_id = $1 AND key <> $2")
                .await?,
            &[&id_i64(user.0), &keep],
        )
        .await?;
    // The apps' tokens end with the sessions (a reset, a new password,
    // "log out everywhere", a disabled account).
    super::oidc::delete_user_tokens(t, user).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Ends the oldest sessions of `user` (by creation) beyond `cap`; never
/// `new`, the one just made (sessions made in the same millisecond tie).
async fn evict_beyond(
    t: &Transaction<'_>,
    user: UserId,
    cap: usize,
    new: &SessionKey,
) -> anyhow::Result<()> {
    let rows = t
        .query(
            &t.prepare_cached("SELECT key, created_at FROM sessions WHERE user_id = $1")
                .await?,
            &[&id_i64(user.0)],
        )
        .await?;
    if rows.len() <= cap {
        return Ok(());
    }
    let mut theirs = rows
        .iter()
        .map(|r| Ok((key_of(r, 0)?, r.get::<_, i64>(1))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    theirs.sort_by_key(|(key, created)| (key == new, *created));
    let excess = theirs.len() - cap;
    for (key, _) in &theirs[..excess] {
        delete_session_in(t, key).await?;
    }
    Ok(())
}

#[async_trait]
impl SessionStore for PgStore {
    async fn complete_login(&self, login: CompletedLogin) -> StoreResult<()> {
        transaction!(self, |t| {
            // The account first: two logins of one account wait for each
            // other, so the session cap holds.
            let mut user: User = lock_user(&t, login.user)
                .await?
                .context("the user logging in is gone")?;
            if let Some(old) = &login.replaces {
                delete_session_in(&t, old).await?;
            }
            insert_session(&t, &login.key, &login.session).await?;
            evict_beyond(&t, login.user, login.session_cap.max(1), &login.key).await?;
            t.execute(
                &t.prepare_cached("DELETE FROM lockouts WHERE key = ANY($1)")
                    .await?,
                &[&login.reset_lockouts],
            )
            .await?;
            record_attempt(
                &t,
                login.user,
                &LoginAttempt {
                    at: login.login.at,
                    ip: login.login.ip.clone(),
                    ok: true,
                },
            )
            .await?;
            super::audit::record(&t, &login.audit).await?;
            user.previous_login = user.last_login.take();
            user.last_login = Some(login.login.clone());
            if let Some(hash) = &login.new_password_hash {
                user.password_hash.clone_from(hash);
            }
            store_user(&t, &user).await?;
            anyhow::Ok(())
        })
    }

    async fn session(&self, key: &SessionKey) -> StoreResult<Option<Session>> {
        let row = self
            .query_opt(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE key = $1"),
                &[&&key.0[..]],
            )
            .await?;
        Ok(row.map(|r| session_of(&r, 0)))
    }

    async fn session_with_user(&self, key: &SessionKey) -> StoreResult<Option<(Session, User)>> {
        // One round trip: the check every protected request makes.
        let row = self
            .query_opt(
                "SELECT s.user_id, s.created_at, s.last_seen, s.ip, s.user_agent, u.record \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.key = $1",
                &[&&key.0[..]],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_of(row.get(5))?;
        Ok(Some((session_of(&row, 0), user)))
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let n = self
            .execute("DELETE FROM sessions WHERE key = $1", &[&&key.0[..]])
            .await?;
        Ok(n > 0)
    }

    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<(SessionKey, Session)>> {
        let rows = self
            .query(
                &format!(
                    "SELECT key, {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY key"
                ),
                &[&id_i64(user.0)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((key_of(r, 0)?, session_of(r, 1))))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn session_count(&self) -> StoreResult<usize> {
        let rows = self.query("SELECT count(*) FROM sessions", &[]).await?;
        Ok(usize::try_from(rows[0].get::<_, i64>(0)).unwrap_or(0))
    }

    async fn end_sessions(&self, user: UserId) -> StoreResult<usize> {
        transaction!(self, |t| end_sessions_in(&t, user, None).await)
    }

    async fn login_history(&self, user: UserId) -> StoreResult<Vec<LoginAttempt>> {
        let rows = self
            .query(
                "SELECT record FROM logins WHERE user_id = $1 ORDER BY seq DESC",
                &[&id_i64(user.0)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "login attempt"))
            .collect::<anyhow::Result<_>>()?)
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
        transaction!(self, |t| {
            let mut u = lock_user(&t, user).await?.context("the user is gone")?;
            u.password_hash.clone_from(&new_hash);
            store_user(&t, &u).await?;
            let ended = end_sessions_in(&t, user, Some(&keep)).await?;
            t.execute(
                &t.prepare_cached("UPDATE sessions SET key = $2 WHERE key = $1")
                    .await?,
                &[&&keep.0[..], &&renewed.0[..]],
            )
            .await?;
            super::mail::insert_mail(&t, notice.clone(), now).await?;
            anyhow::Ok(ended)
        })
    }

    async fn touch_sessions(&self, seen: &[(SessionKey, Timestamp)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        transaction!(self, |t| {
            let statement = t
                .prepare_cached(
                    "UPDATE sessions SET last_seen = $2 WHERE key = $1 AND last_seen < $2",
                )
                .await?;
            for (key, at) in seen {
                t.execute(&statement, &[&&key.0[..], &ms(*at)]).await?;
            }
            anyhow::Ok(())
        })
    }

    async fn purge_sessions(&self, policy: SessionPolicy, now: Timestamp) -> StoreResult<usize> {
        // `SessionPolicy::is_expired` as cut-offs: now >= created +
        // lifetime, or now >= last seen + idle timeout.
        let created_before = ms(now).saturating_sub(millis(policy.lifetime));
        let seen_before = ms(now).saturating_sub(millis(policy.idle_timeout));
        let n = self
            .execute(
                "DELETE FROM sessions WHERE created_at <= $1 OR last_seen <= $2",
                &[&created_before, &seen_before],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
