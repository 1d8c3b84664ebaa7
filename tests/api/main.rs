//! The one integration test binary: every file here is a module, so the
//! suite links once and runs in parallel. Each test gets its own temp data
//! directory, its own app on port 0 and its own manual clock.

mod account;
mod admin;
mod bad_input;
mod browser;
mod browser_a11y;
mod browser_journeys;
mod browser_mail;
mod browser_signup;
mod cli;
mod edge;
mod forward_auth;
mod groups;
mod layers;
mod lockout;
mod login;
mod mail;
mod oidc;
mod oidc_apache;
mod oidc_browser;
mod packaging;
mod passkeys;
mod passkeys_browser;
mod postgres;
mod proxies;
mod replicas;
mod screenshots;
mod second_factor;
mod sessions;
mod signup;
mod smtp;
mod summary;
mod support;
