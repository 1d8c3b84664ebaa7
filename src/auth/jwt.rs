//! ID tokens as JWTs (RFC 7519) signed with JWS RS256 (RFC 7515, 7518):
//! making a signing key, signing claims, checking a token gatehouse signed
//! (an `id_token_hint`), and the public keys as a JWK Set (RFC 7517).
//! JOSE is jsonwebtoken's (on ring); RSA key generation is the rsa
//! crate's (ring cannot make RSA keys). `alg` is fixed to RS256 in both
//! directions: `none` is never produced or accepted.

use crate::clock::Timestamp;
use crate::domain::oidc::{PrivateKey, SigningKey};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ALG: &str = "RS256";

/// RSA modulus size: 2048 bits, what every client accepts (NIST SP
/// 800-57: good until 2030).
const RSA_BITS: usize = 2048;

/// Makes a new RSA signing key, published from `now`, signing from
/// `signs_from`. Takes tens to hundreds of milliseconds: call it off the
/// async threads.
pub fn generate_key(now: Timestamp, signs_from: Timestamp) -> anyhow::Result<SigningKey> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(
        &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
        RSA_BITS,
    )
    .context("failed to make an RSA key")?;
    let der = key
        .to_pkcs1_der()
        .context("failed to encode the RSA key")?
        .as_bytes()
        .to_vec();
    Ok(SigningKey {
        kid: crate::crypto::random_token::<12>(),
        alg: ALG.into(),
        private: PrivateKey(der),
        n: URL_SAFE_NO_PAD.encode(key.n_bytes()),
        e: URL_SAFE_NO_PAD.encode(key.e_bytes()),
        created_at: now,
        signs_from,
    })
}

/// Signs `claims` with `key` (RS256, its `kid` in the header).
/// jsonwebtoken keeps the DER and parses it as it signs: nothing to cache.
pub fn sign<T: Serialize>(key: &SigningKey, claims: &T) -> anyhow::Result<String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&key.private.0))
        .with_context(|| format!("failed to sign with the key {}", key.kid))
}

/// The claims of a JWT that one of `keys` signed with RS256 and whose
/// `iss` is `issuer`; its expiry is not checked (an `id_token_hint` may
/// have expired, OIDC RP-Initiated Logout §2). None for anything else.
pub fn verify_ignoring_expiry<T: DeserializeOwned>(
    keys: &[SigningKey],
    issuer: &str,
    token: &str,
) -> Option<T> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != Algorithm::RS256 {
        return None;
    }
    let kid = header.kid?;
    let key = keys.iter().find(|k| k.kid == kid)?;
    let decoding = DecodingKey::from_rsa_components(&key.n, &key.e).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<T>(token, &decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

/// The JWK Set of `keys` (public members only: `kty n e`, never `d`).
pub fn jwks(keys: &[&SigningKey]) -> serde_json::Value {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kty": "RSA",
                "use": "sig",
                "alg": k.alg,
                "kid": k.kid,
                "n": k.n,
                "e": k.e,
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the
/// access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = crate::crypto::sha256(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn key() -> SigningKey {
        generate_key(Timestamp::from_millis(0), Timestamp::from_millis(0)).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_its_key_only() {
        let (a, b) = (key(), key());
        let token = sign(&a, &json!({"iss": "https://gate", "sub": "1", "exp": 1})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(a.kid.as_str()));
        let claims: Value =
            verify_ignoring_expiry(std::slice::from_ref(&a), "https://gate", &token).unwrap();
        assert_eq!(claims["sub"], "1");
        // Another key, another issuer: not ours.
        let mut b_as_a = b.clone();
        b_as_a.kid = a.kid.clone();
        assert!(verify_ignoring_expiry::<Value>(&[b_as_a], "https://gate", &token).is_none());
        assert!(
            verify_ignoring_expiry::<Value>(std::slice::from_ref(&a), "https://other", &token)
                .is_none()
        );
    }

    #[test]
    fn alg_none_and_hs256_are_refused() {
        let a = key();
        let body = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://gate","sub":"1","exp":1}"#);
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, a.kid));
        let unsigned = format!("{none_header}.{body}.");
        assert!(
            verify_ignoring_expiry::<Value>(std::slice::from_ref(&a), "https://gate", &unsigned)
                .is_none()
        );
        // HS256 "signed" with the public modulus as the secret (the
        // classic key-confusion attack).
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(a.kid.clone());
        let forged = jsonwebtoken::encode(
            &header,
            &json!({"iss": "https://gate", "sub": "1", "exp": 1}),
            &EncodingKey::from_secret(a.n.as_bytes()),
        )
        .unwrap();
        assert!(verify_ignoring_expiry::<Value>(&[a], "https://gate", &forged).is_none());
    }

    #[test]
    fn the_key_set_has_no_private_member() {
        let a = key();
        let set = jwks(&[&a]);
        let jwk = &set["keys"][0];
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["kid"], a.kid.as_str());
        assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
        assert_eq!(jwk["e"], "AQAB");
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OIDC Core's example is for SHA-256 of this ASCII value.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").len(),
            22
        );
    }
}
