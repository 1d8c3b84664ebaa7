//! Which store the suite runs on. `make test` runs it twice: on the
//! embedded redb file (the default), then with
//! `GATEHOUSE_TEST_BACKEND=postgres` on a throw-away PostgreSQL cluster
//! (`GATEHOUSE_TEST_PG`, started by `scripts/test-postgres`). Every data
//! directory then has a database of its own, named after the directory,
//! so that a restart on the same directory finds the same data.

use gatehouse::store::postgres::{Database, create_database};
use std::path::Path;

/// Ends a test of the embedded file's own behaviour (its lock, its file
/// permissions, its file copy) when the suite runs on PostgreSQL; it
/// runs in the redb pass, and `postgres.rs` tests the PostgreSQL side.
#[macro_export]
macro_rules! redb_only {
    ($why:literal) => {
        if $crate::support::backend::on_postgres() {
            eprintln!(concat!("not on PostgreSQL: ", $why));
            return;
        }
    };
}

/// Ends a test that needs the PostgreSQL cluster (replicas sharing a
/// database, `migrate`, `pg_dump`) in the redb pass; it runs in the
/// PostgreSQL pass.
#[macro_export]
macro_rules! postgres_only {
    () => {
        if !$crate::support::backend::on_postgres() {
            eprintln!("this needs the PostgreSQL cluster: it runs in the PostgreSQL pass");
            return;
        }
    };
}

/// A new, empty database on the test cluster, by URL (for `migrate
/// --to`, a restore).
pub fn fresh_database_url() -> String {
    let dir = tempfile::tempdir().unwrap();
    database_url(dir.path()).expect("on PostgreSQL")
}

/// The suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("GATEHOUSE_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// The `--database` URL of `dir`'s database (made when missing), when
/// the suite runs on PostgreSQL.
pub fn database_url(dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let cluster = std::env::var("GATEHOUSE_TEST_PG").expect(
        "GATEHOUSE_TEST_BACKEND=postgres needs GATEHOUSE_TEST_PG, the URL `scripts/test-postgres start DIR` prints (make test sets both)",
    );
    let name = name_for(dir);
    let admin = Database::parse(&cluster).expect("GATEHOUSE_TEST_PG is a postgres:// URL");
    // From any thread or runtime: a small runtime of its own.
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(create_database(&admin, &name))
                .expect("the test cluster makes a database");
        })
        .join()
        .unwrap();
    });
    let mut url = url::Url::parse(&cluster).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// The database of `dir`, parsed (for `Config::database`).
pub fn database_for(dir: &Path) -> Option<Database> {
    database_url(dir).map(|u| Database::parse(&u).unwrap())
}

fn name_for(dir: &Path) -> String {
    // Temp dir names differ in case only now and then: a hash, not the
    // name, so that two directories never share a database.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("it_{h:016x}")
}

/// Everything the store of `dir` holds, as bytes: the redb file, or a
/// data dump of its PostgreSQL database (for "this secret is never
/// stored" checks).
pub fn stored_bytes(dir: &Path) -> Vec<u8> {
    match database_url(dir) {
        None => std::fs::read(dir.join("gatehouse.redb")).unwrap(),
        Some(url) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--data-only", &url])
                .output()
                .expect("pg_dump runs (it comes with PostgreSQL)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}
