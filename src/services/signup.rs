//! Signing up (SPEC §3): a read-only look at the invitation first (a bad
//! one costs no hashing), one bcrypt on the pool, then one transaction
//! that checks and spends the invitation (if any), refuses taken names
//! and creates the account with its consent. With verification on, the
//! account waits for its owner to confirm the address.

use super::record;
use crate::auth::password::Passwords;
use crate::clock::Clock;
use crate::documents::Documents;
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, InviteProblem, InviteToken, NewPassword, Role, User,
    UserStatus, Username,
};
use crate::mail::requests::{MailRequest, MailRequests};
use crate::metrics::Metrics;
use crate::store::{NewUser, Redemption, Store, StoreError, StoreResult, Unique};
use std::net::IpAddr;

pub struct Signup<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a Passwords,
    pub clock: &'a Clock,
    pub documents: &'a Documents,
    pub mail: &'a MailRequests,
    pub metrics: &'a Metrics,
    /// New accounts confirm their address before they log in.
    pub require_verification: bool,
}

pub struct SignupRequest {
    pub email: EmailAddress,
    pub username: Username,
    pub password: NewPassword,
    pub invitation: Option<InviteToken>,
    pub ip: IpAddr,
}

pub enum Outcome {
    /// The account exists; when it waits for verification, the mail is on
    /// its way.
    Created(Box<User>),
    Taken(Unique),
    Invitation(InviteProblem),
    Busy,
}

impl Signup<'_> {
    pub async fn sign_up(&self, req: SignupRequest) -> StoreResult<Outcome> {
        let now = self.clock.now();
        // A read-only look at the invitation first, so that a bad token
        // costs no bcrypt; the write transaction checks it again, atomically.
        if let Some(t) = &req.invitation {
            let problem = match self.store.invite_by_token(&t.hash()).await? {
                None => Some(InviteProblem::Unknown),
                Some(invite) => invite.check(now, &req.email).err(),
            };
            if let Some(problem) = problem {
                return Ok(Outcome::Invitation(problem));
            }
        }
        let Ok(password_hash) = self.passwords.hash(&req.password).await else {
            return Ok(Outcome::Busy);
        };
        let new = NewUser {
            email: req.email,
            username: req.username,
            password_hash,
            role: Role::User,
            status: if self.require_verification {
                UserStatus::PendingVerification
            } else {
                UserStatus::Active
            },
            created_at: now,
            consent: Some(self.documents.consent(now)),
            groups: Vec::new(),
        };
        let redeem = req.invitation.map(|t| Redemption {
            token_hash: t.hash(),
            at: now,
        });
        let user = match self.store.create_user(new, redeem).await {
            Ok(Ok(user)) => user,
            Ok(Err(problem)) => return Ok(Outcome::Invitation(problem)),
            Err(StoreError::Conflict(field)) => return Ok(Outcome::Taken(field)),
            Err(e) => return Err(e),
        };
        tracing::info!(user = %user.id, role = %user.role, ip = %req.ip, "signed up");
        self.metrics.signup();
        let event = AuditEvent::new(now, AuditKind::Signup, "self")
            .user(user.id)
            .ip(req.ip)
            .detail(format!("role {}", user.role));
        record(self.store, event).await;
        if user.status == UserStatus::PendingVerification {
            self.mail.submit(MailRequest::Verify {
                email: user.email.clone(),
            });
        }
        Ok(Outcome::Created(Box::new(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CommonPasswords;
    use crate::domain::PasswordPolicy;
    use crate::services::testkit::{Kit, PASSWORD};

    fn signup(kit: &Kit, require_verification: bool) -> Signup<'_> {
        Signup {
            store: kit.store.as_ref(),
            passwords: &kit.passwords,
            clock: &kit.clock,
            documents: &kit.documents,
            mail: &kit.mail,
            metrics: &kit.metrics,
            require_verification,
        }
    }

    fn request(email: &str, name: &str, invitation: Option<InviteToken>) -> SignupRequest {
        SignupRequest {
            email: EmailAddress::parse(email).unwrap(),
            username: Username::parse(name).unwrap(),
            password: NewPassword::parse(
                PasswordPolicy::Seed { min_len: 9 },
                &CommonPasswords::embedded(),
                PASSWORD.into(),
                &[email, name],
            )
            .unwrap(),
            invitation,
            ip: "192.0.2.8".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn a_new_account_consents_and_a_taken_name_is_named() {
        let kit = Kit::new();
        let Outcome::Created(user) = signup(&kit, false)
            .sign_up(request("fay@example.com", "fay", None))
            .await
            .unwrap()
        else {
            panic!("created");
        };
        assert_eq!(user.status, UserStatus::Active);
        assert!(kit.documents.is_current(user.consent.as_ref()));
        let svc = signup(&kit, false);
        let again = svc.sign_up(request("FAY@example.com", "other", None));
        assert!(matches!(
            again.await.unwrap(),
            Outcome::Taken(Unique::Email)
        ));
        let svc = signup(&kit, false);
        let again = svc.sign_up(request("new@example.com", "Fay", None));
        assert!(matches!(
            again.await.unwrap(),
            Outcome::Taken(Unique::Username)
        ));
    }

    #[tokio::test]
    async fn with_verification_the_account_waits_and_a_mail_is_asked_for() {
        let mut kit = Kit::new();
        let svc = signup(&kit, true);
        let o = svc.sign_up(request("gus@example.com", "gus", None));
        let Outcome::Created(user) = o.await.unwrap() else {
            panic!("created");
        };
        assert_eq!(user.status, UserStatus::PendingVerification);
        assert!(matches!(
            kit.queue.try_next(),
            Some(MailRequest::Verify { email }) if email.as_str() == "gus@example.com"
        ));
    }

    #[tokio::test]
    async fn an_unknown_invitation_is_refused_and_makes_nothing() {
        let kit = Kit::new();
        let svc = signup(&kit, false);
        let o = svc.sign_up(request(
            "hal@example.com",
            "hal",
            Some(InviteToken::generate()),
        ));
        assert!(matches!(
            o.await.unwrap(),
            Outcome::Invitation(InviteProblem::Unknown)
        ));
        assert_eq!(kit.store.user_count().await.unwrap(), 0);
    }
}
