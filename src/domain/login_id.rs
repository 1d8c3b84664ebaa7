//! `LoginId`: what a person typed into the ID field, normalised. It is the
//! key of the lockout counter whether or not an account has that ID, so that
//! a guesser learns nothing from how the counter behaves (SPEC §4).

use std::fmt;

const MAX_ID_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoginId(String);

impl LoginId {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let id = raw.trim();
        if id.is_empty() {
            return Err("Enter your ID: your email address or username.");
        }
        if id.len() > MAX_ID_LEN {
            return Err("An ID is at most 254 characters long.");
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
