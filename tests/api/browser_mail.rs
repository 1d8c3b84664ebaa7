//! The mailed links in real headless Chromium, with a real SMTP server:
//! confirming the address after signup, and choosing a new password after
//! "Change password" on the login page.

use crate::browser::{Browser, log_in};
use crate::mail::with_smtp;
use crate::smtp::{Options, SmtpServer};
use crate::support::{PASSWORD, TestApp, spawn_with};

const NEW_PASSWORD: &str = "N3w-passphrase!";

impl Browser {
    /// The visible text of the whole page.
    async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// The `textContent` of an element (what the HTML says, before CSS
    /// such as `text-transform` changes what is shown).
    async fn content(&self, css: &str) -> String {
        self.js(&format!(
            "return document.querySelector(\"{css}\").textContent.trim()"
        ))
        .await
        .as_str()
        .unwrap()
        .to_string()
    }

    /// The value of the hidden `token` field of the reset form.
    async fn reset_token(&self) -> String {
        self.js("return document.querySelector('#reset-form input[name=token]').value")
            .await
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Asks for a reset link in the browser, from the login page's button, and
/// returns the link that arrives as mail number `n`.
async fn ask_for_reset_link(
    browser: &Browser,
    app: &TestApp,
    smtp: &SmtpServer,
    email: &str,
    n: usize,
) -> String {
    browser.goto(&app.url("/login")).await;
    assert_eq!(
        browser.content("a.button.secondary#forgot-link").await,
        "Change password"
    );
    browser.click("#forgot-link").await;
    browser.wait_for_path("/forgot-password").await;
    browser.fill("#recovery-email", email).await;
    browser
        .submit("form[action='/forgot-password'] button[type=submit]")
        .await;
    let text = browser.page_text().await;
    assert!(
        text.contains("If an account exists for that address"),
        "{text}"
    );
    let mail = smtp.wait_for(n).await.remove(n - 1);
    assert_eq!(mail.to, vec![email.to_string()]);
    assert_eq!(mail.subject, "Change your password");
    mail.link(&format!("{}/reset-password?token=", app.address))
}

#[tokio::test]
async fn signing_up_then_following_the_mailed_link_confirms_the_address() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    let browser = Browser::start().await;

    browser.goto(&app.url("/signup")).await;
    browser.fill("#signup-email", "gina@example.com").await;
    browser.fill("#signup-username", "gina").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser.fill("#signup-password-confirm", PASSWORD).await;
    browser.click("#agree").await;
    browser.submit("#signup-form button[type=submit]").await;
    let text = browser.page_text().await;
    assert!(
        text.contains("We sent a link to your email address"),
        "{text}"
    );

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["gina@example.com".to_string()]);
    assert_eq!(mail.subject, "Confirm your email address");
    let link = mail.link(&format!("{}/verify-email?code=", app.address));

    // Opening the link shows a button; only the button confirms.
    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, "Confirm your email address");
    let button = "form[action='/verify-email'] button[type=submit]";
    assert_eq!(browser.content(button).await, "Confirm my email address");
    browser.submit(button).await;
    browser.wait_for_path("/login?verified=1").await;
    let status = browser.text("#login-status").await;
    assert!(
        status.contains("Your email address is confirmed"),
        "{status}"
    );

    log_in(&browser, &app, "gina", PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    browser.close().await;
}

#[tokio::test]
async fn forgot_password_then_the_mailed_link_sets_a_new_password() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("hana@example.com", "hana", PASSWORD).await;
    let browser = Browser::start().await;

    let link = ask_for_reset_link(&browser, &app, &smtp, "hana@example.com", 1).await;
    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, "Choose a new password");
    browser.fill("#reset-password", NEW_PASSWORD).await;
    browser.fill("#reset-password-confirm", NEW_PASSWORD).await;
    browser.submit("#reset-form button[type=submit]").await;
    browser.wait_for_path("/login?reset=1").await;
    let status = browser.text("#login-status").await;
    assert!(status.contains("Your password was changed"), "{status}");

    // The old password no longer works; the new one does.
    log_in(&browser, &app, "hana", PASSWORD).await;
    let status = browser.text("#login-status").await;
    assert!(status.contains("ID or password is incorrect."), "{status}");
    log_in(&browser, &app, "hana", NEW_PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    browser.close().await;
}

#[tokio::test]
async fn a_reset_form_with_mismatched_passwords_explains_and_keeps_the_link_working() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("ines@example.com", "ines", PASSWORD).await;
    let browser = Browser::start().await;

    let link = ask_for_reset_link(&browser, &app, &smtp, "ines@example.com", 1).await;
    let token = link.split("token=").nth(1).unwrap().to_string();
    browser.goto(&link).await;
    assert_eq!(browser.reset_token().await, token);
    browser.fill("#reset-password", NEW_PASSWORD).await;
    browser
        .fill("#reset-password-confirm", "N3w-passphrase?")
        .await;
    browser.submit("#reset-form button[type=submit]").await;

    assert_eq!(browser.path().await, "/reset-password", "no redirect");
    let errors = browser.text("#reset-errors").await;
    assert!(errors.contains("The two passwords differ"), "{errors}");
    assert_eq!(
        browser.reset_token().await,
        token,
        "the form is still there, with the link's token"
    );

    // Typed the same twice, it works: the failed attempt used nothing up.
    browser.fill("#reset-password", NEW_PASSWORD).await;
    browser.fill("#reset-password-confirm", NEW_PASSWORD).await;
    browser.submit("#reset-form button[type=submit]").await;
    browser.wait_for_path("/login?reset=1").await;
    let status = browser.text("#login-status").await;
    assert!(status.contains("Your password was changed"), "{status}");
    log_in(&browser, &app, "ines", NEW_PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    browser.close().await;
}
