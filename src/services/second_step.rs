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
use crate::auth::passkeys::PasskeyError;
use crate::clock::Timestamp;
use crate::domain::lockout::{FailedLogin, Gate};
use crate::domain::pending::{
    PENDING_LIFETIME, PasskeyCeremony, Pending, PendingLogin, PendingStep, password_fingerprint,
};
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
    /// A passkey's answer (JSON), instead of a typed code.
    pub passkey: Option<String>,
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

/// A passkey's answer to a login without a password.
pub struct PasskeyLogin {
    /// The key of the browser's passkey cookie.
    pub ceremony: SessionKey,
    pub answer: String,
    pub ip: IpAddr,
    pub user_agent: String,
    pub replaces: Option<SessionKey>,
}

pub enum PasskeyOutcome {
    Success {
        token: SessionToken,
        device: Device,
        rd: Option<String>,
    },
    /// Not an account's passkey, or its account may not log in: said so.
    Refused(&'static str),
    /// No live challenge: try again.
    Expired,
    Locked {
        until: Timestamp,
        now: Timestamp,
    },
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
        let passkey_use = match (&req.passkey, pending.step, &pending.passkey_state) {
            (Some(answer), PendingStep::Verify, Some(state)) => {
                match self.passkeys.finish_authentication(answer, state) {
                    Ok(result) => Some(result),
                    Err(_) => return self.wrong(&req, pending, user, false).await,
                }
            }
            (Some(_), _, _) => return self.wrong(&req, pending, user, false).await,
            (None, _, _) => None,
        };
        let change = match (passkey_use, pending.step) {
            (Some(result), _) => FactorChange::UsePasskey {
                result: Box::new(result),
                now,
            },
            (None, step) => match step {
                PendingStep::Enrol => FactorChange::ConfirmTotp { typed, now },
                PendingStep::Verify if is_app_code(&typed) => {
                    FactorChange::AcceptTotp { typed, now }
                }
                PendingStep::Verify => FactorChange::UseRecovery { typed },
            },
        };
        let outcome = self.store.change_second_factors(user.id, change).await?;
        let (how, recovery_left) = match outcome {
            Some(FactorOutcome::Totp(TotpCheck::Accepted { .. })) => ("authenticator app", None),
            Some(FactorOutcome::Done) if req.passkey.is_some() => ("passkey", None),
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

    /// The challenge for a passkey at the second step (None: no live
    /// half-login, or the account has no passkey), kept with the
    /// half-login.
    pub async fn second_step_passkey(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<serde_json::Value>> {
        let Some((mut pending, user)) = self.half_login(key).await? else {
            return Ok(None);
        };
        if pending.step != PendingStep::Verify {
            return Ok(None);
        }
        let factors = self.store.second_factors(user.id).await?;
        let keys: Vec<_> = factors.passkeys.iter().map(|p| p.key.clone()).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let Ok(challenge) = self.passkeys.start_authentication(&keys) else {
            return Ok(None);
        };
        pending.passkey_state = Some(challenge.state);
        self.store
            .put_pending(key, &Pending::Login(pending))
            .await?;
        Ok(Some(challenge.options))
    }

    /// "Log in with a passkey": a challenge any passkey of this site may
    /// answer, kept under a new random key (the browser's cookie).
    pub async fn start_passkey_login(
        &self,
        rd: Option<String>,
        autofill: bool,
    ) -> StoreResult<Result<(SessionToken, serde_json::Value), PasskeyError>> {
        let challenge = match self.passkeys.start_discoverable(autofill) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let token = SessionToken::generate();
        let ceremony = Pending::Passkey(PasskeyCeremony {
            user: None,
            expires_at: self.clock.now().plus(PENDING_LIFETIME),
            state: challenge.state,
            rd,
        });
        self.store.put_pending(&token.key(), &ceremony).await?;
        Ok(Ok((token, challenge.options)))
    }

    /// A passkey's answer to `start_passkey_login`: the account its user
    /// handle names, if that passkey is one of the account's, logs in (the
    /// passkey verified its user: a second factor in itself).
    pub async fn passkey_login(&self, req: PasskeyLogin) -> StoreResult<PasskeyOutcome> {
        let now = self.clock.now();
        let ceremony = match self.store.take_pending(&req.ceremony).await? {
            Some(Pending::Passkey(c)) if c.user.is_none() && c.expires_at > now => c,
            _ => return Ok(PasskeyOutcome::Expired),
        };
        let unknown = PasskeyOutcome::Refused(
            "That passkey is not one of an account here (it may have been removed). Log in with your password.",
        );
        let Ok((answer, user_id, half)) = self.passkeys.identify(&req.answer) else {
            return Ok(unknown);
        };
        let Some(user) = self.store.user(user_id).await? else {
            return Ok(unknown);
        };
        let factors = self.store.second_factors(user.id).await?;
        if factors.webauthn_user != Some(half) {
            return Ok(unknown);
        }
        let Some(passkey) = factors.passkey(answer.get_credential_id()) else {
            return Ok(unknown);
        };
        let Ok(result) = self
            .passkeys
            .finish_discoverable(&answer, &ceremony.state, &passkey.key)
        else {
            return Ok(unknown);
        };
        // An admin's lock holds for every way in.
        let account = self
            .store
            .lockout(&crate::domain::lockout::account_lockout_key(user.id))
            .await?;
        if account.by_admin
            && let Gate::Locked { until } = self.lockout.gate(&account, now)
        {
            return Ok(PasskeyOutcome::Locked { until, now });
        }
        match user.status {
            UserStatus::Active => {}
            UserStatus::Disabled => {
                return Ok(PasskeyOutcome::Refused(
                    "This account is disabled. Contact your administrator.",
                ));
            }
            UserStatus::PendingVerification => return Ok(unknown),
        }
        self.store
            .change_second_factors(
                user.id,
                FactorChange::UsePasskey {
                    result: Box::new(result),
                    now,
                },
            )
            .await?;
        let done = Completion {
            // A passkey proves the owner, but it lifts no guesser's lock
            // of the password (as the owner's device cookie does not).
            reset_lockouts: Vec::new(),
            new_password_hash: None,
            ip: req.ip,
            user_agent: req.user_agent,
            replaces: req.replaces,
            how: Some("passkey, without a password"),
        };
        let token = self.complete(&user, done).await?;
        Ok(PasskeyOutcome::Success {
            device: Device::new(user.id),
            token,
            rd: ceremony.rd,
        })
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
