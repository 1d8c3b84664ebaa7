//! Passwords: `Password` is what someone typed at login (any text up to
//! 1024 bytes); `NewPassword` is one that passed the password rule and may
//! be hashed and stored. Neither prints its content in `Debug`, so a stray
//! `{:?}` can never put a password in the log.

use std::collections::HashSet;
use std::fmt;

/// Longest accepted password. Long passphrases in any script must work
/// (64 Korean characters are 192 bytes), and nothing is truncated: the
/// hashing scheme digests the whole password first (SPEC §3, §4).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("Enter your password.");
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err("A password is at most 1024 bytes long.");
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Which rule new passwords must follow (`--password-policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// The seed's rule: more than 8 characters, with a letter, a digit and
    /// a special character.
    Seed { min_len: usize },
    /// NIST SP 800-63B / ASVS 5.0 6.2: length alone, at least 15.
    Nist { min_len: usize },
}

impl PasswordPolicy {
    pub fn min_len(self) -> usize {
        match self {
            Self::Seed { min_len } | Self::Nist { min_len } => min_len,
        }
    }
}

/// Passwords too common to allow: 20,000 from Django's list (BSD; see
/// `data/README.md`), compared ignoring case. Built once at start.
pub struct CommonPasswords(HashSet<&'static str>);

impl CommonPasswords {
    pub fn embedded() -> Self {
        Self(
            include_str!("data/common-passwords.txt")
                .lines()
                .filter(|l| !l.is_empty())
                .collect(),
        )
    }

    pub fn contains(&self, password: &str) -> bool {
        self.0.contains(password.to_lowercase().as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a new password was refused; each says what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort(usize),
    TooLong,
    NeedsLetter,
    NeedsDigit,
    NeedsSpecial,
    SameAsId,
    Common,
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "Use at least {n} characters."),
            Self::TooLong => f.write_str("Use at most 1024 bytes."),
            Self::NeedsLetter => f.write_str("Add at least one letter."),
            Self::NeedsDigit => f.write_str("Add at least one digit."),
            Self::NeedsSpecial => {
                f.write_str("Add at least one special character, such as ! or #.")
            }
            Self::SameAsId => {
                f.write_str("Choose a password that is not your email address or username.")
            }
            Self::Common => f.write_str(
                "This password is on a list of commonly used passwords. Choose a less common one.",
            ),
        }
    }
}

#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Checks `raw` against `policy` and the common list; `ids` are the
    /// account's email and username, which the password may not equal
    /// (ignoring case).
    pub fn parse(
        policy: PasswordPolicy,
        common: &CommonPasswords,
        raw: String,
        ids: &[&str],
    ) -> Result<Self, Vec<PasswordProblem>> {
        let mut problems = Vec::new();
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(vec![PasswordProblem::TooLong]);
        }
        // Characters, not bytes: 9 Korean characters are 9, not 27.
        if raw.chars().count() < policy.min_len() {
            problems.push(PasswordProblem::TooShort(policy.min_len()));
        }
        if let PasswordPolicy::Seed { .. } = policy {
            if !raw.chars().any(char::is_alphabetic) {
                problems.push(PasswordProblem::NeedsLetter);
            }
            if !raw.chars().any(|c| c.is_numeric()) {
                problems.push(PasswordProblem::NeedsDigit);
            }
            if !raw
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
            {
                problems.push(PasswordProblem::NeedsSpecial);
            }
        }
        let lowered = raw.to_lowercase();
        if ids
            .iter()
            .any(|id| !id.is_empty() && id.to_lowercase() == lowered)
        {
            problems.push(PasswordProblem::SameAsId);
        }
        if common.contains(&raw) {
            problems.push(PasswordProblem::Common);
        }
        if problems.is_empty() {
            Ok(Self(raw))
        } else {
            Err(problems)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: PasswordPolicy = PasswordPolicy::Seed { min_len: 9 };
    const NIST: PasswordPolicy = PasswordPolicy::Nist { min_len: 15 };

    fn check(
        policy: PasswordPolicy,
        raw: &str,
        ids: &[&str],
    ) -> Result<NewPassword, Vec<PasswordProblem>> {
        NewPassword::parse(policy, &CommonPasswords::embedded(), raw.to_string(), ids)
    }

    #[test]
    fn the_seed_rule_wants_length_letter_digit_and_special() {
        assert!(check(SEED, "abcdef1!x", &[]).is_ok());
        assert_eq!(
            check(SEED, "abcdef1!", &[]).unwrap_err(),
            vec![PasswordProblem::TooShort(9)]
        );
        assert_eq!(
            check(SEED, "zqxjkvbnmw", &[]).unwrap_err(),
            vec![PasswordProblem::NeedsDigit, PasswordProblem::NeedsSpecial]
        );
    }

    #[test]
    fn nist_wants_length_only() {
        assert!(check(NIST, "correct horse battery", &[]).is_ok());
        assert!(check(NIST, "short one", &[]).is_err());
    }

    #[test]
    fn long_passwords_in_any_script_are_accepted_up_to_1024_bytes() {
        let korean = format!("{}1!", "비밀번호".repeat(16));
        assert!(check(SEED, &korean, &[]).is_ok());
        let too_long = "a1!".repeat(341) + "ab"; // 1025 bytes
        assert_eq!(too_long.len(), 1025);
        assert_eq!(
            check(SEED, &too_long, &[]).unwrap_err(),
            vec![PasswordProblem::TooLong]
        );
    }

    #[test]
    fn a_password_equal_to_the_id_is_refused() {
        let err = check(NIST, "Alice@Example.com", &["alice@example.com"]);
        assert!(err.unwrap_err().contains(&PasswordProblem::SameAsId));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert!(CommonPasswords::embedded().len() > 19_000);
        // Long enough, with a letter, digit and special: only too common.
        assert_eq!(
            check(SEED, "Password1!", &[]).unwrap_err(),
            vec![PasswordProblem::Common]
        );
        assert_eq!(
            check(NIST, "1q2w3e4r5t6y7u8i", &[]).unwrap_err(),
            vec![PasswordProblem::Common]
        );
        assert!(check(SEED, "Tr0ub4dor&3x", &[]).is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
