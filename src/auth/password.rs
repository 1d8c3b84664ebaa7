//! Password hashing: how a password becomes a stored hash and how a login
//! attempt is checked against one.
//!
//! Stored hashes name their scheme (SPEC §4):
//! - `hmac-sha256-bcrypt$2b$…`: ours. bcrypt reads only 72 bytes, so we
//!   bcrypt the base64 of HMAC-SHA256(key, password) — 44 ASCII bytes, no NUL
//!   — and no password is ever cut short (OWASP Password Storage Cheat
//!   Sheet, "pre-hashing"). The key is made at database creation and kept
//!   in the database; its job is to make the pre-hash specific to this
//!   installation, not to be a separate secret.
//! - `$2a$`, `$2b$`, `$2y$`: plain bcrypt imported from htpasswd or another
//!   system, checked as such.
//!
//! All bcrypt work runs on the `HashPool`, never on the async runtime.

use super::pool::{Busy, HashPool};
use crate::domain::{NewPassword, Password};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const SCHEME_PREFIX: &str = "hmac-sha256-bcrypt";

#[derive(Clone)]
pub struct Passwords {
    key: [u8; 32],
    cost: u32,
    /// The cost of the throw-away hash for an unknown ID: the cost most
    /// stored hashes have (`set_census`), so that an unknown ID takes as
    /// long as most accounts, whatever `--bcrypt-cost` says (issue 11).
    dummy_cost: Arc<AtomicU32>,
    /// Flips to true at the first census (taken in the background at
    /// start, so that a large store does not delay serving).
    census_taken: Arc<tokio::sync::watch::Sender<bool>>,
    pool: HashPool,
}

impl Passwords {
    pub fn new(key: [u8; 32], cost: u32, pool: HashPool) -> Self {
        Self {
            key,
            cost,
            dummy_cost: Arc::new(AtomicU32::new(cost)),
            census_taken: Arc::new(tokio::sync::watch::Sender::new(false)),
            pool,
        }
    }

    /// The cost an unknown ID is checked at (and a cheaper stored hash
    /// padded to).
    pub fn dummy_cost(&self) -> u32 {
        self.dummy_cost.load(Ordering::Relaxed)
    }

    /// Takes the stored hashes' census: the throw-away hash gets their
    /// most common cost (the configured one when there are none).
    pub fn set_census(&self, census: &Census) {
        self.dummy_cost.store(
            census.most_common_cost().unwrap_or(self.cost),
            Ordering::Relaxed,
        );
        self.census_taken.send_replace(true);
    }

    /// Waits until the first census has been taken (until then an unknown
    /// ID is checked at the configured cost).
    pub async fn census_taken(&self) {
        let mut rx = self.census_taken.subscribe();
        let _ = rx.wait_for(|taken| *taken).await;
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    pub fn pool(&self) -> &HashPool {
        &self.pool
    }

    /// Hashes a new password on the pool.
    pub async fn hash(&self, password: &NewPassword) -> Result<String, Busy> {
        let (key, cost, pw) = (self.key, self.cost, password.expose().to_owned());
        self.pool.run(move || hash_now(&key, cost, &pw)).await
    }

    /// Hashes a password that an admin typed (checked by the caller), or
    /// a random one, on the pool.
    pub async fn hash_text(&self, password: &str) -> Result<String, Busy> {
        let (key, cost, pw) = (self.key, self.cost, password.to_owned());
        self.pool.run(move || hash_now(&key, cost, &pw)).await
    }

    /// Hashes the password of a successful login again when its stored
    /// hash is of an old scheme or cost (see `needs_rehash`).
    pub async fn upgrade(&self, attempt: &Password, stored: &str) -> Result<Option<String>, Busy> {
        if !needs_rehash(stored, self.cost) {
            return Ok(None);
        }
        let (key, cost, pw) = (self.key, self.cost, attempt.expose().to_owned());
        self.pool.run(move || Some(hash_now(&key, cost, &pw))).await
    }

    /// Checks `attempt` against `stored`. With no stored hash (unknown ID)
    /// it still does one full bcrypt at the cost most stored hashes have,
    /// so that an unknown ID takes as long as a wrong password (SPEC §4);
    /// a stored hash cheaper than that (an imported `$2y$05$`, an old
    /// cost) is padded with one more such bcrypt, so that it does not
    /// stand out either.
    pub async fn verify(&self, attempt: &Password, stored: Option<String>) -> Result<bool, Busy> {
        let (key, dummy, pw) = (self.key, self.dummy_cost(), attempt.expose().to_owned());
        self.pool
            .run(move || match stored {
                Some(stored) => {
                    let matches = verify_now(&key, &pw, &stored);
                    if HashKind::of(&stored).cost.is_some_and(|c| c < dummy) {
                        let _ = hash_now(&key, dummy, &pw);
                    }
                    matches
                }
                None => {
                    let _ = hash_now(&key, dummy, &pw);
                    false
                }
            })
            .await
    }
}

/// Whether `stored` should be replaced by a hash of the current scheme
/// and cost: imported plain bcrypt, or a cost other than the configured
/// one. Done at the next successful login, when the password is at hand;
/// afterwards that account costs exactly what an unknown ID costs.
pub fn needs_rehash(stored: &str, cost: u32) -> bool {
    let Some(bcrypt_part) = stored.strip_prefix(SCHEME_PREFIX) else {
        return true;
    };
    // `$2b$12$…`: the cost is the two digits after the version.
    bcrypt_part.get(4..6).and_then(|c| c.parse::<u32>().ok()) != Some(cost)
}

/// What a stored hash is: its scheme and bcrypt cost.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKind {
    pub scheme: Scheme,
    /// None for a hash whose cost cannot be read (damaged, unknown).
    pub cost: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// `hmac-sha256-bcrypt$2b$…`, ours.
    Ours,
    /// Plain bcrypt, imported: `$2a$`, `$2b$` or `$2y$`.
    Imported(&'static str),
    /// Anything else: that account cannot log in.
    Unknown,
}

impl HashKind {
    pub fn of(stored: &str) -> Self {
        let cost_of = |bcrypt: &str| bcrypt.get(4..6).and_then(|c| c.parse::<u32>().ok());
        if let Some(bcrypt_part) = stored.strip_prefix(SCHEME_PREFIX) {
            return Self {
                scheme: Scheme::Ours,
                cost: cost_of(bcrypt_part),
            };
        }
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            if stored.starts_with(prefix) {
                return Self {
                    scheme: Scheme::Imported(prefix),
                    cost: cost_of(stored),
                };
            }
        }
        Self {
            scheme: Scheme::Unknown,
            cost: None,
        }
    }
}

/// How many stored hashes there are of each kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census(pub BTreeMap<HashKind, usize>);

impl Census {
    /// How many characters of a stored hash say its kind (our scheme's
    /// tag and the bcrypt cost), for `UserStore::count_hash_prefixes`.
    pub const PREFIX_LEN: usize = SCHEME_PREFIX.len() + 7;

    /// The census from counts of hash beginnings.
    pub fn of_prefixes(prefixes: &[(String, usize)]) -> Self {
        let mut counts = BTreeMap::new();
        for (head, n) in prefixes {
            *counts.entry(HashKind::of(head)).or_insert(0) += n;
        }
        Self(counts)
    }

    pub fn of<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts = BTreeMap::new();
        for h in hashes {
            *counts.entry(HashKind::of(h)).or_insert(0) += 1;
        }
        Self(counts)
    }

    /// The cost most hashes have, whatever their scheme (the higher cost
    /// on a tie: a slower dummy errs on the side of hiding).
    pub fn most_common_cost(&self) -> Option<u32> {
        let mut by_cost: BTreeMap<u32, usize> = BTreeMap::new();
        for (kind, n) in &self.0 {
            if let Some(c) = kind.cost {
                *by_cost.entry(c).or_insert(0) += n;
            }
        }
        by_cost
            .into_iter()
            .max_by_key(|(cost, n)| (*n, *cost))
            .map(|(cost, _)| cost)
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

fn prehash(key: &[u8; 32], password: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(password.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Hashes on the calling thread: for the CLI and for pool jobs only.
pub fn hash_now(key: &[u8; 32], cost: u32, password: &str) -> String {
    let hashed = bcrypt::hash(prehash(key, password), cost)
        .expect("bcrypt accepts every cost between 4 and 31, checked by Config::validate");
    format!("{SCHEME_PREFIX}{hashed}")
}

/// Checks on the calling thread: for the CLI and for pool jobs only. An
/// unknown or damaged hash never matches (and is logged for the admin).
pub fn verify_now(key: &[u8; 32], password: &str, stored: &str) -> bool {
    let result = if let Some(bcrypt_part) = stored.strip_prefix(SCHEME_PREFIX) {
        bcrypt::verify(prehash(key, password), bcrypt_part)
    } else if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        bcrypt::verify(password, stored)
    } else {
        tracing::error!(
            "a stored password hash has an unknown scheme: that account cannot log in until its password is set anew"
        );
        return false;
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a stored password hash is damaged: that account cannot log in until its password is set anew");
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PasswordPolicy;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn new_hashes_name_their_scheme_and_verify() {
        let h = hash_now(&KEY, 4, "correct horse 1!");
        assert!(h.starts_with("hmac-sha256-bcrypt$2b$04$"));
        assert!(verify_now(&KEY, "correct horse 1!", &h));
        assert!(!verify_now(&KEY, "correct horse 1?", &h));
    }

    #[test]
    fn passwords_longer_than_72_bytes_are_not_truncated() {
        let base = "x".repeat(80);
        let h = hash_now(&KEY, 4, &base);
        let mut other = base.clone();
        other.replace_range(79..80, "y");
        assert!(!verify_now(&KEY, &other, &h), "byte 80 must count");
    }

    #[test]
    fn plain_bcrypt_hashes_still_verify() {
        let legacy = bcrypt::hash("hunter2", 4).unwrap();
        assert!(legacy.starts_with("$2b$"));
        assert!(verify_now(&KEY, "hunter2", &legacy));
        assert!(!verify_now(&KEY, "hunter3", &legacy));
    }

    #[test]
    fn old_schemes_and_other_costs_want_a_rehash() {
        assert!(!needs_rehash(&hash_now(&KEY, 4, "pw"), 4));
        assert!(needs_rehash(&hash_now(&KEY, 4, "pw"), 5));
        assert!(needs_rehash(&bcrypt::hash("pw", 4).unwrap(), 4));
    }

    #[test]
    fn unknown_schemes_never_match() {
        assert!(!verify_now(&KEY, "x", "md5$abc"));
        assert!(!verify_now(&KEY, "x", "hmac-sha256-bcrypt$2b$04$garbage"));
    }

    #[test]
    fn the_census_counts_kinds_and_finds_the_most_common_cost() {
        let ours12 =
            "hmac-sha256-bcrypt$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let ours13 =
            "hmac-sha256-bcrypt$2b$13$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let imported = "$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let census = Census::of([ours12, ours12, ours13, imported, "md5$x"]);
        assert_eq!(census.total(), 5);
        assert_eq!(census.most_common_cost(), Some(12));
        assert_eq!(
            census.0[&HashKind {
                scheme: Scheme::Imported("$2y$"),
                cost: Some(5)
            }],
            1
        );
        assert_eq!(Census::default().most_common_cost(), None);
    }

    #[tokio::test]
    async fn an_unknown_id_is_checked_at_the_cost_most_stored_hashes_have() {
        // Configured at 6, but the stored hashes are at 5: the throw-away
        // hash follows the stored ones, not the setting (issue 11).
        let svc = Passwords::new(KEY, 6, HashPool::new(1, 4).unwrap());
        assert_eq!(svc.dummy_cost(), 6, "no census yet: the setting");
        let stored = [
            hash_now(&KEY, 5, "a"),
            hash_now(&KEY, 5, "b"),
            hash_now(&KEY, 6, "c"),
        ];
        svc.set_census(&Census::of(stored.iter().map(String::as_str)));
        assert_eq!(svc.dummy_cost(), 5);
    }

    #[tokio::test]
    async fn the_service_hashes_and_verifies_on_the_pool() {
        let svc = Passwords::new(KEY, 4, HashPool::new(1, 4).unwrap());
        let pw = NewPassword::parse(
            PasswordPolicy::Seed { min_len: 9 },
            &crate::domain::CommonPasswords::embedded(),
            "abcdef1!x".into(),
            &[],
        )
        .unwrap();
        let stored = svc.hash(&pw).await.unwrap();
        let attempt = Password::parse("abcdef1!x".into()).unwrap();
        assert!(svc.verify(&attempt, Some(stored)).await.unwrap());
        assert!(!svc.verify(&attempt, None).await.unwrap());
    }
}
