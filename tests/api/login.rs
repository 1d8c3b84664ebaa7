//! Logging in: the form, success, and answers that reveal nothing.

use crate::support::{PASSWORD, assert_redirect_to, spawn_app, spawn_with};
use reqwest::StatusCode;

#[tokio::test]
async fn the_login_page_has_the_seeds_fields_and_a_pinned_endpoint() {
    let app = spawn_app().await;
    let (status, html) = app.get_text("/login").await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        r#"name="id""#,
        r#"name="password""#,
        r#"name="endpoint""#,
        r#"name="csrf""#,
    ] {
        assert!(html.contains(field), "missing {field}");
    }
    assert!(html.contains(r#"autocomplete="current-password""#));
    assert!(
        html.contains("readonly"),
        "the endpoint is pinned by default"
    );
    assert!(
        html.contains(&format!(r#"value="{}/""#, app.address)),
        "pinned to the base URL"
    );
}

#[tokio::test]
async fn a_user_logs_in_with_email_or_username_in_any_case() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "Alice", PASSWORD).await;
    app.login_ok("ALICE@example.com", PASSWORD).await;
    let (status, html) = app.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Summary") && html.contains("alice@example.com"));

    let r = app.login_elsewhere("alice", PASSWORD, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_unknown_id_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;

    let wrong = app.post_login("alice@example.com", "Wrong-pass1!").await;
    let wrong_status = wrong.status();
    let wrong_headers: Vec<String> = wrong.headers().keys().map(|k| k.to_string()).collect();
    let wrong_body = wrong
        .text()
        .await
        .unwrap()
        .replace("alice@example.com", "ID");
    let unknown = app.post_login("ghost@example.com", "Wrong-pass1!").await;
    let unknown_status = unknown.status();
    let unknown_headers: Vec<String> = unknown.headers().keys().map(|k| k.to_string()).collect();
    let unknown_body = unknown
        .text()
        .await
        .unwrap()
        .replace("ghost@example.com", "ID");

    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, wrong_status);
    assert_eq!(unknown_headers, wrong_headers);
    assert_eq!(unknown_body, wrong_body);
    assert!(wrong_body.contains("ID or password is incorrect."));
}

#[tokio::test]
async fn the_typed_id_is_kept_after_a_failure_but_never_the_password() {
    let app = spawn_app().await;
    let html = app
        .post_login("bob@example.com", "Secret-guess9!")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"value="bob@example.com""#));
    assert!(!html.contains("Secret-guess9!"));
}

#[tokio::test]
async fn an_unverified_account_is_told_so_only_with_the_right_password() {
    let app = spawn_app().await;
    app.add_user_with(
        "new@example.com",
        "newbie",
        PASSWORD,
        gatehouse::domain::Role::User,
        gatehouse::domain::UserStatus::PendingVerification,
    )
    .await;
    let wrong = app.post_login("new@example.com", "Wrong-pass1!").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!wrong.text().await.unwrap().contains("confirm"));
    let right = app.post_login("new@example.com", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::FORBIDDEN);
    assert!(right.text().await.unwrap().contains("not confirmed yet"));
}

#[tokio::test]
async fn a_logged_in_user_visiting_login_goes_to_the_summary() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    let r = app.get("/login").await;
    assert_redirect_to(&r, "/");
}

#[tokio::test]
async fn an_editable_endpoint_elsewhere_sends_the_browser_there_without_the_password() {
    let app = spawn_with(|c| c.endpoint_editable = true).await;
    let html = app.get_text("/login").await.1;
    assert!(!html.contains("readonly"));
    let r = app
        .post_form(
            "/login",
            "/login",
            &[
                ("id", "a"),
                ("password", "p"),
                ("endpoint", "https://other.example.org/"),
            ],
        )
        .await;
    assert_redirect_to(&r, "https://other.example.org/login");

    let bad = app
        .post_form(
            "/login",
            "/login",
            &[
                ("id", "a"),
                ("password", "p"),
                ("endpoint", "javascript:alert(1)"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("http:// or https://"));
}

#[tokio::test]
async fn a_pinned_endpoint_ignores_what_is_posted() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let r = app
        .post_form(
            "/login",
            "/login",
            &[
                ("id", "alice"),
                ("password", PASSWORD),
                ("endpoint", "https://evil.example/"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/");
}

#[tokio::test]
async fn plain_bcrypt_hashes_from_another_system_still_log_in() {
    let app = spawn_app().await;
    let user = app.add_user("old@example.com", "oldtimer", PASSWORD).await;
    // Stand in for an import: overwrite the hash with a plain $2b$ one.
    let legacy = bcrypt::hash(PASSWORD, 4).unwrap();
    assert!(legacy.starts_with("$2b$"));
    set_hash(&app, user.id, legacy).await;
    app.login_ok("oldtimer", PASSWORD).await;

    // That login moved the account to the current scheme and cost.
    let upgraded = app
        .state
        .store
        .user(user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        upgraded.starts_with("hmac-sha256-bcrypt$2b$04$"),
        "{upgraded}"
    );
    app.post_logout().await;
    app.login_ok("oldtimer", PASSWORD).await;
}

async fn set_hash(app: &crate::support::TestApp, id: gatehouse::domain::UserId, hash: String) {
    assert!(app.state.store.set_password_hash(id, hash).await.unwrap());
}
