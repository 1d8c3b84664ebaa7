//! Route handlers, one file per page or API.

pub mod account;
pub mod health;
pub mod login;
pub mod logout;
pub mod summary;
