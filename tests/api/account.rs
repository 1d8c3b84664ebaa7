//! The Account page: a new password, ending other sessions, the history;
//! and the Summary's notice of failed tries.

use crate::support::{PASSWORD, TestApp, spawn_app};
use reqwest::StatusCode;

async fn change(app: &TestApp, current: &str, new: &str, again: &str) -> (StatusCode, String) {
    let r = app
        .post_form(
            "/account",
            "/account/password",
            &[
                ("current", current),
                ("password", new),
                ("password_confirm", again),
            ],
        )
        .await;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        location.unwrap_or_default() + &r.text().await.unwrap(),
    )
}

/// A second browser of the same user; returns its session cookie.
async fn second_browser(app: &TestApp, id: &str, password: &str) -> String {
    TestApp::session_cookie(&app.login_elsewhere(id, password, None).await).unwrap()
}

async fn session_works(app: &TestApp, cookie: &str) -> bool {
    reqwest::Client::new()
        .get(app.url("/api/v1/session"))
        .header("cookie", format!("gatehouse_session={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    app.add_user("vera@example.com", "vera", PASSWORD).await;
    app.login_ok("vera", PASSWORD).await;
    let other = second_browser(&app, "vera", PASSWORD).await;

    let (status, page) = change(&app, "Wrong-pass1!", "N3w-passphrase!", "N3w-passphrase!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Your current password is not right."));
    let (_, page) = change(&app, PASSWORD, "N3w-passphrase!", "Other-pass1!").await;
    assert!(page.contains("two new passwords differ"));
    let (_, page) = change(&app, PASSWORD, "short", "short").await;
    assert!(page.contains("Use at least 9 characters."));
    assert!(!page.contains(PASSWORD), "passwords are never echoed");

    let (status, location) = change(&app, PASSWORD, "N3w-passphrase!", "N3w-passphrase!").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/account?changed=1"));
    assert!(
        app.get_text("/account?changed=1")
            .await
            .1
            .contains("Your password was changed")
    );
    assert!(app.session_is_live().await, "this session stays");
    assert!(!session_works(&app, &other).await, "the other one ended");
    app.post_logout().await;
    assert_eq!(
        app.post_login("vera", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_ok("vera", "N3w-passphrase!").await;
}

#[tokio::test]
async fn guessing_the_current_password_from_a_session_is_limited() {
    let app = spawn_app().await;
    app.add_user("walt@example.com", "walt", PASSWORD).await;
    app.login_ok("walt", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            change(&app, "Guess-pass1!", "N3w-passphrase!", "N3w-passphrase!")
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }
    let (status, page) = change(&app, PASSWORD, "N3w-passphrase!", "N3w-passphrase!").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many tries to change the password"));
}

#[tokio::test]
async fn a_user_ends_another_of_their_sessions_but_not_someone_elses() {
    let app = spawn_app().await;
    app.add_user("xena@example.com", "xena", PASSWORD).await;
    app.add_user("yuri@example.com", "yuri", PASSWORD).await;
    app.login_ok("xena", PASSWORD).await;
    let other = second_browser(&app, "xena", PASSWORD).await;
    let stranger = second_browser(&app, "yuri", PASSWORD).await;

    let page = app.get_text("/account").await.1;
    assert_eq!(
        page.matches(r#"action="/account/sessions/revoke""#).count(),
        1,
        "one other session; none for this one"
    );
    let id = {
        let at = page.find(r#"name="session" value=""#).unwrap() + 22;
        page[at..at + 64].to_string()
    };
    let r = app
        .post_form("/account", "/account/sessions/revoke", &[("session", &id)])
        .await;
    assert_eq!(r.headers()["location"], "/account?ended=1");
    assert!(!session_works(&app, &other).await);

    // Someone else's session cannot be named.
    let yuri = gatehouse::domain::session::SessionToken::from_cookie(&stranger)
        .unwrap()
        .key();
    let hex: String = yuri.0.iter().map(|b| format!("{b:02x}")).collect();
    let r = app
        .post_form("/account", "/account/sessions/revoke", &[("session", &hex)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(session_works(&app, &stranger).await);
}

#[tokio::test]
async fn failed_tries_show_in_the_history_and_as_a_notice_after_the_next_login() {
    let app = spawn_app().await;
    app.add_user("zara@example.com", "zara", PASSWORD).await;
    app.login_ok("zara", PASSWORD).await;
    assert!(
        !app.get_text("/").await.1.contains("failed login"),
        "nothing to report yet"
    );
    app.post_logout().await;
    for _ in 0..2 {
        app.post_login("zara@example.com", "Wrong-pass1!").await;
    }
    app.login_ok("zara", PASSWORD).await;
    let summary = app.get_text("/").await.1;
    assert!(summary.contains("2 failed logins"), "{summary}");
    let json: serde_json::Value = app.get("/api/v1/summary").await.json().await.unwrap();
    assert_eq!(json["account"]["failed_since_last_login"], 2);
    let account = app.get_text("/account").await.1;
    assert_eq!(
        account.matches("<strong>Failed</strong>").count(),
        2,
        "{account}"
    );
    assert_eq!(account.matches("<td>Logged in</td>").count(), 2);
}

#[tokio::test]
async fn a_password_change_gives_the_session_a_new_token() {
    let app = spawn_app().await;
    app.add_user("wes@example.com", "wes", PASSWORD).await;
    let r = app.post_login("wes", PASSWORD).await;
    let before = TestApp::session_cookie(&r).unwrap();
    let r = app
        .post_form(
            "/account",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "N3w-passphrase!"),
                ("password_confirm", "N3w-passphrase!"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = TestApp::session_cookie(&r).expect("a new session cookie");
    assert_ne!(before, after);
    // A token seen before the change (ASVS 7.2.4) no longer works; this
    // browser goes on with the new one.
    assert!(
        !session_works(&app, &before).await,
        "the old token still works"
    );
    assert!(session_works(&app, &after).await);
    assert!(app.session_is_live().await);
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_this_one_too() {
    let app = spawn_app().await;
    app.add_user("xia@example.com", "xia", PASSWORD).await;
    app.login_ok("xia", PASSWORD).await;
    let other = second_browser(&app, "xia", PASSWORD).await;
    let page = app.get_text("/account").await.1;
    assert!(page.contains("Log out everywhere"), "the button is there");
    let r = app
        .post_form("/account", "/account/sessions/end-all", &[])
        .await;
    crate::support::assert_redirect_to(&r, "/login?everywhere=1");
    assert!(!app.session_is_live().await, "this browser is logged out");
    assert!(!session_works(&app, &other).await, "the other one too");
    let (_, page) = app.get_text("/login?everywhere=1").await;
    assert!(page.contains("You have logged out everywhere"), "{page}");
}
