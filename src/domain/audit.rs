//! The audit log's record (SPEC §8): what happened, who did it, to which
//! account, from where.

use super::UserId;
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// What the audit log records (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    LoginOk,
    LoginFailed,
    /// A try refused because the ID was locked.
    LoginRefusedLocked,
    LockSet,
    LockCleared,
    Logout,
    Signup,
    Verified,
    ResetRequested,
    ResetDone,
    PasswordChanged,
    SessionRevoked,
    /// An account's second factors: added, removed, a recovery code used,
    /// new recovery codes, a reset by an admin (`detail` says which).
    SecondFactor,
    /// Anything an admin did with the CLI (`detail` says what).
    Admin,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::LoginRefusedLocked => "login_refused_locked",
            Self::LockSet => "lock_set",
            Self::LockCleared => "lock_cleared",
            Self::Logout => "logout",
            Self::Signup => "signup",
            Self::Verified => "verified",
            Self::ResetRequested => "reset_requested",
            Self::ResetDone => "reset_done",
            Self::PasswordChanged => "password_changed",
            Self::SessionRevoked => "session_revoked",
            Self::SecondFactor => "second_factor",
            Self::Admin => "admin",
        }
    }
}

/// One security event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub kind: AuditKind,
    /// Who did it: `self`, `anonymous`, `system` or `cli:<os user>`.
    pub actor: String,
    /// The account it concerns, if any.
    pub user: Option<UserId>,
    /// The ID a lock concerns, an invitation number…
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(at: Timestamp, kind: AuditKind, actor: impl Into<String>) -> Self {
        Self {
            at,
            kind,
            actor: actor.into(),
            user: None,
            subject: None,
            ip: None,
            detail: None,
        }
    }

    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    pub fn maybe_user(mut self, user: Option<UserId>) -> Self {
        self.user = user;
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn ip(mut self, ip: impl ToString) -> Self {
        self.ip = Some(ip.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
