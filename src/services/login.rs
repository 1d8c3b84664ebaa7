//! Logging in (SPEC §4, the seed's rule):
//!
//! ```text
//! the ID's lock? ──locked──> Locked (refused before any hashing)
//!      │ open
//! look-up ─> one bcrypt on the pool (against a throw-away hash of the
//!      │     same cost for an unknown ID) ──queue full──> Busy
//!      ├─ wrong, or unknown ID ─> count the failure (same one write for
//!      │                          both) ─> Incorrect | Locked (newly: a
//!      │                          lock notice to a real owner)
//!      └─ right ─> locked meanwhile? ─> Locked
//!                  not active? ─> Unverified | Disabled (said only to
//!                                 someone who knew the password)
//!                  ─> re-hash an old scheme or cost, new session, reset
//!                     the counters, one transaction ─> Success
//! ```

use crate::auth::password::Passwords;
use crate::auth::session::SessionCache;
use crate::clock::{Clock, Timestamp};
use crate::domain::lockout::{AfterFailure, FailedLogin, Gate, LockoutPolicy};
use crate::domain::session::{Session, SessionKey, SessionToken};
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, LoginId, LoginRecord, Password, User, UserStatus,
    lockout_keys_of,
};
use crate::mail::requests::{MailRequest, MailRequests};
use crate::metrics::{LoginOutcome, Metrics};
use crate::store::{CompletedLogin, Store, StoreResult};
use std::net::IpAddr;

/// What a login needs.
pub struct Login<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a Passwords,
    pub lockout: LockoutPolicy,
    pub clock: &'a Clock,
    pub sessions: &'a SessionCache,
    pub mail: &'a MailRequests,
    pub metrics: &'a Metrics,
}

/// One try, parsed.
pub struct LoginRequest {
    pub id: LoginId,
    pub password: Password,
    pub ip: IpAddr,
    pub user_agent: String,
    /// The session the browser holds now, which a success replaces.
    pub replaces: Option<SessionKey>,
}

/// How the try ended.
pub enum Outcome {
    /// A new session; `token` goes into the cookie.
    Success {
        user: Box<User>,
        token: SessionToken,
    },
    /// Wrong password or unknown ID: the same answer for both.
    Incorrect,
    /// The ID is locked until `until` (by this failure, or before it).
    Locked { until: Timestamp, now: Timestamp },
    /// The right password, but the address is not confirmed yet.
    Unverified { email: EmailAddress },
    /// The right password, but the account is disabled.
    Disabled,
    /// The hashing queue is full: try again shortly.
    Busy,
}

impl Login<'_> {
    pub async fn login(&self, req: LoginRequest) -> StoreResult<Outcome> {
        let key = req.id.lockout_key();
        let now = self.clock.now();
        if let Gate::Locked { until } = self.lockout.gate(&self.store.lockout(&key).await?, now) {
            self.refused_by_lock(&req, now).await?;
            return Ok(Outcome::Locked { until, now });
        }
        let user = self.store.user_by_login_id(&req.id).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let Ok(matches) = self.passwords.verify(&req.password, stored).await else {
            self.metrics.login(LoginOutcome::Busy);
            return Ok(Outcome::Busy);
        };
        match user {
            Some(user) if matches => self.succeed(req, user, key, now).await,
            user => self.fail(req, user.map(|u| u.id), key, now).await,
        }
    }

    async fn succeed(
        &self,
        req: LoginRequest,
        user: User,
        key: String,
        now: Timestamp,
    ) -> StoreResult<Outcome> {
        // Failures hashed alongside this try may have set the lock
        // meanwhile: a locked ID is refused even with the right password.
        if let Gate::Locked { until } = self.lockout.gate(&self.store.lockout(&key).await?, now) {
            self.refused_by_lock(&req, now).await?;
            return Ok(Outcome::Locked { until, now });
        }
        match user.status {
            UserStatus::Active => {}
            UserStatus::PendingVerification => {
                return Ok(Outcome::Unverified { email: user.email });
            }
            UserStatus::Disabled => return Ok(Outcome::Disabled),
        }
        let Ok(new_password_hash) = self
            .passwords
            .upgrade(&req.password, &user.password_hash)
            .await
        else {
            return Ok(Outcome::Busy);
        };
        let token = SessionToken::generate();
        let mut reset_lockouts = lockout_keys_of(&user);
        if !reset_lockouts.contains(&key) {
            reset_lockouts.push(key);
        }
        let ip = req.ip.to_string();
        let replaces = req.replaces;
        self.store
            .complete_login(CompletedLogin {
                user: user.id,
                key: token.key(),
                session: Session {
                    user: user.id,
                    created_at: now,
                    last_seen: now,
                    ip: ip.clone(),
                    user_agent: req.user_agent,
                },
                replaces: req.replaces,
                reset_lockouts,
                login: LoginRecord { at: now, ip },
                new_password_hash,
                audit: AuditEvent::new(now, AuditKind::LoginOk, "self")
                    .user(user.id)
                    .ip(req.ip),
            })
            .await?;
        if let Some(old) = replaces {
            self.sessions.forget(&old);
        }
        tracing::info!(user = %user.id, ip = %req.ip, "login succeeded");
        self.metrics.login(LoginOutcome::Ok);
        Ok(Outcome::Success {
            user: Box::new(user),
            token,
        })
    }

    async fn fail(
        &self,
        req: LoginRequest,
        known: Option<crate::domain::UserId>,
        key: String,
        now: Timestamp,
    ) -> StoreResult<Outcome> {
        // A known account keeps the failure in its history, in the same
        // transaction: an unknown ID costs the same one write.
        let failure = FailedLogin {
            key,
            typed: req.id.to_string(),
            user: known,
            ip: req.ip.to_string(),
            at: now,
        };
        let outcome = self.store.record_failure(self.lockout, failure).await?;
        tracing::info!(ip = %req.ip, "login failed");
        self.metrics.login(LoginOutcome::Failed);
        match outcome {
            AfterFailure::NowLocked { until } => {
                self.metrics.lock_set();
                // The admin needs the ID to lift the lock (`user unlock`).
                tracing::warn!(id = %req.id, ip = %req.ip, until = %until, "an ID was locked after repeated failed logins");
                // The owner of a real account is told, once (off the
                // request path: an unknown ID answers in the same time).
                if let Some(user) = known {
                    self.mail.submit(MailRequest::LockNotice {
                        user,
                        ip: req.ip.to_string(),
                        until,
                    });
                }
                Ok(Outcome::Locked { until, now })
            }
            AfterFailure::StillLocked { until } => Ok(Outcome::Locked { until, now }),
            AfterFailure::Counted { .. } => Ok(Outcome::Incorrect),
        }
    }

    /// Records a try refused by a lock (the ID is named: it is locked, so
    /// the admin may need it; the account too when there is one).
    async fn refused_by_lock(&self, req: &LoginRequest, now: Timestamp) -> StoreResult<()> {
        let user = self.store.user_by_login_id(&req.id).await?.map(|u| u.id);
        self.metrics.login(LoginOutcome::RefusedLocked);
        let event = AuditEvent::new(now, AuditKind::LoginRefusedLocked, "anonymous")
            .maybe_user(user)
            .subject(req.id.to_string())
            .ip(req.ip);
        self.store.audit(vec![event]).await
    }
}
