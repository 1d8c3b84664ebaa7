//! Storage: the only code that knows how records are kept.
//!
//! The rest of the program talks to the `Store` trait; `redb::RedbStore`
//! (the embedded default, one file `<data-dir>/gatehouse.redb`) is its one
//! backend today, and a PostgreSQL backend can implement the same traits
//! later (SPEC §10). Methods are synchronous: reads take microseconds, and
//! the HTTP layer moves writes (an fsync each) off the async threads with
//! `AppState::blocking`.

pub mod redb;

use crate::auth::lockout::LockoutState;
use crate::auth::session::{Session, SessionKey};
use crate::clock::Timestamp;
use crate::domain::{
    Consent, EmailAddress, Invitation, InviteProblem, LoginId, LoginRecord, Role, User, UserId,
    UserStatus, Username,
};
use crate::mail::Mail;
use serde::{Deserialize, Serialize};

/// The file name of the embedded database inside the data directory.
pub const DATABASE_FILE: &str = "gatehouse.redb";

/// What is needed to create an account.
#[derive(Debug)]
pub struct NewUser {
    pub email: EmailAddress,
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: Timestamp,
    pub consent: Option<Consent>,
}

/// Spending one use of an invitation on a new account.
#[derive(Debug, Clone, Copy)]
pub struct Redemption {
    pub token_hash: [u8; 32],
    pub at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Checked first, so that someone without a valid invitation learns
    /// nothing about which emails or usernames are taken.
    #[error("{0}")]
    Invite(InviteProblem),
    #[error("an account with this email address already exists")]
    EmailTaken,
    #[error("an account with this username already exists")]
    UsernameTaken,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
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

pub trait AuditStore {
    /// Records events (rare ones: hot paths record theirs inside their own
    /// transaction).
    fn audit(&self, events: Vec<AuditEvent>) -> anyhow::Result<()>;
    /// Events at or after `since`, about `user` if given, newest first, at
    /// most `limit`.
    fn audit_events(
        &self,
        since: Option<Timestamp>,
        user: Option<UserId>,
        limit: usize,
    ) -> anyhow::Result<Vec<AuditEvent>>;
    /// Deletes events older than `before`; returns how many.
    fn purge_audit(&self, before: Timestamp) -> anyhow::Result<usize>;
}

/// Everything a successful login changes, written in one transaction.
#[derive(Debug)]
pub struct CompletedLogin {
    pub user: UserId,
    pub key: SessionKey,
    pub session: Session,
    /// The session the browser had before, which the new one replaces.
    pub replaces: Option<SessionKey>,
    /// Lockout counters that this success resets.
    pub reset_lockouts: Vec<String>,
    pub login: LoginRecord,
    /// A new password hash replacing one of an old scheme or cost.
    pub new_password_hash: Option<String>,
    pub audit: AuditEvent,
}

pub trait UserStore {
    /// Creates an account, refusing an email or username (ignoring case)
    /// that is taken. With `redeem`, the invitation is checked and one of
    /// its uses spent in the same transaction: concurrent signups can never
    /// overspend it. The invitation's role overrides `new.role`.
    fn create_user(
        &self,
        new: NewUser,
        redeem: Option<Redemption>,
    ) -> Result<User, CreateUserError>;
    fn user(&self, id: UserId) -> anyhow::Result<Option<User>>;
    /// The account an ID names: by email when it has an `@`, else by
    /// username.
    fn user_by_login_id(&self, id: &LoginId) -> anyhow::Result<Option<User>>;
    fn users(&self) -> anyhow::Result<Vec<User>>;
    /// How many accounts exist (without reading them).
    fn user_count(&self) -> anyhow::Result<usize>;
    /// Replaces an account's password hash; false when there is no such
    /// account.
    fn set_password_hash(&self, id: UserId, hash: String) -> anyhow::Result<bool>;
    fn set_status(&self, id: UserId, status: UserStatus) -> anyhow::Result<bool>;
    fn set_role(&self, id: UserId, role: Role) -> anyhow::Result<bool>;
    /// Deletes an account with its sessions, tokens and lockout counters
    /// (its audit events stay). False when there is no such account.
    fn delete_user(&self, id: UserId) -> anyhow::Result<bool>;
    /// Records that the user accepted the current documents.
    fn set_consent(&self, id: UserId, consent: Consent) -> anyhow::Result<bool>;
}

/// What is needed to make an invitation.
#[derive(Debug)]
pub struct NewInvite {
    pub token_hash: [u8; 32],
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub max_uses: u32,
    pub email: Option<EmailAddress>,
    pub role: Role,
    pub first_run: bool,
}

pub trait InviteStore {
    fn create_invite(&self, new: NewInvite) -> anyhow::Result<Invitation>;
    fn invite_by_token(&self, token_hash: &[u8; 32]) -> anyhow::Result<Option<Invitation>>;
    fn invites(&self) -> anyhow::Result<Vec<Invitation>>;
    /// Revokes one; false when there is no such invitation.
    fn revoke_invite(&self, id: u64, at: Timestamp) -> anyhow::Result<bool>;
    /// When no admin account exists: revokes earlier unused first-run
    /// invitations and stores `new` (one transaction). None once an admin
    /// exists.
    fn replace_first_run_invite(&self, new: NewInvite) -> anyhow::Result<Option<Invitation>>;
}

pub trait LockoutStore {
    fn lockout(&self, key: &str) -> anyhow::Result<LockoutState>;
    /// Reads, changes with `f` and writes one counter in one transaction, so
    /// that concurrent failures are all counted. A result equal to the
    /// default state deletes the record.
    /// With `attempt`, the failed try is also added to that account's login
    /// history; `f` also returns audit events; all in the same transaction.
    fn update_lockout(
        &self,
        key: &str,
        f: &mut dyn FnMut(LockoutState) -> (LockoutState, Vec<AuditEvent>),
        attempt: Option<(UserId, LoginAttempt)>,
    ) -> anyhow::Result<LockoutState>;
    /// Deletes the named counters; returns how many there were.
    fn clear_lockouts(&self, keys: &[String]) -> anyhow::Result<usize>;
    /// Deletes every counter `idle` says no longer matters; returns how many.
    fn purge_lockouts(&self, idle: &dyn Fn(&LockoutState) -> bool) -> anyhow::Result<usize>;
}

pub trait SessionStore {
    fn complete_login(&self, login: CompletedLogin) -> anyhow::Result<()>;
    fn session(&self, key: &SessionKey) -> anyhow::Result<Option<Session>>;
    /// A session and its user, read in one transaction (the check every
    /// logged-in request makes).
    fn session_with_user(&self, key: &SessionKey) -> anyhow::Result<Option<(Session, User)>>;
    fn delete_session(&self, key: &SessionKey) -> anyhow::Result<bool>;
    fn sessions_of(&self, user: UserId) -> anyhow::Result<Vec<(SessionKey, Session)>>;
    /// How many sessions are stored.
    fn session_count(&self) -> anyhow::Result<usize>;
    /// Ends every session of `user`; returns how many.
    fn end_sessions(&self, user: UserId) -> anyhow::Result<usize>;
    /// The account's recent login tries, newest first.
    fn login_history(&self, user: UserId) -> anyhow::Result<Vec<LoginAttempt>>;
    /// A logged-in user's new password, in one transaction: the hash is
    /// set, every other session ends, and `notice` is queued. Returns how
    /// many sessions ended.
    fn change_password(
        &self,
        user: UserId,
        new_hash: String,
        keep: SessionKey,
        notice: Mail,
        now: Timestamp,
    ) -> anyhow::Result<usize>;
    /// Writes a batch of last-seen times (sessions gone since are skipped).
    fn touch_sessions(&self, seen: &[(SessionKey, Timestamp)]) -> anyhow::Result<()>;
    /// Deletes every session `expired` says is over; returns how many.
    fn purge_sessions(&self, expired: &dyn Fn(&Session) -> bool) -> anyhow::Result<usize>;
}

/// A mail waiting in (or given up by) the outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub mail: Mail,
    pub created_at: Timestamp,
    pub attempts: u32,
    /// None: given up after too many failures (kept for the admin).
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// What a one-time token (in a mailed link) is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    Verify,
    Reset,
}

impl TokenPurpose {
    fn code(self) -> u8 {
        match self {
            Self::Verify => 1,
            Self::Reset => 2,
        }
    }
}

/// A one-time token as stored (under the hash of the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeToken {
    pub purpose: TokenPurpose,
    pub user: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why a mailed link did not work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued, already used, or replaced by a newer one.
    Unknown,
    Expired,
}

pub trait MailStore {
    /// Stores a mail in the outbox; returns its number.
    fn enqueue_mail(&self, mail: Mail, now: Timestamp) -> anyhow::Result<u64>;
    /// Stores a one-time token, replacing the user's earlier one of the same
    /// purpose, and the mail that carries it (if any: a link the CLI prints
    /// has none), in one transaction.
    fn issue_token(
        &self,
        token_hash: [u8; 32],
        token: OneTimeToken,
        mail: Option<Mail>,
    ) -> anyhow::Result<()>;
    fn token(&self, token_hash: &[u8; 32]) -> anyhow::Result<Option<OneTimeToken>>;
    /// Consumes a verification token: the account becomes active.
    fn consume_verification(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> anyhow::Result<Result<User, TokenProblem>>;
    /// Consumes a reset token and sets `new_hash`, in one transaction:
    /// every session of the user ends, the lockout counters of its names
    /// are cleared, and the mail `notice` makes is queued.
    fn consume_reset(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
        new_hash: String,
        notice: &dyn Fn(&User) -> Mail,
    ) -> anyhow::Result<Result<User, TokenProblem>>;
    /// Deletes one-time tokens that expired before `now`; returns how many.
    fn purge_tokens(&self, now: Timestamp) -> anyhow::Result<usize>;
    /// Mail whose next attempt is due at `now`, oldest first.
    fn due_mail(&self, now: Timestamp, limit: usize) -> anyhow::Result<Vec<OutboxEntry>>;
    fn mail_sent(&self, id: u64) -> anyhow::Result<()>;
    fn mail_failed(
        &self,
        id: u64,
        attempts: u32,
        next: Option<Timestamp>,
        error: String,
    ) -> anyhow::Result<()>;
    /// Everything in the outbox (waiting or given up).
    fn outbox(&self) -> anyhow::Result<Vec<OutboxEntry>>;
}

/// What a backup copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct BackupStats {
    pub users: u64,
    pub sessions: u64,
    pub other: u64,
}

/// Everything gatehouse keeps.
pub trait Store:
    UserStore
    + InviteStore
    + LockoutStore
    + SessionStore
    + MailStore
    + AuditStore
    + Send
    + Sync
    + 'static
{
    /// Writes a consistent copy of everything to a new database file at
    /// `to`, from one read transaction (the server keeps serving).
    fn backup(&self, to: &std::path::Path) -> anyhow::Result<BackupStats>;
    /// The key of the password pre-hash (see `auth::password`), made when
    /// the database was created.
    fn password_key(&self) -> [u8; 32];
}

/// The lockout keys that belong to an account: one per way of naming it.
pub fn lockout_keys_of(user: &User) -> Vec<String> {
    [user.email.as_str(), user.username.as_str()]
        .iter()
        .filter_map(|id| LoginId::parse(id).ok())
        .map(|id| id.lockout_key())
        .collect()
}
