//! A login's second step (issue 15), after the right password made a
//! half-login (`services::login`):
//!
//! ```text
//! the half-login of the browser's cookie: live, its account active, its
//! password unchanged? ──no──> Expired (log in again)
//!   │ its counters locked meanwhile? ──yes──> Locked (the half-login ends)
//!   ├─ Verify: six digits ─> the app's code (each step once)
//!   │          else ─> a recovery code (each once; the owner is mailed)
//!   │    right ─> take the half-login (once) ─> the session (as a
//!   │             password-only login makes it)
//!   │    wrong ─> counted like a wrong password (lockout, device) and on
//!   │             the half-login (five: log in again) ─> Wrong | Locked
//!   └─ Enrol: a new app (made for this half-login), the first right code
//!             confirms it ─> ten recovery codes, shown once ─> the session
//! ```

use crate::auth::device::Device;
use crate::clock::Timestamp;
use crate::domain::lockout::{FailedLogin, Gate};
use crate::domain::pending::{Pending, PendingLogin, PendingStep, password_fingerprint};
use crate::domain::second_factor::{
    FactorChange, FactorOutcome, RecoveryUse, TotpCheck, TotpFactor, TotpSecret,
    generate_recovery_codes,
};
use crate::domain::session::{SessionKey, SessionToken};
use crate::domain::{AuditEvent, AuditKind, User, UserStatus};
use crate::mail::requests::{FactorNotice, MailRequest};
use crate::services::login::{Completion, Login};
use crate::store::StoreResult;
use std::net::IpAddr;

/// One try of a second step.
pub struct StepRequest {
    /// The key of the browser's half-login cookie.
    pub pending: SessionKey,
    pub typed: String,
    pub ip: IpAddr,
    pub user_agent: String,
    /// The session the browser holds now, which a success replaces.
    pub replaces: Option<SessionKey>,
}

pub enum StepOutcome {
    /// The session: `token` into the cookie, `device` into the device
    /// cookie, then on to `rd`.
    Success {
        token: SessionToken,
        device: Device,
        rd: Option<String>,
        /// A recovery code was used: how many are left.
        recovery_left: Option<usize>,
        /// An enrolment: the new recovery codes, shown once.
        recovery_codes: Vec<String>,
    },
    /// The code is wrong (or was used already): try again.
    Wrong { replayed: bool },
    /// No live half-login (expired, used up, or its account changed):
    /// log in again.
    Expired,
    /// The ID (or device) is locked now.
    Locked { until: Timestamp, now: Timestamp },
}

/// The app being enrolled during a half-login.
pub struct Enrolment {
    pub user: User,
    pub secret: TotpSecret,
}

impl Login<'_> {
    /// The browser's live half-login and its account, or None (expired,
    /// its account gone, not active or its password changed meanwhile).
    pub async fn half_login(&self, key: &SessionKey) -> StoreResult<Option<(PendingLogin, User)>> {
        let Some(Pending::Login(pending)) = self.store.pending(key).await? else {
            return Ok(None);
        };
        let user = self.store.user(pending.user).await?;
        match user {
            Some(user)
                if pending.is_live(self.clock.now())
                    && user.status == UserStatus::Active
                    && password_fingerprint(&user.password_hash)
                        == pending.password_fingerprint =>
            {
                Ok(Some((pending, user)))
            }
            _ => {
                self.store.take_pending(key).await?;
                Ok(None)
            }
        }
    }

    /// The app a half-login of the Enrol step sets up: made at its first
    /// view, the same one after (a pending app made before this login, by
    /// someone else perhaps, is replaced).
    pub async fn enrolment(&self, key: &SessionKey) -> StoreResult<Option<Enrolment>> {
        let Some((pending, user)) = self.half_login(key).await? else {
            return Ok(None);
        };
        if pending.step != PendingStep::Enrol {
            return Ok(None);
        }
        let factors = self.store.second_factors(user.id).await?;
        if let Some(t) = factors
            .totp
            .filter(|t| t.confirmed_at.is_none() && t.added_at >= pending.created_at)
        {
            return Ok(Some(Enrolment {
                user,
                secret: t.secret,
            }));
        }
        let secret = TotpSecret::generate();
        let factor = TotpFactor {
            secret: secret.clone(),
            added_at: self.clock.now(),
            confirmed_at: None,
            last_step: None,
        };
        match self
            .store
            .change_second_factors(user.id, FactorChange::AddTotp(factor))
            .await?
        {
            Some(FactorOutcome::Done) => Ok(Some(Enrolment { user, secret })),
            // Enrolled meanwhile (another browser): this login starts over.
            _ => {
                self.store.take_pending(key).await?;
                Ok(None)
            }
        }
    }

    /// A code typed at the second step (Verify or Enrol).
    pub async fn second_step(&self, req: StepRequest) -> StoreResult<StepOutcome> {
        let now = self.clock.now();
        let Some((mut pending, user)) = self.half_login(&req.pending).await? else {
            return Ok(StepOutcome::Expired);
        };
        // Failures elsewhere (or at this step) may have locked its
        // counters meanwhile: a locked ID is refused, as at the password.
        let keys = [
            Some(&pending.counter.key),
            pending.counter.account_key.as_ref(),
        ];
        for key in keys.into_iter().flatten() {
            if let Gate::Locked { until } = self.gate(key, now).await? {
                self.store.take_pending(&req.pending).await?;
                return Ok(StepOutcome::Locked { until, now });
            }
        }
        let typed: String = req.typed.chars().filter(|c| !c.is_whitespace()).collect();
        let change = match pending.step {
            PendingStep::Enrol => FactorChange::ConfirmTotp { typed, now },
            PendingStep::Verify if is_app_code(&typed) => FactorChange::AcceptTotp { typed, now },
            PendingStep::Verify => FactorChange::UseRecovery { typed },
        };
        let outcome = self.store.change_second_factors(user.id, change).await?;
        let (how, recovery_left) = match outcome {
            Some(FactorOutcome::Totp(TotpCheck::Accepted { .. })) => ("authenticator app", None),
            Some(FactorOutcome::Recovery(RecoveryUse::Used { remaining })) => {
                ("recovery code", Some(remaining))
            }
            Some(FactorOutcome::Totp(TotpCheck::Replayed)) => {
                return self.wrong(&req, pending, user, true).await;
            }
            _ => return self.wrong(&req, pending, user, false).await,
        };
        // Of two requests racing with right codes, one gets the session.
        if self.store.take_pending(&req.pending).await?.is_none() {
            return Ok(StepOutcome::Expired);
        }
        let mut recovery_codes = Vec::new();
        if pending.step == PendingStep::Enrol {
            let (shown, hashes) = generate_recovery_codes();
            self.store
                .change_second_factors(user.id, FactorChange::SetRecovery { hashes, now })
                .await?;
            recovery_codes = shown;
            self.factor_event(&user, "authenticator app added at login", req.ip)
                .await;
            self.mail.submit(MailRequest::FactorNotice {
                user: user.id,
                notice: FactorNotice::Added {
                    what: "An authenticator app",
                },
            });
        }
        if let Some(remaining) = recovery_left {
            self.factor_event(
                &user,
                &format!("recovery code used at login, {remaining} left"),
                req.ip,
            )
            .await;
            self.mail.submit(MailRequest::FactorNotice {
                user: user.id,
                notice: FactorNotice::RecoveryCodeUsed {
                    remaining,
                    ip: req.ip.to_string(),
                },
            });
        }
        let done = Completion {
            reset_lockouts: std::mem::take(&mut pending.reset_lockouts),
            new_password_hash: pending.new_password_hash.take(),
            ip: req.ip,
            user_agent: req.user_agent,
            replaces: req.replaces,
            how: Some(how),
        };
        let token = self.complete(&user, done).await?;
        Ok(StepOutcome::Success {
            device: Device::new(user.id),
            token,
            rd: pending.rd,
            recovery_left,
            recovery_codes,
        })
    }

    /// A wrong code: counted like a wrong password (a code of the app is
    /// a secret to guess as a password is), and on the half-login.
    async fn wrong(
        &self,
        req: &StepRequest,
        mut pending: PendingLogin,
        user: User,
        replayed: bool,
    ) -> StoreResult<StepOutcome> {
        let now = self.clock.now();
        // At enrolment the code checks that the app was set up right: the
        // secret was just shown, so there is nothing to guess.
        if pending.step == PendingStep::Verify {
            let failure = FailedLogin {
                key: pending.counter.key.clone(),
                account_key: pending.counter.account_key.clone(),
                typed: pending.counter.typed.clone(),
                user: Some(user.id),
                ip: req.ip.to_string(),
                at: now,
            };
            if let Some(until) = self.count_failure(failure, req.ip).await? {
                self.store.take_pending(&req.pending).await?;
                return Ok(StepOutcome::Locked { until, now });
            }
        }
        if pending.count_try() {
            self.store
                .put_pending(&req.pending, &Pending::Login(pending))
                .await?;
            Ok(StepOutcome::Wrong { replayed })
        } else {
            self.store.take_pending(&req.pending).await?;
            Ok(StepOutcome::Expired)
        }
    }

    async fn factor_event(&self, user: &User, detail: &str, ip: IpAddr) {
        let event = AuditEvent::new(self.clock.now(), AuditKind::SecondFactor, "self")
            .user(user.id)
            .ip(ip)
            .detail(detail);
        crate::services::record(self.store, event).await;
    }

    /// Ends the browser's half-login ("Cancel" on the second step).
    pub async fn cancel_half_login(&self, key: &SessionKey) -> StoreResult<()> {
        self.store.take_pending(key).await?;
        Ok(())
    }
}

/// Six digits (spaces already out): a code of the app; anything else is
/// taken as a recovery code.
fn is_app_code(typed: &str) -> bool {
    typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit())
}
