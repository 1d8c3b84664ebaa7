//! Passkeys in real Chromium with its WebDriver virtual authenticator (a
//! platform authenticator that keeps discoverable credentials and verifies
//! its user): the page's own script adds a passkey on the Account page,
//! logs in with it without a password, answers the second step with it,
//! and the passkey is removed.

use crate::browser::Browser;
use crate::passkeys::passkey_app;
use crate::support::PASSWORD;
use serde_json::json;

/// `POST /session/{id}/webauthn/authenticator` (WebAuthn Level 2 §11.3):
/// a virtual authenticator in this browser, with or without room for
/// discoverable credentials; `DELETE …/{authenticatorId}` removes it.
#[derive(Debug)]
enum VirtualAuthenticator {
    Add { resident_keys: bool },
    Remove(String),
}

impl fantoccini::wd::WebDriverCompatibleCommand for VirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        match self {
            Self::Add { .. } => base_url.join(&format!("session/{session}/webauthn/authenticator")),
            Self::Remove(id) => {
                base_url.join(&format!("session/{session}/webauthn/authenticator/{id}"))
            }
        }
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        match self {
            Self::Add { resident_keys } => {
                let body = json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": resident_keys,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                });
                (axum::http::Method::POST, Some(body.to_string()))
            }
            Self::Remove(_) => (axum::http::Method::DELETE, None),
        }
    }
}

async fn add_authenticator(browser: &Browser, resident_keys: bool) -> String {
    let id = browser
        .client
        .issue_cmd(VirtualAuthenticator::Add { resident_keys })
        .await
        .expect("Chromium's WebDriver adds a virtual authenticator");
    id.as_str().expect("its id").to_string()
}

async fn log_in_with_password(browser: &Browser, at: &dyn Fn(&str) -> String, id: &str) {
    browser.goto(&at("/login")).await;
    browser.fill("#login-id", id).await;
    browser.fill("#login-password", PASSWORD).await;
    browser.submit("#login-form button[type=submit]").await;
}

async fn add_passkey(browser: &Browser, at: &dyn Fn(&str) -> String, name: &str) {
    browser.goto(&at("/account")).await;
    browser.fill("#passkey-name", name).await;
    browser
        .submit("#add-passkey-form button[type=submit]")
        .await;
    let page = browser.text("main").await;
    assert!(page.contains("Your passkey is added"), "{page}");
    assert_eq!(
        browser
            .js("return document.querySelectorAll('ul.codes li').length")
            .await,
        json!(10)
    );
}

#[tokio::test]
async fn a_passkey_added_in_the_browser_logs_in_without_a_password_and_as_the_second_step() {
    let app = passkey_app(|_| {}).await;
    app.add_user("sam@example.com", "sam", PASSWORD).await;
    app.add_user("tia@example.com", "tia", PASSWORD).await;
    let base = app.state.base_url.clone();
    let at = move |path: &str| base.join(path).unwrap().to_string();
    let browser = Browser::start().await;

    // A device that keeps discoverable credentials: sam adds a passkey on
    // the Account page, and logs in with it alone. The login page offers
    // it among the ID field's suggestions (conditional mediation), which
    // the virtual authenticator, its user present, picks at once.
    let device = add_authenticator(&browser, true).await;
    log_in_with_password(&browser, &at, "sam").await;
    assert_eq!(browser.path().await, "/");
    add_passkey(&browser, &at, "This laptop").await;
    browser.client.delete_all_cookies().await.unwrap();
    browser.goto(&at("/login")).await;
    browser.wait_for_path("/").await;
    browser.goto(&at("/account")).await;
    assert!(browser.text("main").await.contains("sam@example.com"));
    assert_eq!(
        browser
            .js("return document.querySelector('#passkeys-table input[name=name]').value")
            .await,
        json!("This laptop")
    );
    assert!(
        !browser.text("#passkeys-table").await.contains("never"),
        "its use is shown"
    );
    browser
        .client
        .issue_cmd(VirtualAuthenticator::Remove(device))
        .await
        .unwrap();

    // A security key without room for discoverable credentials: tia's
    // passkey answers the second step after the password.
    browser.client.delete_all_cookies().await.unwrap();
    add_authenticator(&browser, false).await;
    log_in_with_password(&browser, &at, "tia").await;
    add_passkey(&browser, &at, "Security key").await;
    browser.client.delete_all_cookies().await.unwrap();
    log_in_with_password(&browser, &at, "tia").await;
    assert_eq!(browser.path().await, "/login/second-factor");
    browser.submit("#use-passkey").await;
    assert_eq!(browser.path().await, "/", "{}", browser.text("body").await);

    // Removed (after the password): the password alone logs in again.
    browser.goto(&at("/account")).await;
    browser
        .fill("#passkeys-table input[type=password]", PASSWORD)
        .await;
    browser.submit("#passkeys-table button.danger").await;
    assert_eq!(browser.path().await, "/account?passkey_removed=1");
    browser.client.delete_all_cookies().await.unwrap();
    log_in_with_password(&browser, &at, "tia").await;
    assert_eq!(browser.path().await, "/");
    browser.close().await;
}
