//! `make screenshots`: every page in real headless Chromium, on a desktop
//! (1280×800) and a phone (360×780), light and dark, saved as PNG into
//! docs/screenshots/ (`<page>-<desktop|phone>-<light|dark>.png`) for the
//! user guide. Ignored by `make test`; it fails if a page renders blank or
//! with a console error.

use crate::browser::{Browser, log_in};
use crate::browser_a11y::{DESKTOP_DARK, DESKTOP_LIGHT, PHONE_DARK, PHONE_LIGHT, VIEWS, View};
use crate::support::{PASSWORD, TestApp, spawn_app, spawn_with};
use gatehouse::config::{Config, SignupMode};
use gatehouse::domain::{LinkToken, OneTimeToken, TokenPurpose};
use std::path::PathBuf;
use std::time::Duration;

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Saves the page as it is now, on each of `views`.
    async fn shoot(&self, name: &str, views: &[View]) {
        // A pinned endpoint as the reader's own server would show it, not
        // the test server's random port.
        self.js("const e = document.getElementById('login-endpoint');
                 if (e && e.readOnly) e.value = 'https://login.example.com/';
                 return true")
            .await;
        for &view in views {
            self.emulate(view).await;
            if let Some(why) = self.blank().await {
                panic!("{name} [{}] renders blank: {why}", view.name);
            }
            let png = self.client.screenshot().await.unwrap();
            let path = out_dir().join(format!("{name}-{}.png", view.name));
            std::fs::write(&path, png).unwrap();
        }
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{name}: console errors: {errors:?}");
        self.emulate(DESKTOP_LIGHT).await;
    }
}

/// Logs in (or tries to) from another device, with its own cookies.
async fn log_in_from(app: &TestApp, user_agent: &str, id: &str, password: &str) {
    app.login_elsewhere(id, password, Some(user_agent)).await;
}

#[tokio::test]
#[ignore = "writes docs/screenshots/; run by `make screenshots`"]
async fn screenshots() {
    let app = spawn_app().await; // invitations, pinned endpoint, reset on
    let alex = app.add_user("alex@example.com", "alex", PASSWORD).await;
    let browser = Browser::start_with(&["--hide-scrollbars"]).await;
    browser.emulate(DESKTOP_LIGHT).await;
    // What the Account page shows of this browser: not "HeadlessChrome".
    browser
        .cdp(
            "Emulation.setUserAgentOverride",
            serde_json::json!({ "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36" }),
        )
        .await;

    browser.goto(&app.url("/login")).await;
    browser.shoot("login", &VIEWS).await;

    // Sign up from an invitation link, filled in, the rule ticked off.
    let token = app.invite(|_| {}).await;
    browser.goto(&app.state.invite_link(&token)).await;
    browser.fill("#signup-email", "sam@example.com").await;
    browser.fill("#signup-username", "sam").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser.fill("#signup-password-confirm", PASSWORD).await;
    browser
        .js("document.activeElement.blur(); window.scrollTo(0, 0); return true")
        .await;
    browser.shoot("signup", &VIEWS).await;
    browser.click("a[data-dialog=terms-dialog]").await;
    browser.shoot("documents", &VIEWS).await;

    browser.goto(&app.url("/forgot-password")).await;
    browser.shoot("forgot", &VIEWS).await;

    let secret = "screenshot-reset-link-0123456789abcdef0123456789";
    let ttl = Duration::from_secs(3600);
    let token = OneTimeToken::new(TokenPurpose::Reset, alex.id, app.clock.now(), ttl);
    let link = LinkToken::parse(secret).unwrap();
    app.state
        .store
        .issue_token(link.hash(), token, None)
        .await
        .unwrap();
    browser
        .goto(&app.url(&format!("/reset-password?token={secret}")))
        .await;
    browser.shoot("reset", &VIEWS).await;

    browser.goto(&app.url("/no-such-page")).await;
    browser.shoot("error", &VIEWS).await;

    // A first login of an account made by the administrator: consent.
    app.add_user_without_consent("robin@example.com", "robin")
        .await;
    log_in(&browser, &app, "robin", PASSWORD).await;
    browser.wait_for_path("/consent").await;
    browser.shoot("consent", &VIEWS).await;
    browser.client.delete_all_cookies().await.unwrap();

    // Alex, on a Monday morning, with some history: one wrong password
    // and a login from a phone, then this browser.
    app.clock
        .advance(Duration::from_secs(11 * 24 * 3600 + 9 * 3600));
    let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1";
    log_in_from(&app, phone, "alex", "Wrong-pass1!").await;
    app.clock.advance(Duration::from_secs(70));
    log_in_from(&app, phone, "alex", PASSWORD).await;
    app.clock.advance(Duration::from_secs(47 * 60));
    log_in(&browser, &app, "alex", PASSWORD).await;
    browser.wait_for_path("/").await;
    browser.shoot("summary", &VIEWS).await;
    browser.click("#user-menu summary").await;
    browser.shoot("user-menu", &VIEWS).await;
    browser.click("main").await;
    browser.click("#sidebar-toggle").await;
    browser
        .shoot("sidebar-collapsed", &[DESKTOP_LIGHT, DESKTOP_DARK])
        .await;
    browser.click("#sidebar-toggle").await;
    browser.emulate(PHONE_LIGHT).await;
    browser.click("#drawer-toggle").await;
    browser.shoot("drawer", &[PHONE_LIGHT, PHONE_DARK]).await;

    browser.goto(&app.url("/account")).await;
    browser.shoot("account", &VIEWS).await;
    browser
        .js("document.getElementById('sessions-heading').scrollIntoView(); return true")
        .await;
    browser.shoot("account-sessions", &VIEWS).await;

    // The lock after more than 10 failed tries in a row: the 11th.
    app.add_user("kim@example.com", "kim", PASSWORD).await;
    for _ in 0..10 {
        log_in_from(&app, phone, "kim", "Wrong-pass1!").await;
    }
    browser.client.delete_all_cookies().await.unwrap();
    log_in(&browser, &app, "kim", "Wrong-pass1!").await;
    assert!(browser.text("#lock-notice").await.contains("locked"));
    browser.shoot("locked", &VIEWS).await;

    let closed = spawn_with(|c: &mut Config| c.signup = SignupMode::Closed).await;
    browser.goto(&closed.url("/signup")).await;
    browser.shoot("signup-closed", &VIEWS).await;

    browser.close().await;
}
