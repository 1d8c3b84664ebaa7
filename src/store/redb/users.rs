//! Users: the record by id, and two indexes (normalised email, lower-cased
//! username) that make both unique.

use super::{
    INVITES, INVITES_BY_HASH, META_NEXT_USER, RedbStore, USERS, USERS_BY_EMAIL, USERS_BY_NAME,
    decode, encode, next_id,
};
use crate::clock::Timestamp;
use crate::domain::{
    Consent, Invitation, InviteProblem, LoginId, Redeemed, Role, TokenPurpose, User, UserId,
    UserStatus,
};
use crate::store::StoreResult;
use crate::store::{NewUser, Redemption, StoreError, Unique, UserStore};
use anyhow::Context;
use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};

/// Why `create_user` made no account.
enum CreateUserError {
    Invite(InviteProblem),
    Taken(Unique),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for CreateUserError {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

fn db(e: impl Into<anyhow::Error>) -> CreateUserError {
    CreateUserError::Other(e.into())
}

#[async_trait]
impl UserStore for RedbStore {
    async fn create_user(
        &self,
        new: NewUser,
        redeem: Option<Redemption>,
    ) -> StoreResult<Result<User, InviteProblem>> {
        match super::blocking(|| self.create_user_now(new, redeem)) {
            Ok(user) => Ok(Ok(user)),
            Err(CreateUserError::Invite(problem)) => Ok(Err(problem)),
            Err(CreateUserError::Taken(field)) => Err(StoreError::Conflict(field)),
            Err(CreateUserError::Other(e)) => Err(StoreError::Other(e)),
        }
    }

    async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<bool> {
        self.update_user(id, |u| u.status = status)
    }

    async fn set_role(&self, id: UserId, role: Role) -> StoreResult<bool> {
        self.update_user(id, |u| u.role = role)
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        self.write(|txn| {
            let stored = txn
                .open_table(USERS)?
                .remove(id.0)?
                .map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(false);
            };
            let user: User = decode(&bytes, "user")?;
            txn.open_table(USERS_BY_EMAIL)?
                .remove(user.email.as_str())?;
            txn.open_table(USERS_BY_NAME)?
                .remove(user.username.key().as_str())?;
            super::sessions::remove_user_sessions(txn, id, None)?;
            super::oidc::remove_user_grants(txn, id)?;
            super::second_factors::remove_user_factors(txn, id)?;
            super::groups::leave_all(txn, &user)?;
            let mut by_user = txn.open_table(super::TOKENS_BY_USER)?;
            let mut tokens = txn.open_table(super::TOKENS)?;
            for purpose in [TokenPurpose::Verify, TokenPurpose::Reset] {
                if let Some(hash) = by_user.remove((id.0, purpose.code()))?.map(|v| v.value()) {
                    tokens.remove(hash)?;
                }
            }
            let mut logins = txn.open_table(super::LOGINS)?;
            let theirs: Vec<(u64, u64)> = logins
                .range((id.0, 0)..=(id.0, u64::MAX))?
                .map(|row| row.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for key in theirs {
                logins.remove(key)?;
            }
            let mut lockouts = txn.open_table(super::LOCKOUTS)?;
            for key in crate::domain::lockout_keys_of(&user) {
                lockouts.remove(key.as_str())?;
            }
            Ok(true)
        })
    }

    async fn set_consent(&self, id: UserId, consent: Consent) -> StoreResult<bool> {
        self.update_user(id, |u| u.consent = Some(consent))
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let found = users.get(id.0)?;
        Ok(found.map(|v| decode(v.value(), "user")).transpose()?)
    }

    async fn user_by_login_id(&self, id: &LoginId) -> StoreResult<Option<User>> {
        let txn = self.read()?;
        let index = txn.open_table(if id.is_email() {
            USERS_BY_EMAIL
        } else {
            USERS_BY_NAME
        })?;
        let Some(user_id) = index.get(id.as_str())?.map(|v| v.value()) else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        let found = users.get(user_id)?;
        Ok(found.map(|v| decode(v.value(), "user")).transpose()?)
    }

    async fn user_count(&self) -> StoreResult<usize> {
        use redb::ReadableTableMetadata;
        let txn = self.read()?;
        Ok(usize::try_from(txn.open_table(USERS)?.len()?).unwrap_or(usize::MAX))
    }

    async fn count_hash_prefixes(&self, len: usize) -> StoreResult<Vec<(String, usize)>> {
        /// Only the field counted: the rest of the record is skipped, not
        /// decoded.
        #[derive(serde::Deserialize)]
        struct HashOnly<'a> {
            #[serde(borrow)]
            password_hash: std::borrow::Cow<'a, str>,
        }
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for row in users.iter()? {
            let (_, v) = row?;
            let record: HashOnly<'_> = serde_json::from_slice(v.value()).map_err(|e| {
                anyhow::Error::new(e).context("failed to decode a stored user record")
            })?;
            let head: String = record.password_hash.chars().take(len).collect();
            *counts.entry(head).or_insert(0) += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn set_password_hash(&self, id: UserId, hash: String) -> StoreResult<bool> {
        self.update_user(id, |u| u.password_hash = hash)
    }

    async fn unconfirmed_before(&self, cutoff: Timestamp) -> StoreResult<Vec<User>> {
        /// The two fields that decide: the rest of a record is skipped,
        /// not decoded, and only a match is kept.
        #[derive(serde::Deserialize)]
        struct Standing {
            status: UserStatus,
            created_at: Timestamp,
        }
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let mut found = Vec::new();
        for row in users.iter()? {
            let (_, v) = row?;
            let s: Standing = decode(v.value(), "user")?;
            if s.status == UserStatus::PendingVerification && s.created_at <= cutoff {
                found.push(decode::<User>(v.value(), "user")?);
            }
        }
        found.sort_by_key(|u| (u.created_at, u.id));
        Ok(found)
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        Ok(users
            .iter()?
            .map(|row| {
                let (_, v) = row?;
                decode(v.value(), "user")
            })
            .collect::<anyhow::Result<_>>()?)
    }
}

impl RedbStore {
    /// Reads, changes with `f` and writes one user in one transaction;
    /// false when there is no such user.
    fn update_user(&self, id: UserId, f: impl FnOnce(&mut User)) -> StoreResult<bool> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(id.0)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(false);
            };
            let mut user: User = decode(&bytes, "user")?;
            f(&mut user);
            users.insert(id.0, encode(&user).as_slice())?;
            Ok(true)
        })
    }
}

impl RedbStore {
    fn create_user_now(
        &self,
        new: NewUser,
        redeem: Option<Redemption>,
    ) -> Result<User, CreateUserError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_two_phase_commit(true);
        let user = {
            // The invitation first: without a valid one, nothing is said
            // about which emails or usernames exist.
            let mut role = new.role;
            let mut groups = new.groups;
            let mut invite = None;
            if let Some(r) = redeem {
                let by_hash = txn.open_table(INVITES_BY_HASH).map_err(db)?;
                let id = by_hash.get(r.token_hash).map_err(db)?.map(|v| v.value());
                let id = id.ok_or(CreateUserError::Invite(InviteProblem::Unknown))?;
                let invites = txn.open_table(INVITES).map_err(db)?;
                let stored = invites.get(id).map_err(db)?.map(|v| v.value().to_vec());
                let inv: Invitation = decode(
                    &stored.ok_or(CreateUserError::Invite(InviteProblem::Unknown))?,
                    "invitation",
                )?;
                inv.check(r.at, &new.email)
                    .map_err(CreateUserError::Invite)?;
                role = inv.role;
                groups.extend(inv.groups.iter().cloned());
                invite = Some((inv, r.at));
            }
            let mut by_email = txn.open_table(USERS_BY_EMAIL).map_err(db)?;
            let mut by_name = txn.open_table(USERS_BY_NAME).map_err(db)?;
            if by_email.get(new.email.as_str()).map_err(db)?.is_some() {
                return Err(CreateUserError::Taken(Unique::Email));
            }
            let name_key = new.username.key();
            if by_name.get(name_key.as_str()).map_err(db)?.is_some() {
                return Err(CreateUserError::Taken(Unique::Username));
            }
            let id = next_id(&txn, META_NEXT_USER)?;
            let groups = super::groups::join_existing(&txn, id, groups)?;
            let user = User {
                id: UserId(id),
                email: new.email,
                username: new.username,
                password_hash: new.password_hash,
                role,
                status: new.status,
                created_at: new.created_at,
                last_login: None,
                previous_login: None,
                email_verified_at: None,
                consent: new.consent,
                groups,
            };
            by_email.insert(user.email.as_str(), id).map_err(db)?;
            by_name.insert(name_key.as_str(), id).map_err(db)?;
            txn.open_table(USERS)
                .map_err(db)?
                .insert(id, encode(&user).as_slice())
                .map_err(db)?;
            if let Some((mut inv, at)) = invite {
                inv.redeemed.push(Redeemed {
                    user: user.id,
                    username: user.username.to_string(),
                    at,
                });
                txn.open_table(INVITES)
                    .map_err(db)?
                    .insert(inv.id, encode(&inv).as_slice())
                    .map_err(db)?;
            }
            user
        };
        txn.commit().context("failed to commit the new user")?;
        self.sessions_read.invalidate();
        Ok(user)
    }
}
