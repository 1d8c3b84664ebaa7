//! Sessions: cookie flags, rotation at login, server-side logout, expiry,
//! and no database write on a session check.

use crate::support::{PASSWORD, TestApp, assert_redirect_to, spawn_app, spawn_with};
use gatehouse::domain::session::SessionToken;
use reqwest::StatusCode;
use std::time::Duration;

fn set_cookie_of(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_samesite_lax() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let r = app.post_login("alice", PASSWORD).await;
    let cookie = set_cookie_of(&r, "gatehouse_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http without --secure-cookies: {cookie}"
    );
    let token = TestApp::session_cookie(&r).unwrap();
    assert_eq!(
        SessionToken::from_cookie(&token).map(|_| ()),
        Some(()),
        "256 random bits"
    );
}

#[tokio::test]
async fn secure_cookies_are_marked_secure() {
    let app = spawn_with(|c| c.secure_cookies = true).await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let r = app.post_login("alice", PASSWORD).await;
    // Secure cookies carry the __Host- prefix (no --cookie-domain).
    assert!(
        set_cookie_of(&r, "__Host-gatehouse_session")
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn only_the_hash_of_the_session_token_is_stored() {
    let app = spawn_app().await;
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    let r = app.post_login("alice", PASSWORD).await;
    let token = SessionToken::from_cookie(&TestApp::session_cookie(&r).unwrap()).unwrap();
    let stored = app.state.store.sessions_of(alice.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, token.key());
    let raw = crate::support::backend::stored_bytes(app.dir.path());
    let cookie = TestApp::session_cookie(&r).unwrap();
    assert!(
        !raw.windows(cookie.len()).any(|w| w == cookie.as_bytes()),
        "the token itself is not in the file"
    );
}

#[tokio::test]
async fn the_session_id_changes_at_every_login_and_the_old_one_ends() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let first = TestApp::session_cookie(&app.post_login("alice", PASSWORD).await).unwrap();
    // Log in again from the same browser (the login page redirects a
    // logged-in user, so post directly with the summary page's token).
    let csrf = app.csrf_of("/").await;
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("id", "alice"),
            ("password", PASSWORD),
            ("endpoint", ""),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let second = TestApp::session_cookie(&r).unwrap();
    assert_ne!(first, second);
    let old = SessionToken::from_cookie(&first).unwrap().key();
    assert!(
        app.state.store.session(&old).await.unwrap().is_none(),
        "the replaced session is gone"
    );
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let token = TestApp::session_cookie(&app.post_login("alice", PASSWORD).await).unwrap();

    let r = app.post_logout().await;
    assert_redirect_to(&r, "/login?logged_out=1");
    assert!(
        app.get_text("/login?logged_out=1")
            .await
            .1
            .contains("You have logged out.")
    );

    // A copy of the old cookie, replayed by someone else, is worthless.
    let replay = reqwest::Client::new()
        .get(app.url("/api/v1/session"))
        .header("cookie", format!("gatehouse_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_idle_session_expires() {
    let app = spawn_with(|c| c.session.idle_timeout = Duration::from_secs(3600)).await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    app.clock.advance(Duration::from_secs(3500));
    assert!(app.session_is_live().await, "use keeps it alive");
    app.clock.advance(Duration::from_secs(3500));
    assert_eq!(app.get("/api/v1/session").await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(3600));
    assert!(!app.session_is_live().await, "the session is over");
    let page = app.get("/").await;
    assert_redirect_to(&page, "/login");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_busy() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    for _ in 0..7 {
        app.clock.advance(Duration::from_secs(23 * 3600));
        assert_eq!(app.get("/api/v1/session").await.status(), StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(7 * 3600 + 1));
    assert!(!app.session_is_live().await, "7 days is the limit");
}

#[tokio::test]
async fn checking_a_session_does_not_write_to_the_database() {
    let app = spawn_app().await;
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    let stored_before = app.state.store.sessions_of(alice.id).await.unwrap()[0]
        .1
        .clone();

    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.get("/api/v1/session").await.status(), StatusCode::OK);
    let stored_after = app.state.store.sessions_of(alice.id).await.unwrap()[0]
        .1
        .clone();
    assert_eq!(
        stored_after, stored_before,
        "the check itself wrote nothing"
    );

    // The batch writer records the activity later.
    app.state
        .sessions
        .flush(app.state.store.as_ref())
        .await
        .unwrap();
    let flushed = app.state.store.sessions_of(alice.id).await.unwrap()[0]
        .1
        .clone();
    assert_eq!(flushed.last_seen, app.clock.now());
}

#[tokio::test]
async fn a_login_beyond_the_session_cap_ends_the_oldest() {
    let app = spawn_with(|c| c.max_sessions_per_user = 3).await;
    let yan = app.add_user("yan@example.com", "yan", PASSWORD).await;
    let mut cookies = Vec::new();
    for n in 0..4u64 {
        app.clock.advance(Duration::from_secs(n + 1));
        let r = app.login_elsewhere("yan", PASSWORD, None).await;
        cookies.push(TestApp::session_cookie(&r).unwrap());
    }
    assert_eq!(app.state.store.sessions_of(yan.id).await.unwrap().len(), 3);
    let works = async |cookie: &str| {
        reqwest::Client::new()
            .get(app.url("/api/v1/session"))
            .header("cookie", format!("gatehouse_session={cookie}"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    };
    assert!(!works(&cookies[0]).await, "the oldest ended");
    for c in &cookies[1..] {
        assert!(works(c).await);
    }
}

#[tokio::test]
async fn under_https_the_cookies_carry_the_host_prefix() {
    let app = spawn_with(|c| {
        c.base_url = Some("https://login.example.com/".parse().unwrap());
    })
    .await;
    app.add_user("zoe@example.com", "zoe", PASSWORD).await;
    let page = reqwest::Client::new()
        .get(app.url("/login"))
        .header("host", "login.example.com")
        .send()
        .await
        .unwrap();
    let csrf = set_cookie_of(&page, "__Host-gatehouse_csrf").expect("a __Host- CSRF cookie");
    assert!(csrf.contains("Secure") && csrf.contains("Path=/"), "{csrf}");
    assert!(!csrf.to_ascii_lowercase().contains("domain="), "{csrf}");
    let secret = csrf.split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let token = crate::support::csrf_from(&html);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("host", "login.example.com")
        .header("origin", "https://login.example.com")
        .header("cookie", secret)
        .form(&[
            ("id", "zoe"),
            ("password", PASSWORD),
            ("endpoint", ""),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie_of(&r, "__Host-gatehouse_session").expect("a __Host- session cookie");
    assert!(
        session.contains("Secure") && session.contains("Path=/"),
        "{session}"
    );
    // The unprefixed name means nothing here.
    let value = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let as_plain = reqwest::Client::new()
        .get(app.url("/api/v1/session"))
        .header("host", "login.example.com")
        .header("cookie", format!("gatehouse_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_plain.status(), StatusCode::UNAUTHORIZED);
    let prefixed = reqwest::Client::new()
        .get(app.url("/api/v1/session"))
        .header("host", "login.example.com")
        .header("cookie", format!("__Host-gatehouse_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.status(), StatusCode::OK);
}
