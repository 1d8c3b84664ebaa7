//! The signup form (seed "Sign up"; SPEC §2, §3).

use super::{documents, layout};
use crate::documents::Documents;
use crate::domain::PasswordPolicy;
use maud::{Markup, html};

/// What the user typed (never the passwords), kept after an error.
#[derive(Default)]
pub struct SignupValues {
    pub email: String,
    pub username: String,
    pub token: String,
    /// A checked return address to carry on to the login (or empty).
    pub rd: String,
}

/// One message per field, shown next to it.
#[derive(Default)]
pub struct FieldErrors {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: Vec<String>,
    pub confirm: Option<String>,
    pub token: Option<String>,
    pub agree: Option<String>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.email.is_some()
            || self.username.is_some()
            || !self.password.is_empty()
            || self.confirm.is_some()
            || self.token.is_some()
            || self.agree.is_some()
    }
}

pub struct SignupView<'a> {
    pub csrf: &'a str,
    pub values: &'a SignupValues,
    pub errors: &'a FieldErrors,
    /// Show the invitation field (invite mode, or a token in the link).
    pub show_token: bool,
    pub token_required: bool,
    pub policy: PasswordPolicy,
    pub documents: &'a Documents,
}

fn error_of(id: &str, error: Option<&String>) -> Markup {
    html! { @if let Some(e) = error { p.field-error id={ (id) "-error" } { (e) } } }
}

fn described_by(id: &str, has_error: bool, hint: Option<&str>) -> String {
    let mut ids: Vec<String> = hint.map(str::to_owned).into_iter().collect();
    if has_error {
        ids.push(format!("{id}-error"));
    }
    ids.join(" ")
}

/// The rule as a list the page's script ticks off while the user types.
fn rules(policy: PasswordPolicy) -> Markup {
    let min = policy.min_len();
    html! {
        ul.password-rules id="password-rules" aria-live="polite" {
            li data-rule="length" { "At least " (min) " characters" }
            @if let PasswordPolicy::Seed { .. } = policy {
                li data-rule="letter" { "A letter" }
                li data-rule="digit" { "A digit" }
                li data-rule="special" { "A special character, such as ! or #" }
            }
            li data-rule="not-id" { "Not your email address or username" }
            li data-rule="common" { "Not a commonly used password (checked when you sign up)" }
        }
    }
}

pub fn page(v: &SignupView<'_>) -> Markup {
    let e = v.errors;
    let (policy_name, min) = match v.policy {
        PasswordPolicy::Seed { min_len } => ("seed", min_len),
        PasswordPolicy::Nist { min_len } => ("nist", min_len),
    };
    layout::bare(
        "Sign up",
        html! {
            h1 { "Sign up" }
            @if e.any() {
                p.notice.error role="alert" id="signup-status" { "Please correct the fields marked below." }
            }
            form.stack method="post" action="/signup" id="signup-form" data-policy=(policy_name) data-min=(min) {
                input type="hidden" name="csrf" value=(v.csrf);
                @if !v.values.rd.is_empty() { input type="hidden" name="rd" value=(v.values.rd); }
                div.field {
                    label for="signup-email" { "Email" }
                    input id="signup-email" name="email" type="email" autocomplete="email" required maxlength="254"
                        value=(v.values.email) aria-invalid=[e.email.as_ref().map(|_| "true")]
                        aria-describedby=(described_by("signup-email", e.email.is_some(), None));
                    (error_of("signup-email", e.email.as_ref()))
                }
                div.field {
                    label for="signup-username" { "Username" }
                    input id="signup-username" name="username" type="text" autocomplete="username" required
                        minlength="3" maxlength="32" autocapitalize="none" spellcheck="false"
                        value=(v.values.username) aria-invalid=[e.username.as_ref().map(|_| "true")]
                        aria-describedby=(described_by("signup-username", e.username.is_some(), Some("signup-username-hint")));
                    p.hint id="signup-username-hint" { "3 to 32 letters, digits, dots, underscores or hyphens." }
                    (error_of("signup-username", e.username.as_ref()))
                }
                div.field {
                    label for="signup-password" { "Password" }
                    input id="signup-password" name="password" type="password" autocomplete="new-password" required
                        aria-invalid=[(!e.password.is_empty()).then_some("true")]
                        aria-describedby=(described_by("signup-password", !e.password.is_empty(), Some("password-rules")));
                    (rules(v.policy))
                    @if !e.password.is_empty() {
                        div.field-error id="signup-password-error" {
                            @for msg in &e.password { p { (msg) } }
                        }
                    }
                }
                div.field {
                    label for="signup-password-confirm" { "Password again" }
                    input id="signup-password-confirm" name="password_confirm" type="password" autocomplete="new-password" required
                        aria-invalid=[e.confirm.as_ref().map(|_| "true")]
                        aria-describedby=(described_by("signup-password-confirm", e.confirm.is_some(), Some("confirm-hint")));
                    p.hint id="confirm-hint" aria-live="polite" {}
                    (error_of("signup-password-confirm", e.confirm.as_ref()))
                }
                @if v.show_token {
                    div.field {
                        label for="signup-token" { "Invitation token" @if !v.token_required { " (optional)" } }
                        input id="signup-token" name="token" type="text" autocomplete="off" spellcheck="false"
                            required[v.token_required] value=(v.values.token)
                            aria-invalid=[e.token.as_ref().map(|_| "true")]
                            aria-describedby=(described_by("signup-token", e.token.is_some(), Some("signup-token-hint")));
                        p.hint id="signup-token-hint" { "It is in the invitation link you were sent." }
                        (error_of("signup-token", e.token.as_ref()))
                    }
                }
                (documents::agree_field(e.agree.as_deref()))
                button.button.primary.wide type="submit" { "Sign up" }
            }
            p.auth-links { "Already have an account? " a href="/login" { "Log in" } }
            (documents::dialogs(v.documents))
        },
    )
}

/// `/signup` when signing up is closed (HTTP 403), in the seed's words.
pub fn closed() -> Markup {
    layout::bare(
        "Sign up",
        html! {
            h1 { "Sign up" }
            p.notice.info role="status" { (CLOSED_TEXT) }
            p { a.button href="/login" { "Back to the login page" } }
        },
    )
}

pub const CLOSED_TEXT: &str = "Signing up is not available here. Please contact the administrator of this system for an account.";
