//! Second factors through HTTP (issue 15): an authenticator app set up on
//! the Account page, the login's second step with codes the test computes
//! from the secret at the app's manual clock (replay, skew, lockout),
//! recovery codes, the policy's enrolment, resets. Both backends.

use crate::smtp::{Options, SmtpServer};
use crate::support::cli::cli;
use crate::support::{PASSWORD, TestApp, csrf_from, new_client, spawn_app, spawn_with};
use gatehouse::config::Require2fa;
use gatehouse::domain::second_factor::TotpSecret;
use gatehouse::mail::SmtpSettings;
use reqwest::{Client, Response, StatusCode};
use std::time::Duration;

/// One browser (its own cookies) on `app`.
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

    /// Posts `fields` to `action` with the CSRF token of the page at `page`.
    async fn post(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (_, html) = self.get(page).await;
        let csrf = csrf_from(&html);
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.client
            .post(self.app.url(action))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, id: &str, password: &str) -> Response {
        self.post(
            "/login",
            "/login",
            &[("id", id), ("password", password), ("endpoint", "")],
        )
        .await
    }

    async fn code(&self, code: &str) -> Response {
        // The CSRF token is the browser's, on any page: the login page's
        // also works once the half-login is gone.
        let (status, _) = self.get("/login").await;
        let page = if status == StatusCode::OK {
            "/login"
        } else {
            "/"
        };
        self.post(page, "/login/second-factor", &[("code", code)])
            .await
    }
}

fn location(r: &Response) -> &str {
    r.headers()["location"].to_str().unwrap()
}

/// The secret a setup page shows (`data-secret`).
fn secret_of(html: &str) -> TotpSecret {
    let at = html.find("data-secret=\"").expect("the page shows the key") + 13;
    let end = html[at..].find('"').unwrap();
    TotpSecret::from_base32(&html[at..at + end]).expect("a base32 key")
}

/// The recovery codes a page shows once.
fn codes_of(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_string())
        .collect()
}

/// Logs `b` in with the password alone and sets up an app on the Account
/// page; returns its secret and the recovery codes.
async fn set_up_app(app: &TestApp, b: &Browser<'_>, id: &str) -> (TotpSecret, Vec<String>) {
    let r = b.login(id, PASSWORD).await;
    assert_eq!(location(&r), "/", "the password alone logs in before");
    let r = b.post("/account", "/account/2fa/app", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/2fa/app");
    let (status, html) = b.get("/account/2fa/app").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg"), "a QR code drawn by the server");
    let secret = secret_of(&html);
    // A reload shows the same key: an app scanned already stays right.
    let r = b.post("/account", "/account/2fa/app", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        secret_of(&b.get("/account/2fa/app").await.1).base32(),
        secret.base32()
    );
    let wrong = b
        .post(
            "/account/2fa/app",
            "/account/2fa/app/confirm",
            &[("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let code = secret.code_at(app.clock.now());
    let r = b
        .post(
            "/account/2fa/app",
            "/account/2fa/app/confirm",
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let codes = codes_of(&html);
    assert_eq!(codes.len(), 10, "{html}");
    let (_, account) = b.get("/account").await;
    assert!(account.contains("10 unused"), "{account}");
    assert!(
        !account.contains(&secret.base32()),
        "the key is never shown again"
    );
    (secret, codes)
}

#[tokio::test]
async fn an_app_set_up_on_the_account_page_guards_every_later_login() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let owner = Browser::new(&app);
    let (secret, _) = set_up_app(&app, &owner, "alice").await;
    // Another browser with the password: no session, a second step.
    let b = Browser::new(&app);
    let r = b.login("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login/second-factor");
    assert!(
        crate::support::TestApp::session_cookie(&r).is_none(),
        "no session before the second step"
    );
    assert_eq!(b.get("/account").await.0, StatusCode::SEE_OTHER);
    let (status, html) = b.get("/login/second-factor").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("one-time-code"), "{html}");
    // The code that confirmed the app was used: refused, and said so.
    let r = b.code(&secret.code_at(app.clock.now())).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("used already"));
    // Two steps later, the code of one step ago (a slow phone) still works.
    app.clock.advance(Duration::from_secs(60));
    let late = secret.code_at(app.clock.now().minus(Duration::from_secs(30)));
    let r = b.code(&late).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");
    assert!(crate::support::TestApp::session_cookie(&r).is_some());
    assert_eq!(b.get("/account").await.0, StatusCode::OK);
    // The half-login is gone: its cookie does not make a second session.
    let r = b.code(&secret.code_at(app.clock.now())).await;
    assert_eq!(location(&r), "/login?expired=1");
    // A code from two steps ago is too old.
    let b2 = Browser::new(&app);
    b2.login("alice", PASSWORD).await;
    app.clock.advance(Duration::from_secs(30));
    let old = secret.code_at(app.clock.now().minus(Duration::from_secs(60)));
    assert_eq!(b2.code(&old).await.status(), StatusCode::UNAUTHORIZED);
    // A half-login lasts five minutes.
    app.clock.advance(Duration::from_secs(5 * 60));
    let r = b2.code(&secret.code_at(app.clock.now())).await;
    assert_eq!(location(&r), "/login?expired=1");
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout_like_wrong_passwords() {
    let app = spawn_app().await;
    app.add_user("bea@example.com", "bea", PASSWORD).await;
    let owner = Browser::new(&app);
    let (secret, _) = set_up_app(&app, &owner, "bea").await;
    // A stranger who has the password guesses codes.
    let stranger = Browser::new(&app);
    let mut wrong = 0;
    for _ in 0..2 {
        assert_eq!(
            location(&stranger.login("bea", PASSWORD).await),
            "/login/second-factor"
        );
        for n in 1..=5 {
            let r = stranger.code("123456").await;
            wrong += 1;
            if n < 5 {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "wrong code {wrong}");
            } else {
                assert_eq!(
                    location(&r),
                    "/login?expired=1",
                    "five wrong codes end the half-login"
                );
            }
        }
    }
    // Ten failures: the eleventh locks the ID, even with the right code.
    stranger.login("bea", PASSWORD).await;
    let r = stranger.code("654321").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("This ID is locked"));
    assert_eq!(
        stranger.login("bea", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner's browser (its device cookie) is judged by its own
    // failures: still in, with the password and a fresh code.
    owner.post("/", "/logout", &[]).await;
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(
        location(&owner.login("bea", PASSWORD).await),
        "/login/second-factor"
    );
    let r = owner.code(&secret.code_at(app.clock.now())).await;
    assert_eq!(location(&r), "/");
}

#[tokio::test]
async fn a_recovery_code_works_once_says_how_many_remain_and_mails_the_owner() {
    let smtp = SmtpServer::start(Options::default());
    let url = smtp.url();
    let app = spawn_with(|c| c.mail.smtp = Some(SmtpSettings::parse(&url).unwrap())).await;
    app.add_user("cyd@example.com", "cyd", PASSWORD).await;
    let owner = Browser::new(&app);
    let (_, codes) = set_up_app(&app, &owner, "cyd").await;
    let added = smtp.wait_for(1).await;
    assert!(added[0].subject.contains("added"), "{}", added[0].subject);
    let b = Browser::new(&app);
    b.login("cyd", PASSWORD).await;
    // Typed as people copy it: upper case, spaces around.
    let typed = format!("  {}  ", codes[3].to_uppercase());
    let r = b.code(&typed).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(crate::support::TestApp::session_cookie(&r).is_some());
    let html = r.text().await.unwrap();
    assert!(html.contains("9 codes are"), "{html}");
    let mail = smtp.wait_for(2).await.pop().unwrap();
    assert_eq!(mail.to, ["cyd@example.com"]);
    assert!(mail.subject.contains("recovery code"), "{}", mail.subject);
    assert!(
        mail.text.contains("9 unused codes are left"),
        "{}",
        mail.text
    );
    // Used up: the same code again is wrong.
    let c = Browser::new(&app);
    c.login("cyd", PASSWORD).await;
    assert_eq!(c.code(&codes[3]).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.code(&codes[4]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_policy_takes_an_admin_to_enrolment_before_any_session_then_on_to_the_app() {
    let app = spawn_with(|c| c.two_factor.require = Require2fa::Admins).await;
    app.add_user("ada@example.com", "ada", PASSWORD).await;
    cli(&app, &["user", "promote", "ada"]).await;
    app.add_user("bob@example.com", "bob", PASSWORD).await;
    // An ordinary user is not asked.
    assert_eq!(
        location(&Browser::new(&app).login("bob", PASSWORD).await),
        "/"
    );
    // The admin is, and has no session until it is done.
    let b = Browser::new(&app);
    let rd = app.url("/account");
    let r = b
        .post(
            "/login",
            "/login",
            &[
                ("id", "ada"),
                ("password", PASSWORD),
                ("endpoint", ""),
                ("rd", &rd),
            ],
        )
        .await;
    assert_eq!(location(&r), "/login/enrol");
    assert!(crate::support::TestApp::session_cookie(&r).is_none());
    assert_eq!(b.get("/").await.0, StatusCode::SEE_OTHER, "no session yet");
    assert_eq!(
        b.get("/login/second-factor").await.0,
        StatusCode::SEE_OTHER,
        "no way around the enrolment"
    );
    let (status, html) = b.get("/login/enrol").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg"));
    assert!(!html.contains("Skip"), "an admin cannot skip it");
    let secret = secret_of(&html);
    let wrong = b
        .post("/login/enrol", "/login/enrol", &[("code", "111111")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = b
        .post(
            "/login/enrol",
            "/login/enrol",
            &[("code", &secret.code_at(app.clock.now()))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(crate::support::TestApp::session_cookie(&r).is_some());
    let html = r.text().await.unwrap();
    assert_eq!(codes_of(&html).len(), 10);
    assert!(
        html.contains(&format!("href=\"{rd}\"")),
        "on to the app after: {html}"
    );
    assert_eq!(b.get("/account").await.0, StatusCode::OK);
    // The next login asks for a code.
    let c = Browser::new(&app);
    assert_eq!(
        location(&c.login("ada", PASSWORD).await),
        "/login/second-factor"
    );
}

#[tokio::test]
async fn a_mailed_reset_keeps_the_factor_and_an_admin_reset_removes_it() {
    let smtp = SmtpServer::start(Options::default());
    let url = smtp.url();
    let app = spawn_with(|c| c.mail.smtp = Some(SmtpSettings::parse(&url).unwrap())).await;
    let dee = app.add_user("dee@example.com", "dee", PASSWORD).await;
    let owner = Browser::new(&app);
    set_up_app(&app, &owner, "dee").await;
    let show = cli(&app, &["user", "show", "dee"]).await;
    assert!(
        show.stdout()
            .contains("2nd factor:   authenticator app; 10 unused recovery code(s)"),
        "{}",
        show.report()
    );
    // A mailed reset link: a new password, the factor stays (ASVS 6.4.3).
    let link = app.reset_link(dee.id).await;
    let token = link.split("token=").nth(1).unwrap().to_string();
    let new = "Another-pass-7!";
    let b = Browser::new(&app);
    let r = b
        .post(
            &link,
            "/reset-password",
            &[
                ("token", &token),
                ("password", new),
                ("password_confirm", new),
            ],
        )
        .await;
    assert_eq!(location(&r), "/login?reset=1");
    assert_eq!(location(&b.login("dee", new).await), "/login/second-factor");
    // The admin's reset, for a lost device: audited, the owner mailed.
    let run = cli(&app, &["user", "2fa", "reset", "dee"]).await;
    assert!(run.status.success(), "{}", run.report());
    assert!(
        run.stdout().contains("removed the second factors of dee"),
        "{}",
        run.report()
    );
    // On a shared database the command ran in its own process, on the
    // system clock: the server's outbox finds its mail at its next look,
    // made now, once the app's clock has caught up.
    let behind = std::time::SystemTime::now()
        .duration_since(app.clock.now_system())
        .unwrap_or_default();
    app.clock.advance(behind + Duration::from_secs(1));
    app.state.outbox.wake();
    let mail = smtp.wait_for(3).await.pop().unwrap();
    assert!(
        mail.subject.contains("removed by an administrator"),
        "{}",
        mail.subject
    );
    // The half-login made before the reset is no way in.
    assert_eq!(location(&Browser::new(&app).login("dee", new).await), "/");
    let show = cli(&app, &["user", "show", "dee"]).await;
    assert!(
        show.stdout().contains("2nd factor:   none"),
        "{}",
        show.report()
    );
    let again = cli(&app, &["user", "2fa", "reset", "dee"]).await;
    assert!(
        again.stdout().contains("has no second factor"),
        "{}",
        again.report()
    );
    let audit = cli(&app, &["audit", "--user", "dee"]).await;
    assert!(
        audit.stdout().contains("second factors reset by an admin"),
        "{}",
        audit.report()
    );
}

#[tokio::test]
async fn removing_the_app_or_new_recovery_codes_ask_for_the_password() {
    let app = spawn_app().await;
    app.add_user("eli@example.com", "eli", PASSWORD).await;
    let owner = Browser::new(&app);
    let (_, old_codes) = set_up_app(&app, &owner, "eli").await;
    let r = owner
        .post(
            "/account",
            "/account/2fa/recovery",
            &[("password", "Wrong-pass-1!")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your password is not right")
    );
    let r = owner
        .post(
            "/account",
            "/account/2fa/recovery",
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_codes = codes_of(&r.text().await.unwrap());
    assert_eq!(new_codes.len(), 10);
    // The old codes stopped working.
    let b = Browser::new(&app);
    b.login("eli", PASSWORD).await;
    assert_eq!(
        b.code(&old_codes[0]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.code(&new_codes[0]).await.status(), StatusCode::OK);
    // Removing it: the password first.
    let r = owner
        .post("/account", "/account/2fa/remove", &[("password", "")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = owner
        .post("/account", "/account/2fa/remove", &[("password", PASSWORD)])
        .await;
    assert_eq!(location(&r), "/account?factor_removed=1");
    assert_eq!(
        location(&Browser::new(&app).login("eli", PASSWORD).await),
        "/"
    );
}

#[tokio::test]
async fn an_apps_openid_sign_in_goes_on_after_the_second_step() {
    use crate::oidc::{
        CALLBACK, browse, oidc_app, param, register, relying_party, request, rp_http,
    };
    use openidconnect::AuthorizationCode;
    let app = oidc_app().await;
    app.add_user("gus@example.com", "gus", PASSWORD).await;
    let owner = Browser::new(&app);
    let (secret, _) = set_up_app(&app, &owner, "gus").await;
    let (id, client_secret) = register(&app, "Wiki", CALLBACK, false, &[], false).await;
    let rp = relying_party(&app, &id, client_secret.as_deref(), CALLBACK).await;
    let req = request(&rp, &["profile"]);
    // A browser without a session: the app's request goes to the login,
    // then through the second step, then back to the request.
    let b = Browser::new(&app);
    let r = b.client.get(req.url.as_str()).send().await.unwrap();
    let login = url::Url::parse(&app.url(location(&r))).unwrap();
    assert_eq!(login.path(), "/login");
    let rd = param(&login, "rd").expect("the request goes along");
    let r = b
        .post(
            "/login",
            "/login",
            &[
                ("id", "gus"),
                ("password", PASSWORD),
                ("endpoint", ""),
                ("rd", &rd),
            ],
        )
        .await;
    assert_eq!(location(&r), "/login/second-factor");
    app.clock.advance(Duration::from_secs(30));
    let r = b.code(&secret.code_at(app.clock.now())).await;
    assert_eq!(location(&r), rd, "back to the app's request");
    let back = browse(&app, &b.client, &url::Url::parse(&rd).unwrap(), "allow")
        .await
        .unwrap();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    let code = param(&back, "code").expect("a code for the app");
    rp.exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http())
        .await
        .expect("the code exchange works");
}
