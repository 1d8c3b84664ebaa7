//! OpenID Connect records and their pure rules (SPEC §11): the apps
//! (clients) registered with gatehouse, the consent a user gave an app,
//! the codes and tokens issued to apps (kept only as SHA-256 hashes), and
//! the signing keys with the rule that says which key signs and which
//! are published. Every backend keeps these records and calls these
//! rules; nothing here knows HTTP, JOSE or the store.

use crate::clock::Timestamp;
use crate::domain::{GroupName, User, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How long an authorization code may be exchanged (RFC 6749 §4.1.2
/// recommends at most ten minutes; apps exchange at once).
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// How long a new signing key is published before it signs, so that apps
/// that cache the key set learn it first.
pub const KEY_PUBLISH_LEAD: Duration = Duration::from_secs(3600);

/// The scopes gatehouse understands; others are ignored (OIDC Core §5.4
/// says unknown scopes SHOULD be ignored).
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// How long what is issued to apps lives (settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OidcPolicy {
    pub access_token_lifetime: Duration,
    pub id_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
}

/// An app registered to log users in through gatehouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClient {
    /// The `client_id`: random, never reused.
    pub id: String,
    /// What users and admins call it (unique, ignoring case).
    pub name: String,
    /// SHA-256 of the secret (256 random bits, so a fast hash suffices);
    /// None for a public client.
    pub secret_hash: Option<[u8; 32]>,
    /// Exact `redirect_uri` values the app may use.
    pub redirect_uris: Vec<String>,
    /// Exact `post_logout_redirect_uri` values.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Members of one of these may use the app; empty: everyone.
    #[serde(default)]
    pub groups: Vec<GroupName>,
    /// Skips the consent page (the team's own apps).
    #[serde(default)]
    pub trusted: bool,
    pub created_at: Timestamp,
    /// Declared in the config file (`[[oidc_client]]`): the file is its
    /// source, so the CLI does not change or remove it.
    #[serde(default)]
    pub declared: bool,
}

impl OidcClient {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Exact match: no wildcards, no prefixes, no normalisation; but a
    /// registered loopback address (`http://127.0.0.1/cb`, `http://[::1]/cb`)
    /// takes any port, as native apps listen on whichever is free (RFC 8252
    /// §7.3).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| r == uri || same_but_loopback_port(r, uri))
    }

    pub fn allows_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }

    /// May `user` use this app (its groups)?
    pub fn admits(&self, user: &User) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| user.in_group(g))
    }

    /// Is `secret` this client's secret? Constant time in the secret.
    pub fn secret_matches(&self, secret: &str) -> bool {
        use subtle::ConstantTimeEq;
        match &self.secret_hash {
            Some(hash) => bool::from(crate::crypto::sha256(secret.as_bytes()).ct_eq(hash)),
            None => false,
        }
    }

    /// The key that makes client names unique.
    pub fn name_key(name: &str) -> String {
        name.trim().to_lowercase()
    }
}

/// `sent` is `registered` but for the port, and `registered` is an http
/// loopback IP address; the rest compared as exact text.
fn same_but_loopback_port(registered: &str, sent: &str) -> bool {
    fn after_port<'a>(uri: &'a str, host: &str) -> Option<&'a str> {
        let rest = uri.strip_prefix(host)?;
        let rest = match rest.strip_prefix(':') {
            Some(port) => {
                let digits = port.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || digits > 5 {
                    return None;
                }
                &port[digits..]
            }
            None => rest,
        };
        (rest.is_empty() || rest.starts_with(['/', '?'])).then_some(rest)
    }
    ["http://127.0.0.1", "http://[::1]"].iter().any(|host| {
        matches!(
            (after_port(registered, host), after_port(sent, host)),
            (Some(a), Some(b)) if a == b
        )
    })
}

/// Checks a client name as typed.
pub fn parse_client_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Give the app a name, such as Grafana.");
    }
    if name.chars().count() > 64 {
        return Err("An app name has at most 64 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("An app name may not contain control characters.");
    }
    Ok(name.to_owned())
}

/// Checks a redirect URI as registered: absolute, no fragment (RFC 6749
/// §3.1.2), and not a scheme that runs or reads something (`javascript:`,
/// `data:`, `file:`). `https`, `http` (loopback, or a LAN app without
/// TLS: `is_plain_http` lets the CLI warn) and a native app's own scheme
/// (`app.immich:///oauth-callback`) pass.
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw)
        .map_err(|e| format!("{raw:?} is not an absolute URL ({e}); give it as the app documents it, such as https://app.example.com/callback"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{raw:?} has a fragment (#…), which a redirect URI may not have"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => Ok(()),
        "javascript" | "data" | "file" | "vbscript" => Err(format!(
            "{raw:?} uses a scheme that is never a redirect URI"
        )),
        _ => Ok(()),
    }
}

/// Is `uri` plain http to a host other than loopback (codes travel
/// unencrypted: worth a warning)?
pub fn is_plain_http(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http"
            && !matches!(
                u.host_str(),
                Some("127.0.0.1") | Some("[::1]") | Some("localhost")
            )
    })
}

/// The scopes of a request: the understood ones, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// A space-separated `scope` parameter; unknown values are dropped.
    pub fn parse(raw: &str) -> Self {
        let asked: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
        Self(
            SCOPES
                .iter()
                .filter(|s| asked.contains(s))
                .map(|s| (*s).to_owned())
                .collect(),
        )
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Is every scope of `other` in this set?
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.iter().all(|s| self.has(s))
    }

    /// Both sets together.
    pub fn union(&self, other: &Scopes) -> Scopes {
        let joined = format!("{} {}", self, other);
        Scopes::parse(&joined)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What a user allowed an app to see, remembered so that the consent page
/// is shown once (SPEC §11); the Account page lists these as the user's
/// apps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcGrant {
    pub user: UserId,
    pub client: String,
    pub scopes: Scopes,
    pub granted_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// An authorization code: single use, `CODE_LIFETIME`.
    Code,
    Access,
    Refresh,
}

/// A code or token as stored (under the SHA-256 of its secret). Every
/// token that descends from one code shares its `family`: a code or
/// refresh token presented twice ends the family (RFC 6749 §4.1.2,
/// OAuth 2.0 Security BCP §4.14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcToken {
    pub kind: TokenKind,
    pub client: String,
    pub user: UserId,
    pub family: u64,
    pub scopes: Scopes,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// When a code or refresh token was used (it is kept until it expires,
    /// so that a second use is recognised).
    #[serde(default)]
    pub spent_at: Option<Timestamp>,
    /// When the user last logged in with a password (`auth_time`).
    pub auth_time: Timestamp,
    /// Codes only: what the token request must match.
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The S256 PKCE challenge, when one was sent.
    #[serde(default)]
    pub code_challenge: Option<String>,
}

impl OidcToken {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// A new family number (below 2^63, so that every backend stores it as a
/// signed 64-bit integer).
pub fn new_family() -> u64 {
    u64::from_le_bytes(crate::crypto::random_bytes::<8>()) >> 1
}

/// Is `challenge` the S256 of `verifier` (RFC 7636 §4.6)? The verifier
/// must be 43 to 128 unreserved characters.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use subtle::ConstantTimeEq;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let derived = URL_SAFE_NO_PAD.encode(crate::crypto::sha256(verifier.as_bytes()));
    well_formed && bool::from(derived.as_bytes().ct_eq(challenge.as_bytes()))
}

/// A challenge as sent: 43 characters of base64url (a SHA-256).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The private half of a signing key (PKCS#1 DER for RSA): never in a
/// log or a debug print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKey(#[serde(with = "b64")] pub Vec<u8>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A key that signs ID tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The `kid` in JWKS and in each token's header.
    pub kid: String,
    /// `RS256`.
    pub alg: String,
    pub private: PrivateKey,
    /// The public key as JWK members (base64url): RSA `n` and `e`.
    pub n: String,
    pub e: String,
    pub created_at: Timestamp,
    /// From when it signs; published in JWKS from its creation.
    pub signs_from: Timestamp,
}

/// The signing keys and the rule on them: the newest key whose time has
/// come signs; a key not yet signing is published already; a key that
/// was replaced stays published until every ID token it signed has
/// expired.
pub struct KeyRing<'a> {
    keys: Vec<&'a SigningKey>,
}

impl<'a> KeyRing<'a> {
    pub fn new(keys: &'a [SigningKey]) -> Self {
        let mut keys: Vec<&SigningKey> = keys.iter().collect();
        keys.sort_by_key(|k| (k.signs_from, k.created_at));
        Self { keys }
    }

    /// The key that signs at `now` (None: no key yet).
    pub fn signing(&self, now: Timestamp) -> Option<&'a SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .copied()
            // Only keys of the future: the earliest (it will sign first).
            .or_else(|| self.keys.first().copied())
    }

    /// When `key` stopped signing: when the next key began, if it has.
    fn replaced_at(&self, key: &SigningKey, now: Timestamp) -> Option<Timestamp> {
        let signing = self.signing(now)?;
        if signing.kid == key.kid {
            return None;
        }
        self.keys
            .iter()
            .filter(|k| k.signs_from > key.signs_from && k.signs_from <= now)
            .map(|k| k.signs_from)
            .min()
    }

    /// The keys in JWKS at `now`, given how long ID tokens live.
    pub fn published(&self, now: Timestamp, id_token_lifetime: Duration) -> Vec<&'a SigningKey> {
        self.keys
            .iter()
            .filter(|k| match self.replaced_at(k, now) {
                None => true,
                Some(at) => now < at.plus(id_token_lifetime),
            })
            .copied()
            .collect()
    }

    /// The keys no longer needed at `now` (to delete).
    pub fn spent(&self, now: Timestamp, id_token_lifetime: Duration) -> Vec<String> {
        let published = self.published(now, id_token_lifetime);
        self.keys
            .iter()
            .filter(|k| !published.iter().any(|p| p.kid == k.kid))
            .map(|k| k.kid.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, signs_from: i64) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            alg: "RS256".into(),
            private: PrivateKey(vec![1, 2, 3]),
            n: "n".into(),
            e: "AQAB".into(),
            created_at: Timestamp::from_millis(0),
            signs_from: Timestamp::from_millis(signs_from),
        }
    }

    #[test]
    fn a_rotated_key_is_published_before_it_signs_and_the_old_one_kept_until_its_tokens_expire() {
        let hour = Duration::from_secs(3600);
        let keys = [key("old", 0), key("new", 10_000)];
        let ring = KeyRing::new(&keys);
        let kids = |now: i64| -> Vec<String> {
            ring.published(Timestamp::from_millis(now), hour)
                .iter()
                .map(|k| k.kid.clone())
                .collect()
        };
        let signer = |now: i64| {
            ring.signing(Timestamp::from_millis(now))
                .unwrap()
                .kid
                .clone()
        };
        assert_eq!(signer(5_000), "old");
        assert_eq!(kids(5_000), ["old", "new"]);
        assert_eq!(signer(10_000), "new");
        assert_eq!(kids(10_000 + 3_599_999), ["old", "new"]);
        assert_eq!(kids(10_000 + 3_600_000), ["new"]);
        assert_eq!(
            ring.spent(Timestamp::from_millis(10_000 + 3_600_000), hour),
            ["old"]
        );
    }

    #[test]
    fn the_private_key_is_never_printed() {
        let k = key("k", 0);
        assert!(!format!("{k:?}").contains("[1, 2, 3]"));
        assert!(format!("{k:?}").contains("redacted"));
    }

    #[test]
    fn pkce_is_checked_as_rfc_7636_says() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, &verifier.replace('d', "e")));
        assert!(!pkce_matches(verifier, verifier), "plain is not S256");
        assert!(!pkce_matches(challenge, "short"));
    }

    #[test]
    fn unknown_scopes_are_dropped_and_order_is_stable() {
        let s = Scopes::parse("email  openid admin:all groups");
        assert_eq!(s.to_string(), "openid email groups");
        assert!(s.covers(&Scopes::parse("openid email")));
        assert!(!s.covers(&Scopes::parse("openid profile")));
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = OidcClient {
            id: "c".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            groups: vec![],
            trusted: false,
            created_at: Timestamp::from_millis(0),
            declared: false,
        };
        assert!(c.allows_redirect("https://app.example.com/cb"));
        let native = OidcClient {
            redirect_uris: vec![
                "http://127.0.0.1/callback".into(),
                "http://[::1]:8080/cb".into(),
            ],
            ..c.clone()
        };
        // RFC 8252 §7.3: a loopback redirect takes any port; nothing else
        // may differ.
        assert!(native.allows_redirect("http://127.0.0.1:51234/callback"));
        assert!(native.allows_redirect("http://127.0.0.1/callback"));
        assert!(native.allows_redirect("http://[::1]:9/cb"));
        for other in [
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/callbacks",
            "http://127.0.0.1:5x/callback",
            "http://127.0.0.1.evil.test/callback",
            "http://127.0.0.1@evil.test/callback",
            "https://127.0.0.1:443/callback",
            "http://localhost:8080/callback",
        ] {
            assert!(!native.allows_redirect(other), "{other}");
        }
        assert!(
            !c.allows_redirect("https://app.example.com:8443/cb"),
            "only loopback"
        );
        for other in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/c",
            "https://APP.example.com/cb",
            "https://app.example.com/cb#x",
        ] {
            assert!(!c.allows_redirect(other), "{other}");
        }
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("app.immich:///oauth-callback").is_ok());
    }
}
