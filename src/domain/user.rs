//! The user record as the rest of the program sees it.

use super::{EmailAddress, GroupName, LoginId, Username};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Admin => "admin",
        })
    }
}

/// Where an account stands. `PendingVerification` is the place for email
/// verification (the mail issue): such an account cannot log in yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    PendingVerification,
    Disabled,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::PendingVerification => "pending verification",
            Self::Disabled => "disabled",
        })
    }
}

/// One successful login: when and from which address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub at: Timestamp,
    pub ip: String,
}

/// Which versions (content hashes) of the Terms of Service and the
/// Privacy Policy a user accepted, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub terms: String,
    pub privacy: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub username: Username,
    /// A scheme-tagged hash (see `auth::password`); never the password.
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: Timestamp,
    #[serde(default)]
    pub last_login: Option<LoginRecord>,
    /// The login before `last_login`: what the Summary shows as "last login"
    /// to someone who has just logged in.
    #[serde(default)]
    pub previous_login: Option<LoginRecord>,
    /// None: never accepted (an account made with the CLI): asked at login.
    #[serde(default)]
    pub consent: Option<Consent>,
    /// The groups it is a member of, sorted (`GroupStore`).
    #[serde(default)]
    pub groups: Vec<GroupName>,
    /// When its owner last proved the address by following a mailed link
    /// (verification or reset): `email_verified` for apps (OIDC).
    #[serde(default)]
    pub email_verified_at: Option<Timestamp>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The owner followed a mailed verification link at `now`: the
    /// address is theirs, and a pending account becomes active.
    pub fn confirm_email(&mut self, now: Timestamp) {
        self.email_verified_at = Some(now);
        if self.status == UserStatus::PendingVerification {
            self.status = UserStatus::Active;
        }
    }

    pub fn in_group(&self, group: &GroupName) -> bool {
        self.groups.binary_search(group).is_ok()
    }

    /// The account after its password was reset through a mailed link, or
    /// None when the reset must not happen: a disabled account stays out,
    /// whatever link it holds. Following the link proves the address, so a
    /// pending account becomes active.
    pub fn after_reset(mut self, new_hash: String, now: Timestamp) -> Option<User> {
        self.email_verified_at = Some(now);
        match self.status {
            UserStatus::Disabled => return None,
            UserStatus::PendingVerification => self.status = UserStatus::Active,
            UserStatus::Active => {}
        }
        self.password_hash = new_hash;
        Some(self)
    }
}

/// One login try on an account, for its history (Account page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub at: Timestamp,
    pub ip: String,
    pub ok: bool,
}

/// How many tries each account's history keeps.
pub const LOGIN_HISTORY: usize = 50;

/// How many of the oldest tries to drop from a history that holds `len`
/// (the newest `LOGIN_HISTORY` are kept).
pub fn history_excess(len: usize) -> usize {
    len.saturating_sub(LOGIN_HISTORY)
}

/// The lockout keys that belong to an account: one per way of naming it,
/// and the account's own (`lockout::account_lockout_key`).
pub fn lockout_keys_of(user: &User) -> Vec<String> {
    let mut keys: Vec<String> = [user.email.as_str(), user.username.as_str()]
        .iter()
        .filter_map(|id| LoginId::parse(id).ok())
        .map(|id| id.lockout_key())
        .collect();
    keys.push(super::lockout::account_lockout_key(user.id));
    keys
}
