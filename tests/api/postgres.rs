//! The way to PostgreSQL and back (`gatehouse migrate`), and backups of a
//! PostgreSQL store (`pg_dump`, not `gatehouse backup`). These run in the
//! PostgreSQL pass (`scripts/test-all`).

use crate::support::{PASSWORD, spawn_in, spawn_with};
use gatehouse::clock::Clock;
use gatehouse::domain::{Group, GroupName, LoginId};
use gatehouse::store::transfer::Transfer;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// `gatehouse ARGS…` with only the environment given (no database of
/// the test's pass leaking in).
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.env_remove("GATEHOUSE_DATABASE")
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_BCRYPT_COST", "4")
        .envs(env.iter().copied())
        .args(args);
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn summary_of_redb(dir: &Path) -> Vec<gatehouse::store::transfer::TableSum> {
    let store = gatehouse::store::redb::RedbStore::open(dir).unwrap();
    store.export().await.unwrap().summary()
}

#[tokio::test]
async fn migrate_copies_a_populated_store_to_postgres_and_back_identically() {
    crate::postgres_only!();
    // A populated embedded store: accounts with hashes, a group, a live
    // session, lockout counters, an invitation, a reset token with its
    // mail in the outbox, the audit log and login history.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = Clock::manual(crate::support::start_time());
    let app = spawn_in(Arc::clone(&dir), clock.clone(), |c| c.database = None).await;
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.add_user("bob@example.com", "bob", PASSWORD).await;
    let ops = GroupName::parse("ops").unwrap();
    app.state
        .store
        .create_group(Group {
            name: ops.clone(),
            created_at: clock.now(),
        })
        .await
        .unwrap();
    app.state.store.add_member(&ops, alice.id).await.unwrap();
    app.reset_link(alice.id).await;
    for _ in 0..3 {
        app.post_login("bob", "wrong-password-1").await;
    }
    app.login_ok("alice", PASSWORD).await;
    let cookie_client = app.client.clone();
    app.invite(|i| i.max_uses = 2).await;
    // A mail the outbox gave up on stays for the admin.
    let mail = gatehouse::domain::Mail {
        to: gatehouse::domain::EmailAddress::parse("bob@example.com").unwrap(),
        subject: "kept".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    };
    let id = app
        .state
        .store
        .enqueue_mail(mail, clock.now())
        .await
        .unwrap();
    app.state
        .store
        .mail_failed(id, 30, None, "gave up".into())
        .await
        .unwrap();
    let (dir, _) = app.stop().await;
    let source = summary_of_redb(dir.path()).await;
    assert!(source.iter().find(|t| t.table == "users").unwrap().rows == 2);

    // To PostgreSQL.
    let url = crate::support::backend::fresh_database_url();
    let data = dir.path().to_str().unwrap();
    let to_pg = run(&[], &["--data-dir", data, "migrate", "--to", &url]);
    assert!(to_pg.status.success(), "{}", text(&to_pg));
    let out = String::from_utf8_lossy(&to_pg.stdout);
    assert!(
        out.contains("every table has the same rows and checksum"),
        "{out}"
    );
    assert!(
        out.contains("users") && out.contains("audit events"),
        "{out}"
    );

    // gatehouse on PostgreSQL: the same passwords, groups and the
    // session made before the move.
    let on_pg = spawn_in(Arc::new(tempfile::tempdir().unwrap()), clock.clone(), |c| {
        c.database = Some(gatehouse::store::postgres::Database::parse(&url).unwrap())
    })
    .await;
    let mut pg = on_pg;
    pg.client = cookie_client;
    assert!(pg.session_is_live().await, "the session survived the move");
    let fresh = crate::support::new_client();
    pg.client = fresh;
    pg.login_ok("alice", PASSWORD).await;
    let moved = pg
        .state
        .store
        .user_by_login_id(&LoginId::parse("alice").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.id, alice.id);
    assert_eq!(moved.groups, vec![ops.clone()]);
    pg.stop().await;

    // A target that holds data is refused without --force.
    let again = run(&[], &["--data-dir", data, "migrate", "--to", &url]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        text(&again)
    );

    // And back, from a fresh copy of what the source held.
    let fresh_url = crate::support::backend::fresh_database_url();
    let copy = run(&[], &["--data-dir", data, "migrate", "--to", &fresh_url]);
    assert!(copy.status.success(), "{}", text(&copy));
    let back = tempfile::tempdir().unwrap();
    let home = run(
        &[("GATEHOUSE_DATABASE", &fresh_url)],
        &["migrate", "--to", back.path().to_str().unwrap()],
    );
    assert!(home.status.success(), "{}", text(&home));
    assert_eq!(
        summary_of_redb(back.path()).await,
        source,
        "redb -> PostgreSQL -> redb keeps every table as it was"
    );
}

#[tokio::test]
async fn backup_with_postgres_says_pg_dump_and_a_dump_restores() {
    crate::postgres_only!();
    let app = spawn_with(|_| {}).await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let url = app
        .state
        .config
        .database
        .as_ref()
        .map(|_| crate::support::backend::database_url(app.dir.path()).unwrap())
        .unwrap();
    let file = app.dir.path().join("copy.redb");
    let o = run(
        &[("GATEHOUSE_DATABASE", &url)],
        &["backup", "--to", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pg_dump --format=custom") && err.contains("pg_restore"),
        "{err}"
    );
    assert!(!file.exists(), "nothing pretends to be a backup");

    // The documented way: pg_dump, then pg_restore into an empty
    // database, then gatehouse on it.
    let dump = app.dir.path().join("gatehouse.dump");
    let d = Command::new("pg_dump")
        .args(["--format=custom", "--file", dump.to_str().unwrap(), &url])
        .output()
        .unwrap();
    assert!(d.status.success(), "{}", text(&d));
    let target = crate::support::backend::fresh_database_url();
    let r = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &target, dump.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let restored = spawn_in(
        Arc::new(tempfile::tempdir().unwrap()),
        app.clock.clone(),
        |c| c.database = Some(gatehouse::store::postgres::Database::parse(&target).unwrap()),
    )
    .await;
    restored.login_ok("alice", PASSWORD).await;
}
