//! What a browser is in the middle of (issue 15), kept by the server under
//! the SHA-256 of a random value the browser holds (a cookie, or its
//! session), for a few minutes: a login between its password and its
//! second step, or a passkey ceremony and its challenge. The browser
//! holds only the random value: it cannot make or change the state, and a
//! stolen password alone never makes a half-login into a session.

use crate::clock::Timestamp;
use crate::domain::UserId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a half-login waits for its second step.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Wrong second steps one half-login takes before it is ended (the
/// lockout counters go on counting beyond it: a new password each time).
pub const PENDING_TRIES: u32 = 5;

/// What the second step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingStep {
    /// A code of the account's authenticator app or a recovery code.
    Verify,
    /// The policy asks for a second factor the account does not have: it
    /// enrols one before it gets a session.
    Enrol,
}

/// The lockout counters the password was judged by; a wrong code counts on
/// the same ones (SPEC §12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCounter {
    /// The typed ID's counter, or the device's.
    pub key: String,
    /// The account's counter (not for a device: it counts on itself).
    pub account_key: Option<String>,
    /// The ID as typed (for the audit of a lock).
    pub typed: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub user: UserId,
    pub step: PendingStep,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The SHA-256 of the password hash the password matched: a password
    /// changed meanwhile ends the half-login.
    pub password_fingerprint: [u8; 32],
    pub counter: PendingCounter,
    /// The counters a completed login clears.
    pub reset_lockouts: Vec<String>,
    /// The password re-hashed at the configured cost, stored with the
    /// session.
    pub new_password_hash: Option<String>,
    /// Where the browser goes after (already checked by `return_to`).
    pub rd: Option<String>,
    /// Wrong second steps so far.
    #[serde(default)]
    pub tries: u32,
    /// The passkey challenge of this second step, once asked for.
    #[serde(default)]
    pub passkey_state: Option<String>,
}

/// One kept state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pending {
    Login(PendingLogin),
    /// A passkey ceremony (its challenge sent): registering one on the
    /// Account page (`user` set), or logging in with one (no account known
    /// yet).
    Passkey(PasskeyCeremony),
}

/// A WebAuthn challenge waiting for its answer, as webauthn-rs keeps it
/// (`state`, its JSON: the challenge must be kept by the server, and in
/// the database so that any replica can check the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyCeremony {
    pub user: Option<UserId>,
    pub expires_at: Timestamp,
    pub state: String,
    /// Where the browser goes after a login (checked by `return_to`).
    #[serde(default)]
    pub rd: Option<String>,
}

impl Pending {
    pub fn user(&self) -> Option<UserId> {
        match self {
            Self::Login(p) => Some(p.user),
            Self::Passkey(c) => c.user,
        }
    }

    pub fn expires_at(&self) -> Timestamp {
        match self {
            Self::Login(p) => p.expires_at,
            Self::Passkey(c) => c.expires_at,
        }
    }

    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at()
    }
}

impl PendingLogin {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// One more wrong try: false when this half-login is used up.
    pub fn count_try(&mut self) -> bool {
        self.tries += 1;
        self.tries < PENDING_TRIES
    }
}

/// The fingerprint of a password hash (`PendingLogin::password_fingerprint`).
pub fn password_fingerprint(hash: &str) -> [u8; 32] {
    crate::crypto::sha256(hash.as_bytes())
}
