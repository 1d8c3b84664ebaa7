//! One-time tokens in mailed links (verification, password reset) as
//! stored: under the SHA-256 of the secret, with their purpose, owner and
//! expiry.

use super::UserId;
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// What a one-time token (in a mailed link) is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    Verify,
    Reset,
}

impl TokenPurpose {
    /// How the stores write it in their indexes (1 verify, 2 reset).
    pub fn code(self) -> u8 {
        match self {
            Self::Verify => 1,
            Self::Reset => 2,
        }
    }
}

/// A one-time token as stored (under the hash of the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeToken {
    pub purpose: TokenPurpose,
    pub user: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why a mailed link did not work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued, already used, or replaced by a newer one.
    Unknown,
    Expired,
}

/// The secret of a mailed link (reset, verification, a password link the
/// CLI prints): 32 random bytes as URL-safe base64. Only its SHA-256 is
/// stored; the secret itself is shown once, in the link.
pub struct LinkToken(String);

impl LinkToken {
    pub fn generate() -> Self {
        Self(crate::crypto::random_token::<32>())
    }

    /// A token as it came in a link or form; anything empty or longer than
    /// ours is no token (and costs no hashing).
    pub fn parse(raw: &str) -> Option<Self> {
        let t = raw.trim();
        (!t.is_empty() && t.len() <= 64).then(|| Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key it is stored under.
    pub fn hash(&self) -> [u8; 32] {
        crate::crypto::sha256(self.0.as_bytes())
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

impl OneTimeToken {
    /// A new token of `purpose` for `user`, valid for `ttl` from `now`.
    pub fn new(
        purpose: TokenPurpose,
        user: UserId,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Self {
        Self {
            purpose,
            user,
            created_at: now,
            expires_at: now.plus(ttl),
        }
    }

    /// Whether this stored token may be used for `purpose` at `now`.
    pub fn check(&self, purpose: TokenPurpose, now: Timestamp) -> Result<(), TokenProblem> {
        if self.purpose != purpose {
            Err(TokenProblem::Unknown)
        } else if now >= self.expires_at {
            Err(TokenProblem::Expired)
        } else {
            Ok(())
        }
    }
}
