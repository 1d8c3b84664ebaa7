//! CSRF tokens (SPEC §4: every state-changing form, login and signup too).
//!
//! A "signed double submit" (OWASP CSRF Cheat Sheet): the browser holds a
//! random secret in an HttpOnly cookie, and every form carries
//! HMAC(key, secret | session). A page on another site can neither read
//! the cookie nor compute the MAC; binding the session in means a token
//! taken before login is worthless after it. The HTTP layer also refuses
//! cross-origin POSTs by their Origin / Sec-Fetch-Site headers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    /// Derives the CSRF key from the store's key, so that forms rendered
    /// before a restart still submit after it.
    pub fn derive(store_key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(store_key).expect("any key length");
        mac.update(b"gatehouse csrf key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, browser_secret: &str, session: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("any key length");
        mac.update(browser_secret.as_bytes());
        mac.update(b"|");
        mac.update(session.as_bytes());
        mac
    }

    /// The token for the forms of a browser with `browser_secret`, logged in
    /// with session cookie `session` (empty when logged out).
    pub fn token(&self, browser_secret: &str, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(browser_secret, session).finalize().into_bytes())
    }

    /// Checks a submitted token in constant time.
    pub fn verify(&self, browser_secret: &str, session: &str, token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(browser_secret, session)
            .verify_slice(&bytes)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_browser_and_session() {
        let key = CsrfKey::derive(&[1; 32]);
        let t = key.token("secret", "");
        assert!(key.verify("secret", "", &t));
        assert!(!key.verify("other", "", &t));
        assert!(!key.verify("secret", "session", &t));
        assert!(!key.verify("secret", "", "not base64!"));
        assert!(!CsrfKey::derive(&[2; 32]).verify("secret", "", &t));
    }
}
