//! Two gatehouse servers on one PostgreSQL database (SPEC §10): what one
//! replica writes, the other reads at its next request. These run in the
//! PostgreSQL pass of the suite (`scripts/test-all`); on the embedded
//! file one process holds the data, so there is nothing to share.

use crate::smtp::{Options, SmtpServer};
use crate::support::{PASSWORD, TestApp, spawn_in, spawn_with};
use gatehouse::app::FirstRunLink;
use gatehouse::config::Config;
use gatehouse::domain::{EmailAddress, LoginId, Mail, UserStatus};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// A second server on `a`'s database and clock, sharing `a`'s client
/// (cookies are per host, not per port: one browser for both).
async fn replica_of(a: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    let database = a.state.config.database.clone();
    let mut b = spawn_in(
        Arc::new(tempfile::tempdir().unwrap()),
        a.clock.clone(),
        |c| {
            c.database = database;
            configure(c);
        },
    )
    .await;
    b.client = a.client.clone();
    b
}

#[tokio::test]
async fn a_session_made_on_one_replica_works_and_ends_on_the_other() {
    crate::postgres_only!();
    let a = spawn_with(|_| {}).await;
    let b = replica_of(&a, |_| {}).await;
    let alice = a.add_user("alice@example.com", "alice", PASSWORD).await;
    a.login_ok("alice", PASSWORD).await;
    assert!(b.session_is_live().await, "B reads the session A made");
    // Disabled through B: refused on A at its next request.
    b.state
        .store
        .set_status(alice.id, UserStatus::Disabled)
        .await
        .unwrap();
    assert!(
        !a.session_is_live().await,
        "A refuses a disabled account at once"
    );
    b.state
        .store
        .set_status(alice.id, UserStatus::Active)
        .await
        .unwrap();
    assert!(a.session_is_live().await);
    // Logged out on A: over on B at once.
    let r = a.post_logout().await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(!b.session_is_live().await, "B no longer knows the session");
}

#[tokio::test]
async fn failures_on_both_replicas_add_up_to_one_lockout() {
    crate::postgres_only!();
    let a = spawn_with(|c| c.lockout.threshold = 10).await;
    let b = replica_of(&a, |c| c.lockout.threshold = 10).await;
    a.add_user("alice@example.com", "alice", PASSWORD).await;
    // 11 failures in all, at once from both: more than 10 locks.
    let tries = (0..11).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move { app.post_login("alice", "wrong-password-1").await.status() }
    });
    for status in futures_util::future::join_all(tries).await {
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let key = LoginId::parse("alice").unwrap().lockout_key();
    let state = a.state.store.lockout(&key).await.unwrap();
    assert!(state.locked_until.is_some(), "{state:?}");
    // Either replica now refuses the right password.
    b.post_login("alice", PASSWORD).await;
    assert!(!b.session_is_live().await, "locked on B too");
    a.post_login("alice", PASSWORD).await;
    assert!(!a.session_is_live().await, "locked on A too");
}

#[tokio::test]
async fn an_invitation_is_redeemed_once_across_replicas() {
    crate::postgres_only!();
    let a = spawn_with(|_| {}).await;
    let mut b = replica_of(&a, |_| {}).await;
    // Two browsers, one per replica, racing with one token.
    b.client = crate::support::new_client();
    let token = a.invite(|i| i.max_uses = 1).await;
    let t = token.as_str().to_owned();
    let (ra, rb) = tokio::join!(
        a.sign_up("one@example.com", "one", &t),
        b.sign_up("two@example.com", "two", &t)
    );
    let made = a.state.store.user_count().await.unwrap();
    assert_eq!(made, 1, "one account for a one-use invitation");
    let statuses = [ra.status(), rb.status()];
    assert!(
        statuses
            .iter()
            .all(|s| *s != StatusCode::INTERNAL_SERVER_ERROR),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn each_mail_is_sent_once_and_a_dead_senders_mail_by_another() {
    crate::postgres_only!();
    let smtp = SmtpServer::start(Options::default());
    let a = spawn_with(crate::mail::with_smtp(&smtp)).await;
    let b = replica_of(&a, crate::mail::with_smtp(&smtp)).await;
    let now = a.clock.now();
    for i in 0..24 {
        a.state
            .store
            .enqueue_mail(
                Mail {
                    to: EmailAddress::parse("team@example.com").unwrap(),
                    subject: format!("mail {i}"),
                    text: "text".into(),
                    html: "<p>html</p>".into(),
                },
                now,
            )
            .await
            .unwrap();
    }
    // Both replicas send at once (their own outbox tasks too), each as
    // often as it finds mail due.
    let (wa, wb) = (a.state.outbox_worker(), b.state.outbox_worker());
    let (sa, sb) = tokio::join!(wa.deliver_due(), wb.deliver_due());
    sa.unwrap();
    sb.unwrap();
    let mut subjects: Vec<String> = smtp
        .wait_for(24)
        .await
        .into_iter()
        .map(|m| m.subject)
        .collect();
    // Every sender has finished a round since: nothing more comes.
    tokio::join!(a.state.outbox.flushed(), b.state.outbox.flushed());
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 24, "every mail");
    assert_eq!(smtp.count(), 24, "no mail twice");
    assert!(a.state.store.outbox().await.unwrap().is_empty());

    // A takes a mail and dies before sending it: B leaves it while A's
    // hold lasts, then sends it.
    let id = a
        .state
        .store
        .enqueue_mail(
            Mail {
                to: EmailAddress::parse("team@example.com").unwrap(),
                subject: "orphan".into(),
                text: "text".into(),
                html: "<p>html</p>".into(),
            },
            a.clock.now(),
        )
        .await
        .unwrap();
    let held_until = a.clock.now().plus(Duration::from_secs(150));
    let taken = a
        .state
        .store
        .due_mail(a.clock.now(), held_until, 4)
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
    a.stop().await;
    assert_eq!(wb.deliver_due().await.unwrap(), 0, "held by A");
    b.clock.advance(Duration::from_secs(151));
    // A's hold is over: B sends it (this call, or B's own outbox task).
    wb.deliver_due().await.unwrap();
    let last = smtp.wait_for(25).await;
    b.state.outbox.flushed().await;
    assert_eq!(last.iter().filter(|m| m.subject == "orphan").count(), 1);
    assert_eq!(smtp.count(), 25, "once");
}

#[tokio::test]
async fn replicas_starting_together_make_one_first_run_link() {
    crate::postgres_only!();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = crate::support::test_config(&da);
    let mut cb = crate::support::test_config(&db);
    cb.database = ca.database.clone();
    let clock = gatehouse::Clock::manual(crate::support::start_time());
    let (a, b) = tokio::join!(
        gatehouse::App::build(ca, clock.clone()),
        gatehouse::App::build(cb, clock.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (fa, fb) = tokio::join!(a.first_run(), b.first_run());
    let mut outcomes = [fa.unwrap(), fb.unwrap()];
    outcomes.sort_by_key(|o| !matches!(o, FirstRunLink::Link(_)));
    let FirstRunLink::Link(link) = &outcomes[0] else {
        panic!("one replica makes the link: {outcomes:?}")
    };
    assert!(
        matches!(outcomes[1], FirstRunLink::MadeElsewhere(_)),
        "the other says where it is: {outcomes:?}"
    );
    let live: Vec<_> = a
        .state()
        .store
        .invites()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.first_run && i.revoked_at.is_none())
        .collect();
    assert_eq!(live.len(), 1, "one live first-run link");
    // And the link printed works, on either replica.
    let database = a.state().config.database.clone();
    drop((a, b));
    let served = spawn_in(Arc::new(tempfile::tempdir().unwrap()), clock, |c| {
        c.database = database
    })
    .await;
    let token = link.split("token=").nth(1).unwrap();
    let r = served.sign_up("root@example.com", "root", token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.status());
}

#[tokio::test]
async fn an_admin_command_on_the_database_acts_on_every_replica_at_once() {
    crate::postgres_only!();
    let a = spawn_with(|_| {}).await;
    let b = replica_of(&a, |_| {}).await;
    a.add_user("alice@example.com", "alice", PASSWORD).await;
    a.login_ok("alice", PASSWORD).await;
    assert!(b.session_is_live().await);
    // The command goes to the database itself (no admin socket).
    let dir = a.dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        crate::support::cli::gatehouse(&dir, &["user", "disable", "alice"], None)
    })
    .await
    .unwrap();
    run.ok();
    assert!(!a.session_is_live().await, "A refuses at its next request");
    assert!(!b.session_is_live().await, "B too");
}
