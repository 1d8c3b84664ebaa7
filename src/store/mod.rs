//! Storage: the only code that knows how records are kept.
//!
//! The rest of the program talks to the async `Store` trait (split by
//! concern: users, invitations, lockout counters, sessions, mail, audit);
//! `redb::RedbStore` (the embedded default, one file
//! `<data-dir>/gatehouse.redb`) is its one backend today, and a PostgreSQL
//! backend implements the same traits (SPEC §10). The backend decides how
//! to block: callers simply `.await`. Arguments are data (cut-off times,
//! the lockout rule), never closures, so that a backend on another machine
//! can run them; the rules themselves are pure functions in `domain/`,
//! which every backend calls inside its own transaction. What only one
//! backend can do (a file copy of redb) stays off this interface
//! (`Backup`). `contract` holds the tests every backend must pass.

pub mod postgres;
pub(crate) mod record;
pub mod redb;
pub mod transfer;

#[cfg(test)]
pub mod contract;

use crate::clock::Timestamp;
use crate::domain::lockout::{FailedLogin, FailureOutcome, LockoutPolicy, LockoutState};
use crate::domain::oidc::{OidcClient, OidcGrant, OidcToken, SigningKey, TokenKind};
use crate::domain::pending::Pending;
use crate::domain::second_factor::{FactorChange, FactorOutcome, SecondFactors};
use crate::domain::session::{Session, SessionKey, SessionPolicy};
use crate::domain::{
    AuditEvent, Consent, EmailAddress, Group, GroupName, Invitation, InviteProblem, LoginAttempt,
    LoginId, LoginRecord, Mail, Membership, OneTimeToken, OutboxEntry, Role, TokenProblem, User,
    UserId, UserStatus, Username,
};
use async_trait::async_trait;

/// The file name of the embedded database inside the data directory.
pub const DATABASE_FILE: &str = "gatehouse.redb";

/// A value that must be unique among accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    Email,
    Username,
}

/// Why a store call failed. Mapped once to a page (`http::error`) and to
/// an exit code (`cli`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The value is taken (email or username, ignoring case).
    #[error("an account with this {} already exists", match .0 { Unique::Email => "email address", Unique::Username => "username" })]
    Conflict(Unique),
    /// The backend cannot be reached, or is busy: try again shortly.
    #[error("the database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

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
    /// Groups to join (with an invitation's besides); names that are no
    /// group (any more) are left out.
    pub groups: Vec<GroupName>,
}

/// Spending one use of an invitation on a new account.
#[derive(Debug, Clone, Copy)]
pub struct Redemption {
    pub token_hash: [u8; 32],
    pub at: Timestamp,
}

/// Everything a successful login changes, written in one transaction.
#[derive(Debug)]
pub struct CompletedLogin {
    pub user: UserId,
    pub key: SessionKey,
    pub session: Session,
    /// The session the browser had before, which the new one replaces.
    pub replaces: Option<SessionKey>,
    /// The most sessions the account may have: beyond it the oldest (by
    /// creation) end, in the same transaction.
    pub session_cap: usize,
    /// Lockout counters that this success resets.
    pub reset_lockouts: Vec<String>,
    pub login: LoginRecord,
    /// A new password hash replacing one of an old scheme or cost.
    pub new_password_hash: Option<String>,
    pub audit: AuditEvent,
}

/// What `replace_first_run_invite` did.
#[derive(Debug)]
pub enum FirstRun {
    Made(Invitation),
    /// A live first-run invitation made then (by another replica) stays.
    Kept {
        made_at: Timestamp,
    },
    /// An admin exists: no invitation is needed.
    AdminExists,
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
    /// Groups the accounts made with it join.
    pub groups: Vec<GroupName>,
}

#[async_trait]
pub trait AuditStore {
    /// Records events (rare ones: hot paths record theirs inside their own
    /// transaction).
    async fn audit(&self, events: Vec<AuditEvent>) -> StoreResult<()>;
    /// Events at or after `since`, about `user` if given, newest first, at
    /// most `limit`.
    async fn audit_events(
        &self,
        since: Option<Timestamp>,
        user: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// Deletes events older than `before`,
    /// and then the oldest beyond `keep_at_most`; returns how many.
    async fn purge_audit(&self, before: Timestamp, keep_at_most: usize) -> StoreResult<usize>;
}

#[async_trait]
pub trait UserStore {
    /// Creates an account; a taken email or username (ignoring case) is
    /// `StoreError::Conflict`. With `redeem`, the invitation is checked
    /// first (so that someone without a valid one learns nothing about
    /// which names are taken) and one of its uses spent in the same
    /// transaction: concurrent signups can never overspend it. The
    /// invitation's role overrides `new.role`.
    async fn create_user(
        &self,
        new: NewUser,
        redeem: Option<Redemption>,
    ) -> StoreResult<Result<User, InviteProblem>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The account an ID names: by email when it has an `@`, else by
    /// username.
    async fn user_by_login_id(&self, id: &LoginId) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// How many accounts exist (without reading them).
    async fn user_count(&self) -> StoreResult<usize>;
    /// How many accounts' password hashes begin with each string of
    /// (at most) `len` characters, without keeping the accounts: what the
    /// hash census counts (`auth::password::Census`).
    async fn count_hash_prefixes(&self, len: usize) -> StoreResult<Vec<(String, usize)>>;
    /// The accounts still waiting for their address to be confirmed that
    /// were made at or before `cutoff`, oldest first, without reading the
    /// others (the expiry of unconfirmed sign-ups asks hourly).
    async fn unconfirmed_before(&self, cutoff: Timestamp) -> StoreResult<Vec<User>>;
    /// Replaces an account's password hash; false when there is no such
    /// account.
    async fn set_password_hash(&self, id: UserId, hash: String) -> StoreResult<bool>;
    async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<bool>;
    async fn set_role(&self, id: UserId, role: Role) -> StoreResult<bool>;
    /// Deletes an account with its sessions, tokens and lockout counters
    /// (its audit events stay). False when there is no such account.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    /// Records that the user accepted the current documents.
    async fn set_consent(&self, id: UserId, consent: Consent) -> StoreResult<bool>;
}

#[async_trait]
pub trait GroupStore {
    /// Creates a group; false when one of this name exists.
    async fn create_group(&self, group: Group) -> StoreResult<bool>;
    /// Every group with how many members it has, by name.
    async fn groups(&self) -> StoreResult<Vec<(Group, usize)>>;
    /// The members of a group (None: no such group).
    async fn group_members(&self, name: &GroupName) -> StoreResult<Option<Vec<UserId>>>;
    /// Deletes a group and every membership in it, in one transaction;
    /// None when there is no such group, else how many members it had.
    async fn delete_group(&self, name: &GroupName) -> StoreResult<Option<usize>>;
    async fn add_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership>;
    async fn remove_member(&self, group: &GroupName, user: UserId) -> StoreResult<Membership>;
}

#[async_trait]
pub trait InviteStore {
    async fn create_invite(&self, new: NewInvite) -> StoreResult<Invitation>;
    async fn invite_by_token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Invitation>>;
    async fn invites(&self) -> StoreResult<Vec<Invitation>>;
    /// Revokes one; false when there is no such invitation.
    async fn revoke_invite(&self, id: u64, at: Timestamp) -> StoreResult<bool>;
    /// When no admin account exists: revokes earlier unused first-run
    /// invitations and stores `new` (one transaction, one replica at a
    /// time). But when `keep_since` is given and a live, unused first-run
    /// invitation was made at or after it, that one stays and nothing is
    /// made (`FirstRun::Kept`): replicas starting together make one link.
    async fn replace_first_run_invite(
        &self,
        new: NewInvite,
        keep_since: Option<Timestamp>,
    ) -> StoreResult<FirstRun>;
}

#[async_trait]
pub trait LockoutStore {
    async fn lockout(&self, key: &str) -> StoreResult<LockoutState>;
    /// Counts one failed login in one transaction, so that concurrent
    /// failures are all counted: reads the counter, applies
    /// `policy.after_failure`, writes the result (deleting a counter back
    /// at its default), adds the try to the account's history when the ID
    /// names one, and records `failure.audit_events(outcome)`. The
    /// account's counter (`failure.account_key`), when given, is counted
    /// the same way in the same transaction.
    async fn record_failure(
        &self,
        policy: LockoutPolicy,
        failure: FailedLogin,
    ) -> StoreResult<FailureOutcome>;
    /// Sets these counters to `state` (an admin's lock).
    async fn set_lockouts(&self, keys: &[String], state: LockoutState) -> StoreResult<()>;
    /// Deletes the named counters; returns how many there were.
    async fn clear_lockouts(&self, keys: &[String]) -> StoreResult<usize>;
    /// Deletes every counter that `policy.is_idle` at `now`; returns how
    /// many.
    async fn purge_lockouts(&self, policy: LockoutPolicy, now: Timestamp) -> StoreResult<usize>;
}

#[async_trait]
pub trait SessionStore {
    async fn complete_login(&self, login: CompletedLogin) -> StoreResult<()>;
    async fn session(&self, key: &SessionKey) -> StoreResult<Option<Session>>;
    /// A session and its user, read in one transaction (the check every
    /// logged-in request makes).
    async fn session_with_user(&self, key: &SessionKey) -> StoreResult<Option<(Session, User)>>;
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool>;
    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<(SessionKey, Session)>>;
    /// How many sessions are stored.
    async fn session_count(&self) -> StoreResult<usize>;
    /// Ends every session of `user`; returns how many.
    async fn end_sessions(&self, user: UserId) -> StoreResult<usize>;
    /// The account's recent login tries, newest first (at most
    /// `domain::LOGIN_HISTORY`).
    async fn login_history(&self, user: UserId) -> StoreResult<Vec<LoginAttempt>>;
    /// A logged-in user's new password, in one transaction: the hash is
    /// set, every other session ends, the session in use (`keep`) goes on
    /// under a new key (`renewed`: a token seen before the change no longer
    /// works, ASVS 7.2.4), and `notice` is queued. Returns how many other
    /// sessions ended.
    async fn change_password(
        &self,
        user: UserId,
        new_hash: String,
        keep: SessionKey,
        renewed: SessionKey,
        notice: Mail,
        now: Timestamp,
    ) -> StoreResult<usize>;
    /// Writes a batch of last-seen times (sessions gone since are skipped).
    async fn touch_sessions(&self, seen: &[(SessionKey, Timestamp)]) -> StoreResult<()>;
    /// Deletes every session that `policy.is_expired` at `now` (by its
    /// stored last-seen time); returns how many.
    async fn purge_sessions(&self, policy: SessionPolicy, now: Timestamp) -> StoreResult<usize>;
}

#[async_trait]
pub trait MailStore {
    /// Stores a mail in the outbox; returns its number.
    async fn enqueue_mail(&self, mail: Mail, now: Timestamp) -> StoreResult<u64>;
    /// Stores a one-time token, replacing the user's earlier one of the same
    /// purpose, and the mail that carries it (if any: a link the CLI prints
    /// has none), in one transaction.
    async fn issue_token(
        &self,
        token_hash: [u8; 32],
        token: OneTimeToken,
        mail: Option<Mail>,
    ) -> StoreResult<()>;
    async fn token(&self, token_hash: &[u8; 32]) -> StoreResult<Option<OneTimeToken>>;
    /// Consumes a verification token: the account becomes active.
    async fn consume_verification(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Result<User, TokenProblem>>;
    /// Consumes a reset token and sets `new_hash`, in one transaction, as
    /// `User::after_reset` and `LockoutState::survives_reset` say: every
    /// session of the user ends, the failure locks of its names are
    /// lifted, and `notice` is queued.
    async fn consume_reset(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
        new_hash: String,
        notice: Mail,
    ) -> StoreResult<Result<User, TokenProblem>>;
    /// Deletes one-time tokens that expired before `now`; returns how many.
    async fn purge_tokens(&self, now: Timestamp) -> StoreResult<usize>;
    /// Mail whose next attempt is due at `now` and that no sender holds,
    /// oldest first, at most `limit`; each is now held until `hold_until`
    /// (one transaction), so that several replicas never send one mail
    /// twice, and a sender that dies leaves it to another after that.
    /// `mail_sent` and `mail_failed` end the hold.
    async fn due_mail(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxEntry>>;
    async fn mail_sent(&self, id: u64) -> StoreResult<()>;
    async fn mail_failed(
        &self,
        id: u64,
        attempts: u32,
        next: Option<Timestamp>,
        error: String,
    ) -> StoreResult<()>;
    /// Everything in the outbox (waiting or given up).
    async fn outbox(&self) -> StoreResult<Vec<OutboxEntry>>;
}

/// What spending a code or refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    /// It was live and unused: it is now spent and the new tokens stored.
    Spent(OidcToken),
    /// It had been used before: its whole family is revoked (returned:
    /// how many tokens ended).
    Reused(usize),
    /// No such token of that kind, or it expired.
    Unknown,
}

#[async_trait]
pub trait OidcStore {
    /// Registers an app; false when one of the same name (ignoring case)
    /// or id exists.
    async fn create_client(&self, client: OidcClient) -> StoreResult<bool>;
    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>>;
    /// Every app, by name.
    async fn clients(&self) -> StoreResult<Vec<OidcClient>>;
    /// Replaces a client's record (a new secret, a new name); false when
    /// there is no such client or another one has that name.
    async fn update_client(&self, client: OidcClient) -> StoreResult<bool>;
    /// Deletes an app with its grants and tokens (one transaction); false
    /// when there is no such client.
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Stores a key. With `only_if_none`, only when no key exists (replicas
    /// starting together make one); returns whether it was stored.
    async fn add_signing_key(&self, key: SigningKey, only_if_none: bool) -> StoreResult<bool>;
    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<usize>;

    async fn grant(&self, user: UserId, client: &str) -> StoreResult<Option<OidcGrant>>;
    async fn set_grant(&self, grant: OidcGrant) -> StoreResult<()>;
    /// A user's grants, by client id.
    async fn grants_of(&self, user: UserId) -> StoreResult<Vec<OidcGrant>>;
    /// Deletes the grant and every token of that user and app; false when
    /// there was neither.
    async fn revoke_grant(&self, user: UserId, client: &str) -> StoreResult<bool>;

    /// Stores codes or tokens under the hashes of their secrets.
    async fn put_tokens(&self, tokens: Vec<([u8; 32], OidcToken)>) -> StoreResult<()>;
    /// A live token of `kind` (spent ones too: the caller looks).
    async fn token_of(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
    ) -> StoreResult<Option<OidcToken>>;
    /// A live access token with its account and its app, read together
    /// (userinfo): None when any of them is missing.
    async fn access_of(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<(OidcToken, crate::domain::User, OidcClient)>>;
    /// Spends a live code or refresh token and stores `issue` in the same
    /// transaction; a second use revokes every token of its family.
    async fn spend_token(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
        issue: Vec<([u8; 32], OidcToken)>,
    ) -> StoreResult<Spend>;
    /// Deletes one token, and with a refresh token its whole family
    /// (RFC 7009 §2.1); only when it belongs to `client`. Returns how many
    /// ended.
    async fn revoke_token(&self, hash: &[u8; 32], client: &str) -> StoreResult<usize>;
    /// Deletes every code and token of `user` (also done inside the
    /// transactions that reset a password, disable, delete an account or
    /// end all its sessions).
    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<usize>;
    /// Deletes tokens expired before `now`; returns how many.
    async fn purge_tokens_oidc(&self, now: Timestamp) -> StoreResult<usize>;
}

/// An account's second factors (issue 15), apart from the account record.
#[async_trait]
pub trait SecondFactorStore {
    /// What the account has (nothing: the default).
    async fn second_factors(&self, user: UserId) -> StoreResult<SecondFactors>;
    /// Applies one change in one transaction (`SecondFactors::apply`);
    /// None when there is no such account.
    async fn change_second_factors(
        &self,
        user: UserId,
        change: FactorChange,
    ) -> StoreResult<Option<FactorOutcome>>;
    /// Keeps a half-login or a passkey challenge under `key` (replacing
    /// one there); nothing when its account is gone.
    async fn put_pending(&self, key: &SessionKey, pending: &Pending) -> StoreResult<()>;
    /// What is kept under `key`, live or not (`Pending::is_live`).
    async fn pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>>;
    /// Removes what is kept under `key` and returns it: of two requests
    /// racing, one gets it.
    async fn take_pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>>;
    /// Deletes what expired before `now`; returns how many.
    async fn purge_pending(&self, now: Timestamp) -> StoreResult<usize>;
}

/// Everything gatehouse keeps.
pub trait Store:
    UserStore
    + GroupStore
    + InviteStore
    + LockoutStore
    + SessionStore
    + MailStore
    + AuditStore
    + OidcStore
    + SecondFactorStore
    + Send
    + Sync
    + 'static
{
    /// The key of the password pre-hash (see `auth::password`), made when
    /// the database was created.
    fn password_key(&self) -> [u8; 32];
}

/// The store a process works on, with its file copy when it has one.
pub struct Opened {
    pub store: std::sync::Arc<dyn Store>,
    pub backup: Option<std::sync::Arc<dyn Backup>>,
}

/// Opens the PostgreSQL database when one is named, else the embedded
/// file in `data_dir` (made when missing).
pub async fn open(
    data_dir: &std::path::Path,
    database: Option<&postgres::Database>,
) -> anyhow::Result<Opened> {
    use std::sync::Arc;
    match database {
        Some(db) => Ok(Opened {
            store: Arc::new(postgres::PgStore::open(db).await?),
            backup: None,
        }),
        None => {
            let dir = data_dir.to_path_buf();
            let store = Arc::new(redb::blocking(move || redb::RedbStore::open(&dir))?);
            Ok(Opened {
                backup: Some(Arc::clone(&store) as Arc<dyn Backup>),
                store,
            })
        }
    }
}

/// What a backup copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct BackupStats {
    pub users: u64,
    pub sessions: u64,
    pub other: u64,
}

/// A consistent file copy of the whole database, for a backend that is a
/// file (redb). A PostgreSQL database is backed up with its own tools.
#[async_trait]
pub trait Backup: Send + Sync {
    /// Writes a consistent copy of everything to a new database file at
    /// `to`, from one read transaction (the server keeps serving).
    async fn backup(&self, to: &std::path::Path) -> StoreResult<BackupStats>;
}
