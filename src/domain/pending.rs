//! A login between its password and its second step (issue 15): kept by
//! the server, under the SHA-256 of a random cookie the browser holds, for
//! a few minutes. The browser holds only the random value: it cannot make
//! or change a half-login, and a stolen password alone never makes one
//! into a session.

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
