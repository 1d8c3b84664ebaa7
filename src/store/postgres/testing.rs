//! Fresh databases on the test cluster for the contract suite: the
//! cluster is named by `GATEHOUSE_TEST_PG` (a URL of a database the test
//! user may create databases from), which `make test` sets after starting
//! a throw-away cluster (`scripts/test-postgres`).

use super::Database;

/// The variable naming the test cluster.
pub const TEST_PG: &str = "GATEHOUSE_TEST_PG";

/// A new, empty database; left behind on the throw-away cluster.
pub struct Scratch {
    pub database: Database,
}

/// The cluster's URL; a clear failure without one.
pub fn cluster() -> Database {
    let url = std::env::var(TEST_PG).unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a cluster: run `make test` (it starts a throw-away one), \
             or start one with `scripts/test-postgres start DIR` and set {TEST_PG} to the URL it prints"
        )
    });
    Database::parse(&url).expect("GATEHOUSE_TEST_PG is a postgres:// URL")
}

impl Scratch {
    pub async fn new() -> Self {
        let admin = cluster();
        let name = format!("unit_{}", hex_name());
        super::create_database(&admin, &name)
            .await
            .expect("the test cluster makes a database");
        Self {
            database: admin.with_dbname(&name),
        }
    }
}

fn hex_name() -> String {
    super::schema::hex(&crate::crypto::random_bytes::<8>())
}
