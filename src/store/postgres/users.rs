//! Accounts: the record with its unique email and username columns.

use super::{PgStore, id_i64, next_val, transaction};
use crate::clock::Timestamp;
use crate::domain::{
    Consent, Invitation, InviteProblem, LoginId, Redeemed, Role, User, UserId, UserStatus,
};
use crate::store::record::{decode, encode_text};
use crate::store::{NewUser, Redemption, StoreError, StoreResult, Unique, UserStore};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;

pub(super) fn role_text(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Admin => "admin",
    }
}

/// The `unconfirmed_since` column: when the account was made, while it
/// waits for its address to be confirmed.
pub(super) fn unconfirmed_since(user: &User) -> Option<i64> {
    (user.status == UserStatus::PendingVerification).then(|| user.created_at.as_millis())
}

pub(super) fn user_of(record: &str) -> anyhow::Result<User> {
    decode(record.as_bytes(), "user")
}

/// Writes an account's record and the columns made from it.
pub(super) async fn store_user(t: &Transaction<'_>, user: &User) -> anyhow::Result<()> {
    t.execute(
        &t.prepare_cached(
            "UPDATE users SET email = $2, username_key = $3, role = $4, password_hash = $5, \
             record = $6, unconfirmed_since = $7 WHERE id = $1",
        )
        .await?,
        &[
            &id_i64(user.id.0),
            &user.email.as_str(),
            &user.username.key(),
            &role_text(user.role),
            &user.password_hash,
            &encode_text(user),
            &unconfirmed_since(user),
        ],
    )
    .await?;
    Ok(())
}

/// An account read for changing: locked until the transaction ends.
pub(super) async fn lock_user(t: &Transaction<'_>, id: UserId) -> anyhow::Result<Option<User>> {
    let row = t
        .query_opt(
            &t.prepare_cached("SELECT record FROM users WHERE id = $1 FOR UPDATE")
                .await?,
            &[&id_i64(id.0)],
        )
        .await?;
    row.map(|r| user_of(r.get(0))).transpose()
}

/// Why `create_user` made no account (the transaction is rolled back).
enum NotCreated {
    Invite(InviteProblem),
    Taken(Unique),
}

impl PgStore {
    async fn update_user(
        &self,
        id: UserId,
        f: impl Fn(&mut User) + Send + Sync,
    ) -> StoreResult<bool> {
        transaction!(self, |t| {
            let Some(mut user) = lock_user(&t, id).await? else {
                return Ok(false);
            };
            f(&mut user);
            store_user(&t, &user).await?;
            anyhow::Ok(true)
        })
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(
        &self,
        new: NewUser,
        redeem: Option<Redemption>,
    ) -> StoreResult<Result<User, InviteProblem>> {
        let made: Result<User, NotCreated> = transaction!(self, |t| {
            // The invitation first: without a valid one, nothing is said
            // about which emails or usernames exist.
            let mut role = new.role;
            let mut wanted = new.groups.clone();
            let mut invite = None;
            if let Some(r) = &redeem {
                let row = t
                    .query_opt(
                        &t.prepare_cached(
                            "SELECT record FROM invites WHERE token_hash = $1 FOR UPDATE",
                        )
                        .await?,
                        &[&&r.token_hash[..]],
                    )
                    .await?;
                let Some(row) = row else {
                    return Ok(Err(NotCreated::Invite(InviteProblem::Unknown)));
                };
                let inv: Invitation = decode(row.get::<_, &str>(0).as_bytes(), "invitation")?;
                if let Err(problem) = inv.check(r.at, &new.email) {
                    return Ok(Err(NotCreated::Invite(problem)));
                }
                role = inv.role;
                wanted.extend(inv.groups.iter().cloned());
                invite = Some((inv, r.at));
            }
            let id = next_val(&t, "gatehouse_user_ids").await?;
            let groups = super::groups::existing(&t, wanted).await?;
            let user = User {
                id: UserId(id),
                email: new.email.clone(),
                username: new.username.clone(),
                password_hash: new.password_hash.clone(),
                role,
                status: new.status,
                created_at: new.created_at,
                last_login: None,
                previous_login: None,
                email_verified_at: None,
                consent: new.consent.clone(),
                groups,
            };
            let inserted = t
                .execute(
                    &t.prepare_cached(
                        "INSERT INTO users (id, email, username_key, role, password_hash, record, \
                         unconfirmed_since) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .await?,
                    &[
                        &id_i64(id),
                        &user.email.as_str(),
                        &user.username.key(),
                        &role_text(user.role),
                        &user.password_hash,
                        &encode_text(&user),
                        &unconfirmed_since(&user),
                    ],
                )
                .await;
            if let Err(e) = &inserted
                && e.code() == Some(&SqlState::UNIQUE_VIOLATION)
            {
                let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
                return Ok(Err(NotCreated::Taken(
                    if constraint == "users_email_unique" {
                        Unique::Email
                    } else {
                        Unique::Username
                    },
                )));
            }
            inserted?;
            for g in &user.groups {
                t.execute(
                    &t.prepare_cached(
                        "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2)",
                    )
                    .await?,
                    &[&g.as_str(), &id_i64(id)],
                )
                .await?;
            }
            if let Some((mut inv, at)) = invite.clone() {
                inv.redeemed.push(Redeemed {
                    user: user.id,
                    username: user.username.to_string(),
                    at,
                });
                super::invites::store_invite(&t, &inv).await?;
            }
            anyhow::Ok(Ok(user))
        })?;
        match made {
            Ok(user) => Ok(Ok(user)),
            Err(NotCreated::Invite(problem)) => Ok(Err(problem)),
            Err(NotCreated::Taken(field)) => Err(StoreError::Conflict(field)),
        }
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = self
            .query_opt("SELECT record FROM users WHERE id = $1", &[&id_i64(id.0)])
            .await?;
        Ok(row.map(|r| user_of(r.get(0))).transpose()?)
    }

    async fn user_by_login_id(&self, id: &LoginId) -> StoreResult<Option<User>> {
        let sql = if id.is_email() {
            "SELECT record FROM users WHERE email = $1"
        } else {
            "SELECT record FROM users WHERE username_key = $1"
        };
        let row = self.query_opt(sql, &[&id.as_str()]).await?;
        Ok(row.map(|r| user_of(r.get(0))).transpose()?)
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .query("SELECT record FROM users ORDER BY id", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| user_of(r.get(0)))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn user_count(&self) -> StoreResult<usize> {
        let rows = self.query("SELECT count(*) FROM users", &[]).await?;
        Ok(usize::try_from(rows[0].get::<_, i64>(0)).unwrap_or(0))
    }

    async fn count_hash_prefixes(&self, len: usize) -> StoreResult<Vec<(String, usize)>> {
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        let rows = self
            .query(
                "SELECT substr(password_hash, 1, $1) AS head, count(*) FROM users \
                 GROUP BY head ORDER BY head",
                &[&len],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    usize::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                )
            })
            .collect())
    }

    async fn unconfirmed_before(&self, cutoff: Timestamp) -> StoreResult<Vec<User>> {
        let rows = self
            .query(
                "SELECT record FROM users WHERE unconfirmed_since <= $1 \
                 ORDER BY unconfirmed_since, id",
                &[&cutoff.as_millis()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| user_of(r.get(0)))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn set_password_hash(&self, id: UserId, hash: String) -> StoreResult<bool> {
        self.update_user(id, |u| u.password_hash.clone_from(&hash))
            .await
    }

    async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<bool> {
        self.update_user(id, |u| u.status = status).await
    }

    async fn set_role(&self, id: UserId, role: Role) -> StoreResult<bool> {
        self.update_user(id, |u| u.role = role).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        transaction!(self, |t| {
            // Sessions, tokens and memberships go with the row (ON DELETE
            // CASCADE); the login history and lockout counters here.
            let row = t
                .query_opt(
                    &t.prepare_cached("DELETE FROM users WHERE id = $1 RETURNING record")
                        .await?,
                    &[&id_i64(id.0)],
                )
                .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let user = user_of(row.get(0))?;
            t.execute(
                &t.prepare_cached("DELETE FROM logins WHERE user_id = $1")
                    .await?,
                &[&id_i64(id.0)],
            )
            .await?;
            let keys = crate::domain::lockout_keys_of(&user);
            t.execute(
                &t.prepare_cached("DELETE FROM lockouts WHERE key = ANY($1)")
                    .await?,
                &[&keys],
            )
            .await?;
            anyhow::Ok(true)
        })
    }

    async fn set_consent(&self, id: UserId, consent: Consent) -> StoreResult<bool> {
        self.update_user(id, |u| u.consent = Some(consent.clone()))
            .await
    }
}
