//! Invitations (SPEC §3): a token that lets someone sign up in `invite`
//! mode (or as an admin in any mode). The token travels in a link; the
//! store keeps only its SHA-256. Each may limit its uses, expire, be bound
//! to one email address, and be revoked.

use super::{EmailAddress, LinkToken, Role, UserId};
use crate::clock::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The secret in an invitation link: a `LinkToken` whose shape is checked
/// when typed (exactly 32 bytes of URL-safe base64).
pub struct InviteToken(LinkToken);

impl InviteToken {
    pub fn generate() -> Self {
        Self(LinkToken::generate())
    }

    /// A token as typed or pasted; only its shape is checked here.
    pub fn parse(raw: &str) -> Result<Self, InviteProblem> {
        let t = raw.trim();
        let ok = URL_SAFE_NO_PAD.decode(t).is_ok_and(|b| b.len() == 32);
        match LinkToken::parse(t) {
            Some(token) if ok => Ok(Self(token)),
            _ => Err(InviteProblem::Unknown),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn hash(&self) -> [u8; 32] {
        self.0.hash()
    }
}

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteToken(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    pub user: UserId,
    pub username: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invitation {
    pub id: u64,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// How many signups it allows in all.
    pub max_uses: u32,
    pub email: Option<EmailAddress>,
    pub role: Role,
    pub revoked_at: Option<Timestamp>,
    /// Made by the server at first start for the first admin.
    #[serde(default)]
    pub first_run: bool,
    #[serde(default)]
    pub redeemed: Vec<Redeemed>,
    /// Groups the accounts made with it join.
    #[serde(default)]
    pub groups: Vec<super::GroupName>,
}

/// Why an invitation cannot be used; each message says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteProblem {
    #[error(
        "This invitation token is not valid. Check that you copied the whole link, or ask for a new invitation."
    )]
    Unknown,
    #[error("This invitation has expired. Ask your administrator for a new one.")]
    Expired,
    #[error("This invitation was revoked. Ask your administrator for a new one.")]
    Revoked,
    #[error(
        "This invitation has been used as often as it allows. Ask your administrator for a new one."
    )]
    UsedUp,
    #[error(
        "This invitation is for another email address. Sign up with the address it was sent to, or ask for a new invitation."
    )]
    WrongEmail,
}

/// Where an invitation stands, for `invite list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteStatus {
    Active,
    Expired,
    Revoked,
    UsedUp,
}

impl fmt::Display for InviteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::UsedUp => "used up",
        })
    }
}

impl Invitation {
    pub fn uses_left(&self) -> u32 {
        self.max_uses
            .saturating_sub(u32::try_from(self.redeemed.len()).unwrap_or(u32::MAX))
    }

    pub fn status(&self, now: Timestamp) -> InviteStatus {
        if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.uses_left() == 0 {
            InviteStatus::UsedUp
        } else if self.expires_at.is_some_and(|t| now >= t) {
            InviteStatus::Expired
        } else {
            InviteStatus::Active
        }
    }

    /// May `email` sign up with this invitation at `now`?
    pub fn check(&self, now: Timestamp, email: &EmailAddress) -> Result<(), InviteProblem> {
        match self.status(now) {
            InviteStatus::Revoked => Err(InviteProblem::Revoked),
            InviteStatus::UsedUp => Err(InviteProblem::UsedUp),
            InviteStatus::Expired => Err(InviteProblem::Expired),
            InviteStatus::Active => match &self.email {
                Some(bound) if bound != email => Err(InviteProblem::WrongEmail),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Invitation {
        Invitation {
            id: 1,
            created_at: Timestamp::from_millis(0),
            expires_at: Some(Timestamp::from_millis(1000)),
            max_uses: 1,
            email: None,
            role: Role::User,
            revoked_at: None,
            first_run: false,
            redeemed: vec![],
            groups: vec![],
        }
    }

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn each_rule_says_which_it_is() {
        let at = Timestamp::from_millis;
        assert_eq!(invite().check(at(999), &email("a@x.org")), Ok(()));
        assert_eq!(
            invite().check(at(1000), &email("a@x.org")),
            Err(InviteProblem::Expired)
        );
        let mut i = invite();
        i.revoked_at = Some(at(1));
        assert_eq!(
            i.check(at(2), &email("a@x.org")),
            Err(InviteProblem::Revoked)
        );
        let mut i = invite();
        i.redeemed.push(Redeemed {
            user: UserId(1),
            username: "a".into(),
            at: at(1),
        });
        assert_eq!(
            i.check(at(2), &email("a@x.org")),
            Err(InviteProblem::UsedUp)
        );
        let mut i = invite();
        i.email = Some(email("b@x.org"));
        assert_eq!(
            i.check(at(2), &email("a@x.org")),
            Err(InviteProblem::WrongEmail)
        );
        assert_eq!(i.check(at(2), &email("B@x.org")), Ok(()));
    }

    #[test]
    fn tokens_are_256_bit_and_only_their_shape_is_parsed() {
        let t = InviteToken::generate();
        assert_eq!(InviteToken::parse(t.as_str()).unwrap().hash(), t.hash());
        assert_eq!(
            InviteToken::parse("short").err(),
            Some(InviteProblem::Unknown)
        );
    }
}
