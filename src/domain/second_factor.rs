//! Second factors as pure rules (issue 15): authenticator-app codes (TOTP,
//! RFC 6238: 6 digits, 30-second steps, one step of clock skew either way,
//! each step accepted once) and recovery codes (ten, single use, kept as
//! SHA-256 hashes). The TOTP arithmetic is totp-rs's; what a code may do
//! (skew, replay) is decided here, so every backend applies the same rule
//! inside its own transaction. Passkeys (WebAuthn) are webauthn-rs's
//! `Passkey`, kept here with a name; the ceremony is `auth::passkeys`.

use crate::clock::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Digits of a code, as every authenticator app shows them.
pub const TOTP_DIGITS: usize = 6;
/// Seconds a code is valid for (RFC 6238's default, what apps assume).
pub const TOTP_STEP: u64 = 30;
/// Steps accepted before and after the current one (clock skew).
pub const TOTP_SKEW: u16 = 1;
/// Bytes of a new secret: 160 bits, RFC 4226 §4's recommendation.
const SECRET_BYTES: usize = 20;

/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code: 24 of 32 letters and digits, 120 bits,
/// beyond any search of its fast hash (ASVS 5.0 6.5.2 lets a plain hash
/// stand from 112 bits), shown in groups of four.
const RECOVERY_CHARS: usize = 24;

/// The shared secret of an authenticator app: never in a log or a debug
/// print; shown once, at enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl Serialize for TotpSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for TotpSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// What a typed code is, against a secret and the last accepted step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpCheck {
    /// Right, and newer than any accepted before: remember this step.
    Accepted { step: u64 },
    /// Right, but its step (or a later one) was accepted already: a code
    /// seen twice (RFC 6238 §5.2).
    Replayed,
    /// Not a code of this secret now (or not six digits).
    Wrong,
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(crate::crypto::random_bytes::<SECRET_BYTES>().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    fn totp(&self, issuer: &str, account: &str) -> Option<totp_rs::Totp> {
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(TOTP_DIGITS as u8)
            .with_step_duration(TOTP_STEP)
            .with_skew(TOTP_SKEW)
            .with_secret(self.0.clone())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .ok()
    }

    /// A secret as an app's "enter a key" field shows it (base32; spaces
    /// and case ignored), as a test or a script reads it off the page.
    pub fn from_base32(text: &str) -> Option<Self> {
        let text: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        totp_rs::Secret::try_from_base32(text)
            .ok()
            .map(|s| Self(s.as_bytes().to_vec()))
    }

    /// The secret as an app's "enter a key" field takes it (base32).
    pub fn base32(&self) -> String {
        totp_rs::Secret::from(self.0.clone()).to_base32()
    }

    /// The `otpauth://totp/…` URI a QR code carries.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account)
            .and_then(|t| t.to_url().ok())
            .unwrap_or_default()
    }

    /// The code of this secret at `now` (for tests and the enrolment
    /// page's check, never shown).
    pub fn code_at(&self, now: Timestamp) -> String {
        self.totp("gatehouse", "account")
            .map(|t| t.generate(seconds(now)).to_string())
            .unwrap_or_default()
    }

    /// Judges `typed` at `now`: six digits (spaces ignored) that match the
    /// current step or one either side, newer than `last_step`.
    pub fn check(&self, typed: &str, now: Timestamp, last_step: Option<u64>) -> TotpCheck {
        let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return TotpCheck::Wrong;
        }
        let Some(totp) = self.totp("gatehouse", "account") else {
            return TotpCheck::Wrong;
        };
        match totp.check(&code, seconds(now)) {
            Some(step) if last_step.is_some_and(|last| step <= last) => TotpCheck::Replayed,
            Some(step) => TotpCheck::Accepted { step },
            None => TotpCheck::Wrong,
        }
    }
}

/// An authenticator app of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpFactor {
    pub secret: TotpSecret,
    pub added_at: Timestamp,
    /// Set once the user typed a right code at enrolment: only then does
    /// it guard the login.
    #[serde(default)]
    pub confirmed_at: Option<Timestamp>,
    /// The newest step accepted: no code of it or before works again.
    #[serde(default)]
    pub last_step: Option<u64>,
}

/// Characters of a passkey's name.
pub const PASSKEY_NAME_CHARS: usize = 64;
/// Passkeys one account may have.
pub const MAX_PASSKEYS: usize = 20;

/// A passkey of an account: webauthn-rs's record (public key, credential
/// ID, counter) with the owner's name for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasskeyFactor {
    /// Its number on the account (the forms name it so).
    pub id: u32,
    pub name: String,
    pub added_at: Timestamp,
    #[serde(default)]
    pub last_used: Option<Timestamp>,
    pub key: webauthn_rs::prelude::Passkey,
}

impl PartialEq for PasskeyFactor {
    fn eq(&self, other: &Self) -> bool {
        // webauthn-rs's record has no equality; its JSON does.
        self.id == other.id
            && self.name == other.name
            && self.added_at == other.added_at
            && self.last_used == other.last_used
            && serde_json::to_string(&self.key).ok() == serde_json::to_string(&other.key).ok()
    }
}
impl Eq for PasskeyFactor {}

/// A passkey's name as typed: trimmed, at most 64 characters, not empty
/// (a default is made from the time).
pub fn passkey_name(typed: &str, fallback: &str) -> String {
    let name: String = typed
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(PASSKEY_NAME_CHARS)
        .collect();
    if name.is_empty() {
        fallback.to_string()
    } else {
        name
    }
}

/// What an account has as its second factor, kept apart from the account
/// record (which every session check reads): changed only inside a
/// store transaction through the rules below.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactors {
    #[serde(default)]
    pub totp: Option<TotpFactor>,
    /// The SHA-256 of each unused recovery code.
    #[serde(default)]
    pub recovery: Vec<[u8; 32]>,
    #[serde(default)]
    pub recovery_made_at: Option<Timestamp>,
    #[serde(default)]
    pub passkeys: Vec<PasskeyFactor>,
    /// The random half of the account's WebAuthn user handle (the other
    /// half is its ID): a passkey that names it names the account.
    #[serde(default)]
    pub webauthn_user: Option<u64>,
}

/// What a recovery code did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryUse {
    /// It was one of the unused codes; it is used up now.
    Used {
        remaining: usize,
    },
    Wrong,
}

/// One change to an account's second factors, applied by a store inside
/// one transaction (`SecondFactors::apply`), so that two logins racing with
/// one code cannot both pass.
#[derive(Clone, Debug)]
pub enum FactorChange {
    /// A new app, not yet confirmed (replaces one not confirmed).
    AddTotp(TotpFactor),
    RemoveTotp,
    ConfirmTotp {
        typed: String,
        now: Timestamp,
    },
    AcceptTotp {
        typed: String,
        now: Timestamp,
    },
    /// New recovery codes (the old ones stop working).
    SetRecovery {
        hashes: Vec<[u8; 32]>,
        now: Timestamp,
    },
    UseRecovery {
        typed: String,
    },
    /// Every factor gone (an admin's reset for a lost device).
    Clear,
    /// The account's WebAuthn user handle: this random half unless it has
    /// one already.
    EnsureWebauthnUser(u64),
    /// A new passkey (its `id` is given here); refused when the
    /// credential is there already or the account has the most it may.
    AddPasskey(Box<PasskeyFactor>),
    RemovePasskey {
        id: u32,
    },
    RenamePasskey {
        id: u32,
        name: String,
    },
    /// A passkey proved the owner: its counter and last use updated.
    UsePasskey {
        result: Box<webauthn_rs::prelude::AuthenticationResult>,
        now: Timestamp,
    },
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorOutcome {
    Done,
    /// `AddTotp` when a confirmed app exists: remove it first.
    AlreadyEnrolled,
    Totp(TotpCheck),
    Recovery(RecoveryUse),
    /// The handle's random half (`EnsureWebauthnUser`).
    WebauthnUser(u64),
    /// `AddPasskey` refused: that credential is there, or too many.
    PasskeyRefused,
    /// A passkey change named none of the account's.
    NoSuchPasskey,
}

impl SecondFactors {
    /// Applies `change`; the caller stores the result in the same
    /// transaction.
    pub fn apply(&mut self, change: FactorChange) -> FactorOutcome {
        match change {
            FactorChange::AddTotp(factor) => {
                if self.has_app() {
                    return FactorOutcome::AlreadyEnrolled;
                }
                self.totp = Some(factor);
                FactorOutcome::Done
            }
            FactorChange::RemoveTotp => {
                self.totp = None;
                self.drop_recovery_if_unguarded();
                FactorOutcome::Done
            }
            FactorChange::ConfirmTotp { typed, now } => {
                FactorOutcome::Totp(self.confirm_totp(&typed, now))
            }
            FactorChange::AcceptTotp { typed, now } => {
                FactorOutcome::Totp(self.accept_totp(&typed, now))
            }
            FactorChange::SetRecovery { hashes, now } => {
                self.recovery = hashes;
                self.recovery_made_at = Some(now);
                FactorOutcome::Done
            }
            FactorChange::UseRecovery { typed } => {
                FactorOutcome::Recovery(self.use_recovery(&typed))
            }
            FactorChange::Clear => {
                // The handle stays: passkeys made for it elsewhere still
                // name this account, not a stranger.
                let handle = self.webauthn_user;
                *self = Self::default();
                self.webauthn_user = handle;
                FactorOutcome::Done
            }
            FactorChange::EnsureWebauthnUser(random) => {
                FactorOutcome::WebauthnUser(*self.webauthn_user.get_or_insert(random))
            }
            FactorChange::AddPasskey(mut passkey) => {
                let id = passkey.key.cred_id();
                if self.passkeys.len() >= MAX_PASSKEYS
                    || self.passkeys.iter().any(|p| p.key.cred_id() == id)
                {
                    return FactorOutcome::PasskeyRefused;
                }
                passkey.id = self.passkeys.iter().map(|p| p.id).max().unwrap_or(0) + 1;
                self.passkeys.push(*passkey);
                FactorOutcome::Done
            }
            FactorChange::RemovePasskey { id } => {
                let before = self.passkeys.len();
                self.passkeys.retain(|p| p.id != id);
                if self.passkeys.len() == before {
                    return FactorOutcome::NoSuchPasskey;
                }
                self.drop_recovery_if_unguarded();
                FactorOutcome::Done
            }
            FactorChange::RenamePasskey { id, name } => {
                match self.passkeys.iter_mut().find(|p| p.id == id) {
                    Some(p) => {
                        p.name = name;
                        FactorOutcome::Done
                    }
                    None => FactorOutcome::NoSuchPasskey,
                }
            }
            FactorChange::UsePasskey { result, now } => {
                match self
                    .passkeys
                    .iter_mut()
                    .find(|p| p.key.cred_id() == result.cred_id())
                {
                    Some(p) => {
                        p.key.update_credential(&result);
                        p.last_used = Some(now);
                        FactorOutcome::Done
                    }
                    None => FactorOutcome::NoSuchPasskey,
                }
            }
        }
    }

    /// Recovery codes stand in for a factor: with none left, they go.
    fn drop_recovery_if_unguarded(&mut self) {
        if !self.is_enrolled() {
            self.recovery.clear();
            self.recovery_made_at = None;
        }
    }

    /// A confirmed app.
    pub fn has_app(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed_at.is_some())
    }

    /// The passkey of this credential ID, if it is one of the account's.
    pub fn passkey(&self, cred_id: &[u8]) -> Option<&PasskeyFactor> {
        self.passkeys
            .iter()
            .find(|p| p.key.cred_id().as_slice() == cred_id)
    }

    /// Does a login need a second step?
    pub fn is_enrolled(&self) -> bool {
        self.has_app() || !self.passkeys.is_empty()
    }

    /// Checks a code of the confirmed app and, if accepted, remembers its
    /// step (the caller stores the result in the same transaction).
    pub fn accept_totp(&mut self, typed: &str, now: Timestamp) -> TotpCheck {
        match self.totp.as_mut() {
            Some(t) if t.confirmed_at.is_some() => {
                let check = t.secret.check(typed, now, t.last_step);
                if let TotpCheck::Accepted { step } = check {
                    t.last_step = Some(step);
                }
                check
            }
            _ => TotpCheck::Wrong,
        }
    }

    /// Enrolment's last step: the first right code confirms the app.
    pub fn confirm_totp(&mut self, typed: &str, now: Timestamp) -> TotpCheck {
        match self.totp.as_mut() {
            Some(t) if t.confirmed_at.is_none() => {
                let check = t.secret.check(typed, now, t.last_step);
                if let TotpCheck::Accepted { step } = check {
                    t.last_step = Some(step);
                    t.confirmed_at = Some(now);
                }
                check
            }
            _ => TotpCheck::Wrong,
        }
    }

    /// Uses up a recovery code.
    pub fn use_recovery(&mut self, typed: &str) -> RecoveryUse {
        match find_recovery_code(&self.recovery, typed) {
            Some(i) => {
                self.recovery.remove(i);
                RecoveryUse::Used {
                    remaining: self.recovery.len(),
                }
            }
            None => RecoveryUse::Wrong,
        }
    }
}

fn seconds(now: Timestamp) -> u64 {
    u64::try_from(now.as_millis() / 1000).unwrap_or(0)
}

/// New recovery codes: what the user is shown once (`abcd-efgh-…`, six
/// groups), and
/// what is kept (the SHA-256 of each, normalised).
pub fn generate_recovery_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut kept = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let bytes = crate::crypto::random_bytes::<RECOVERY_CHARS>();
        let raw: String = bytes
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect();
        kept.push(recovery_hash(&raw).expect("a code we made is well formed"));
        let grouped: Vec<&str> = (0..RECOVERY_CHARS)
            .step_by(4)
            .map(|i| &raw[i..i + 4])
            .collect();
        shown.push(grouped.join("-"));
    }
    (shown, kept)
}

/// The hash a typed recovery code is kept and compared under: dashes and
/// spaces dropped, lower case. None: not the shape of a recovery code.
pub fn recovery_hash(typed: &str) -> Option<[u8; 32]> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    (code.len() == RECOVERY_CHARS && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| crate::crypto::sha256(code.as_bytes()))
}

/// Which of the unused `kept` codes `typed` is, compared in constant time
/// against each.
pub fn find_recovery_code(kept: &[[u8; 32]], typed: &str) -> Option<usize> {
    use subtle::ConstantTimeEq;
    let hash = recovery_hash(typed)?;
    let mut found = None;
    for (i, k) in kept.iter().enumerate() {
        if bool::from(k.ct_eq(&hash)) {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        // RFC 6238 appendix B's SHA-1 seed.
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn codes_are_rfc_6238s_last_six_digits() {
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(rfc_secret().code_at(at(t)), code, "T={t}");
            assert!(matches!(
                rfc_secret().check(code, at(t), None),
                TotpCheck::Accepted { .. }
            ));
        }
    }

    #[test]
    fn one_step_of_skew_is_accepted_and_a_code_only_once() {
        let s = TotpSecret::generate();
        let now = at(1_767_225_615);
        let code = s.code_at(now);
        let TotpCheck::Accepted { step } = s.check(&code, now, None) else {
            panic!("the current code")
        };
        assert_eq!(s.check(&code, now, Some(step)), TotpCheck::Replayed);
        assert_eq!(
            s.check(&s.code_at(at(1_767_225_615 - 30)), now, Some(step)),
            TotpCheck::Replayed,
            "an older step after a newer one"
        );
        assert!(matches!(
            s.check(&code, at(1_767_225_615 + 30), None),
            TotpCheck::Accepted { .. }
        ));
        assert_eq!(
            s.check(&code, at(1_767_225_615 + 90), None),
            TotpCheck::Wrong
        );
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(matches!(
            s.check(&spaced, now, None),
            TotpCheck::Accepted { .. }
        ));
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(s.check(bad, now, None), TotpCheck::Wrong, "{bad:?}");
        }
    }

    #[test]
    fn the_secret_is_shown_as_base32_and_in_the_otpauth_uri_only() {
        let s = rfc_secret();
        assert_eq!(s.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = s.otpauth_uri("gatehouse", "ann@example.com");
        assert!(
            uri.starts_with("otpauth://totp/gatehouse:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
                && uri.contains("issuer=gatehouse")
        );
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<TotpSecret>(&json).unwrap(), s);
    }

    #[test]
    fn an_app_guards_the_login_once_confirmed_and_each_code_works_once() {
        let now = at(1_767_225_615);
        let secret = TotpSecret::generate();
        let mut f = SecondFactors {
            totp: Some(TotpFactor {
                secret: secret.clone(),
                added_at: now,
                confirmed_at: None,
                last_step: None,
            }),
            ..Default::default()
        };
        assert!(!f.is_enrolled(), "not before a right code");
        assert_eq!(f.accept_totp(&secret.code_at(now), now), TotpCheck::Wrong);
        assert_eq!(f.confirm_totp("000000", now), TotpCheck::Wrong);
        assert!(matches!(
            f.confirm_totp(&secret.code_at(now), now),
            TotpCheck::Accepted { .. }
        ));
        assert!(f.is_enrolled());
        assert_eq!(
            f.accept_totp(&secret.code_at(now), now),
            TotpCheck::Replayed,
            "the confirming code is spent"
        );
        let later = at(1_767_225_615 + 30);
        assert!(matches!(
            f.accept_totp(&secret.code_at(later), later),
            TotpCheck::Accepted { .. }
        ));
        assert_eq!(
            f.accept_totp(&secret.code_at(later), later),
            TotpCheck::Replayed
        );
        assert_eq!(
            f.confirm_totp(&secret.code_at(later), later),
            TotpCheck::Wrong,
            "confirmed once"
        );
    }

    #[test]
    fn a_recovery_code_is_used_up() {
        let (shown, kept) = generate_recovery_codes();
        let mut f = SecondFactors {
            recovery: kept,
            ..Default::default()
        };
        assert_eq!(
            f.use_recovery(&shown[0]),
            RecoveryUse::Used { remaining: 9 }
        );
        assert_eq!(f.use_recovery(&shown[0]), RecoveryUse::Wrong);
        assert_eq!(
            f.use_recovery(&shown[9]),
            RecoveryUse::Used { remaining: 8 }
        );
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<SecondFactors>(&json).unwrap(), f);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_found_by_their_hash() {
        let (shown, kept) = generate_recovery_codes();
        assert_eq!((shown.len(), kept.len()), (10, 10));
        let mut unique = kept.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(shown[0].len(), 29, "six groups of four");
        assert_eq!(find_recovery_code(&kept, &shown[3]), Some(3));
        assert_eq!(
            find_recovery_code(&kept, &shown[3].to_uppercase().replace('-', " ")),
            Some(3)
        );
        assert_eq!(
            find_recovery_code(&kept, "aaaa-bbbb-cccc-dddd-eeee-ffff"),
            None
        );
        assert_eq!(find_recovery_code(&kept, "short"), None);
    }
}
