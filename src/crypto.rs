//! Randomness and hashing helpers that every layer may use: OS random
//! bytes, URL-safe random tokens, SHA-256. A leaf: it imports nothing of
//! gatehouse.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not something to carry on from: every
    // token we would make afterwards could be guessed.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// SHA-256 of `bytes`: how tokens in links and cookies are stored.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Random bytes as URL-safe base64 without padding, for tokens in cookies,
/// forms and links.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
