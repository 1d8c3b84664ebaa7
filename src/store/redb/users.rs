//! Users: the record by id, and two indexes (normalised email, lower-cased
//! username) that make both unique.

use super::{
    META, META_NEXT_USER, RedbStore, USERS, USERS_BY_EMAIL, USERS_BY_NAME, decode, decode_u64,
    encode,
};
use crate::domain::{LoginId, User, UserId};
use crate::store::{CreateUserError, NewUser, UserStore};
use anyhow::Context;
use redb::{ReadableDatabase, ReadableTable};

impl UserStore for RedbStore {
    fn create_user(&self, new: NewUser) -> Result<User, CreateUserError> {
        let mut txn = self
            .db
            .begin_write()
            .context("failed to begin a write transaction")?;
        txn.set_two_phase_commit(true);
        let user = {
            let mut by_email = txn
                .open_table(USERS_BY_EMAIL)
                .context("failed to open users_by_email")?;
            let mut by_name = txn
                .open_table(USERS_BY_NAME)
                .context("failed to open users_by_name")?;
            if by_email
                .get(new.email.as_str())
                .context("failed to read users_by_email")?
                .is_some()
            {
                return Err(CreateUserError::EmailTaken);
            }
            let name_key = new.username.key();
            if by_name
                .get(name_key.as_str())
                .context("failed to read users_by_name")?
                .is_some()
            {
                return Err(CreateUserError::UsernameTaken);
            }
            let mut meta = txn.open_table(META).context("failed to open meta")?;
            let id = meta
                .get(META_NEXT_USER)
                .context("failed to read the next user id")?
                .and_then(|v| decode_u64(v.value()))
                .context("the next user id is missing")?;
            meta.insert(META_NEXT_USER, (id + 1).to_le_bytes().as_slice())
                .context("failed to write the next user id")?;
            let user = User {
                id: UserId(id),
                email: new.email,
                username: new.username,
                password_hash: new.password_hash,
                role: new.role,
                status: new.status,
                created_at: new.created_at,
                last_login: None,
                previous_login: None,
            };
            by_email
                .insert(user.email.as_str(), id)
                .context("failed to index the email")?;
            by_name
                .insert(name_key.as_str(), id)
                .context("failed to index the username")?;
            txn.open_table(USERS)
                .context("failed to open users")?
                .insert(id, encode(&user).as_slice())
                .context("failed to write the user")?;
            user
        };
        txn.commit().context("failed to commit the new user")?;
        Ok(user)
    }

    fn user(&self, id: UserId) -> anyhow::Result<Option<User>> {
        let txn = self.read()?;
        let users = txn.open_table(USERS)?;
        let found = users.get(id.0)?;
        found.map(|v| decode(v.value(), "user")).transpose()
    }

    fn user_by_login_id(&self, id: &LoginId) -> anyhow::Result<Option<User>> {
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
        found.map(|v| decode(v.value(), "user")).transpose()
    }

    fn set_password_hash(&self, id: UserId, hash: String) -> anyhow::Result<bool> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let stored = users.get(id.0)?.map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(false);
            };
            let mut user: User = decode(&bytes, "user")?;
            user.password_hash = hash;
            users.insert(id.0, encode(&user).as_slice())?;
            Ok(true)
        })
    }

    fn users(&self) -> anyhow::Result<Vec<User>> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        users
            .iter()?
            .map(|row| {
                let (_, v) = row?;
                decode(v.value(), "user")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::{EmailAddress, Role, UserStatus, Username};

    fn new_user(email: &str, name: &str) -> NewUser {
        NewUser {
            email: EmailAddress::parse(email).unwrap(),
            username: Username::parse(name).unwrap(),
            password_hash: "x".into(),
            role: Role::User,
            status: UserStatus::Active,
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn users_are_found_by_email_or_username_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let alice = store
            .create_user(new_user("alice@example.com", "Alice"))
            .unwrap();
        let by_mail = store
            .user_by_login_id(&LoginId::parse("ALICE@example.com").unwrap())
            .unwrap();
        let by_name = store
            .user_by_login_id(&LoginId::parse("alice").unwrap())
            .unwrap();
        assert_eq!(by_mail.unwrap().id, alice.id);
        assert_eq!(by_name.unwrap().id, alice.id);
        assert!(
            store
                .user_by_login_id(&LoginId::parse("bob").unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn duplicates_are_refused_ignoring_case() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        store
            .create_user(new_user("alice@example.com", "alice"))
            .unwrap();
        let by_mail = store.create_user(new_user("Alice@Example.com", "other"));
        assert!(matches!(by_mail, Err(CreateUserError::EmailTaken)));
        let by_name = store.create_user(new_user("other@example.com", "ALICE"));
        assert!(matches!(by_name, Err(CreateUserError::UsernameTaken)));
        assert_eq!(store.users().unwrap().len(), 1);
    }
}
