//! Logging in (SPEC §4, the seed's rule, and issue 11's defences):
//!
//! ```text
//! look-up of the ID
//!   │ a device cookie of this account, its counter open?
//!   ├─yes─> one bcrypt ─> right: Success | wrong: count on the device
//!   │       only (too many: the device is locked, an ordinary browser
//!   │       again)
//!   └─no──> the typed ID's lock? ──locked──> Locked (before any hashing)
//!             │ open
//!           the account's lock (any of its names)?
//!             ├─locked─> a throw-away bcrypt, count on the typed ID only,
//!             │          answer Incorrect (to a stranger the same as a
//!             │          wrong password: nothing tells that two names
//!             │          are one account)
//!             └─open──> one bcrypt on the pool (against a throw-away
//!                       hash for an unknown ID) ──queue full──> Busy
//!                       ├─ wrong or unknown ─> count on the typed ID and
//!                       │  the account, one write ─> Incorrect | Locked
//!                       │  (the account newly locked: one lock notice)
//!                       └─ right ─> locked meanwhile? ─> Locked
//!                                   not active? ─> Unverified | Disabled
//!                                   ─> re-hash ─> a second factor, or
//!                                      one required (`--require-2fa`)?
//!                                      ├─yes─> a half-login, kept by the
//!                                      │  server ─> SecondStep (the
//!                                      │  session comes after the code:
//!                                      │  `services::second_step`)
//!                                      └─no──> new session, reset the
//!                                         counters, one transaction ─>
//!                                         Success, with a new device cookie
//! ```

use crate::auth::device::Device;
use crate::auth::password::Passwords;
use crate::auth::session::SessionCache;
use crate::clock::{Clock, Timestamp};
use crate::config::TwoFactorPolicy;
use crate::domain::lockout::{AfterFailure, FailedLogin, Gate, LockoutPolicy, account_lockout_key};
use crate::domain::pending::{
    PENDING_LIFETIME, Pending, PendingCounter, PendingLogin, PendingStep, password_fingerprint,
};
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
    /// `--require-2fa`: who enrols before a session.
    pub two_factor: &'a TwoFactorPolicy,
    pub passkeys: &'a crate::auth::passkeys::Passkeys,
}

/// One try, parsed.
pub struct LoginRequest {
    pub id: LoginId,
    pub password: Password,
    pub ip: IpAddr,
    pub user_agent: String,
    /// The session the browser holds now, which a success replaces.
    pub replaces: Option<SessionKey>,
    /// The browser's device cookie, if it holds a valid one (of any
    /// account: it counts only for the account it names).
    pub device: Option<Device>,
    /// Where the browser goes after (checked by `return_to`): kept with a
    /// half-login.
    pub rd: Option<String>,
}

/// How the try ended.
pub enum Outcome {
    /// A new session; `token` goes into the cookie, `device` into the
    /// device cookie.
    Success {
        user: Box<User>,
        token: SessionToken,
        device: Device,
    },
    /// The right password; the session comes after the second step
    /// (`token` goes into the half-login cookie).
    SecondStep {
        token: SessionToken,
        step: PendingStep,
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

/// What a login whose every step is done needs (`Login::complete`).
pub(crate) struct Completion {
    pub reset_lockouts: Vec<String>,
    pub new_password_hash: Option<String>,
    pub ip: IpAddr,
    pub user_agent: String,
    pub replaces: Option<SessionKey>,
    /// The second step it took, for the audit (`None`: the password alone).
    pub how: Option<&'static str>,
}

/// Which counter a try is judged by, and its failure counted on.
enum Counter {
    /// A device cookie of the account: its own counter only.
    Device(String),
    /// The typed ID, and the account it names (if any).
    Id {
        key: String,
        account: Option<String>,
    },
    /// The account is locked under another name: the typed ID counts, the
    /// password is not checked.
    Silent { key: String },
}

impl Login<'_> {
    pub async fn login(&self, req: LoginRequest) -> StoreResult<Outcome> {
        let key = req.id.lockout_key();
        let now = self.clock.now();
        let user = self.store.user_by_login_id(&req.id).await?;
        let counter = match self.trusted_device(&req, user.as_ref(), now).await? {
            Some(device) => Counter::Device(device),
            None => {
                if let Gate::Locked { until } = self.gate(&key, now).await? {
                    self.refused_by_lock(&req, user.as_ref(), now).await?;
                    return Ok(Outcome::Locked { until, now });
                }
                match &user {
                    Some(u) if self.gate(&account_lockout_key(u.id), now).await? != Gate::Open => {
                        Counter::Silent { key }
                    }
                    Some(u) => Counter::Id {
                        key,
                        account: Some(account_lockout_key(u.id)),
                    },
                    None => Counter::Id { key, account: None },
                }
            }
        };
        // Silent: a throw-away hash, so that the answer takes as long.
        let stored = match counter {
            Counter::Silent { .. } => None,
            _ => user.as_ref().map(|u| u.password_hash.clone()),
        };
        let Ok(matches) = self.passwords.verify(&req.password, stored).await else {
            self.metrics.login(LoginOutcome::Busy);
            return Ok(Outcome::Busy);
        };
        match user {
            Some(user) if matches => self.succeed(req, user, counter, now).await,
            user => self.fail(req, user.map(|u| u.id), counter, now).await,
        }
    }

    /// The counter of the browser's device cookie, when it names this
    /// account and is not locked itself.
    async fn trusted_device(
        &self,
        req: &LoginRequest,
        user: Option<&User>,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let (Some(user), Some(device)) = (user, &req.device) else {
            return Ok(None);
        };
        if device.user != user.id {
            return Ok(None);
        }
        // An admin's lock (`gatehouse user lock`) holds for every browser.
        let account = self.store.lockout(&account_lockout_key(user.id)).await?;
        if account.by_admin && self.lockout.gate(&account, now) != Gate::Open {
            return Ok(None);
        }
        let key = device.lockout_key();
        Ok((self.gate(&key, now).await? == Gate::Open).then_some(key))
    }

    pub(crate) async fn gate(&self, key: &str, now: Timestamp) -> StoreResult<Gate> {
        Ok(self.lockout.gate(&self.store.lockout(key).await?, now))
    }

    async fn succeed(
        &self,
        req: LoginRequest,
        user: User,
        counter: Counter,
        now: Timestamp,
    ) -> StoreResult<Outcome> {
        let pending_counter = PendingCounter {
            key: match &counter {
                Counter::Device(k) | Counter::Id { key: k, .. } | Counter::Silent { key: k } => {
                    k.clone()
                }
            },
            account_key: match &counter {
                Counter::Id { account, .. } => account.clone(),
                _ => None,
            },
            typed: req.id.to_string(),
        };
        let reset_lockouts = match counter {
            // The owner's device: its own counter only. A guesser's lock
            // on the names stays, or each of the owner's logins would give
            // the guesser a fresh budget.
            Counter::Device(key) => vec![key],
            Counter::Id { key, .. } | Counter::Silent { key } => {
                // Failures hashed alongside this try may have set a lock
                // meanwhile: a locked ID is refused even with the right
                // password.
                for k in [key.as_str(), &account_lockout_key(user.id)] {
                    if let Gate::Locked { until } = self.gate(k, now).await? {
                        self.refused_by_lock(&req, Some(&user), now).await?;
                        return Ok(Outcome::Locked { until, now });
                    }
                }
                let mut keys = lockout_keys_of(&user);
                if !keys.contains(&key) {
                    keys.push(key);
                }
                keys
            }
        };
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
        let step = if self.store.second_factors(user.id).await?.is_enrolled() {
            Some(PendingStep::Verify)
        } else if self.two_factor.requires(&user) {
            Some(PendingStep::Enrol)
        } else {
            None
        };
        if let Some(step) = step {
            let token = SessionToken::generate();
            let pending = PendingLogin {
                user: user.id,
                step,
                created_at: now,
                expires_at: now.plus(PENDING_LIFETIME),
                password_fingerprint: password_fingerprint(&user.password_hash),
                counter: pending_counter,
                reset_lockouts,
                new_password_hash,
                rd: req.rd,
                tries: 0,
                passkey_state: None,
            };
            self.store
                .put_pending(&token.key(), &Pending::Login(pending))
                .await?;
            tracing::info!(user = %user.id, ip = %req.ip, "password right; a second step is asked");
            return Ok(Outcome::SecondStep { token, step });
        }
        let done = Completion {
            reset_lockouts,
            new_password_hash,
            ip: req.ip,
            user_agent: req.user_agent,
            replaces: req.replaces,
            how: None,
        };
        let token = self.complete(&user, done).await?;
        Ok(Outcome::Success {
            device: Device::new(user.id),
            user: Box::new(user),
            token,
        })
    }

    /// The session of a login whose every step is done, with its counters
    /// reset, in one transaction.
    pub(crate) async fn complete(
        &self,
        user: &User,
        done: Completion,
    ) -> StoreResult<SessionToken> {
        let now = self.clock.now();
        let token = SessionToken::generate();
        let ip = done.ip.to_string();
        let mut audit = AuditEvent::new(now, AuditKind::LoginOk, "self")
            .user(user.id)
            .ip(done.ip);
        audit.detail = done.how.map(String::from);
        self.store
            .complete_login(CompletedLogin {
                user: user.id,
                key: token.key(),
                session: Session {
                    user: user.id,
                    created_at: now,
                    last_seen: now,
                    ip: ip.clone(),
                    user_agent: done.user_agent,
                },
                replaces: done.replaces,
                session_cap: self.session_cap,
                reset_lockouts: done.reset_lockouts,
                login: LoginRecord { at: now, ip },
                new_password_hash: done.new_password_hash,
                audit,
            })
            .await?;
        if let Some(old) = done.replaces {
            self.sessions.forget(&old);
        }
        tracing::info!(user = %user.id, ip = %done.ip, "login succeeded");
        self.metrics.login(LoginOutcome::Ok);
        Ok(token)
    }

    async fn fail(
        &self,
        req: LoginRequest,
        known: Option<crate::domain::UserId>,
        counter: Counter,
        now: Timestamp,
    ) -> StoreResult<Outcome> {
        let (key, account_key) = match counter {
            Counter::Device(key) | Counter::Silent { key } => (key, None),
            Counter::Id { key, account } => (key, account),
        };
        // A known account keeps the failure in its history, in the same
        // transaction: an unknown ID costs the same one write.
        let failure = FailedLogin {
            key,
            account_key,
            typed: req.id.to_string(),
            user: known,
            ip: req.ip.to_string(),
            at: now,
        };
        Ok(match self.count_failure(failure, req.ip).await? {
            Some(until) => Outcome::Locked { until, now },
            None => Outcome::Incorrect,
        })
    }

    /// Counts a failed try (a wrong password or a wrong code) on its
    /// counters, in one write; tells a real owner of a newly locked
    /// account. `Some(until)`: the ID (or device) is locked now.
    pub(crate) async fn count_failure(
        &self,
        failure: FailedLogin,
        ip: IpAddr,
    ) -> StoreResult<Option<Timestamp>> {
        let (typed, known) = (failure.typed.clone(), failure.user);
        let outcome = self.store.record_failure(self.lockout, failure).await?;
        tracing::info!(ip = %ip, "login failed");
        self.metrics.login(LoginOutcome::Failed);
        if let AfterFailure::NowLocked { until } = outcome.id {
            self.metrics.lock_set();
            // The admin needs the ID to lift the lock (`user unlock`).
            tracing::warn!(id = %typed, ip = %ip, until = %until, "an ID was locked after repeated failed logins");
        }
        // The owner of a real account is told once per lock of the
        // account, whatever name is guessed at (off the request path: an
        // unknown ID answers in the same time).
        if let (Some(AfterFailure::NowLocked { until }), Some(user)) = (outcome.account, known) {
            self.mail.submit(MailRequest::LockNotice {
                user,
                ip: ip.to_string(),
                until,
            });
        }
        Ok(match outcome.id {
            AfterFailure::NowLocked { until } | AfterFailure::StillLocked { until } => Some(until),
            AfterFailure::Counted { .. } => None,
        })
    }

    /// Records a try refused by a lock (the ID is named: it is locked, so
    /// the admin may need it; the account too when there is one).
    async fn refused_by_lock(
        &self,
        req: &LoginRequest,
        user: Option<&User>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let user = user.map(|u| u.id);
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
            two_factor: &kit.two_factor,
            passkeys: &kit.passkeys,
        }
    }

    fn request(id: &str, password: &str) -> LoginRequest {
        LoginRequest {
            id: LoginId::parse(id).unwrap(),
            password: Password::parse(password.into()).unwrap(),
            ip: "192.0.2.7".parse().unwrap(),
            user_agent: "test".into(),
            replaces: None,
            device: None,
            rd: None,
        }
    }

    fn from_device(id: &str, password: &str, device: &Device) -> LoginRequest {
        LoginRequest {
            device: Some(device.clone()),
            ..request(id, password)
        }
    }

    async fn fail_times(kit: &Kit, id: &str, n: usize) -> Outcome {
        let mut last = Outcome::Incorrect;
        for _ in 0..n {
            last = login(kit)
                .login(request(id, "Wrong-horse!1"))
                .await
                .unwrap();
        }
        last
    }

    #[tokio::test]
    async fn the_owners_device_logs_in_while_strangers_are_locked_out() {
        let mut kit = Kit::new();
        kit.user("fay@example.com", "fay", UserStatus::Active).await;
        let Outcome::Success { device, .. } =
            login(&kit).login(request("fay", PASSWORD)).await.unwrap()
        else {
            panic!("logs in");
        };
        // A stranger locks both names of the account.
        assert!(matches!(
            fail_times(&kit, "fay", 11).await,
            Outcome::Locked { .. }
        ));
        assert!(matches!(
            kit.queue.try_next(),
            Some(MailRequest::LockNotice { .. })
        ));
        assert!(matches!(
            login(&kit).login(request("fay", PASSWORD)).await.unwrap(),
            Outcome::Locked { .. }
        ));
        // The owner's usual browser still gets in, by either name.
        let o = login(&kit)
            .login(from_device("fay@example.com", PASSWORD, &device))
            .await
            .unwrap();
        assert!(
            matches!(o, Outcome::Success { .. }),
            "the device is trusted"
        );
        // A device of another account counts for nothing here.
        kit.user("gil@example.com", "gil", UserStatus::Active).await;
        let other = Device::new(crate::domain::UserId(9999));
        fail_times(&kit, "gil", 11).await;
        assert!(matches!(
            login(&kit)
                .login(from_device("gil", PASSWORD, &other))
                .await
                .unwrap(),
            Outcome::Locked { .. }
        ));
    }

    #[tokio::test]
    async fn a_device_that_fails_too_often_is_locked_itself() {
        let kit = Kit::new();
        kit.user("hal@example.com", "hal", UserStatus::Active).await;
        let device = Device::new(
            kit.store
                .user_by_login_id(&LoginId::parse("hal").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
        );
        for _ in 0..10 {
            let o = login(&kit)
                .login(from_device("hal", "Wrong-horse!1", &device))
                .await
                .unwrap();
            assert!(matches!(o, Outcome::Incorrect));
        }
        // Its failures counted on the device only: the ID is open.
        let key = LoginId::parse("hal").unwrap().lockout_key();
        assert_eq!(
            kit.store.lockout(&key).await.unwrap(),
            LockoutState::default()
        );
        let o = login(&kit)
            .login(from_device("hal", "Wrong-horse!1", &device))
            .await
            .unwrap();
        assert!(matches!(o, Outcome::Locked { .. }), "the device is locked");
        // Now it is an ordinary browser: judged by the ID, which is open.
        let o = login(&kit)
            .login(from_device("hal", PASSWORD, &device))
            .await
            .unwrap();
        assert!(matches!(o, Outcome::Success { .. }));
    }

    #[tokio::test]
    async fn guesses_are_counted_per_account_across_its_names_without_telling_so() {
        let mut kit = Kit::new();
        kit.user("ivy@example.com", "ivy", UserStatus::Active).await;
        // Six tries on each name: the account's counter passes ten.
        fail_times(&kit, "ivy", 6).await;
        let o = fail_times(&kit, "ivy@example.com", 5).await;
        assert!(matches!(o, Outcome::Incorrect), "no name is locked yet");
        assert!(
            matches!(kit.queue.try_next(), Some(MailRequest::LockNotice { .. })),
            "the owner is told"
        );
        // The account is locked: even the right password, by either name,
        // is answered as a wrong one (a stranger cannot tell the names are
        // one account), and no more guesses are checked.
        for id in ["ivy", "ivy@example.com"] {
            let o = login(&kit).login(request(id, PASSWORD)).await.unwrap();
            assert!(matches!(o, Outcome::Incorrect), "{id}");
        }
        assert!(kit.queue.try_next().is_none(), "told once per lock");
        // After the lock: in again.
        kit.clock.advance(kit.lockout.duration);
        let o = login(&kit).login(request("ivy", PASSWORD)).await.unwrap();
        assert!(matches!(o, Outcome::Success { .. }));
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
        let Outcome::Success { user, token, .. } = login(&kit)
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
