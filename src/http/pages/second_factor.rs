//! The second step of a login, setting up an authenticator app (at the
//! login when the policy asks for one, or on the Account page) and the
//! recovery codes shown once (issue 15).

use super::layout;
use maud::{Markup, PreEscaped, html};

/// The code form after the password.
pub fn verify(csrf: &str, error: Option<&str>, passkey: bool) -> Markup {
    layout::bare(
        "Second step",
        html! {
            h1 { "Second step" }
            p { "Your password was right. Now prove it is you with your second factor." }
            div id="step-status" aria-live="polite" {
                @if let Some(e) = error { p.notice.error role="alert" { (e) } }
            }
            form.stack method="post" action="/login/second-factor" id="second-factor-form" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="code" { "Code" }
                    input id="code" name="code" type="text" autocomplete="one-time-code"
                        autocapitalize="none" spellcheck="false" required autofocus
                        aria-describedby=(if error.is_some() { "code-hint step-status" } else { "code-hint" })
                        aria-invalid=[error.is_some().then_some("true")];
                    p.hint id="code-hint" { "The 6-digit code your authenticator app shows now, or one of your recovery codes (each works once)." }
                }
                button.button.primary.wide type="submit" { "Continue" }
            }
            @if passkey {
                form.stack method="post" action="/login/second-factor" id="passkey-step-form"
                    data-passkey="login" data-start="/login/second-factor/passkey" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="passkey" value="";
                    p.notice.error role="alert" data-passkey-error hidden {}
                    button.button.secondary.wide type="submit" id="use-passkey" { "Use a passkey instead" }
                }
            }
            (cancel(csrf))
            p.muted { "Lost your device and your recovery codes? Ask your administrator to reset your second factor." }
        },
    )
}

fn cancel(csrf: &str) -> Markup {
    html! {
        form method="post" action="/login/cancel" {
            input type="hidden" name="csrf" value=(csrf);
            button.button.secondary type="submit" id="cancel-login" { "Cancel and log in again" }
        }
    }
}

/// What setting up an app shows: the QR code, the secret to type, the
/// form for the first code.
pub struct AppSetup<'a> {
    pub csrf: &'a str,
    pub otpauth_uri: &'a str,
    pub secret: &'a str,
    pub error: Option<&'a str>,
    /// Where the first code goes.
    pub action: &'a str,
}

/// The QR code of `data` as inline SVG, made here (no script, nothing
/// from elsewhere).
fn qr_svg(data: &str) -> Markup {
    use qrcode::render::svg;
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // The renderer starts with an XML declaration: not for HTML.
            let start = svg.find("<svg").unwrap_or(0);
            html! { div.qr role="img" aria-label="QR code of the secret for your authenticator app" { (PreEscaped(&svg[start..])) } }
        }
        // Too long for a QR code (it is not: about 120 bytes); the text
        // below still works.
        Err(_) => html! {},
    }
}

/// The secret in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn app_setup(v: &AppSetup<'_>) -> Markup {
    html! {
        ol.steps {
            li { "Open your authenticator app (such as Aegis, 2FAS, Google Authenticator or your password manager) and add an account." }
            li {
                "Scan this code with it:"
                (qr_svg(v.otpauth_uri))
                "Or type this key into it (time-based, 6 digits, 30 seconds):"
                p { code id="totp-secret" data-secret=(v.secret) { (grouped(v.secret)) } }
            }
            li { "Type the code the app shows now, to check it is set up right." }
        }
        div id="setup-status" aria-live="polite" {
            @if let Some(e) = v.error { p.notice.error role="alert" { (e) } }
        }
        form.stack method="post" action=(v.action) id="app-setup-form" {
            input type="hidden" name="csrf" value=(v.csrf);
            div.field {
                label for="code" { "Code from the app" }
                input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                    required pattern="[0-9 ]{6,7}" aria-invalid=[v.error.is_some().then_some("true")]
                    aria-describedby=[v.error.map(|_| "setup-status")];
            }
            button.button.primary type="submit" { "Turn on" }
        }
    }
}

/// The enrolment a policy asks for, right after the password.
pub fn enrol(v: &AppSetup<'_>) -> Markup {
    layout::bare(
        "Set up a second factor",
        html! {
            h1 { "Set up a second factor" }
            p { "Your team asks every login of your account for a second factor after the password. Set up an authenticator app now: you need it at each login." }
            (app_setup(v))
            (cancel(v.csrf))
        },
    )
}

/// The new recovery codes, shown once.
pub fn recovery_codes(codes: &[String]) -> Markup {
    html! {
        div.notice.info role="status" id="recovery-codes" {
            p { strong { "Your recovery codes." } " Each logs you in once instead of a code of your app, if you lose it. Keep them somewhere safe (a password manager, or on paper): this is the only time they are shown." }
            ul.codes {
                @for c in codes { li { code { (c) } } }
            }
        }
    }
}

/// After a login that set up the app: the codes, then on.
pub fn enrolled(codes: &[String], next: &str) -> Markup {
    layout::bare(
        "Second factor on",
        html! {
            h1 { "Your second factor is on" }
            (recovery_codes(codes))
            a.button.primary.wide href=(next) id="continue" { "I have kept them: continue" }
        },
    )
}

/// After a login with a recovery code: how many are left, then on.
pub fn recovery_used(left: usize, next: &str) -> Markup {
    layout::bare(
        "Recovery code used",
        html! {
            h1 { "You used a recovery code" }
            p.notice.info role="status" id="recovery-left" {
                "It works no more: " (left) @if left == 1 { " code is" } @else { " codes are" } " left. "
                "If your app is lost, set up a new one on your Account page: new recovery codes come with it."
            }
            a.button.primary.wide href=(next) id="continue" { "Continue" }
        },
    )
}
