//! The Summary page and its JSON, security headers, health.

use crate::support::{PASSWORD, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn the_summary_json_needs_a_login() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/summary").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_logged_in");
}

#[tokio::test]
async fn the_summary_json_has_the_hosts_usage_and_the_users_account() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    app.post_logout().await;
    app.login_ok("alice", PASSWORD).await;

    let body: serde_json::Value = app.get("/api/v1/summary").await.json().await.unwrap();
    for gauge in ["cpu", "memory", "disk", "load"] {
        assert!(
            body["host"][gauge]["percent"].is_number(),
            "{gauge}: {body}"
        );
        assert!(body["host"][gauge]["text"].is_string(), "{gauge}: {body}");
    }
    assert!(body["host"]["uptime_seconds"].is_number());
    assert_eq!(body["account"]["email"], "alice@example.com");
    assert_eq!(body["account"]["role"], "user");
    assert_eq!(body["account"]["active_sessions"], 1);
    assert!(
        body["account"]["last_login"]["at"].is_number(),
        "the login before this one: {body}"
    );
}

#[tokio::test]
async fn the_summary_page_shows_bars_and_the_shell() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.login_ok("alice", PASSWORD).await;
    let (status, html) = app.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        html.matches(r#"role="meter""#).count(),
        4,
        "CPU, memory, disk, load"
    );
    assert!(html.contains(r#"id="sidebar-toggle""#));
    assert!(html.contains("Log Out"));
    assert!(html.contains(r#"action="/logout""#));
}

#[tokio::test]
async fn a_collapsed_sidebar_is_rendered_collapsed_by_the_server() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let token =
        crate::support::TestApp::session_cookie(&app.post_login("alice", PASSWORD).await).unwrap();
    let html = reqwest::Client::new()
        .get(app.url("/"))
        .header(
            "cookie",
            format!("gatehouse_session={token}; gatehouse_sidebar=collapsed"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<html lang="en" class="sidebar-collapsed">"#));
    assert!(html.contains(r#"aria-expanded="false""#));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/nope", "/api/v1/summary"] {
        let r = app.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
    }
}

#[tokio::test]
async fn assets_are_served_with_their_content_hash() {
    let app = spawn_app().await;
    let html = app.get_text("/login").await.1;
    for asset in ["css/app.css", "js/app.js", "img/logo.svg"] {
        let start = html
            .find(&format!("/assets/{asset}?v="))
            .unwrap_or_else(|| panic!("{asset} linked"));
        let end = start + html[start..].find('"').unwrap();
        let r = app.get(&html[start..end]).await;
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
    assert_eq!(
        app.get("/assets/nope.css").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get_text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok\n");
}
