//! Bad input gets a clear 4xx page: never a 500, a panic or a trace.

use crate::support::{PASSWORD, spawn_app};
use reqwest::StatusCode;

fn assert_plain_page(body: &str) {
    for leak in [
        "panicked",
        "RUST_BACKTRACE",
        "src/",
        "Failed to deserialize",
    ] {
        assert!(!body.contains(leak), "leaks {leak:?}: {body}");
    }
}

#[tokio::test]
async fn a_post_without_a_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.get("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("id", "alice"), ("password", PASSWORD), ("endpoint", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.unwrap();
    assert!(body.contains("Reload the page and try again"));
    assert_plain_page(&body);
}

#[tokio::test]
async fn a_csrf_token_from_another_browser_is_refused() {
    let app = spawn_app().await;
    let stolen = app.csrf_of("/login").await;
    let other = crate::support::new_client();
    other.get(app.url("/login")).send().await.unwrap();
    let r = other
        .post(app.url("/login"))
        .form(&[("id", "a"), ("password", "b"), ("csrf", &stolen)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_cross_origin_post_is_refused() {
    let app = spawn_app().await;
    let csrf = app.csrf_of("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("id", "a"), ("password", "b"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("another site"));

    let same = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.address)
        .form(&[("id", "a"), ("password", "b"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.status(),
        StatusCode::UNAUTHORIZED,
        "our own origin passes"
    );
}

#[tokio::test]
async fn a_form_with_invalid_utf8_is_refused_with_a_message() {
    let app = spawn_app().await;
    let csrf = app.csrf_of("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("id=%FF%FE&password=x&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(body.contains("not valid UTF-8"));
    assert_plain_page(&body);
}

#[tokio::test]
async fn an_oversize_form_is_refused_with_a_message() {
    let app = spawn_app().await;
    let csrf = app.csrf_of("/login").await;
    let huge = "a".repeat(200 * 1024);
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("id", huge.as_str()), ("password", "x"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("larger than gatehouse accepts")
    );
}

#[tokio::test]
async fn oversize_ids_and_passwords_get_field_messages() {
    let app = spawn_app().await;
    let long_id = "a".repeat(300);
    let r = app.post_login(&long_id, "x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("at most 254 characters"));
    let long_pw = "p".repeat(1025);
    let r = app.post_login("alice", &long_pw).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("at most 1024 bytes"));
    let r = app.post_login("", "x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Enter your ID"));
}

#[tokio::test]
async fn a_form_that_is_not_urlencoded_is_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body(r#"{"id":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_plain_page(&r.text().await.unwrap());
}

#[tokio::test]
async fn repeated_fields_are_refused() {
    let app = spawn_app().await;
    let csrf = app.csrf_of("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("id", "a"), ("id", "b"), ("password", "x"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_paths_get_a_404_page() {
    let app = spawn_app().await;
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("Page not found"));
    assert_plain_page(&body);
}

#[tokio::test]
async fn get_never_changes_state_logout_needs_a_post() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    let r = app.get("/logout").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(app.session_is_live().await, "still logged in");
}

#[tokio::test]
async fn a_malformed_query_string_gets_a_page_not_a_500() {
    let app = spawn_app().await;
    let r = app.get("/login?logged_out=%FF").await;
    assert!(
        r.status().is_success() || r.status().is_client_error(),
        "{}",
        r.status()
    );
}

#[tokio::test]
async fn made_up_methods_add_no_metrics_series() {
    let app = spawn_app().await;
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("X{n}FOO").as_bytes()).unwrap();
        app.client
            .request(method, app.url("/login"))
            .send()
            .await
            .unwrap();
    }
    let text = app.metrics_text().await;
    assert!(!text.contains("X1FOO"), "a method name became a label");
    assert!(
        text.contains(
            r#"gatehouse_request_duration_seconds_count{method="OTHER",route="/login"} 50"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn under_https_every_answer_asks_for_https_on_subdomains_too() {
    let app = crate::support::spawn_with(|c| {
        c.base_url = Some("https://login.example.com/".parse().unwrap());
    })
    .await;
    let r = app.get("/login").await;
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test]
async fn an_id_with_a_newline_is_refused_before_it_reaches_a_log_or_a_counter() {
    let app = spawn_app().await;
    let forged = "alice\n2026-01-01T00:00:00Z INFO login succeeded user=1";
    let r = app.post_login(forged, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("control, direction or zero-width")
    );
    let events = app.state.store.audit_events(None, None, 10).await.unwrap();
    assert!(
        events.is_empty(),
        "nothing was counted or recorded: {events:?}"
    );
}
