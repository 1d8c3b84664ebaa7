//! maud views: functions from plain values to HTML. No handler logic here,
//! and no user-supplied text outside maud's escaping.

pub mod account;
pub mod consent;
pub mod documents;
pub mod error;
pub mod icons;
pub mod layout;
pub mod login;
pub mod oidc;
pub mod recovery;
pub mod second_factor;
pub mod signup;
pub mod summary;
