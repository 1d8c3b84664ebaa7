//! The Account page's second factors (issue 15): set up an authenticator
//! app (shown until its first right code, never after), new recovery
//! codes, remove the app; and the admin's reset for a lost device. What
//! takes the protection away (removing the app, new codes) asks for the
//! password again, under the same per-account limit as a password change.

use crate::clock::Timestamp;
use crate::domain::second_factor::{
    FactorChange, FactorOutcome, SecondFactors, TotpCheck, TotpFactor, TotpSecret,
    generate_recovery_codes,
};
use crate::domain::{AuditEvent, AuditKind, Password, User, UserId};
use crate::mail::messages;
use crate::mail::requests::FactorNotice;
use crate::services::account::Account;
use crate::store::{Store, StoreResult};
use std::net::IpAddr;
use std::time::Duration;

/// What the Account page shows.
pub struct FactorStatus {
    /// When the app was turned on.
    pub app_on: Option<Timestamp>,
    /// An app set up but not confirmed: its secret can still be shown.
    pub app_waiting: Option<TotpSecret>,
    pub recovery_left: usize,
    pub passkeys: usize,
}

impl From<SecondFactors> for FactorStatus {
    fn from(f: SecondFactors) -> Self {
        let (app_on, app_waiting) = match f.totp {
            Some(t) if t.confirmed_at.is_some() => (t.confirmed_at, None),
            Some(t) => (None, Some(t.secret)),
            None => (None, None),
        };
        Self {
            app_on,
            app_waiting,
            recovery_left: f.recovery.len(),
            passkeys: f.passkeys.len(),
        }
    }
}

/// Why a change was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum FactorProblem {
    /// The app is on already: remove it first.
    AlreadyOn,
    /// No app is waiting for its first code (set one up again).
    NothingWaiting,
    WrongCode,
    WrongPassword,
    TooManyTries {
        wait: Duration,
    },
    /// The hashing queue is full.
    Busy,
}

impl Account<'_> {
    pub async fn factors(&self, user: UserId) -> StoreResult<FactorStatus> {
        Ok(self.store.second_factors(user).await?.into())
    }

    /// A new app waiting for its first code (one waiting is replaced).
    pub async fn start_app(&self, me: &User) -> StoreResult<Result<TotpSecret, FactorProblem>> {
        let secret = TotpSecret::generate();
        let factor = TotpFactor {
            secret: secret.clone(),
            added_at: self.clock.now(),
            confirmed_at: None,
            last_step: None,
        };
        Ok(
            match self
                .store
                .change_second_factors(me.id, FactorChange::AddTotp(factor))
                .await?
            {
                Some(FactorOutcome::Done) => Ok(secret),
                _ => Err(FactorProblem::AlreadyOn),
            },
        )
    }

    /// The first right code turns the waiting app on; new recovery codes
    /// come with it (shown once: returned here).
    pub async fn confirm_app(
        &self,
        me: &User,
        typed: &str,
        ip: IpAddr,
    ) -> StoreResult<Result<Vec<String>, FactorProblem>> {
        let status = self.factors(me.id).await?;
        if status.app_waiting.is_none() {
            return Ok(Err(if status.app_on.is_some() {
                FactorProblem::AlreadyOn
            } else {
                FactorProblem::NothingWaiting
            }));
        }
        let now = self.clock.now();
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        let outcome = self
            .store
            .change_second_factors(me.id, FactorChange::ConfirmTotp { typed, now })
            .await?;
        if !matches!(
            outcome,
            Some(FactorOutcome::Totp(TotpCheck::Accepted { .. }))
        ) {
            return Ok(Err(FactorProblem::WrongCode));
        }
        // The first factor brings recovery codes; a later one keeps them.
        let mut shown = Vec::new();
        if self.store.second_factors(me.id).await?.recovery.is_empty() {
            let (codes, hashes) = generate_recovery_codes();
            self.store
                .change_second_factors(me.id, FactorChange::SetRecovery { hashes, now })
                .await?;
            shown = codes;
        }
        self.factor_event(me.id, "self", "authenticator app added", Some(ip))
            .await;
        self.tell(
            me,
            &FactorNotice::Added {
                what: "An authenticator app",
            },
        )
        .await?;
        Ok(Ok(shown))
    }

    /// New recovery codes (the old ones stop working), after the password.
    pub async fn new_recovery_codes(
        &self,
        me: &User,
        password: Option<Password>,
        ip: IpAddr,
    ) -> StoreResult<Result<Vec<String>, FactorProblem>> {
        if let Err(problem) = self.recheck_password(me, password).await {
            return Ok(Err(problem));
        }
        let (shown, hashes) = generate_recovery_codes();
        let now = self.clock.now();
        self.store
            .change_second_factors(me.id, FactorChange::SetRecovery { hashes, now })
            .await?;
        self.factor_event(me.id, "self", "new recovery codes", Some(ip))
            .await;
        Ok(Ok(shown))
    }

    /// Removes the app and the recovery codes, after the password: the
    /// password alone logs in again.
    pub async fn remove_app(
        &self,
        me: &User,
        password: Option<Password>,
        ip: IpAddr,
    ) -> StoreResult<Result<(), FactorProblem>> {
        if let Err(problem) = self.recheck_password(me, password).await {
            return Ok(Err(problem));
        }
        self.store
            .change_second_factors(me.id, FactorChange::RemoveTotp)
            .await?;
        self.factor_event(me.id, "self", "authenticator app removed", Some(ip))
            .await;
        self.tell(
            me,
            &FactorNotice::Removed {
                what: "The authenticator app",
            },
        )
        .await?;
        Ok(Ok(()))
    }

    async fn recheck_password(
        &self,
        me: &User,
        password: Option<Password>,
    ) -> Result<(), FactorProblem> {
        // A stolen session must not become a way to guess the password.
        if let Err(wait) = self.password_change_limiter.check(me.id) {
            return Err(FactorProblem::TooManyTries { wait });
        }
        let Some(password) = password else {
            return Err(FactorProblem::WrongPassword);
        };
        match self
            .passwords
            .verify(&password, Some(me.password_hash.clone()))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(FactorProblem::WrongPassword),
            Err(_) => Err(FactorProblem::Busy),
        }
    }

    async fn factor_event(&self, user: UserId, actor: &str, detail: &str, ip: Option<IpAddr>) {
        record_factor_event(self.store, self.clock.now(), user, actor, detail, ip).await;
    }

    async fn tell(&self, me: &User, notice: &FactorNotice) -> StoreResult<()> {
        tell_owner(self.store, self.links, me, notice, self.clock.now()).await?;
        self.outbox.wake();
        Ok(())
    }
}

pub(crate) async fn record_factor_event(
    store: &dyn Store,
    at: Timestamp,
    user: UserId,
    actor: &str,
    detail: &str,
    ip: Option<IpAddr>,
) {
    let mut event = AuditEvent::new(at, AuditKind::SecondFactor, actor)
        .user(user)
        .detail(detail);
    if let Some(ip) = ip {
        event = event.ip(ip);
    }
    crate::services::record(store, event).await;
}

/// Queues the owner's notice of a change to its factors.
pub(crate) async fn tell_owner(
    store: &dyn Store,
    links: &crate::services::Links,
    user: &User,
    notice: &FactorNotice,
    now: Timestamp,
) -> StoreResult<()> {
    let mail = messages::factor_notice(
        &user.email,
        user.username.as_str(),
        notice,
        &links.account(),
    );
    store.enqueue_mail(mail, now).await?;
    Ok(())
}

/// Where a passkey registration's challenge is kept: derived from the
/// session it belongs to (one at a time per session).
fn registration_key(
    session: &crate::domain::session::SessionKey,
) -> crate::domain::session::SessionKey {
    let mut input = b"passkey registration ".to_vec();
    input.extend_from_slice(&session.0);
    crate::domain::session::SessionKey(crate::crypto::sha256(&input))
}

/// A passkey as the Account page lists it.
pub struct PasskeyRow {
    pub id: u32,
    pub name: String,
    pub added_at: Timestamp,
    pub last_used: Option<Timestamp>,
}

impl Account<'_> {
    /// The account's passkeys, oldest first.
    pub async fn passkeys(&self, user: UserId) -> StoreResult<Vec<PasskeyRow>> {
        let factors = self.store.second_factors(user).await?;
        Ok(factors
            .passkeys
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id,
                name: p.name,
                added_at: p.added_at,
                last_used: p.last_used,
            })
            .collect())
    }

    /// The challenge of a new passkey for `me` (its others excluded), kept
    /// for five minutes under the session.
    pub async fn start_passkey(
        &self,
        me: &User,
        session: &crate::domain::session::SessionKey,
    ) -> StoreResult<Result<serde_json::Value, crate::auth::passkeys::PasskeyError>> {
        use crate::domain::pending::{PENDING_LIFETIME, PasskeyCeremony, Pending};
        let random = u64::from_le_bytes(crate::crypto::random_bytes::<8>());
        let half = match self
            .store
            .change_second_factors(me.id, FactorChange::EnsureWebauthnUser(random))
            .await?
        {
            Some(FactorOutcome::WebauthnUser(half)) => half,
            _ => return Ok(Err(crate::auth::passkeys::PasskeyError::Refused)),
        };
        let factors = self.store.second_factors(me.id).await?;
        let exclude = factors
            .passkeys
            .iter()
            .map(|p| p.key.cred_id().clone())
            .collect();
        let challenge =
            match self
                .passkeys
                .start_registration(me.id, half, me.username.as_str(), exclude)
            {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            };
        let ceremony = Pending::Passkey(PasskeyCeremony {
            user: Some(me.id),
            expires_at: self.clock.now().plus(PENDING_LIFETIME),
            state: challenge.state,
            rd: None,
        });
        self.store
            .put_pending(&registration_key(session), &ceremony)
            .await?;
        Ok(Ok(challenge.options))
    }

    /// The browser's answer to `start_passkey`: the passkey is added under
    /// `name`. The first factor of the account brings recovery codes
    /// (returned, to be shown once).
    pub async fn finish_passkey(
        &self,
        me: &User,
        session: &crate::domain::session::SessionKey,
        name: &str,
        answer: &str,
        ip: IpAddr,
    ) -> StoreResult<Result<Vec<String>, String>> {
        use crate::domain::pending::Pending;
        use crate::domain::second_factor::{PasskeyFactor, passkey_name};
        let ceremony = match self.store.take_pending(&registration_key(session)).await? {
            Some(Pending::Passkey(c))
                if c.user == Some(me.id) && c.expires_at > self.clock.now() =>
            {
                c
            }
            _ => {
                return Ok(Err(
                    "The passkey request timed out. Click \u{201c}Add a passkey\u{201d} again."
                        .into(),
                ));
            }
        };
        let key = match self.passkeys.finish_registration(answer, &ceremony.state) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let now = self.clock.now();
        let name = passkey_name(name, &format!("Passkey added {now}"));
        let passkey = PasskeyFactor {
            id: 0,
            name: name.clone(),
            added_at: now,
            last_used: None,
            key,
        };
        match self
            .store
            .change_second_factors(me.id, FactorChange::AddPasskey(Box::new(passkey)))
            .await?
        {
            Some(FactorOutcome::Done) => {}
            _ => {
                return Ok(Err(format!(
                    "That passkey is on your account already, or it has the most it may ({}). Remove one first.",
                    crate::domain::second_factor::MAX_PASSKEYS
                )));
            }
        }
        let mut shown = Vec::new();
        if self.store.second_factors(me.id).await?.recovery.is_empty() {
            let (codes, hashes) = generate_recovery_codes();
            self.store
                .change_second_factors(me.id, FactorChange::SetRecovery { hashes, now })
                .await?;
            shown = codes;
        }
        self.factor_event(me.id, "self", &format!("passkey {name:?} added"), Some(ip))
            .await;
        self.tell(me, &FactorNotice::Added { what: "A passkey" })
            .await?;
        Ok(Ok(shown))
    }

    /// Renames one of `me`'s passkeys; false: no such passkey.
    pub async fn rename_passkey(&self, me: &User, id: u32, name: &str) -> StoreResult<bool> {
        let name = crate::domain::second_factor::passkey_name(name, "Passkey");
        Ok(matches!(
            self.store
                .change_second_factors(me.id, FactorChange::RenamePasskey { id, name })
                .await?,
            Some(FactorOutcome::Done)
        ))
    }

    /// Removes one of `me`'s passkeys, after the password.
    pub async fn remove_passkey(
        &self,
        me: &User,
        id: u32,
        password: Option<Password>,
        ip: IpAddr,
    ) -> StoreResult<Result<bool, FactorProblem>> {
        if let Err(problem) = self.recheck_password(me, password).await {
            return Ok(Err(problem));
        }
        let removed = matches!(
            self.store
                .change_second_factors(me.id, FactorChange::RemovePasskey { id })
                .await?,
            Some(FactorOutcome::Done)
        );
        if removed {
            self.factor_event(me.id, "self", &format!("passkey {id} removed"), Some(ip))
                .await;
            self.tell(me, &FactorNotice::Removed { what: "A passkey" })
                .await?;
        }
        Ok(Ok(removed))
    }
}
