//! Groups of users (SPEC §9): what access rules and, later, OpenID
//! clients name. A group's name is its identity: 1 to 64 lower-case
//! letters, digits, `.`, `_` or `-`, starting with a letter or digit, so
//! that it can stand in a comma-separated `Remote-Groups` header and in a
//! TOML list without quoting.

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    /// A name as typed; upper-case letters are taken as lower-case
    /// (`Admins` is `admins`).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("Give a group name.");
        }
        if name.len() > 64 {
            return Err("A group name has at most 64 characters.");
        }
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok
            || !name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
        {
            return Err(
                "A group name may use only letters, digits, '.', '_' and '-', and starts with a letter or digit.",
            );
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GroupName> for String {
    fn from(g: GroupName) -> String {
        g.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group as stored. Its members are kept on the accounts
/// (`User::groups`), so that checking a session reads them with the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: GroupName,
    pub created_at: Timestamp,
}

/// What a change of membership found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// The change was made.
    Changed,
    /// Nothing to do: already a member (add), or not one (remove).
    Unchanged,
    NoGroup,
    NoUser,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_plain() {
        assert_eq!(GroupName::parse(" Admins ").unwrap().as_str(), "admins");
        assert_eq!(
            GroupName::parse("team-2.ops_x").unwrap().as_str(),
            "team-2.ops_x"
        );
        for bad in ["", "-x", ".x", "a,b", "a b", "ädmins", &"x".repeat(65)] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
