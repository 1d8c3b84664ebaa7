//! The mails gatehouse sends, each with a text and an HTML part and links
//! built from `--base-url`. The HTML is made with maud, so every value is
//! escaped.

use crate::clock::Timestamp;
use crate::domain::EmailAddress;
use crate::domain::Mail;
use maud::{DOCTYPE, Markup, html};
use std::time::Duration;

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1f2b; max-width: 560px; margin: 0 auto; padding: 24px;" {
                (body)
                p style="color: #5b6474; font-size: 13px; margin-top: 32px;" { "Sent by gatehouse, the login service of your team." }
            }
        }
    }
    .into_string()
}

fn button(link: &str, label: &str) -> Markup {
    html! {
        p { a href=(link) style="display: inline-block; background: #1f5fbf; color: #ffffff; padding: 10px 18px; border-radius: 6px; text-decoration: none;" { (label) } }
        p style="font-size: 13px; color: #5b6474;" { "Or copy this address into your browser: " br; (link) }
    }
}

fn hours(d: Duration) -> String {
    let mins = d.as_secs() / 60;
    match mins {
        0..=119 => format!("{mins} minutes"),
        _ => format!("{} hours", mins / 60),
    }
}

pub fn verification(to: &EmailAddress, username: &str, link: &str, valid_for: Duration) -> Mail {
    let valid = hours(valid_for);
    Mail {
        to: to.clone(),
        subject: "Confirm your email address".into(),
        text: format!(
            "Hello {username},\n\nplease confirm that this is your email address, so that you can log in:\n\n{link}\n\nThe link works for {valid}. If you did not sign up, ignore this mail: nothing happens without the link.\n"
        ),
        html: page(
            "Confirm your email address",
            html! {
                p { "Hello " (username) "," }
                p { "please confirm that this is your email address, so that you can log in." }
                (button(link, "Confirm my email address"))
                p { "The link works for " (valid) ". If you did not sign up, ignore this mail: nothing happens without the link." }
            },
        ),
    }
}

pub fn reset(to: &EmailAddress, username: &str, link: &str, valid_for: Duration) -> Mail {
    let valid = hours(valid_for);
    Mail {
        to: to.clone(),
        subject: "Change your password".into(),
        text: format!(
            "Hello {username},\n\nsomeone (we hope you) asked to change the password of your account. Choose a new one here:\n\n{link}\n\nThe link works once, for {valid}. If you did not ask, ignore this mail: your password stays as it is.\n"
        ),
        html: page(
            "Change your password",
            html! {
                p { "Hello " (username) "," }
                p { "someone (we hope you) asked to change the password of your account." }
                (button(link, "Choose a new password"))
                p { "The link works once, for " (valid) ". If you did not ask, ignore this mail: your password stays as it is." }
            },
        ),
    }
}

pub fn password_changed(to: &EmailAddress, username: &str, at: Timestamp, login: &str) -> Mail {
    Mail {
        to: to.clone(),
        subject: "Your password was changed".into(),
        text: format!(
            "Hello {username},\n\nthe password of your account was changed at {at}. Your other sessions were ended; log in again with the new password where you need to:\n\n{login}\n\nIf you did not change it, tell your administrator at once.\n"
        ),
        html: page(
            "Your password was changed",
            html! {
                p { "Hello " (username) "," }
                p { "the password of your account was changed at " (at) ". Your other sessions were ended; log in again with the new password where you need to." }
                (button(login, "Log in"))
                p { strong { "If you did not change it, tell your administrator at once." } }
            },
        ),
    }
}

/// `threshold`: the failures allowed in a row (`--lockout-threshold`).
pub fn lock_notice(
    to: &EmailAddress,
    username: &str,
    threshold: u32,
    until: Timestamp,
    ip: &str,
    forgot_page: Option<&str>,
) -> Mail {
    // No token in it: a guesser who keeps re-locking the account must not
    // be able to replace the owner's reset link with every lock (issue 11).
    let way_out = match forgot_page {
        Some(l) => format!(
            "If you cannot remember your password, ask for a reset link on this page (a new password also lifts the lock):\n\n{l}\n\n"
        ),
        None => "If you cannot remember your password, ask your administrator.\n\n".to_string(),
    };
    let usual =
        "From a browser you have logged in with before, you can still log in with your password.";
    Mail {
        to: to.clone(),
        subject: "Your account was locked after failed logins".into(),
        text: format!(
            "Hello {username},\n\nafter more than {threshold} failed logins in a row, the last from the address {ip}, your account is locked until {until}. Logins from other browsers are refused until then, even with the right password. {usual}\n\n{way_out}If these tries were not yours, someone may be guessing your password: tell your administrator.\n"
        ),
        html: page(
            "Your account was locked",
            html! {
                p { "Hello " (username) "," }
                p { "after more than " (threshold) " failed logins in a row, the last from the address " strong { (ip) } ", your account is locked until " strong { (until) } ". Logins from other browsers are refused until then, even with the right password. " (usual) }
                @if let Some(l) = forgot_page {
                    p { "If you cannot remember your password, ask for a reset link on this page (a new password also lifts the lock):" }
                    (button(l, "Ask for a reset link"))
                } @else {
                    p { "If you cannot remember your password, ask your administrator." }
                }
                p { "If these tries were not yours, someone may be guessing your password: tell your administrator." }
            },
        ),
    }
}

/// An account's second factors changed (`MailRequest::FactorNotice`).
pub fn factor_notice(
    to: &EmailAddress,
    username: &str,
    notice: &crate::mail::requests::FactorNotice,
    account_page: &str,
) -> Mail {
    use crate::mail::requests::FactorNotice;
    let (subject, what) = match notice {
        FactorNotice::RecoveryCodeUsed { remaining, ip } => (
            "A recovery code of your account was used",
            format!(
                "A recovery code was used to log in to your account, from the address {ip}. It works no more: {remaining} unused {} left. If this was you, and your authenticator app is lost, set up a new one on your Account page (new recovery codes come with it).",
                if *remaining == 1 { "code is" } else { "codes are" }
            ),
        ),
        FactorNotice::ResetByAdmin => (
            "Your second factors were removed by an administrator",
            "An administrator removed the authenticator app and the recovery codes of your account, as asked for a lost device. Your password alone logs you in now: set up a second factor again on your Account page.".to_string(),
        ),
        FactorNotice::Added { what } => (
            "A second factor was added to your account",
            format!("{what} was added to your account: logins now ask for it after the password."),
        ),
        FactorNotice::Removed { what } => (
            "A second factor was removed from your account",
            format!("{what} was removed from your account."),
        ),
    };
    let not_you = "If this was not you, someone knows your password: change it on your Account page now, and tell your administrator.";
    Mail {
        to: to.clone(),
        subject: subject.into(),
        text: format!("Hello {username},\n\n{what}\n\n{not_you}\n\n{account_page}\n"),
        html: page(
            subject,
            html! {
                p { "Hello " (username) "," }
                p { (what) }
                p { (not_you) }
                (button(account_page, "Open your account"))
            },
        ),
    }
}

pub fn test(to: &EmailAddress, base_url: &str) -> Mail {
    Mail {
        to: to.clone(),
        subject: "gatehouse test mail".into(),
        text: format!(
            "This is a test mail from gatehouse at {base_url}. If you read it, mail works.\n"
        ),
        html: page(
            "gatehouse test mail",
            html! {
                p { "This is a test mail from gatehouse at " (base_url) ". If you read it, mail works." }
            },
        ),
    }
}
