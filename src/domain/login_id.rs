//! `LoginId`: what a person typed into the ID field, normalised. It is the
//! key of the lockout counter whether or not an account has that ID, so that
//! a guesser learns nothing from how the counter behaves (SPEC §4).

use std::fmt;

const MAX_ID_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoginId(String);

/// Control characters (newline, escape …), bidirectional marks,
/// overrides and isolates, zero-width and other invisible characters (the
/// soft hyphen, the Mongolian vowel separator, line separators): none is
/// part of a name, and each can forge a log line or make two names look
/// alike. One check for login IDs and email addresses.
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

impl LoginId {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let id = raw.trim();
        if id.is_empty() {
            return Err("Enter your ID: your email address or username.");
        }
        if id.len() > MAX_ID_LEN {
            return Err("An ID is at most 254 characters long.");
        }
        // No email address or username holds them, and in a log line or
        // an audit event they could forge a line or hide text (issue 11).
        if id.chars().any(is_invisible) {
            return Err(
                "The ID holds a character that cannot be part of an email address or username (a control, direction or zero-width character). Retype it.",
            );
        }
        // An address is keyed in its normal form (NFKC, punycode domain),
        // so every spelling of it is one counter and one look-up.
        if id.contains('@')
            && let Ok(email) = super::EmailAddress::parse(id)
        {
            return Ok(Self(email.as_str().to_string()));
        }
        Ok(Self(id.to_lowercase()))
    }

    /// An ID with an `@` is an email address; any other is a username.
    pub fn is_email(&self) -> bool {
        self.0.contains('@')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of this ID's lockout counter.
    pub fn lockout_key(&self) -> String {
        format!("id:{}", self.0)
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_direction_and_zero_width_characters_are_refused() {
        for raw in [
            "ann\nFAKE log line",
            "ann\u{1b}[31m",
            "a\u{202E}nn",
            "a\u{200B}nn",
            "\u{FEFF}ann",
        ] {
            assert!(super::LoginId::parse(raw).is_err(), "{raw:?}");
        }
        assert!(super::LoginId::parse("  Ann@Example.com ").is_ok());
        assert!(
            super::LoginId::parse("한국어").is_ok(),
            "other scripts are fine"
        );
    }

    use super::*;

    #[test]
    fn ids_are_normalised() {
        assert_eq!(
            LoginId::parse(" Alice@Example.com ").unwrap().as_str(),
            "alice@example.com"
        );
        assert!(LoginId::parse("ALICE").unwrap().lockout_key() == "id:alice");
    }

    #[test]
    fn empty_and_oversize_ids_are_refused() {
        assert!(LoginId::parse("   ").is_err());
        assert!(LoginId::parse(&"a".repeat(255)).is_err());
    }
}
