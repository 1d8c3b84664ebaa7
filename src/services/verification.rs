//! Confirming an email address (SPEC §5): the mailed link shows a page
//! with one button (so link scanners confirm nothing), the button confirms;
//! asking for a new link answers the same whether or not an account waits
//! for that address (the look-up happens later, in `mail_requests`).

use super::record;
use crate::clock::Clock;
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, LinkToken, TokenProblem, TokenPurpose, User,
};
use crate::mail::requests::{MailRequest, MailRequests};
use crate::store::{Store, StoreResult};

pub struct Verification<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a Clock,
    pub mail: &'a MailRequests,
}

impl Verification<'_> {
    /// Whether `code` is a live verification link (nothing changes).
    pub async fn is_live(&self, code: &LinkToken) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(self
            .store
            .token(&code.hash())
            .await?
            .is_some_and(|t| t.check(TokenPurpose::Verify, now).is_ok()))
    }

    /// Spends the link: the account becomes active.
    pub async fn confirm(&self, code: &LinkToken) -> StoreResult<Result<User, TokenProblem>> {
        let now = self.clock.now();
        let done = self.store.consume_verification(&code.hash(), now).await?;
        if let Ok(user) = &done {
            tracing::info!(user = %user.id, "email address verified");
            record(
                self.store,
                AuditEvent::new(now, AuditKind::Verified, "self").user(user.id),
            )
            .await;
        }
        Ok(done)
    }

    /// A new link, if an account waits for `email` (decided later).
    pub fn resend(&self, email: EmailAddress) {
        self.mail.submit(MailRequest::Verify { email });
    }
}
