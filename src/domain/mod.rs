//! Domain types: values parsed once at the edge (forms, CLI arguments) and
//! trusted everywhere below it. Each has a private field and a `parse`
//! that says, in words fit for a form, what is wrong with a bad input.

mod email;
mod invite;
mod login_id;
mod password;
mod user;
mod username;

pub use email::EmailAddress;
pub use invite::{Invitation, InviteProblem, InviteStatus, InviteToken, Redeemed};
pub use login_id::LoginId;
pub use password::{
    CommonPasswords, MAX_PASSWORD_BYTES, NewPassword, Password, PasswordPolicy, PasswordProblem,
};
pub use user::{Consent, LoginRecord, Role, User, UserId, UserStatus};
pub use username::Username;
