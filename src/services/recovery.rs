//! A forgotten password (SPEC §2, §4; the seed's "When you forgot your
//! password"). Asking answers the same, at once, whether or not an account
//! has the address (the look-up, token and mail happen in
//! `mail_requests`). The mailed link shows a form (nothing changes on
//! GET); setting the password hashes once on the pool, then one
//! transaction consumes the token, sets the hash, ends every session,
//! lifts the failure locks and queues the "password changed" mail. No
//! automatic login follows.

use super::Links;
use super::record;
use crate::auth::password::Passwords;
use crate::clock::Clock;
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, LinkToken, NewPassword, TokenProblem, TokenPurpose, User,
};
use crate::mail::messages;
use crate::mail::outbox::Outbox;
use crate::mail::requests::{MailRequest, MailRequests};
use crate::store::{Store, StoreResult};
use std::net::IpAddr;

pub struct Recovery<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a Passwords,
    pub clock: &'a Clock,
    pub mail: &'a MailRequests,
    pub outbox: &'a Outbox,
    pub links: &'a Links,
}

/// A live reset link and the account it is for, found together by
/// `account_of` so that `reset` cannot be given one without the other.
pub struct ResetTarget {
    token: LinkToken,
    user: User,
}

impl ResetTarget {
    pub fn user(&self) -> &User {
        &self.user
    }
}

pub enum Outcome {
    /// The new password is set; every session of the account ended.
    Done(Box<User>),
    /// The link does not work (any more).
    LinkFailed(TokenProblem),
    Busy,
}

impl Recovery<'_> {
    /// "Forgot password": a link for `email`, if it has an account.
    pub fn forgot(&self, email: EmailAddress) {
        self.mail.submit(MailRequest::Reset { email });
    }

    /// The account a live reset link is for, with the link, or why the
    /// link fails.
    pub async fn account_of(
        &self,
        token: LinkToken,
    ) -> StoreResult<Result<ResetTarget, TokenProblem>> {
        let now = self.clock.now();
        let Some(stored) = self.store.token(&token.hash()).await? else {
            return Ok(Err(TokenProblem::Unknown));
        };
        if let Err(problem) = stored.check(TokenPurpose::Reset, now) {
            return Ok(Err(problem));
        }
        Ok(match self.store.user(stored.user).await? {
            Some(user) => Ok(ResetTarget { token, user }),
            None => Err(TokenProblem::Unknown),
        })
    }

    /// Sets `password` for the account `account_of` found (the caller
    /// checked the password against its names). The transaction checks the
    /// token again: a link spent meanwhile fails.
    pub async fn reset(
        &self,
        target: &ResetTarget,
        password: &NewPassword,
        ip: IpAddr,
    ) -> StoreResult<Outcome> {
        let (token, user) = (&target.token, &target.user);
        let Ok(new_hash) = self.passwords.hash(password).await else {
            return Ok(Outcome::Busy);
        };
        let now = self.clock.now();
        let notice = messages::password_changed(
            &user.email,
            user.username.as_str(),
            now,
            &self.links.login_from_mail(),
        );
        // Used up by a concurrent request since `account_of`: the
        // transaction says so.
        let user = match self
            .store
            .consume_reset(&token.hash(), now, new_hash, notice)
            .await?
        {
            Ok(user) => user,
            Err(problem) => return Ok(Outcome::LinkFailed(problem)),
        };
        self.outbox.wake();
        tracing::info!(user = %user.id, "password reset by mailed link");
        record(
            self.store,
            AuditEvent::new(now, AuditKind::ResetDone, "self")
                .user(user.id)
                .ip(ip),
        )
        .await;
        Ok(Outcome::Done(Box::new(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CommonPasswords, OneTimeToken, PasswordPolicy, UserStatus};
    use crate::services::testkit::Kit;
    use std::time::Duration;

    fn recovery(kit: &Kit) -> Recovery<'_> {
        Recovery {
            store: kit.store.as_ref(),
            passwords: &kit.passwords,
            clock: &kit.clock,
            mail: &kit.mail,
            outbox: &kit.outbox,
            links: &kit.links,
        }
    }

    /// A reset link for `user`, valid for a minute.
    async fn issue(kit: &Kit, user: crate::domain::UserId) -> LinkToken {
        let link = LinkToken::generate();
        let ttl = Duration::from_secs(60);
        let token = OneTimeToken::new(TokenPurpose::Reset, user, kit.clock.now(), ttl);
        kit.store
            .issue_token(link.hash(), token, None)
            .await
            .unwrap();
        link
    }

    #[tokio::test]
    async fn a_reset_link_sets_the_password_once_and_expires() {
        let kit = Kit::new();
        let max = kit.user("max@example.com", "max", UserStatus::Active).await;
        let link = issue(&kit, max.id).await;
        let target = recovery(&kit).account_of(link).await.unwrap().unwrap();
        assert_eq!(target.user().id, max.id);
        let password = NewPassword::parse(
            PasswordPolicy::Seed { min_len: 9 },
            &CommonPasswords::embedded(),
            "N3w-horse-shoe!".into(),
            &[],
        )
        .unwrap();
        let ip = "192.0.2.1".parse().unwrap();
        let done = recovery(&kit).reset(&target, &password, ip).await.unwrap();
        assert!(matches!(done, Outcome::Done(_)));
        let again = recovery(&kit).reset(&target, &password, ip).await.unwrap();
        assert!(matches!(again, Outcome::LinkFailed(TokenProblem::Unknown)));
        // A newer link that runs out.
        let late = issue(&kit, max.id).await;
        kit.clock.advance(Duration::from_secs(60));
        assert_eq!(
            recovery(&kit).account_of(late).await.unwrap().err(),
            Some(TokenProblem::Expired)
        );
    }
}
