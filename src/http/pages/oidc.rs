//! Pages of single sign-on (OpenID Connect): asking whether an app may
//! use the account, telling a user an app is not for them, and asking
//! before an app's logout link logs them out.

use super::layout;
use crate::domain::User;
use crate::domain::oidc::Scopes;
use crate::services::oidc::{AuthorizeParams, LogoutParams};
use maud::{Markup, html};

pub struct ConsentView<'a> {
    pub csrf: &'a str,
    pub app: &'a str,
    pub scopes: &'a Scopes,
    pub user: &'a User,
    /// The request, carried through the form unchanged.
    pub params: &'a AuthorizeParams,
}

/// Hidden fields for each parameter that was sent.
fn hidden<T: serde::Serialize>(params: &T) -> Markup {
    let text = serde_urlencoded::to_string(params).unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    html! {
        @for (name, value) in &pairs {
            input type="hidden" name=(name) value=(value);
        }
    }
}

pub fn consent(v: &ConsentView<'_>) -> Markup {
    let title = format!("Allow {}?", v.app);
    layout::bare(
        &title,
        html! {
            h1 { "Allow " (v.app) " to use your account?" }
            p { (v.app) " asks to log you in with your gatehouse account, "
                strong { (v.user.username) } ". It will be able to:" }
            ul.consent-list id="consent-scopes" {
                li { "know that it is you (an account number that never changes)" }
                @if v.scopes.has("profile") { li { "see your username" } }
                @if v.scopes.has("email") { li { "see your email address, " (v.user.email) } }
                @if v.scopes.has("groups") { li { "see the groups you are in" } }
                @if v.scopes.has("offline_access") {
                    li { "stay connected while you are away, until you revoke it on your Account page" }
                }
            }
            p.hint { "gatehouse remembers your answer for this app. You can revoke it on your Account page." }
            form.stack method="post" action="/oidc/consent" id="oidc-consent-form" {
                input type="hidden" name="csrf" value=(v.csrf);
                (hidden(v.params))
                button.button.primary.wide type="submit" name="answer" value="allow" { "Allow" }
                button.button.wide type="submit" name="answer" value="deny" { "Deny" }
            }
        },
    )
}

pub fn no_access(csrf: &str, app: &str) -> Markup {
    layout::bare(
        "No access",
        html! {
            h1 { "You do not have access to " (app) }
            p role="alert" {
                "Your account is not in a group that may use " (app) ". "
                "If you need it, ask your administrator to add you; or log out and log in with another account."
            }
            p { a.button href="/" { "Go to the start page" } }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button.button.link type="submit" { "Log out" }
            }
        },
    )
}

pub fn logout_confirm(csrf: &str, app: Option<&str>, params: &LogoutParams) -> Markup {
    layout::bare(
        "Log out?",
        html! {
            h1 { "Log out of gatehouse?" }
            p {
                @if let Some(app) = app { (app) " asks to log you out of gatehouse. " }
                @else { "An app asks to log you out of gatehouse. " }
                "You will be logged out here and must log in again for every app that uses gatehouse."
            }
            form.stack method="post" action="/oidc/logout/confirm" id="oidc-logout-form" {
                input type="hidden" name="csrf" value=(csrf);
                (hidden(params))
                button.button.primary.wide type="submit" name="confirm" value="1" { "Log out" }
            }
            p { a.button.link href="/" { "Stay logged in" } }
        },
    )
}
