//! `Username`: 3 to 32 letters, digits, `.`, `_` or `-`; kept as typed for
//! display, compared ignoring case (`key`).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a username.");
        }
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err("A username has 3 to 32 characters.");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("A username may use only letters, digits, '.', '_' and '-'.");
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and look-up: `Alice` and `alice` are one.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The username proposed for an account made from an email address
    /// alone: its local part, cleaned to the allowed characters.
    pub fn from_email_local_part(email: &str) -> Option<Self> {
        let local = email.split('@').next().unwrap_or_default();
        let cleaned: String = local
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(32)
            .collect();
        Self::parse(&cleaned).ok()
    }
}

impl TryFrom<String> for Username {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_their_case_but_compare_without_it() {
        let u = Username::parse("Alice_01").unwrap();
        assert_eq!(u.as_str(), "Alice_01");
        assert_eq!(u.key(), "alice_01");
    }

    #[test]
    fn bad_usernames_are_refused() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alice@x").is_err());
    }

    #[test]
    fn a_username_is_proposed_from_an_email() {
        assert_eq!(
            Username::from_email_local_part("bob.smith+x@example.com")
                .unwrap()
                .as_str(),
            "bob.smithx"
        );
        assert!(Username::from_email_local_part("b@example.com").is_none());
    }
}
