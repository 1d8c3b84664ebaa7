//! The error page: a title, one helpful sentence, a way back.

use super::layout;
use maud::{Markup, html};

pub fn page(title: &str, message: &str, reference: Option<&str>) -> Markup {
    layout::bare(
        title,
        html! {
            h1 { (title) }
            @if let Some(reference) = reference {
                p role="alert" {
                    "gatehouse could not finish this request. Try again in a moment; if it keeps happening, "
                    "tell your administrator the reference " code { (reference) } ", which marks the details in the server log."
                }
            } @else {
                p role="alert" { (message) }
            }
            p { a.button href="/" { "Go to the start page" } }
        },
    )
}
