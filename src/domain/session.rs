//! Sessions (SPEC §4): a random 256-bit token in a cookie; the store keeps
//! only its SHA-256 (`SessionKey`), so a stolen database holds no usable
//! session. A session ends at its absolute lifetime or after an idle
//! timeout (`SessionPolicy`, a pure rule), and on logout.

use crate::clock::Timestamp;
use crate::domain::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// The secret a browser holds, as it travels in the cookie.
pub struct SessionToken([u8; 32]);

impl SessionToken {
    pub fn generate() -> Self {
        Self(crate::crypto::random_bytes::<32>())
    }

    /// Reads a cookie value; anything that is not exactly 32 bytes of
    /// URL-safe base64 is no token.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        Some(Self(<[u8; 32]>::try_from(bytes.as_slice()).ok()?))
    }

    pub fn to_cookie(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn key(&self) -> SessionKey {
        SessionKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The hash under which a session is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SessionKey(pub [u8; 32]);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: UserId,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    pub ip: String,
    pub user_agent: String,
}

/// The two limits on a session's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub lifetime: Duration,
}

impl SessionPolicy {
    /// Is `session`, last seen at `last_seen`, over at `now`?
    pub fn is_expired(&self, session: &Session, last_seen: Timestamp, now: Timestamp) -> bool {
        now >= session.created_at.plus(self.lifetime) || now >= last_seen.plus(self.idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_cookie_and_hash_stably() {
        let t = SessionToken::generate();
        let back = SessionToken::from_cookie(&t.to_cookie()).unwrap();
        assert_eq!(t.key(), back.key());
        assert!(SessionToken::from_cookie("short").is_none());
        assert!(SessionToken::from_cookie("!!!!").is_none());
    }

    #[test]
    fn sessions_expire_when_idle_or_too_old() {
        let policy = SessionPolicy {
            idle_timeout: Duration::from_secs(60),
            lifetime: Duration::from_secs(600),
        };
        let t0 = Timestamp::from_millis(0);
        let s = Session {
            user: UserId(1),
            created_at: t0,
            last_seen: t0,
            ip: String::new(),
            user_agent: String::new(),
        };
        let at = |secs: i64| Timestamp::from_millis(secs * 1000);
        assert!(!policy.is_expired(&s, t0, at(59)));
        assert!(policy.is_expired(&s, t0, at(60)));
        assert!(!policy.is_expired(&s, at(590), at(599)));
        assert!(policy.is_expired(&s, at(599), at(600)));
    }
}
