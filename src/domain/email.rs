//! `EmailAddress`: a syntactically valid address in one normal form, so
//! that every way of writing an address is one account: NFKC (full-width
//! and compatibility characters become plain ones), lower case, and the
//! domain in its ASCII (punycode) form, so `Alice@Bücher.example` and
//! `alice@xn--bcher-kva.example` are the same. Control, direction and
//! zero-width characters are refused: they make two addresses look alike
//! (issue 11).

use super::login_id::is_invisible;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest address SMTP can carry (RFC 5321 4.5.3.1.3).
const MAX_EMAIL_LEN: usize = 254;

/// Stored records are read as they were written (`from` = String, no
/// check): a stricter rule must never make an account unreadable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter an email address.");
        }
        if trimmed.chars().any(is_invisible) {
            return Err(
                "The address holds an invisible or direction-changing character. Type the address again, without copying it.",
            );
        }
        let normal = normal_form(trimmed)?;
        if normal.len() > MAX_EMAIL_LEN {
            return Err("An email address is at most 254 characters long.");
        }
        if !email_address::EmailAddress::is_valid(&normal) || normal.starts_with('"') {
            return Err("Enter a valid email address, such as name@example.com.");
        }
        Ok(Self(normal))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// NFKC, lower case, and the domain in ASCII (IDNA to-ASCII).
fn normal_form(address: &str) -> Result<String, &'static str> {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(address);
    let lower = nfkc.to_lowercase();
    let Some((local, domain)) = lower.rsplit_once('@') else {
        return Err("Enter a valid email address, such as name@example.com.");
    };
    if domain.is_empty() {
        return Err("Enter a valid email address, such as name@example.com.");
    }
    let domain = idna::domain_to_ascii(domain).map_err(
        |_| "The part after the @ is not a valid domain name. Check it, such as example.com.",
    )?;
    Ok(format!("{local}@{domain}"))
}

/// A stored address, as it was written.
impl From<String> for EmailAddress {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let e = EmailAddress::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice@example.com");
    }

    #[test]
    fn every_spelling_of_an_address_is_one_normal_form() {
        let one = |s: &str| EmailAddress::parse(s).unwrap().as_str().to_string();
        assert_eq!(one("ALICE@BÜCHER.example"), "alice@xn--bcher-kva.example");
        assert_eq!(
            one("alice@xn--bcher-kva.example"),
            "alice@xn--bcher-kva.example"
        );
        // Full-width letters and the full-width @ (NFKC).
        assert_eq!(one("ａｌｉｃｅ＠example.com"), "alice@example.com");
        // Normalising twice changes nothing.
        let n = one("Zoë@Ünïcode.example");
        assert_eq!(one(&n), n);
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for raw in [
            "ali\u{200B}ce@example.com",
            "alice@exa\u{200D}mple.com",
            "\u{202E}alice@example.com",
            "alice@example.com\u{2066}",
            "al\u{00AD}ice@example.com",
            "alice\n@example.com",
        ] {
            let err = EmailAddress::parse(raw).unwrap_err();
            assert!(
                err.contains("invisible or direction-changing"),
                "{raw:?}: {err}"
            );
        }
    }

    #[test]
    fn stored_addresses_are_read_as_written() {
        // Written before normalisation existed: still readable, unchanged.
        let old: EmailAddress = serde_json::from_str("\"bob@bücher.example\"").unwrap();
        assert_eq!(old.as_str(), "bob@bücher.example");
        let odd: EmailAddress = serde_json::from_str("\"b\\u200bob@example.com\"").unwrap();
        assert_eq!(odd.as_str(), "b\u{200B}ob@example.com");
    }

    #[test]
    fn bad_addresses_say_what_to_do() {
        assert_eq!(EmailAddress::parse(""), Err("Enter an email address."));
        assert!(EmailAddress::parse("alice").is_err());
        assert!(EmailAddress::parse("alice@").is_err());
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
