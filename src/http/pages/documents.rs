//! The Terms of Service and Privacy Policy: as pages of their own, and as
//! dialogs inside the signup and consent forms (links that open the page
//! without JavaScript, and the dialog with it).

use super::layout;
use crate::documents::{Document, Documents};
use maud::{Markup, PreEscaped, html};

pub fn page(doc: &Document) -> Markup {
    layout::bare(
        doc.title,
        html! {
            article.document { (PreEscaped(&doc.html)) }
            p { a href="/login" { "Back to the login page" } }
        },
    )
}

/// "I have read and agree to the Terms of Service and Privacy Policy",
/// with both documents readable from the form.
pub fn agree_field(error: Option<&str>) -> Markup {
    html! {
        div.field.checkbox-field {
            input id="agree" name="agree" type="checkbox" value="yes" required
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "agree-error")];
            label for="agree" {
                "I have read and agree to the "
                a href="/terms" target="_blank" data-dialog="terms-dialog" { "Terms of Service" }
                " and "
                a href="/privacy" target="_blank" data-dialog="privacy-dialog" { "Privacy Policy" }
            }
            @if let Some(e) = error { p.field-error id="agree-error" { (e) } }
        }
    }
}

fn dialog(id: &str, doc: &Document) -> Markup {
    let heading = format!("{id}-title");
    html! {
        dialog.document-dialog id=(id) aria-labelledby=(heading) {
            div.dialog-head {
                h2 id=(heading) { (doc.title) }
                form method="dialog" { button.button type="submit" aria-label={ "Close the " (doc.title) } { "Close" } }
            }
            article.document { (PreEscaped(&doc.html)) }
        }
    }
}

/// Both documents as (closed) dialogs.
pub fn dialogs(docs: &Documents) -> Markup {
    html! {
        (dialog("terms-dialog", &docs.terms))
        (dialog("privacy-dialog", &docs.privacy))
    }
}
