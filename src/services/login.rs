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
    /// `--max-sessions-per-user`: a new login beyond it ends the oldest.
    pub session_cap: usize,
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
                session_cap: self.session_cap,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lockout::LockoutState;
    use crate::services::testkit::{Kit, PASSWORD};

    fn login(kit: &Kit) -> Login<'_> {
        Login {
            store: kit.store.as_ref(),
            passwords: &kit.passwords,
            lockout: kit.lockout,
            clock: &kit.clock,
            sessions: &kit.sessions,
            mail: &kit.mail,
            metrics: &kit.metrics,
            session_cap: 10,
        }
    }

    fn request(id: &str, password: &str) -> LoginRequest {
        LoginRequest {
            id: LoginId::parse(id).unwrap(),
            password: Password::parse(password.into()).unwrap(),
            ip: "192.0.2.7".parse().unwrap(),
            user_agent: "test".into(),
            replaces: None,
        }
    }

    #[tokio::test]
    async fn the_right_password_makes_a_session_and_clears_the_failures() {
        let kit = Kit::new();
        let ann = kit.user("ann@example.com", "ann", UserStatus::Active).await;
        let wrong = login(&kit)
            .login(request("ann", "Wrong-horse!1"))
            .await
            .unwrap();
        assert!(matches!(wrong, Outcome::Incorrect));
        let Outcome::Success { user, token } = login(&kit)
            .login(request("ANN@example.com", PASSWORD))
            .await
            .unwrap()
        else {
            panic!("the right password logs in");
        };
        assert_eq!(user.id, ann.id);
        let (session, _) = kit
            .store
            .session_with_user(&token.key())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.ip, "192.0.2.7");
        let key = LoginId::parse("ann").unwrap().lockout_key();
        assert_eq!(
            kit.store.lockout(&key).await.unwrap(),
            LockoutState::default()
        );
    }

    #[tokio::test]
    async fn an_unknown_id_gets_the_answer_of_a_wrong_password() {
        let kit = Kit::new();
        kit.user("bob@example.com", "bob", UserStatus::Active).await;
        let unknown = login(&kit)
            .login(request("nobody", PASSWORD))
            .await
            .unwrap();
        let wrong = login(&kit)
            .login(request("bob", "Wrong-horse!1"))
            .await
            .unwrap();
        assert!(matches!(unknown, Outcome::Incorrect));
        assert!(matches!(wrong, Outcome::Incorrect));
    }

    #[tokio::test]
    async fn the_eleventh_failure_locks_and_tells_a_real_owner_once() {
        let mut kit = Kit::new();
        let cy = kit.user("cy@example.com", "cyd", UserStatus::Active).await;
        for _ in 0..10 {
            let o = login(&kit)
                .login(request("cyd", "Wrong-horse!1"))
                .await
                .unwrap();
            assert!(matches!(o, Outcome::Incorrect));
        }
        let o = login(&kit)
            .login(request("cyd", "Wrong-horse!1"))
            .await
            .unwrap();
        let Outcome::Locked { until, now } = o else {
            panic!("the eleventh failure locks");
        };
        assert_eq!(now.until(until), kit.lockout.duration);
        match kit.queue.try_next() {
            Some(MailRequest::LockNotice { user, .. }) => assert_eq!(user, cy.id),
            _ => panic!("the owner is told"),
        }
        // Locked: refused before hashing, even with the right password,
        // and nobody is told again.
        let o = login(&kit).login(request("cyd", PASSWORD)).await.unwrap();
        assert!(matches!(o, Outcome::Locked { .. }));
        assert!(kit.queue.try_next().is_none());
        // An unknown ID locks the same way, and nobody is mailed.
        for _ in 0..11 {
            login(&kit).login(request("ghost", PASSWORD)).await.unwrap();
        }
        assert!(kit.queue.try_next().is_none());
    }

    #[tokio::test]
    async fn unverified_and_disabled_are_said_only_to_the_right_password() {
        let kit = Kit::new();
        kit.user("dee@example.com", "dee", UserStatus::PendingVerification)
            .await;
        kit.user("eve@example.com", "eve", UserStatus::Disabled)
            .await;
        let o = login(&kit).login(request("dee", PASSWORD)).await.unwrap();
        assert!(matches!(o, Outcome::Unverified { email } if email.as_str() == "dee@example.com"));
        let o = login(&kit).login(request("eve", PASSWORD)).await.unwrap();
        assert!(matches!(o, Outcome::Disabled));
        for id in ["dee", "eve"] {
            let o = login(&kit)
                .login(request(id, "Wrong-horse!1"))
                .await
                .unwrap();
            assert!(matches!(o, Outcome::Incorrect), "{id}");
        }
    }
}
