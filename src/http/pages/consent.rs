//! Asking a logged-in user to accept the current documents.

use super::{documents, layout};
use crate::documents::Documents;
use maud::{Markup, html};

/// `rd`: where to go on after accepting (a checked return address).
pub fn page(
    csrf: &str,
    docs: &Documents,
    changed: bool,
    error: Option<&str>,
    rd: Option<&str>,
) -> Markup {
    layout::bare(
        "Terms and privacy",
        html! {
            h1 { @if changed { "Updated terms" } @else { "Before you continue" } }
            p {
                @if changed {
                    "The Terms of Service or the Privacy Policy have changed since you last accepted them. "
                    "Please read them and accept them to continue."
                } @else {
                    "Please read the Terms of Service and the Privacy Policy, and accept them to continue."
                }
            }
            form.stack method="post" action="/consent" id="consent-form" {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(rd) = rd { input type="hidden" name="rd" value=(rd); }
                (documents::agree_field(error))
                button.button.primary.wide type="submit" { "Continue" }
            }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button.button.link type="submit" { "Log out instead" }
            }
            (documents::dialogs(docs))
        },
    )
}
