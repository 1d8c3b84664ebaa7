//! The background flow behind "forgot password", "send the link again"
//! and lock notices (queued by `mail::requests`): the per-address limit,
//! the look-up, whether a mail is due, the token, the mail, in that order,
//! after the page has answered.

use super::Links;
use super::record;
use crate::auth::ratelimit::KeyedLimiter;
use crate::clock::Clock;
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, LinkToken, LoginId, OneTimeToken, TokenPurpose, User,
    UserStatus,
};
use crate::mail::messages;
use crate::mail::outbox::Outbox;
use crate::mail::requests::{MailQueue, MailRequest};
use crate::store::{Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What handling a request needs.
#[derive(Clone)]
pub struct MailRequestHandler {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub links: Links,
    pub outbox: Arc<Outbox>,
    /// Mails per address from forgot/resend.
    pub per_address: Arc<KeyedLimiter<String>>,
    pub password_reset: bool,
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
    /// For the lock notice's words.
    pub lockout_threshold: u32,
}

impl MailRequestHandler {
    /// Handles requests until `stop` changes.
    pub async fn run(self, mut queue: MailQueue, mut stop: watch::Receiver<bool>) {
        loop {
            let request = tokio::select! {
                r = queue.next() => match r { Some(r) => r, None => return },
                _ = stop.changed() => return,
            };
            if let Err(e) = self.handle(request).await {
                tracing::warn!(error = format!("{e:#}"), "a mail request failed");
            }
            queue.done();
        }
    }

    pub async fn handle(&self, request: MailRequest) -> StoreResult<()> {
        let Some((purpose, user)) = self.decide(request).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        let secret = LinkToken::generate();
        let ttl = match purpose {
            TokenPurpose::Reset => self.reset_ttl,
            TokenPurpose::Verify => self.verify_ttl,
        };
        let (name, to) = (user.username.as_str(), &user.email);
        let mail = match purpose {
            TokenPurpose::Reset => {
                messages::reset(to, name, &self.links.reset(secret.as_str()), ttl)
            }
            TokenPurpose::Verify => {
                messages::verification(to, name, &self.links.verify(secret.as_str()), ttl)
            }
        };
        let token = OneTimeToken::new(purpose, user.id, now, ttl);
        self.store
            .issue_token(secret.hash(), token, Some(mail))
            .await?;
        self.outbox.wake();
        if purpose == TokenPurpose::Reset {
            record(
                self.store.as_ref(),
                AuditEvent::new(now, AuditKind::ResetRequested, "anonymous").user(user.id),
            )
            .await;
        }
        Ok(())
    }

    /// Whether a request leads to a mailed link, and for whom: none for
    /// an address over its limit, without an account, or whose account
    /// the link is not for. A lock notice is queued here: it has no link
    /// of its own.
    async fn decide(&self, request: MailRequest) -> StoreResult<Option<(TokenPurpose, User)>> {
        Ok(match request {
            MailRequest::Reset { email } | MailRequest::Verify { email }
                if self.per_address.check(email.to_string()).is_err() =>
            {
                tracing::info!(
                    "a mail request for an address was dropped: too many for it recently"
                );
                return Ok(None);
            }
            MailRequest::Reset { email } => {
                if !self.password_reset {
                    return Ok(None);
                }
                match self.find(&email).await? {
                    Some(user) if user.status != UserStatus::Disabled => {
                        Some((TokenPurpose::Reset, user))
                    }
                    _ => None,
                }
            }
            MailRequest::Verify { email } => match self.find(&email).await? {
                Some(user) if user.status == UserStatus::PendingVerification => {
                    Some((TokenPurpose::Verify, user))
                }
                _ => None,
            },
            MailRequest::FactorNotice { user, notice } => {
                let Some(user) = self.store.user(user).await? else {
                    return Ok(None);
                };
                let account = self.links.account();
                let mail =
                    messages::factor_notice(&user.email, user.username.as_str(), &notice, &account);
                self.store.enqueue_mail(mail, self.clock.now()).await?;
                self.outbox.wake();
                None
            }
            MailRequest::LockNotice { user, ip, until } => {
                // The notice carries no token: it points to the forgot
                // page, so it cancels no reset link the owner asked for.
                let Some(user) = self.store.user(user).await? else {
                    return Ok(None);
                };
                let forgot = self.links.forgot_password();
                let mail = messages::lock_notice(
                    &user.email,
                    user.username.as_str(),
                    self.lockout_threshold,
                    until,
                    &ip,
                    self.password_reset.then_some(forgot.as_str()),
                );
                self.store.enqueue_mail(mail, self.clock.now()).await?;
                self.outbox.wake();
                None
            }
        })
    }

    async fn find(&self, email: &EmailAddress) -> StoreResult<Option<User>> {
        let id = LoginId::parse(email.as_str()).map_err(|m| anyhow::anyhow!("{m}"))?;
        self.store.user_by_login_id(&id).await
    }
}
