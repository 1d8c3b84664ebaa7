//! The journeys of issue 6 not covered elsewhere: the first admin from the
//! printed link to Log Out, the closed-signup message, and the pinned and
//! editable API endpoint.

use crate::browser::{Browser, log_in};
use crate::support::{PASSWORD, spawn_first_run, spawn_with};
use fantoccini::Locator;
use serde_json::json;

#[tokio::test]
async fn the_first_admin_follows_the_printed_link_through_to_log_out() {
    let (app, link) = spawn_first_run().await;
    let browser = Browser::start().await;
    browser.goto(&link).await;
    let token = link.split("token=").nth(1).unwrap();
    assert_eq!(
        browser
            .js("return document.getElementById('signup-token').value")
            .await,
        json!(token)
    );
    browser.fill("#signup-email", "boss@example.com").await;
    browser.fill("#signup-username", "boss").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser.fill("#signup-password-confirm", PASSWORD).await;
    browser.click("#agree").await;
    browser.submit("#signup-form button[type=submit]").await;
    browser.wait_for_path("/login?signed_up=1").await;

    log_in(&browser, &app, "boss", PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    browser.click("#sidebar-toggle").await;
    assert!(browser.is_collapsed().await);
    browser.client.refresh().await.unwrap();
    assert!(browser.is_collapsed().await, "kept across the reload");
    browser.click("main").await;
    browser.press('[').await;
    assert!(!browser.is_collapsed().await);
    browser.click("#user-menu summary").await;
    let menu = browser
        .js("return document.querySelector('.menu-panel').textContent")
        .await;
    let menu = menu.as_str().unwrap().to_string();
    assert!(
        menu.contains("boss@example.com") && menu.contains("admin"),
        "the first account is an admin: {menu}"
    );
    browser.submit("#logout-button").await;
    browser.wait_for_path("/login?logged_out=1").await;
    browser.close().await;
}

#[tokio::test]
async fn closed_signup_says_to_ask_the_administrator() {
    let app = spawn_with(|c| c.signup = gatehouse::config::SignupMode::Closed).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/login")).await;
    assert!(
        browser
            .text("#signup-closed")
            .await
            .contains("contact the administrator")
    );
    assert!(
        browser
            .client
            .find(Locator::Css("#signup-link"))
            .await
            .is_err(),
        "no SIGN UP button"
    );
    browser.goto(&app.url("/signup")).await;
    let text = browser.js("return document.body.innerText").await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("Signing up is not available")
    );
    browser.close().await;
}

#[tokio::test]
async fn the_endpoint_is_pinned_by_default_and_when_editable_leads_to_the_other_servers_login() {
    let pinned = spawn_with(|_| {}).await;
    let other = spawn_with(|_| {}).await;
    let editable = spawn_with(|c| c.endpoint_editable = true).await;
    let browser = Browser::start().await;

    browser.goto(&pinned.url("/login")).await;
    assert_eq!(
        browser
            .js("return document.getElementById('login-endpoint').readOnly")
            .await,
        json!(true)
    );

    browser.goto(&editable.url("/login")).await;
    assert_eq!(
        browser
            .js("return document.getElementById('login-endpoint').readOnly")
            .await,
        json!(false)
    );
    browser.fill("#login-id", "someone").await;
    browser.fill("#login-password", "Wrong-pass1!").await;
    browser
        .fill("#login-endpoint", &format!("{}/", other.address))
        .await;
    browser.submit("#login-form button[type=submit]").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(
        url.as_str(),
        format!("{}/login", other.address),
        "sent to the other server's login page"
    );
    // The endpoint is remembered for next time.
    browser.goto(&editable.url("/login")).await;
    let remembered = browser
        .js("return localStorage.getItem('gatehouse.endpoints') || ''")
        .await;
    assert!(
        remembered.as_str().unwrap().contains(&other.address),
        "{remembered}"
    );
    browser.close().await;
}
