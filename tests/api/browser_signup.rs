//! Signing up and accepting the documents in real headless Chromium, with
//! the page's own script: the password rule ticked off while typing, the
//! Terms in a dialog, an invitation link, errors, and re-consent.

use crate::browser::{Browser, log_in};
use crate::support::{PASSWORD, spawn_app, spawn_in, spawn_with};
use fantoccini::Locator;
use gatehouse::config::{Config, SignupMode};
use gatehouse::domain::{InviteToken, Role};
use gatehouse::store::NewInvite;
use serde_json::json;
use std::time::Duration;

const ESCAPE: char = '\u{E00C}';

fn open(c: &mut Config) {
    c.signup = SignupMode::Open;
}

impl Browser {
    /// Types at the end of a field, key by key (no clearing first).
    async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }

    /// The `value` of a form field.
    async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// "met", "unmet" or "" (neutral) for one `li[data-rule]`, and what a
    /// screen reader hears of that state.
    async fn rule(&self, name: &str) -> (String, String) {
        let v = self
            .js(&format!(
                "const li = document.querySelector('#password-rules li[data-rule=\"{name}\"]');
                 const state = li.classList.contains('met') && li.classList.contains('unmet') ? 'both'
                   : li.classList.contains('met') ? 'met' : li.classList.contains('unmet') ? 'unmet' : '';
                 const sr = li.querySelector('.rule-state');
                 return [state, sr ? sr.textContent : ''];"
            ))
            .await;
        (
            v[0].as_str().unwrap().to_string(),
            v[1].as_str().unwrap().to_string(),
        )
    }

    /// The states of length, letter, digit, special, not-id and common.
    async fn rules(&self) -> Vec<String> {
        let mut all = Vec::new();
        for name in ["length", "letter", "digit", "special", "not-id", "common"] {
            all.push(self.rule(name).await.0);
        }
        all
    }

    async fn dialog_open(&self, id: &str) -> bool {
        self.js(&format!("return document.getElementById('{id}').open"))
            .await
            == json!(true)
    }

    async fn checked(&self, css: &str) -> bool {
        self.js(&format!("return document.querySelector('{css}').checked"))
            .await
            == json!(true)
    }
}

fn states(s: [&str; 6]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_password_rule_is_ticked_off_while_typing() {
    let app = spawn_with(open).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/signup")).await;

    // Nothing typed: every rule neutral.
    assert_eq!(browser.rules().await, states(["", "", "", "", "", ""]));
    browser.fill("#signup-email", "kim@example.com").await;
    browser.fill("#signup-username", "kimchi").await;
    assert_eq!(browser.rules().await, states(["", "", "", "", "", ""]));

    // Order: length, letter, digit, special, not-id, common.
    browser.type_into("#signup-password", "k").await;
    assert_eq!(
        browser.rules().await,
        states(["unmet", "met", "unmet", "unmet", "met", ""])
    );
    assert_eq!(browser.rule("letter").await.1, " (done)");
    assert_eq!(browser.rule("digit").await.1, " (not yet)");
    assert_eq!(
        browser.rule("common").await.1,
        "",
        "checked on the server only"
    );

    browser.type_into("#signup-password", "IMCHI").await;
    assert_eq!(
        browser.rules().await,
        states(["unmet", "met", "unmet", "unmet", "unmet", ""]),
        "KIMCHI is the username, ignoring case"
    );
    browser.type_into("#signup-password", "1").await;
    assert_eq!(
        browser.rules().await,
        states(["unmet", "met", "met", "unmet", "met", ""])
    );
    browser.type_into("#signup-password", "!").await;
    assert_eq!(
        browser.rules().await,
        states(["unmet", "met", "met", "met", "met", ""]),
        "8 characters are not 9"
    );
    browser.type_into("#signup-password", "x").await;
    assert_eq!(
        browser.rules().await,
        states(["met", "met", "met", "met", "met", ""])
    );

    // The username field counts too: typing it to equal the password.
    browser.fill("#signup-username", "kimchi1!").await;
    browser.type_into("#signup-username", "X").await;
    assert_eq!(browser.rule("not-id").await.0, "unmet");
    browser.fill("#signup-username", "kimchi").await;
    assert_eq!(browser.rule("not-id").await.0, "met");

    // A space is not a special character.
    browser.fill("#signup-password", "abc 1234 xyz").await;
    assert_eq!(
        browser.rules().await,
        states(["met", "met", "met", "unmet", "met", ""])
    );

    // Characters, not bytes nor UTF-16 units: 64 Korean characters + "1!".
    let korean: String = "비밀번호를정말길게".chars().cycle().take(64).collect();
    let long = format!("{korean}1!");
    browser.fill("#signup-password", &long).await;
    assert_eq!(browser.value("#signup-password").await.chars().count(), 66);
    assert_eq!(
        browser.rules().await,
        states(["met", "met", "met", "met", "met", ""])
    );
    // 4 letters outside the BMP are 8 UTF-16 units: with "1!" still 6 < 9.
    // (chromedriver cannot type them: set the value as an IME would.)
    browser
        .js("const f = document.getElementById('signup-password');
             f.value = '\u{1D49C}\u{1D49C}\u{1D49C}\u{1D49C}1!';
             f.dispatchEvent(new Event('input', { bubbles: true })); return true")
        .await;
    assert_eq!(
        browser.rule("length").await.0,
        "unmet",
        "6 characters, not 10"
    );
    browser.fill("#signup-password", &long).await;

    // The second password.
    assert_eq!(browser.text("#confirm-hint").await, "");
    browser.type_into("#signup-password-confirm", &korean).await;
    assert_eq!(browser.text("#confirm-hint").await, "The passwords differ.");
    assert_eq!(
        browser
            .js("return document.getElementById('confirm-hint').className")
            .await,
        json!("hint differ")
    );
    browser.type_into("#signup-password-confirm", "1!").await;
    assert_eq!(browser.text("#confirm-hint").await, "Passwords match.");
    assert_eq!(
        browser
            .js("return document.getElementById('confirm-hint').className")
            .await,
        json!("hint match")
    );
    // Changing the first password updates the verdict.
    browser.type_into("#signup-password", "?").await;
    assert_eq!(browser.text("#confirm-hint").await, "The passwords differ.");

    // Emptying the password makes the rule neutral again.
    browser
        .js(
            "const f = document.getElementById('signup-password'); f.value = '';
             f.dispatchEvent(new Event('input', { bubbles: true })); return true",
        )
        .await;
    assert_eq!(browser.rules().await, states(["", "", "", "", "", ""]));
    assert_eq!(browser.rule("length").await.1, "");
    browser.close().await;
}

#[tokio::test]
async fn the_terms_open_in_a_dialog_and_the_checkbox_stays_as_it_was() {
    let app = spawn_with(open).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/signup")).await;
    let windows = browser.client.windows().await.unwrap().len();

    for (link, dialog, title) in [
        ("terms-dialog", "terms-dialog", "Terms of Service"),
        ("privacy-dialog", "privacy-dialog", "Privacy Policy"),
    ] {
        assert!(!browser.dialog_open(dialog).await);
        browser
            .click(&format!(".checkbox-field a[data-dialog={link}]"))
            .await;
        assert!(browser.dialog_open(dialog).await, "{dialog} opens");
        assert_eq!(browser.text(&format!("#{dialog} h2")).await, title);
        assert!(
            browser
                .text(&format!("#{dialog} article.document"))
                .await
                .contains("This is a template."),
            "the document itself is in the dialog"
        );
        assert!(
            !browser.checked("#agree").await,
            "the label did not toggle it"
        );
        assert_eq!(browser.path().await, "/signup", "no navigation");
        assert_eq!(
            browser.client.windows().await.unwrap().len(),
            windows,
            "no new tab either"
        );
        // Modal: focus is inside the dialog.
        assert_eq!(
            browser
                .js(&format!(
                    "return document.getElementById('{dialog}').contains(document.activeElement)"
                ))
                .await,
            json!(true)
        );
        // `[` (the sidebar shortcut elsewhere) changes nothing here.
        browser.press('[').await;
        assert!(browser.dialog_open(dialog).await);

        browser
            .click(&format!("#{dialog} form[method=dialog] button"))
            .await;
        assert!(!browser.dialog_open(dialog).await, "Close closes it");
        assert!(!browser.checked("#agree").await);
        assert_eq!(
            browser
                .js(&format!(
                    "return document.activeElement === document.querySelector('a[data-dialog={link}]')"
                ))
                .await,
            json!(true),
            "focus returns to the link"
        );

        // Escape closes it too.
        browser
            .click(&format!(".checkbox-field a[data-dialog={link}]"))
            .await;
        assert!(browser.dialog_open(dialog).await);
        browser.press(ESCAPE).await;
        assert!(!browser.dialog_open(dialog).await, "Escape closes it");
        assert!(!browser.checked("#agree").await);
    }

    // Ticked, it stays ticked through a reading too.
    browser.click("#agree").await;
    assert!(browser.checked("#agree").await);
    browser.click("a[data-dialog=terms-dialog]").await;
    browser
        .click("#terms-dialog form[method=dialog] button")
        .await;
    assert!(
        browser.checked("#agree").await,
        "and the dialog leaves it ticked"
    );

    // Without the script the link is a page of its own.
    browser.goto(&app.url("/terms")).await;
    assert!(
        browser
            .text("article.document h1")
            .await
            .contains("Terms of Service")
    );
    browser.close().await;
}

#[tokio::test]
async fn a_teammate_signs_up_with_an_invitation_link_and_logs_in() {
    let app = spawn_app().await; // invite mode
    let token = InviteToken::generate();
    let now = app.clock.now();
    app.state
        .store
        .create_invite(NewInvite {
            token_hash: token.hash(),
            created_at: now,
            expires_at: Some(now.plus(Duration::from_secs(7 * 24 * 3600))),
            max_uses: 1,
            email: None,
            role: Role::User,
            first_run: false,
            groups: Vec::new(),
        })
        .await
        .unwrap();
    let browser = Browser::start().await;

    browser.goto(&app.state.invite_link(&token)).await;
    assert_eq!(browser.value("#signup-token").await, token.as_str());
    browser.fill("#signup-email", "erin@example.com").await;
    browser.fill("#signup-username", "erin").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser.fill("#signup-password-confirm", PASSWORD).await;
    assert_eq!(browser.text("#confirm-hint").await, "Passwords match.");
    browser.click("#agree").await;
    assert!(browser.checked("#agree").await);
    browser.submit("#signup-form button[type=submit]").await;

    browser.wait_for_path("/login?signed_up=1").await;
    assert!(
        browser
            .text("#login-status")
            .await
            .contains("Your account is ready"),
        "{}",
        browser.text("#login-status").await
    );

    log_in(&browser, &app, "erin", PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    browser.close().await;
}

#[tokio::test]
async fn errors_keep_what_was_typed_but_not_the_passwords() {
    let app = spawn_with(open).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/signup")).await;
    browser.fill("#signup-email", "fay@example.com").await;
    browser.fill("#signup-username", "fay").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser
        .fill("#signup-password-confirm", "Other-pass1!")
        .await;
    browser.click("#agree").await;
    browser.submit("#signup-form button[type=submit]").await;

    assert_eq!(browser.path().await, "/signup");
    assert!(
        browser
            .text("#signup-status")
            .await
            .contains("Please correct the fields marked below.")
    );
    assert!(
        browser
            .text("#signup-password-confirm-error")
            .await
            .contains("The two passwords differ."),
    );
    assert_eq!(
        browser
            .js(
                "const f = document.getElementById('signup-password-confirm');
                 return [f.getAttribute('aria-invalid'), f.getAttribute('aria-describedby')]"
            )
            .await,
        json!(["true", "confirm-hint signup-password-confirm-error"])
    );
    assert_eq!(browser.value("#signup-email").await, "fay@example.com");
    assert_eq!(browser.value("#signup-username").await, "fay");
    assert_eq!(browser.value("#signup-password").await, "");
    assert_eq!(browser.value("#signup-password-confirm").await, "");
    // A fresh start for the rule and the hint.
    assert_eq!(browser.rules().await, states(["", "", "", "", "", ""]));
    assert_eq!(browser.text("#confirm-hint").await, "");
    browser.close().await;
}

#[tokio::test]
async fn re_consent_is_asked_after_the_terms_change() {
    let files = tempfile::tempdir().unwrap();
    let terms = files.path().join("terms.md");
    std::fs::write(&terms, "# Terms of Service\n\nVersion one.\n").unwrap();
    let path = terms.clone();
    let app = spawn_with(move |c| c.terms_file = Some(path)).await;
    app.add_user("dana@example.com", "dana", PASSWORD).await;
    let (dir, clock) = app.stop().await;

    std::fs::write(&terms, "# Terms of Service\n\nVersion two: new rules.\n").unwrap();
    let path = terms.clone();
    let app = spawn_in(dir, clock, move |c| c.terms_file = Some(path)).await;
    let browser = Browser::start().await;

    log_in(&browser, &app, "dana", PASSWORD).await;
    browser.wait_for_path("/consent").await;
    assert_eq!(browser.text("h1").await, "Updated terms");
    browser.click("a[data-dialog=terms-dialog]").await;
    assert!(
        browser
            .text("#terms-dialog article.document")
            .await
            .contains("Version two")
    );
    browser.press(ESCAPE).await;
    assert!(!browser.dialog_open("terms-dialog").await);

    // The browser itself insists on the box first…
    browser.click("#consent-form button[type=submit]").await;
    assert_eq!(browser.path().await, "/consent");
    assert_eq!(
        browser
            .js("return document.getElementById('agree').validity.valueMissing")
            .await,
        json!(true)
    );
    // …and so does the server, when the browser does not check.
    browser
        .js("document.getElementById('consent-form').noValidate = true; return true")
        .await;
    browser.submit("#consent-form button[type=submit]").await;
    assert_eq!(browser.path().await, "/consent");
    assert!(
        browser
            .text("#agree-error")
            .await
            .contains("Read and accept the Terms of Service and the Privacy Policy")
    );
    assert_eq!(
        browser
            .js("return document.getElementById('agree').getAttribute('aria-invalid')")
            .await,
        json!("true")
    );

    browser.click("#agree").await;
    browser.submit("#consent-form button[type=submit]").await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");

    // Accepted once: the next login goes straight to the Summary.
    browser.goto(&app.url("/consent")).await;
    browser.wait_for_path("/").await;
    browser.close().await;
}
