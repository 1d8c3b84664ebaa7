//! Signing up: modes, invitations, consent, the password rule, duplicates.

use crate::support::{PASSWORD, TestApp, assert_redirect_to, spawn_app, spawn_in, spawn_with};
use gatehouse::config::{Config, SignupMode};
use gatehouse::domain::{EmailAddress, LoginId, PasswordPolicy, Role};
use reqwest::StatusCode;
use std::time::Duration;

fn open(c: &mut Config) {
    c.signup = SignupMode::Open;
}

async fn body(r: reqwest::Response) -> (StatusCode, String) {
    (r.status(), r.text().await.unwrap())
}

async fn user(app: &TestApp, id: &str) -> Option<gatehouse::domain::User> {
    app.state
        .store
        .user_by_login_id(&LoginId::parse(id).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn open_signup_creates_a_user_who_then_logs_in() {
    let app = spawn_with(open).await;
    let r = app.sign_up("Carol@Example.com", "carol", "").await;
    assert_redirect_to(&r, "/login?signed_up=1");
    assert!(
        app.get_text("/login?signed_up=1")
            .await
            .1
            .contains("Your account is ready")
    );

    let carol = user(&app, "carol").await.unwrap();
    assert_eq!(carol.email.as_str(), "carol@example.com");
    assert_eq!(carol.role, Role::User);
    assert!(
        app.state.documents.is_current(carol.consent.as_ref()),
        "consent stored with both versions"
    );
    app.login_ok("carol@example.com", PASSWORD).await;
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::OK,
        "straight to the Summary"
    );
}

#[tokio::test]
async fn closed_signup_says_to_contact_the_administrator_with_403_not_404() {
    let app = spawn_with(|c| c.signup = SignupMode::Closed).await;
    let (status, html) = app.get_text("/signup").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("Signing up is not available") && html.contains("contact the administrator")
    );
    let login = app.get_text("/login").await.1;
    assert!(login.contains("Signing up is not available") && !login.contains(r#"href="/signup""#));

    // Refused on the server too, not only hidden.
    let csrf = app.csrf_of("/login").await;
    let r = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("email", "x@example.com"),
            ("username", "xavier"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("agree", "yes"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(user(&app, "xavier").await.is_none());
}

#[tokio::test]
async fn the_login_page_offers_sign_up_when_it_is_open_or_by_invitation() {
    for mode in [SignupMode::Open, SignupMode::Invite] {
        let app = spawn_with(|c| c.signup = mode).await;
        assert!(app.get_text("/login").await.1.contains(r#"href="/signup""#));
    }
}

#[tokio::test]
async fn invite_mode_needs_a_token_and_the_link_prefills_it() {
    let app = spawn_app().await;
    let (status, html) = body(app.sign_up("dan@example.com", "dan", "").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Enter your invitation token"));
    assert!(user(&app, "dan").await.is_none());

    let token = app.invite(|_| {}).await;
    let link = app.state.invite_link(&token);
    assert!(
        link.starts_with(&format!("{}/signup?token=", app.address)),
        "{link}"
    );
    let html = app
        .client
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!(r#"value="{}""#, token.as_str())));

    assert_eq!(
        app.sign_up("dan@example.com", "dan", token.as_str())
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(user(&app, "dan").await.unwrap().role, Role::User);
}

#[tokio::test]
async fn each_invitation_rule_is_refused_with_a_message_that_says_which() {
    let app = spawn_app().await;
    let expired = app
        .invite(|i| i.expires_at = Some(app.clock.now().plus(Duration::from_secs(60))))
        .await;
    let revoked = app.invite(|_| {}).await;
    let bound = app
        .invite(|i| i.email = Some(EmailAddress::parse("erin@example.com").unwrap()))
        .await;
    let used = app.invite(|_| {}).await;
    app.clock.advance(Duration::from_secs(61));
    let id = app
        .state
        .store
        .invite_by_token(&revoked.hash())
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(
        app.state
            .store
            .revoke_invite(id, app.clock.now())
            .await
            .unwrap()
    );
    assert_eq!(
        app.sign_up("first@example.com", "first", used.as_str())
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let cases = [
        (expired.as_str().to_string(), "has expired"),
        (revoked.as_str().to_string(), "was revoked"),
        (bound.as_str().to_string(), "for another email address"),
        (used.as_str().to_string(), "used as often as it allows"),
        (
            gatehouse::domain::InviteToken::generate()
                .as_str()
                .to_string(),
            "not valid",
        ),
        ("garbage".to_string(), "not valid"),
    ];
    for (token, words) in cases {
        let (status, html) = body(app.sign_up("frank@example.com", "frank", &token).await).await;
        assert!(status.is_client_error(), "{words}: {status}");
        assert!(html.contains(words), "expected {words:?}");
        assert!(
            html.contains(r#"value="frank@example.com""#),
            "what was typed is kept"
        );
        assert!(!html.contains(PASSWORD), "never the password");
    }
    assert!(user(&app, "frank").await.is_none());
    // The bound one works for its own address, in any case.
    assert_eq!(
        app.sign_up("Erin@Example.com", "erin", bound.as_str())
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_single_use_invitation_redeemed_by_many_at_once_makes_exactly_one_account() {
    let app =
        spawn_with(|c| c.signup_rate_per_minute = std::num::NonZeroU32::new(1000).unwrap()).await;
    let token = app.invite(|_| {}).await;
    let mut tasks = Vec::new();
    for n in 0..16 {
        let client = crate::support::new_client();
        let (url, token) = (app.url("/signup"), token.as_str().to_string());
        tasks.push(tokio::spawn(async move {
            let html = client.get(&url).send().await.unwrap().text().await.unwrap();
            let csrf = crate::support::csrf_from(&html);
            let (email, name) = (format!("racer{n}@example.com"), format!("racer{n}"));
            let form = [
                ("email", email.as_str()),
                ("username", name.as_str()),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("token", token.as_str()),
                ("agree", "yes"),
                ("csrf", csrf.as_str()),
            ];
            client.post(&url).form(&form).send().await.unwrap().status()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::SEE_OTHER {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.state.store.users().await.unwrap().len(), 1);
    let invite = app
        .state
        .store
        .invite_by_token(&token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invite.redeemed.len(), 1);
}

#[tokio::test]
async fn an_admin_invitation_makes_an_admin() {
    let app = spawn_app().await;
    let token = app.invite(|i| i.role = Role::Admin).await;
    assert_eq!(
        app.sign_up("boss@example.com", "boss", token.as_str())
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(user(&app, "boss").await.unwrap().role, Role::Admin);
}

#[tokio::test]
async fn the_first_run_link_is_made_until_an_admin_exists_and_only_the_newest_works() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::support::test_config(&dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let clock = gatehouse::Clock::manual(crate::support::start_time());
    let app = gatehouse::App::build(config.clone(), clock.clone())
        .await
        .unwrap();
    let old = app
        .first_run_link()
        .await
        .unwrap()
        .expect("no admin yet: a link");
    // On a shared database a link stands for replicas starting within
    // FIRST_RUN_SHARED (replicas.rs); a start after that makes a new one.
    clock.advance(gatehouse::app::FIRST_RUN_SHARED + std::time::Duration::from_secs(1));
    let link = app
        .first_run_link()
        .await
        .unwrap()
        .expect("still no admin: a new link");
    assert_ne!(old, link);
    drop(app);

    let app = spawn_in(dir, clock, |_| {}).await;
    let token_of = |l: &str| l.split("token=").nth(1).unwrap().to_string();
    let (status, html) = body(
        app.sign_up("root@example.com", "root", &token_of(&old))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an earlier link was revoked");
    assert!(html.contains("was revoked"));
    assert_eq!(
        app.sign_up("root@example.com", "root", &token_of(&link))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(user(&app, "root").await.unwrap().role, Role::Admin);
    let (dir, clock) = app.stop().await;

    let app = gatehouse::App::build(crate::support::test_config(&dir), clock)
        .await
        .unwrap();
    assert_eq!(
        app.first_run_link().await.unwrap(),
        None,
        "never again once an admin exists"
    );
}

#[tokio::test]
async fn a_cli_made_account_accepts_the_documents_at_first_login() {
    let app = spawn_app().await;
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    // As `gatehouse user add` leaves it: no consent.
    let store: &dyn gatehouse::store::Store = app.state.store.as_ref();
    reset_consent(&app, alice.id).await;
    app.login_ok("alice", PASSWORD).await;
    let r = app.get("/").await;
    assert_redirect_to(&r, "/consent");
    assert_eq!(
        app.get("/api/v1/summary").await.status(),
        StatusCode::FORBIDDEN
    );
    let page = app.get_text("/consent").await.1;
    assert!(page.contains("Terms of Service") && page.contains("Privacy Policy"));

    let refused = app.post_form("/consent", "/consent", &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let ok = app
        .post_form("/consent", "/consent", &[("agree", "yes")])
        .await;
    assert_eq!(ok.headers()["location"], "/");
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    assert!(
        app.state.documents.is_current(
            store
                .user(alice.id)
                .await
                .unwrap()
                .unwrap()
                .consent
                .as_ref()
        )
    );
}

async fn reset_consent(app: &TestApp, id: gatehouse::domain::UserId) {
    // Consent to documents that no longer exist is as good as none.
    let stale = gatehouse::domain::Consent {
        terms: "old".into(),
        privacy: "old".into(),
        at: app.clock.now(),
    };
    assert!(app.state.store.set_consent(id, stale).await.unwrap());
}

#[tokio::test]
async fn users_accept_again_after_the_admin_changes_a_document() {
    let files = tempfile::tempdir().unwrap();
    let terms = files.path().join("terms.md");
    std::fs::write(&terms, "# Terms\n\nVersion one.").unwrap();
    let t = terms.clone();
    let app = spawn_with(move |c| c.terms_file = Some(t)).await;
    assert!(app.get_text("/terms").await.1.contains("Version one."));
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    let (dir, clock) = app.stop().await;

    std::fs::write(&terms, "# Terms\n\nVersion two.").unwrap();
    let t = terms.clone();
    let app = spawn_in(dir, clock, move |c| c.terms_file = Some(t)).await;
    app.login_ok("alice", PASSWORD).await;
    let r = app.get("/").await;
    assert_eq!(r.headers()["location"], "/consent");
    let page = app.get_text("/consent").await.1;
    assert!(page.contains("Updated terms") && page.contains("Version two."));
    app.post_form("/consent", "/consent", &[("agree", "yes")])
        .await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_password_rule_is_enforced_on_the_server_with_reasons() {
    let app = spawn_with(open).await;
    let try_pw = |pw: String| {
        let app = &app;
        async move {
            body(
                app.post_signup(&[
                    ("email", "gina@example.com"),
                    ("username", "gina"),
                    ("password", &pw),
                    ("password_confirm", &pw),
                    ("agree", "yes"),
                ])
                .await,
            )
            .await
        }
    };
    let (s, html) = try_pw("short1!".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("Use at least 9 characters."));
    let (_, html) = try_pw("nodigitshere!".into()).await;
    assert!(html.contains("Add at least one digit."));
    let (_, html) = try_pw("Password1!".into()).await;
    assert!(html.contains("commonly used passwords"));
    let (_, html) = try_pw("gina@example.com".into()).await;
    assert!(html.contains("not your email address or username"));
    let (s, html) = try_pw(format!("{}1!", "가".repeat(1023 / 3))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "1025 bytes");
    assert!(html.contains("Use at most 1024 bytes."));

    // 64 Korean characters (and a digit and a sign, for the seed rule).
    let korean = format!("{}1!", "비밀".repeat(32));
    let (s, _) = try_pw(korean.clone()).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    app.login_ok("gina", &korean).await;
}

#[tokio::test]
async fn the_nist_policy_wants_fifteen_characters_and_nothing_else() {
    let app = spawn_with(|c| {
        c.signup = SignupMode::Open;
        c.password_policy = PasswordPolicy::Nist { min_len: 15 };
    })
    .await;
    let html = app.get_text("/signup").await.1;
    assert!(html.contains("At least 15 characters") && !html.contains(r#"data-rule="digit""#));
    let r = app
        .post_signup(&[
            ("email", "h@example.com"),
            ("username", "hank"),
            ("password", "fourteen chars"),
            ("password_confirm", "fourteen chars"),
            ("agree", "yes"),
        ])
        .await;
    assert!(body(r).await.1.contains("Use at least 15 characters."));
    let pw = "correct horse battery staple";
    let r = app
        .post_signup(&[
            ("email", "h@example.com"),
            ("username", "hank"),
            ("password", pw),
            ("password_confirm", pw),
            ("agree", "yes"),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn duplicates_in_another_case_are_refused_on_the_field() {
    let app = spawn_with(open).await;
    app.add_user("ivy@example.com", "Ivy", PASSWORD).await;
    let (s, html) = body(app.sign_up("IVY@example.COM", "someone", "").await).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("An account with this email address already exists"));
    assert!(html.contains(r#"value="IVY@example.COM""#) && html.contains(r#"value="someone""#));
    let (s, html) = body(app.sign_up("new@example.com", "ivy", "").await).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("This username is taken"));
}

#[tokio::test]
async fn every_field_problem_is_reported_at_once_and_passwords_are_not_echoed() {
    let app = spawn_with(open).await;
    let (s, html) = body(
        app.post_signup(&[
            ("email", "not-an-email"),
            ("username", "x"),
            ("password", "Secret-9-pass!"),
            ("password_confirm", "Other-9-pass!"),
        ])
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for words in [
        "valid email address",
        "3 to 32 characters",
        "two passwords differ",
        "accept the Terms of Service",
    ] {
        assert!(html.contains(words), "{words}");
    }
    assert!(!html.contains("Secret-9-pass!") && !html.contains("Other-9-pass!"));
    let long = "a".repeat(300);
    let (s, html) = body(
        app.post_signup(&[
            ("email", &format!("{long}@example.com")),
            ("username", &long),
        ])
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("at most 254 characters") && html.contains("3 to 32 characters"));
}

#[tokio::test]
async fn the_signup_form_needs_its_csrf_token() {
    let app = spawn_with(open).await;
    app.get("/signup").await;
    let r = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("email", "j@example.com"),
            ("username", "jill"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("agree", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(user(&app, "jill").await.is_none());
}

#[tokio::test]
async fn the_documents_are_readable_by_anyone_and_say_they_are_templates() {
    let app = spawn_app().await;
    for (path, title) in [
        ("/terms", "Terms of Service"),
        ("/privacy", "Privacy Policy"),
    ] {
        let (status, html) = app.get_text(path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(title) && html.contains("This is a template"),
            "{path}"
        );
    }
    let signup = app.get_text("/signup").await.1;
    assert!(signup.contains(r#"id="terms-dialog""#) && signup.contains(r#"id="privacy-dialog""#));
}

#[tokio::test]
async fn an_unconfirmed_signup_holds_its_address_only_as_long_as_its_link() {
    let smtp = crate::smtp::SmtpServer::start(crate::smtp::Options::default());
    let app = spawn_with(crate::mail::with_smtp(&smtp)).await;
    // A stranger signs up with someone else's address and never confirms.
    let r = app.sign_up("owner@example.com", "squatter", "").await;
    assert!(r.status().is_success(), "{}", r.status());
    let squatter = user(&app, "squatter").await.expect("made");
    assert_eq!(
        squatter.status,
        gatehouse::domain::UserStatus::PendingVerification
    );
    let r = app.sign_up("owner@example.com", "owner", "").await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "taken while the link works"
    );
    app.clock.advance(Duration::from_secs(24 * 3600));
    gatehouse::app::purge_expired(&app.state).await.unwrap();
    assert!(user(&app, "squatter").await.is_none(), "deleted");
    // The address is free for its owner now.
    let r = app.sign_up("owner@example.com", "owner", "").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert!(user(&app, "owner").await.is_some());
    let events = app.state.store.audit_events(None, None, 100).await.unwrap();
    assert!(events.iter().any(|e| {
        e.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("unconfirmed account deleted"))
    }));
}

#[tokio::test]
async fn signups_from_everyone_together_are_limited_too() {
    let app = spawn_with(|c| {
        open(c);
        c.trusted_proxies = "loopback".parse().unwrap();
        c.signup_global_limit = std::num::NonZeroU32::new(2).unwrap();
    })
    .await;
    let from = async |n: u8, email: &str, name: &str| {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let xff = format!("203.0.113.{n}");
        let html = client
            .get(app.url("/signup"))
            .header("x-forwarded-for", &xff)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = crate::support::csrf_from(&html);
        client
            .post(app.url("/signup"))
            .header("x-forwarded-for", &xff)
            .form(&[
                ("email", email),
                ("username", name),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("token", ""),
                ("agree", "yes"),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        from(1, "a1@example.com", "aone").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        from(2, "a2@example.com", "atwo").await.status(),
        StatusCode::SEE_OTHER
    );
    let r = from(3, "a3@example.com", "athree").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let (_, page) = body(r).await;
    assert!(page.contains("signing up is paused"), "{page}");
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        from(4, "a3@example.com", "athree").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_spelling_of_an_address_is_one_account() {
    let app = spawn_with(open).await;
    let r = app
        .sign_up("alice@xn--bcher-kva.example", "alice", "")
        .await;
    assert_redirect_to(&r, "/login?signed_up=1");
    // The same address with a Unicode domain, in capitals, and in
    // full-width letters: taken, in the words used for any taken address.
    for spelling in ["ALICE@BÜCHER.example", "ａｌｉｃｅ@bücher.example"] {
        let (s, html) = body(app.sign_up(spelling, "another", "").await).await;
        assert_eq!(s, StatusCode::CONFLICT, "{spelling}");
        assert!(
            html.contains("An account with this email address already exists"),
            "{spelling}"
        );
    }
    // Either spelling logs in to the one account.
    app.login_ok("Alice@Bücher.example", PASSWORD).await;
    app.post_logout().await;
    app.login_ok("alice@xn--bcher-kva.example", PASSWORD).await;
    let alice = user(&app, "alice").await.unwrap();
    assert_eq!(alice.email.as_str(), "alice@xn--bcher-kva.example");
}

#[tokio::test]
async fn an_address_with_an_invisible_character_is_refused_with_what_to_do() {
    let app = spawn_with(open).await;
    let (s, html) = body(app.sign_up("bo\u{200B}b@example.com", "bobby", "").await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("invisible or direction-changing character"),
        "{html}"
    );
    assert!(user(&app, "bobby").await.is_none());
}
