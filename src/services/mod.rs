//! The flows: what happens when someone logs in, signs up, confirms an
//! address, resets or changes a password, ends a session, or when an admin
//! manages accounts. Free of HTTP and HTML: each flow takes only the parts
//! it uses (store, hashing, clock, mail queue, limits), a typed request,
//! and returns an outcome enum that says what happened; `http/routes`
//! turns outcomes into pages, `cli` into lines and exit codes.

pub mod account;
pub mod admin;
pub mod factors;
pub mod login;
pub mod mail_requests;
pub mod oidc;
pub mod oidc_admin;
pub mod recovery;
pub mod second_step;
pub mod signup;
pub mod verification;

use crate::domain::{AuditEvent, InviteToken};
use crate::store::Store;
use url::Url;

/// Links into gatehouse, for mails and the log: `<base-url><path>?…`.
#[derive(Clone, Debug)]
pub struct Links {
    base: Url,
}

impl Links {
    pub fn new(base: Url) -> Self {
        Self { base }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `<base-url><path>?<param>=<value>`.
    pub fn link(&self, path: &str, param: &str, value: &str) -> String {
        // Joining a relative path onto an http(s) URL cannot fail.
        let mut url = self.base.join(path).unwrap_or_else(|_| self.base.clone());
        url.query_pairs_mut().append_pair(param, value);
        url.into()
    }

    /// The signup link that carries an invitation token.
    pub fn invite(&self, token: &InviteToken) -> String {
        self.link("signup", "token", token.as_str())
    }

    /// The page a mailed password link opens.
    pub fn reset(&self, secret: &str) -> String {
        self.link("reset-password", "token", secret)
    }

    /// The page a mailed verification link opens.
    pub fn verify(&self, secret: &str) -> String {
        self.link("verify-email", "code", secret)
    }

    /// The "forgot password" page, for mails that send the reader there
    /// (a lock notice carries no token of its own).
    pub fn forgot_password(&self) -> String {
        self.base
            .join("forgot-password")
            .map_or_else(|_| self.base.to_string(), String::from)
    }

    /// The Account page (through the login when logged out).
    pub fn account(&self) -> String {
        self.base
            .join("account")
            .map_or_else(|_| self.base.to_string(), String::from)
    }

    /// The login page, for mails that point there.
    pub fn login_from_mail(&self) -> String {
        self.link("login", "from", "mail")
    }
}

/// Records an audit event after an action that has happened; a failure to
/// record is logged loudly but does not undo or fail the action.
pub async fn record(store: &dyn Store, event: AuditEvent) {
    let kind = event.kind.as_str();
    if let Err(e) = store.audit(vec![event]).await {
        tracing::error!(kind, error = ?e, "could not write an audit event");
    }
}

/// The parts the flows take, real ones (a redb file in a temp dir, bcrypt
/// at cost 4 on a real pool, a manual clock), for the flows' unit tests.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::auth::password::Passwords;
    use crate::auth::pool::HashPool;
    use crate::auth::session::SessionCache;
    use crate::clock::Clock;
    use crate::documents::Documents;
    use crate::domain::lockout::LockoutPolicy;
    use crate::domain::{EmailAddress, Role, User, UserStatus, Username};
    use crate::mail::outbox::Outbox;
    use crate::mail::requests::{MailQueue, MailRequests};
    use crate::metrics::Metrics;
    use crate::store::redb::RedbStore;
    use crate::store::{NewUser, Store};
    use std::time::{Duration, SystemTime};

    pub const PASSWORD: &str = "Corr3ct-horse!";

    pub struct Kit {
        pub _dir: tempfile::TempDir,
        pub store: Box<dyn Store>,
        pub passwords: Passwords,
        pub clock: Clock,
        pub mail: MailRequests,
        pub queue: MailQueue,
        pub metrics: Metrics,
        pub sessions: SessionCache,
        pub documents: Documents,
        pub outbox: Outbox,
        pub links: super::Links,
        pub lockout: LockoutPolicy,
        pub two_factor: crate::config::TwoFactorPolicy,
        pub passkeys: crate::auth::passkeys::Passkeys,
    }

    impl Kit {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = RedbStore::open(dir.path()).unwrap();
            let passwords = Passwords::new(store.password_key(), 4, HashPool::new(2, 16).unwrap());
            let (mail, queue) = MailRequests::new();
            Self {
                _dir: dir,
                store: Box::new(store),
                passwords,
                clock: Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)),
                mail,
                queue,
                metrics: Metrics::default(),
                sessions: SessionCache::default(),
                documents: Documents::load(None, None).unwrap(),
                outbox: Outbox::default(),
                links: super::Links::new(url::Url::parse("http://gate.example/").unwrap()),
                lockout: LockoutPolicy {
                    threshold: 10,
                    duration: Duration::from_secs(20 * 60),
                    max_duration: Duration::from_secs(24 * 3600),
                },
                two_factor: crate::config::TwoFactorPolicy::default(),
                passkeys: crate::auth::passkeys::Passkeys::new(
                    &url::Url::parse("http://gate.example/").unwrap(),
                ),
            }
        }

        /// An account with `PASSWORD`.
        pub async fn user(&self, email: &str, name: &str, status: UserStatus) -> User {
            let hash = self.passwords.hash_text(PASSWORD).await.unwrap();
            self.store
                .create_user(
                    NewUser {
                        email: EmailAddress::parse(email).unwrap(),
                        username: Username::parse(name).unwrap(),
                        password_hash: hash,
                        role: Role::User,
                        status,
                        created_at: self.clock.now(),
                        consent: None,
                        groups: Vec::new(),
                    },
                    None,
                )
                .await
                .unwrap()
                .unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_the_base_url_and_encode_the_value() {
        let links = Links::new(Url::parse("https://example.com/auth/").unwrap());
        assert_eq!(
            links.link("reset-password", "token", "a b"),
            "https://example.com/auth/reset-password?token=a+b"
        );
        let root = Links::new(Url::parse("http://127.0.0.1:8080/").unwrap());
        assert_eq!(
            root.verify("x"),
            "http://127.0.0.1:8080/verify-email?code=x"
        );
    }
}
