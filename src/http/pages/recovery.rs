//! Pages of the mailed links: forgot password, choose a new password,
//! confirm an email address, send a link again.

use super::layout;
use crate::domain::PasswordPolicy;
use maud::{Markup, html};

/// A one-field email form posting to `action`; `error` names the element
/// that explains what is wrong with the address, if anything.
fn email_form(csrf: &str, action: &str, button: &str, value: &str, error: Option<&str>) -> Markup {
    html! {
        form.stack method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="recovery-email" { "Email" }
                input id="recovery-email" name="email" type="email" autocomplete="email" required maxlength="254" value=(value)
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error];
            }
            button.button.primary.wide type="submit" { (button) }
        }
    }
}

pub fn forgot(csrf: &str, error: Option<&str>) -> Markup {
    layout::bare(
        "Forgot password",
        html! {
            h1 { "Forgot your password?" }
            p { "Enter the email address of your account. We will send you a link to choose a new password." }
            @if let Some(e) = error { p.notice.error role="alert" id="recovery-error" { (e) } }
            (email_form(csrf, "/forgot-password", "Send the link", "", error.map(|_| "recovery-error")))
            p.auth-links { a href="/login" { "Back to the login page" } }
        },
    )
}

/// The one answer to every forgot-password request (SPEC §2).
pub const FORGOT_SENT: &str = "If an account exists for that address, a link to choose a new password is on its way. It works for a limited time; check your spam folder if nothing arrives.";

pub fn forgot_sent() -> Markup {
    notice_page("Check your email", FORGOT_SENT)
}

pub fn reset_disabled() -> Markup {
    notice_page(
        "Forgot password",
        "Changing a forgotten password by email is not available here. Please contact the administrator of this system.",
    )
}

fn notice_page(title: &str, text: &str) -> Markup {
    layout::bare(
        title,
        html! {
            h1 { (title) }
            p.notice.info role="status" { (text) }
            p { a.button href="/login" { "Back to the login page" } }
        },
    )
}

pub struct ResetView<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub policy: PasswordPolicy,
    pub errors: &'a [String],
}

pub fn reset(v: &ResetView<'_>) -> Markup {
    let invalid = (!v.errors.is_empty()).then_some("true");
    let errors = (!v.errors.is_empty()).then_some("reset-errors");
    layout::bare(
        "Choose a new password",
        html! {
            h1 { "Choose a new password" }
            @if !v.errors.is_empty() {
                div.notice.error role="alert" id="reset-errors" { @for e in v.errors { p { (e) } } }
            }
            form.stack method="post" action="/reset-password" id="reset-form"
                data-policy=(match v.policy { PasswordPolicy::Seed { .. } => "seed", PasswordPolicy::Nist { .. } => "nist" })
                data-min=(v.policy.min_len()) {
                input type="hidden" name="csrf" value=(v.csrf);
                input type="hidden" name="token" value=(v.token);
                (new_password_fields("reset-password", v.policy, invalid, errors))
                button.button.primary.wide type="submit" { "Change password" }
            }
        },
    )
}

/// "New password" and "New password again", with the rule as a hint; ids
/// are `{id}`, `{id}-rule` and `{id}-confirm`. Shared by the reset form
/// and the Account page.
pub fn new_password_fields(
    id: &str,
    policy: PasswordPolicy,
    invalid: Option<&str>,
    errors: Option<&str>,
) -> Markup {
    let rule = format!("{id}-rule");
    let confirm = format!("{id}-confirm");
    html! {
        div.field {
            label for=(id) { "New password" }
            input id=(id) name="password" type="password" autocomplete="new-password" required
                aria-invalid=[invalid]
                aria-describedby={ (rule) @if let Some(e) = errors { " " (e) } };
            p.hint id=(rule) {
                "At least " (policy.min_len()) " characters"
                @if let PasswordPolicy::Seed { .. } = policy { ", with a letter, a digit and a special character" }
                "; not a commonly used password."
            }
        }
        div.field {
            label for=(confirm) { "New password again" }
            input id=(confirm) name="password_confirm" type="password" autocomplete="new-password" required
                aria-invalid=[invalid] aria-describedby=[errors];
        }
    }
}

/// A mailed link that does not work, with a way to ask for a new one.
pub fn link_failed(csrf: &str, title: &str, why: &str, action: &str, button: &str) -> Markup {
    layout::bare(
        title,
        html! {
            h1 { (title) }
            p.notice.error role="alert" { (why) }
            p { "Enter your email address to get a new link." }
            (email_form(csrf, action, button, "", None))
            p.auth-links { a href="/login" { "Back to the login page" } }
        },
    )
}

/// Following a verification link shows this; the button (a POST) confirms,
/// so that mail scanners that open links change nothing.
pub fn verify_confirm(csrf: &str, code: &str) -> Markup {
    layout::bare(
        "Confirm your email address",
        html! {
            h1 { "Confirm your email address" }
            form.stack method="post" action="/verify-email" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="code" value=(code);
                button.button.primary.wide type="submit" { "Confirm my email address" }
            }
        },
    )
}

/// After signup when verification is required, and after "send again".
pub const CHECK_EMAIL: &str = "We sent a link to your email address. Follow it to confirm the address, then log in. Check your spam folder if nothing arrives within a few minutes.";

pub fn check_email(csrf: &str, email: &str) -> Markup {
    waiting_for_mail(csrf, email, "Check your email", CHECK_EMAIL)
}

/// The right password of an account whose address is not confirmed yet.
pub fn unverified(csrf: &str, email: &str) -> Markup {
    waiting_for_mail(
        csrf,
        email,
        "Confirm your email address first",
        "Your password is right, but the email address of this account is not confirmed yet. Follow the link in the confirmation mail, then log in.",
    )
}

fn waiting_for_mail(csrf: &str, email: &str, title: &str, text: &str) -> Markup {
    layout::bare(
        title,
        html! {
            h1 { (title) }
            p.notice.info role="status" { (text) }
            p { "No mail? Send the link again:" }
            (email_form(csrf, "/verify-email/resend", "Send the link again", email, None))
            p.auth-links { a href="/login" { "Back to the login page" } }
        },
    )
}
