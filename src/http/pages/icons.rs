//! Inline SVG icons (our own, no icon font or CDN). Decorative: the text
//! or aria-label beside each carries the meaning.

use maud::{Markup, PreEscaped};

fn svg(paths: &str) -> Markup {
    PreEscaped(format!(
        r#"<svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{paths}</svg>"#
    ))
}

pub fn logo() -> Markup {
    PreEscaped(
        r#"<svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false"><rect x="2" y="2" width="28" height="28" rx="7" fill="currentColor"/><path d="M10 24V14a6 6 0 0 1 12 0v10" fill="none" stroke="var(--logo-ink, #fff)" stroke-width="2.5" stroke-linecap="round"/><circle cx="16" cy="18" r="2" fill="var(--logo-ink, #fff)"/></svg>"#
            .to_string(),
    )
}

pub fn summary() -> Markup {
    svg(
        r#"<rect x="3" y="3" width="7" height="9" rx="1"/><rect x="14" y="3" width="7" height="5" rx="1"/><rect x="14" y="12" width="7" height="9" rx="1"/><rect x="3" y="16" width="7" height="5" rx="1"/>"#,
    )
}

pub fn account() -> Markup {
    svg(r#"<circle cx="12" cy="8" r="4"/><path d="M4 21a8 8 0 0 1 16 0"/>"#)
}

pub fn chevron_left() -> Markup {
    svg(r#"<path d="M15 18l-6-6 6-6"/>"#)
}

pub fn logout() -> Markup {
    svg(
        r#"<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><path d="M16 17l5-5-5-5"/><path d="M21 12H9"/>"#,
    )
}

pub fn menu() -> Markup {
    svg(r#"<path d="M3 6h18M3 12h18M3 18h18"/>"#)
}
