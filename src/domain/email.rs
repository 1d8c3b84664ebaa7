//! `EmailAddress`: a syntactically valid address, normalised to lower case
//! so that `Alice@Example.com` and `alice@example.com` are one account.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest address SMTP can carry (RFC 5321 4.5.3.1.3).
const MAX_EMAIL_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter an email address.");
        }
        if trimmed.len() > MAX_EMAIL_LEN {
            return Err("An email address is at most 254 characters long.");
        }
        if !email_address::EmailAddress::is_valid(trimmed) || trimmed.starts_with('"') {
            return Err("Enter a valid email address, such as name@example.com.");
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
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
    fn bad_addresses_say_what_to_do() {
        assert_eq!(EmailAddress::parse(""), Err("Enter an email address."));
        assert!(EmailAddress::parse("alice").is_err());
        assert!(EmailAddress::parse("alice@").is_err());
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
