//! The flows: what happens when someone logs in, signs up, confirms an
//! address, resets or changes a password, ends a session, or when an admin
//! manages accounts. Free of HTTP and HTML: each flow takes only the parts
//! it uses (store, hashing, clock, mail queue, limits), a typed request,
//! and returns an outcome enum that says what happened; `http/routes`
//! turns outcomes into pages, `cli` into lines and exit codes.

pub mod account;
pub mod admin;
pub mod login;
pub mod mail_requests;
pub mod recovery;
pub mod signup;
pub mod verification;

use crate::domain::InviteToken;
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

    /// The login page, for mails that point there.
    pub fn login_from_mail(&self) -> String {
        self.link("login", "from", "mail")
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
