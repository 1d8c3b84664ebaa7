//! Passkeys through HTTP with a software authenticator (webauthn-
//! authenticator-rs's soft passkey, which signs as a device does): added on
//! the Account page, the second step after the password, a replayed
//! answer refused, removal after the password. Both backends. (The soft
//! passkey keeps no discoverable credentials: the login without a password
//! is the Chromium journey's, in `passkeys_browser`.)

use crate::support::{PASSWORD, TestApp, csrf_from, new_client, spawn_with};
use reqwest::{Client, Response, StatusCode};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// An app at `http://localhost:PORT` (WebAuthn needs a host name), also
/// answering at 127.0.0.1 where the test's requests go.
pub async fn passkey_app(configure: impl FnOnce(&mut gatehouse::Config)) -> TestApp {
    spawn_with(|c| {
        c.base_url = Some(Url::parse("http://localhost:0/").unwrap());
        c.allowed_hosts = vec!["127.0.0.1".into()];
        configure(c);
    })
    .await
}

struct Browser<'a> {
    app: &'a TestApp,
    client: Client,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: new_client(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(self.app.url(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The browser's CSRF token (from whichever of our pages has a form).
    async fn csrf(&self) -> String {
        for page in ["/login", "/account"] {
            let (status, html) = self.get(page).await;
            if status == StatusCode::OK {
                return csrf_from(&html);
            }
        }
        panic!("no page with a form");
    }

    async fn post(&self, action: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf().await;
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.client
            .post(self.app.url(action))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, id: &str) -> Response {
        self.post(
            "/login",
            &[("id", id), ("password", PASSWORD), ("endpoint", "")],
        )
        .await
    }

    /// The JSON a challenge endpoint answers.
    async fn options<T: serde::de::DeserializeOwned>(&self, action: &str) -> T {
        let r = self.post(action, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{action}");
        r.json().await.unwrap()
    }
}

fn origin(app: &TestApp) -> Url {
    app.state.base_url.clone()
}

fn location(r: &Response) -> &str {
    r.headers()["location"].to_str().unwrap()
}

/// Adds a passkey of `key` to the account `b` is logged in to; returns the
/// page's text.
async fn add_passkey(
    app: &TestApp,
    b: &Browser<'_>,
    key: &mut SoftPasskey,
    name: &str,
) -> Response {
    let options: CreationChallengeResponse = b.options("/account/passkeys/start").await;
    let answer = key
        .do_registration(origin(app), options)
        .expect("the soft passkey registers");
    b.post(
        "/account/passkeys/add",
        &[
            ("name", name),
            ("credential", &serde_json::to_string(&answer).unwrap()),
        ],
    )
    .await
}

/// The second step answered by `key`: the response to the form.
async fn second_step(app: &TestApp, b: &Browser<'_>, key: &mut SoftPasskey) -> (Response, String) {
    let options: RequestChallengeResponse = b.options("/login/second-factor/passkey").await;
    let answer = key
        .do_authentication(origin(app), options)
        .expect("the soft passkey signs");
    let json = serde_json::to_string(&answer).unwrap();
    (
        b.post("/login/second-factor", &[("passkey", &json)]).await,
        json,
    )
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_is_the_second_step_and_goes_when_removed() {
    let app = passkey_app(|_| {}).await;
    app.add_user("pat@example.com", "pat", PASSWORD).await;
    let owner = Browser::new(&app);
    assert_eq!(location(&owner.login("pat").await), "/");
    let mut key = SoftPasskey::new(true);
    let r = add_passkey(&app, &owner, &mut key, "Work laptop").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the first factor shows recovery codes"
    );
    assert_eq!(r.text().await.unwrap().matches("<li><code>").count(), 10);
    let (_, account) = owner.get("/account").await;
    assert!(
        account.contains("value=\"Work laptop\""),
        "listed by its name"
    );
    // A second device: its passkey adds no new recovery codes.
    let mut other = SoftPasskey::new(true);
    let r = add_passkey(&app, &owner, &mut other, "Phone").await;
    assert_eq!(
        location(&r),
        "/account?passkey_added=1#second-factor",
        "a second one adds no codes"
    );

    // The next login asks for a second step; the passkey answers it.
    let b = Browser::new(&app);
    assert_eq!(location(&b.login("pat").await), "/login/second-factor");
    let (_, page) = b.get("/login/second-factor").await;
    assert!(page.contains("Use a passkey instead"), "{page}");
    let (r, used) = second_step(&app, &b, &mut key).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");
    assert_eq!(b.get("/account").await.0, StatusCode::OK);
    let (_, account) = b.get("/account").await;
    let row = |name: &str| {
        account
            .split("<tr data-passkey-id")
            .find(|r| r.contains(&format!("value=\"{name}\"")))
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(!row("Work laptop").contains(">never<"), "its use is shown");
    assert!(row("Phone").contains(">never<"), "the other is unused");

    // An answer replayed into a new half-login is refused: its challenge
    // was another.
    let c = Browser::new(&app);
    c.login("pat").await;
    let _: RequestChallengeResponse = c.options("/login/second-factor/passkey").await;
    let r = c.post("/login/second-factor", &[("passkey", &used)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A passkey of another account (or none) is refused too.
    let mut stranger = SoftPasskey::new(true);
    let options: RequestChallengeResponse = c.options("/login/second-factor/passkey").await;
    assert!(
        stranger.do_authentication(origin(&app), options).is_err(),
        "the stranger's device has no credential of these"
    );

    // Removing one asks for the password; with both gone the password
    // alone logs in again.
    let (_, account) = owner.get("/account").await;
    let ids: Vec<String> = account
        .split("data-passkey-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{account}");
    let r = owner
        .post(
            "/account/passkeys/remove",
            &[("id", &ids[0]), ("password", "Wrong-pass-1!")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for id in &ids {
        let r = owner
            .post(
                "/account/passkeys/remove",
                &[("id", id), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(location(&r), "/account?passkey_removed=1#second-factor");
    }
    assert_eq!(location(&Browser::new(&app).login("pat").await), "/");
}

#[tokio::test]
async fn a_passkey_without_a_user_handle_or_a_stale_challenge_logs_nobody_in() {
    let app = passkey_app(|_| {}).await;
    app.add_user("quinn@example.com", "quinn", PASSWORD).await;
    let owner = Browser::new(&app);
    owner.login("quinn").await;
    let mut key = SoftPasskey::new(true);
    add_passkey(&app, &owner, &mut key, "Key").await;
    // The login without a password needs a discoverable credential, whose
    // answer names its account: this one does not.
    let b = Browser::new(&app);
    let options: RequestChallengeResponse = b.options("/login/passkey/start").await;
    assert!(
        options.public_key.allow_credentials.is_empty(),
        "any passkey of this site may answer"
    );
    assert!(
        key.do_authentication(origin(&app), options).is_err(),
        "the soft passkey has no credential it can offer without being named"
    );
    // A real answer of this passkey (to a second step), sent here instead:
    // it names no account (no user handle), so nobody logs in.
    let other = Browser::new(&app);
    other.login("quinn").await;
    let options: RequestChallengeResponse = other.options("/login/second-factor/passkey").await;
    let answer = key.do_authentication(origin(&app), options).unwrap();
    assert!(answer.response.user_handle.is_none());
    let json = serde_json::to_string(&answer).unwrap();
    let _: RequestChallengeResponse = b.options("/login/passkey/start").await;
    let r = b.post("/login/passkey", &[("credential", &json)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not one of an account here")
    );
    // The challenge was used up by that try.
    let r = b.post("/login/passkey", &[("credential", &json)]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        b.get("/account").await.0,
        StatusCode::SEE_OTHER,
        "no session"
    );
    // Without a challenge cookie: said so, nothing else.
    let c = Browser::new(&app);
    let r = c.post("/login/passkey", &[("credential", "{}")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("timed out"));
}

#[tokio::test]
async fn passkeys_are_off_at_an_ip_address_and_the_pages_say_so() {
    let app = spawn_with(|_| {}).await;
    app.add_user("ray@example.com", "ray", PASSWORD).await;
    let b = Browser::new(&app);
    let (_, login) = b.get("/login").await;
    assert!(!login.contains("Log in with a passkey"));
    b.login("ray").await;
    let (_, account) = b.get("/account").await;
    assert!(account.contains("not an IP address"), "{account}");
    let r = b.post("/account/passkeys/start", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let json: serde_json::Value = r.json().await.unwrap();
    assert!(json["error"].as_str().unwrap().contains("host name"));
}
