//! The login dialog (seed "Log in"): ID, password, API endpoint, LOGIN.

use super::layout;
use super::signup::CLOSED_TEXT;
use crate::clock::Timestamp;
use maud::{Markup, html};

/// A message above the form.
pub enum Notice {
    Info(String),
    Error(String),
    /// The ID is locked (seed: 20 minutes after more than 10 failures).
    Locked {
        until: Timestamp,
        minutes: u64,
    },
}

pub struct LoginView<'a> {
    pub csrf: &'a str,
    /// What the user typed in the ID field (kept after an error).
    pub id: &'a str,
    /// The pinned endpoint: this server's public URL.
    pub endpoint: &'a str,
    pub endpoint_editable: bool,
    /// Show SIGN UP (open or invite mode); otherwise say it is closed.
    pub signup_open: bool,
    /// Show CHANGE PASSWORD (the seed's name for "forgot password").
    pub password_reset: bool,
    pub notice: Option<Notice>,
    /// Where to go back to after logging in (a checked return address).
    pub rd: Option<&'a str>,
    /// Offer "Log in with a passkey" (WebAuthn works at this base URL).
    pub passkeys: bool,
}

pub fn page(view: &LoginView<'_>) -> Markup {
    let error_id = "login-status";
    let has_error = matches!(view.notice, Some(Notice::Error(_) | Notice::Locked { .. }));
    layout::bare(
        "Log in",
        html! {
            h1 { "Log in" }
            div id=(error_id) aria-live="polite" {
                @match &view.notice {
                    Some(Notice::Info(msg)) => p.notice.info role="status" { (msg) },
                    Some(Notice::Error(msg)) => p.notice.error role="alert" { (msg) },
                    Some(Notice::Locked { until, minutes }) => div.notice.error role="alert" id="lock-notice" {
                        p { strong { "This ID is locked" } " after too many failed logins in a row." }
                        p {
                            "Try again in " (minutes) @if *minutes == 1 { " minute" } @else { " minutes" }
                            ", after " time datetime=(until) { (until) } "."
                            " If it stays locked longer, contact your administrator."
                        }
                    },
                    None => {},
                }
            }
            form.stack method="post" action="/login" id="login-form" {
                input type="hidden" name="csrf" value=(view.csrf);
                @if let Some(rd) = view.rd { input type="hidden" name="rd" value=(rd); }
                div.field {
                    label for="login-id" { "ID" }
                    input id="login-id" name="id" type="text"
                        autocomplete=(if view.passkeys { "username webauthn" } else { "username" }) required
                        autocapitalize="none" spellcheck="false" value=(view.id)
                        aria-describedby=(if has_error { "login-id-hint login-status" } else { "login-id-hint" })
                        aria-invalid=[has_error.then_some("true")]
                        autofocus[view.id.is_empty()];
                    p.hint id="login-id-hint" { "Your email address or username." }
                }
                div.field {
                    label for="login-password" { "Password" }
                    input id="login-password" name="password" type="password" autocomplete="current-password"
                        required aria-invalid=[has_error.then_some("true")]
                        aria-describedby=[has_error.then_some(error_id)]
                        autofocus[!view.id.is_empty()];
                }
                div.field {
                    label for="login-endpoint" { "API endpoint" }
                    @if view.endpoint_editable {
                        input id="login-endpoint" name="endpoint" type="url" inputmode="url" value=(view.endpoint)
                            data-own=(view.endpoint) list="endpoint-history" autocomplete="url"
                            aria-describedby="login-endpoint-hint";
                        datalist id="endpoint-history" {}
                        p.hint id="login-endpoint-hint" { "The gatehouse server to log in to. Another server's address takes you to its login page." }
                    } @else {
                        input id="login-endpoint" name="endpoint" type="url" value=(view.endpoint) readonly
                            aria-describedby="login-endpoint-hint";
                        p.hint id="login-endpoint-hint" { "Pinned by your administrator." }
                    }
                }
                button.button.primary.wide type="submit" { "Login" }
            }
            @if view.passkeys {
                form.stack method="post" action="/login/passkey" id="passkey-login-form"
                    data-passkey="discover" data-start="/login/passkey/start" {
                    input type="hidden" name="csrf" value=(view.csrf);
                    input type="hidden" name="credential" value="";
                    @if let Some(rd) = view.rd { input type="hidden" name="rd" value=(rd); }
                    p.notice.error role="alert" data-passkey-error hidden {}
                    button.button.secondary.wide type="submit" id="passkey-login" { "Log in with a passkey" }
                }
            }
            div.auth-links {
                @if view.signup_open {
                    a.button.secondary href=(signup_href(view.rd)) id="signup-link" { "Sign up" }
                }
                @if view.password_reset {
                    a.button.secondary href="/forgot-password" id="forgot-link" { "Change password" }
                }
                @if !view.signup_open {
                    p.muted id="signup-closed" { (CLOSED_TEXT) }
                }
            }
        },
    )
}

/// The sign-up link, carrying the return address on.
fn signup_href(rd: Option<&str>) -> String {
    match rd {
        Some(rd) => format!(
            "/signup?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ),
        None => "/signup".into(),
    }
}
