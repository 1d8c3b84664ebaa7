//! The seed's lockout: more than 10 failures in a row lock an ID for 20
//! minutes, even against the right password; time moves by the clock.

use crate::support::{PASSWORD, spawn_app, spawn_in, spawn_with};
use reqwest::StatusCode;
use std::time::Duration;

async fn fail(app: &crate::support::TestApp, id: &str, times: usize) {
    for n in 1..=times {
        let r = app.post_login(id, "Wrong-pass1!").await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "failure {n} of {id} is an ordinary failure"
        );
    }
}

#[tokio::test]
async fn the_eleventh_failure_locks_the_id_and_the_right_password_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice@example.com", 10).await;

    let eleventh = app.post_login("alice@example.com", "Wrong-pass1!").await;
    assert_eq!(eleventh.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(eleventh.headers()["retry-after"], "1200");
    let html = eleventh.text().await.unwrap();
    assert!(html.contains("This ID is locked"), "{html}");
    assert!(html.contains("20 minutes"));

    let right = app.post_login("alice@example.com", PASSWORD).await;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
}

#[tokio::test]
async fn ten_failures_then_the_right_password_gets_in() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice", 10).await;
    app.login_ok("alice", PASSWORD).await;
}

#[tokio::test]
async fn the_lock_lifts_once_twenty_minutes_have_passed_and_tries_do_not_extend_it() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice", 10).await;
    assert_eq!(
        app.post_login("alice", "Wrong-pass1!").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    app.clock.advance(Duration::from_secs(10 * 60));
    let during = app.post_login("alice", PASSWORD).await;
    assert_eq!(during.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        during.headers()["retry-after"],
        "600",
        "the try did not extend the lock"
    );

    app.clock.advance(Duration::from_secs(10 * 60));
    app.login_ok("alice", PASSWORD).await;
}

#[tokio::test]
async fn unknown_ids_are_locked_exactly_like_known_ones() {
    let app = spawn_app().await;
    fail(&app, "ghost@example.com", 10).await;
    let eleventh = app.post_login("ghost@example.com", "Wrong-pass1!").await;
    assert_eq!(eleventh.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(eleventh.headers()["retry-after"], "1200");
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice", 9).await;
    app.login_ok("alice", PASSWORD).await;
    app.post_logout().await;
    fail(&app, "alice", 10).await;
}

#[tokio::test]
async fn the_lock_survives_a_restart() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice", 10).await;
    assert_eq!(
        app.post_login("alice", "Wrong-pass1!").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let (dir, clock) = app.stop().await;
    let app = spawn_in(dir, clock, |_| {}).await;
    let r = app.post_login("alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the lock is in the database, not in memory"
    );
}

#[tokio::test]
async fn one_client_guessing_across_many_ids_is_slowed_with_retry_after() {
    let app = spawn_with(|c| c.login_rate_per_minute = std::num::NonZeroU32::new(3).unwrap()).await;
    for n in 0..3 {
        let r = app
            .post_login(&format!("user{n}@example.com"), "Wrong-pass1!")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = app.post_login("user9@example.com", "Wrong-pass1!").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("Too many attempts came from your network")
    );

    app.clock.advance(Duration::from_secs(wait));
    assert_eq!(
        app.post_login("user9@example.com", "Wrong-pass1!")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unlock_from_the_cli_lifts_a_lock_at_once() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "alice@example.com", 10).await;
    assert_eq!(
        app.post_login("alice@example.com", "Wrong-pass1!")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let (dir, clock) = app.stop().await;

    let out = crate::cli::gatehouse(dir.path(), &["user", "unlock", "ALICE"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("unlocked alice"));

    let app = spawn_in(dir, clock, |_| {}).await;
    app.login_ok("alice@example.com", PASSWORD).await;
}

#[tokio::test]
async fn stale_counters_and_expired_sessions_are_purged() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    fail(&app, "ghost", 3).await;
    app.login_ok("alice", PASSWORD).await;
    assert_eq!(
        gatehouse::app::purge_expired(&app.state).await.unwrap(),
        (0, 0),
        "all still matter"
    );

    app.clock.advance(Duration::from_secs(8 * 24 * 3600));
    assert_eq!(
        gatehouse::app::purge_expired(&app.state).await.unwrap(),
        (1, 1)
    );
    assert!(!app.session_is_live().await, "the session is over");
}

#[tokio::test]
async fn failures_for_unknown_ids_do_not_grow_the_audit_log_a_row_a_try() {
    let app =
        spawn_with(|c| c.login_rate_per_minute = std::num::NonZeroU32::new(1000).unwrap()).await;
    let before = app
        .state
        .store
        .audit_events(None, None, 10_000)
        .await
        .unwrap()
        .len();
    for n in 0..40 {
        // A spray of made-up IDs, none reaching a lock.
        fail(&app, &format!("made-up-{n}"), 3).await;
    }
    let after = app
        .state
        .store
        .audit_events(None, None, 10_000)
        .await
        .unwrap();
    assert_eq!(
        after.len(),
        before,
        "120 tries wrote rows: {:?}",
        after.first()
    );
    // The lock an unknown ID reaches is one row, with the number of tries.
    fail(&app, "ghost", 10).await;
    app.post_login("ghost", "Wrong-pass1!").await;
    let rows = app
        .state
        .store
        .audit_events(None, None, 10_000)
        .await
        .unwrap();
    assert_eq!(rows.len(), before + 1);
    assert!(
        rows[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("after 11 failed logins")),
        "{:?}",
        rows[0]
    );
}
