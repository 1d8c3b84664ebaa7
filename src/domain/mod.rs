//! Domain types: values parsed once at the edge (forms, CLI arguments) and
//! trusted everywhere below it. Each has a private field and a `parse`
//! that says, in words fit for a form, what is wrong with a bad input.
//! Also the records the store keeps (sessions, lockout state, mails, audit
//! events, one-time tokens, login attempts) and the pure rules on them
//! (lockout, session expiry), so that every backend applies the same rules.
//! Imports nothing of gatehouse but the clock and `crypto`.

pub mod access;
pub mod audit;
mod email;
pub mod group;
mod invite;
pub mod lockout;
mod login_id;
pub mod mail;
pub mod oidc;
mod password;
pub mod pending;
pub mod return_to;
pub mod second_factor;
pub mod session;
pub mod token;
mod user;
mod username;

pub use audit::{AuditEvent, AuditKind};
pub use email::EmailAddress;
pub use group::{Group, GroupName, Membership};
pub use invite::{Invitation, InviteProblem, InviteStatus, InviteToken, Redeemed};
pub use login_id::LoginId;
pub use mail::{Mail, OutboxEntry};
pub use password::{
    CommonPasswords, MAX_PASSWORD_BYTES, NewPassword, Password, PasswordPolicy, PasswordProblem,
};
pub use token::{LinkToken, OneTimeToken, TokenProblem, TokenPurpose};
pub use user::{
    Consent, LOGIN_HISTORY, LoginAttempt, LoginRecord, Role, User, UserId, UserStatus,
    history_excess, lockout_keys_of,
};
pub use username::Username;
