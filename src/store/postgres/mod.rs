//! The shared store: one PostgreSQL database behind any number of
//! gatehouse replicas (SPEC §10).
//!
//! Every call is one transaction (or one statement) against the
//! database; nothing is cached in the process, so a change made through
//! one replica is what the next request to any replica reads (the session
//! check is one round trip: a join of the session and its account).
//! Transactions run at PostgreSQL's default READ COMMITTED with explicit
//! row locks (`FOR UPDATE`) where a read decides a write (lockout
//! counters, invitation uses, one-time tokens, the outbox lease); a
//! serialisation failure or a deadlock is retried a few times, which is
//! also what an engine that runs everything SERIALIZABLE needs. Records
//! are the same JSON the embedded store keeps, with the columns that
//! queries need beside them. Migrations are embedded, versioned and
//! applied at start under an advisory lock.

mod connect;
mod schema;

mod audit;
mod groups;
mod invites;
mod lockout;
mod mail;
mod oidc;
mod second_factors;
mod sessions;
mod transfer;
mod users;

pub use connect::{Database, TlsMode};
pub use schema::SCHEMA_VERSION;

use super::{Store, StoreError, StoreResult};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// How long a request waits for a free connection, or for a new one, before
/// it is told the database is unavailable (503).
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Connections one replica keeps to the database at most.
pub const POOL_SIZE: usize = 16;

/// Why the database could not be opened, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "cannot connect to the database {target}: {cause}. Check that PostgreSQL runs there and \
         accepts connections from this host (listen_addresses, pg_hba.conf), and the --database URL"
    )]
    Unreachable { target: String, cause: String },
    #[error(
        "the database {target} refused the login: {cause}. Check the user and password of \
         --database (or --database-password-file)"
    )]
    Refused { target: String, cause: String },
    #[error(
        "the database {target} does not exist. Create it, for example \
         `createdb -O gatehouse {name}`, or correct --database"
    )]
    Missing { target: String, name: String },
    #[error(
        "the database {target} has schema version {found}, newer than this gatehouse knows \
         ({SCHEMA_VERSION}). Run the newer gatehouse that wrote it (every replica at that \
         version), or restore a dump; this gatehouse changed nothing"
    )]
    NewerSchema { target: String, found: u32 },
    #[error(
        "the database {target} has tables of another program ({cause}). Give gatehouse a \
         database of its own (`createdb -O gatehouse gatehouse`)"
    )]
    NotOurs { target: String, cause: String },
    #[error("the database {target} could not be prepared: {cause}")]
    Failed { target: String, cause: String },
}

pub struct PgStore {
    pool: Pool,
    password_key: [u8; 32],
    database: Database,
}

impl PgStore {
    /// Connects, brings the schema to this binary's version (or refuses a
    /// newer one) and reads the password pre-hash key.
    pub async fn open(database: &Database) -> Result<Self, OpenError> {
        let target = database.shown().to_owned();
        let failed = |e: anyhow::Error| OpenError::Failed {
            target: target.clone(),
            cause: format!("{e:#}"),
        };
        let tls = database.connector().map_err(failed)?;
        let manager = Manager::from_config(
            database.pg.clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| failed(e.into()))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| open_error(database, &pool_cause(&e), pool_db_error(&e)))?;
        let password_key = schema::migrate(&mut client, database).await?;
        drop(client);
        Ok(Self {
            pool,
            password_key,
            database: database.clone(),
        })
    }

    /// The database this store works on.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// A connection from the pool; none within `POOL_WAIT` is `Unavailable`.
    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unavailable(anyhow::anyhow!(
                "no connection to the database: {}",
                pool_cause(&e)
            ))
        })
    }

    /// Rows of one statement outside a transaction.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(classify_pg)?;
        client.query(&statement, params).await.map_err(classify_pg)
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Option<tokio_postgres::Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(classify_pg)?;
        client
            .query_opt(&statement, params)
            .await
            .map_err(classify_pg)
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<u64> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(classify_pg)?;
        client
            .execute(&statement, params)
            .await
            .map_err(classify_pg)
    }
}

/// Runs `$body` in a transaction on `$store`'s pool and commits it,
/// retrying a few times when PostgreSQL reports a serialisation failure
/// or a deadlock. `$t` is the transaction; the body is an expression of
/// type `anyhow::Result<T>` that may `.await`, `?` and `return` early
/// (which rolls back: use it only when nothing was written). It runs again
/// on a retry, so it must not move what it uses.
macro_rules! transaction {
    ($store:expr, |$t:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let mut tries = 0u32;
        loop {
            let result: anyhow::Result<_> = async {
                let $t = client.transaction().await?;
                let value = $body?;
                $t.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => break Ok::<_, $crate::store::StoreError>(value),
                Err(e) if tries < 5 && $crate::store::postgres::is_retryable(&e) => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << tries)).await;
                }
                Err(e) => break Err($crate::store::postgres::classify(e)),
            }
        }
    }};
}
pub(crate) use transaction;

fn sql_state(e: &anyhow::Error) -> Option<&SqlState> {
    e.chain()
        .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
        .and_then(|pg| pg.code())
}

pub(crate) fn is_retryable(e: &anyhow::Error) -> bool {
    matches!(
        sql_state(e),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// A lost connection, a database shutting down or out of connections is
/// `Unavailable` (503, "try again"); anything else `Other`.
pub(crate) fn classify(e: anyhow::Error) -> StoreError {
    let pg = e
        .chain()
        .find_map(|c| c.downcast_ref::<tokio_postgres::Error>());
    let unavailable = match pg {
        Some(pg) => is_unavailable(pg),
        None => false,
    };
    if unavailable {
        StoreError::Unavailable(e)
    } else {
        StoreError::Other(e)
    }
}

fn classify_pg(e: tokio_postgres::Error) -> StoreError {
    classify(anyhow::Error::new(e))
}

fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No answer from the server: the connection failed or closed.
        None => {
            e.is_closed()
                || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().starts_with("timeout")
                || e.to_string().starts_with("error connecting")
        }
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
        }
    }
}

fn pool_cause(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(pg) => {
            let mut text = pg.to_string();
            if let Some(db) = pg.as_db_error() {
                text = db.message().to_owned();
            } else if let Some(source) = std::error::Error::source(pg) {
                text = format!("{text}: {source}");
            }
            text
        }
        deadpool_postgres::PoolError::Timeout(_) => "timed out waiting for a connection".to_owned(),
        other => other.to_string(),
    }
}

fn pool_db_error(e: &deadpool_postgres::PoolError) -> Option<SqlState> {
    match e {
        deadpool_postgres::PoolError::Backend(pg) => pg.code().cloned(),
        _ => None,
    }
}

/// What a failed first connection means to the admin.
fn open_error(database: &Database, cause: &str, code: Option<SqlState>) -> OpenError {
    let target = database.shown().to_owned();
    let cause = cause.to_owned();
    match code {
        Some(SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => {
            OpenError::Refused { target, cause }
        }
        Some(SqlState::INVALID_CATALOG_NAME) => OpenError::Missing {
            target,
            name: database.dbname().to_owned(),
        },
        _ => OpenError::Unreachable { target, cause },
    }
}

impl Store for PgStore {
    fn password_key(&self) -> [u8; 32] {
        self.password_key
    }
}

fn ms(t: crate::clock::Timestamp) -> i64 {
    t.as_millis()
}

fn id_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn id_u64(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// The next number of a sequence.
async fn next_val(t: &deadpool_postgres::Transaction<'_>, sequence: &str) -> anyhow::Result<u64> {
    let sql = format!("SELECT nextval('{sequence}')");
    let row = t.query_one(&t.prepare_cached(&sql).await?, &[]).await?;
    Ok(id_u64(row.get(0)))
}

/// Adds a login try to the account's history, keeping the newest
/// `LOGIN_HISTORY`.
async fn record_attempt(
    t: &deadpool_postgres::Transaction<'_>,
    user: crate::domain::UserId,
    attempt: &crate::domain::LoginAttempt,
) -> anyhow::Result<()> {
    let seq = next_val(t, "gatehouse_login_seq").await?;
    let uid = id_i64(user.0);
    t.execute(
        &t.prepare_cached("INSERT INTO logins (seq, user_id, record) VALUES ($1, $2, $3)")
            .await?,
        &[&id_i64(seq), &uid, &super::record::encode_text(attempt)],
    )
    .await?;
    let keep = i64::try_from(crate::domain::LOGIN_HISTORY).unwrap_or(i64::MAX);
    t.execute(
        &t.prepare_cached(
            "DELETE FROM logins WHERE user_id = $1 AND seq < \
             (SELECT min(seq) FROM (SELECT seq FROM logins WHERE user_id = $1 \
              ORDER BY seq DESC LIMIT $2) AS newest)",
        )
        .await?,
        &[&uid, &keep],
    )
    .await?;
    Ok(())
}

/// Makes a database next to the one `admin` names (for tests, and for
/// trying `migrate` on a scratch database); nothing when it exists.
pub async fn create_database(admin: &Database, name: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        anyhow::bail!("a database name of a-z, 0-9 and _ only, not {name:?}");
    }
    let tls = admin.connector()?;
    let (client, connection) = admin
        .pg
        .connect(tls)
        .await
        .with_context(|| format!("cannot connect to {}", admin.shown()))?;
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        match client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            Ok(()) => {}
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = task.await;
    Ok(())
}

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests {
    async fn open_fresh() -> (super::testing::Scratch, Box<dyn crate::store::Store>) {
        let scratch = super::testing::Scratch::new().await;
        let store = super::PgStore::open(&scratch.database).await.unwrap();
        (scratch, Box::new(store))
    }

    mod contract {
        crate::contract_suite!(super::open_fresh);
    }

    /// Turns TLS on in the test cluster (once; the certificate, for
    /// 127.0.0.1, stays in its data directory) and returns the
    /// certificate's file, which is also its own CA.
    async fn cluster_with_tls() -> std::path::PathBuf {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let admin = super::testing::cluster();
        let (client, connection) = admin.pg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let dir: String = client
            .query_one("SHOW data_directory", &[])
            .await
            .unwrap()
            .get(0);
        let dir = std::path::PathBuf::from(dir);
        let (cert, key) = (
            dir.join("gatehouse-test-cert.pem"),
            dir.join("gatehouse-test-key.pem"),
        );
        if !cert.exists() {
            let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
            let owner = std::fs::metadata(&dir).unwrap();
            for (file, text) in [
                (&cert, made.cert.pem()),
                (&key, made.key_pair.serialize_pem()),
            ] {
                std::fs::write(file, text).unwrap();
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
                std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).unwrap();
            }
        }
        let on: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
        if on != "on" {
            for statement in [
                format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
                format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
                "ALTER SYSTEM SET ssl = on".to_owned(),
                "SELECT pg_reload_conf()".to_owned(),
            ] {
                client.batch_execute(&statement).await.unwrap();
            }
        }
        // The reload is the server's to finish: wait for it to say so.
        for _ in 0..100 {
            let on: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
            if on == "on" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // A copy the test process may read as the CA.
        let ca = std::env::temp_dir().join(format!("gatehouse-test-ca-{}.pem", std::process::id()));
        std::fs::copy(&cert, &ca).unwrap();
        ca
    }

    async fn plain_client(database: &super::Database) -> tokio_postgres::Client {
        let (client, connection) = database.pg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A database left at schema 1 by an older binary, holding an account
    /// that waits for its address, is brought to this binary's schema
    /// with its data: schema 2's column is filled from the record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_schema_is_migrated_with_its_data() {
        use crate::clock::Timestamp;
        use crate::domain::UserStatus;
        let scratch = super::testing::Scratch::new().await;
        let client = plain_client(&scratch.database).await;
        client
            .batch_execute(
                "CREATE TABLE gatehouse_schema (version INTEGER PRIMARY KEY, \
                 description TEXT NOT NULL, applied_at BIGINT NOT NULL); \
                 INSERT INTO gatehouse_schema VALUES (1, 'first schema', 0);",
            )
            .await
            .unwrap();
        client
            .batch_execute(include_str!("migrations/0001_first_schema.sql"))
            .await
            .unwrap();
        let waiting = crate::domain::User {
            id: crate::domain::UserId(7),
            email: crate::domain::EmailAddress::parse("w@example.com").unwrap(),
            username: crate::domain::Username::parse("waiting").unwrap(),
            password_hash: "h".into(),
            role: crate::domain::Role::User,
            status: UserStatus::PendingVerification,
            created_at: Timestamp::from_millis(1_000),
            last_login: None,
            previous_login: None,
            email_verified_at: None,
            consent: None,
            groups: Vec::new(),
        };
        let active = crate::domain::User {
            id: crate::domain::UserId(8),
            email: crate::domain::EmailAddress::parse("a@example.com").unwrap(),
            username: crate::domain::Username::parse("active").unwrap(),
            status: UserStatus::Active,
            ..waiting.clone()
        };
        for u in [&waiting, &active] {
            client
                .execute(
                    "INSERT INTO users (id, email, username_key, role, password_hash, record) \
                     VALUES ($1, $2, $3, 'user', 'h', $4)",
                    &[
                        &super::id_i64(u.id.0),
                        &u.email.as_str(),
                        &u.username.key(),
                        &crate::store::record::encode_text(u),
                    ],
                )
                .await
                .unwrap();
        }
        let store = super::PgStore::open(&scratch.database).await.unwrap();
        let version: i32 = client
            .query_one("SELECT max(version) FROM gatehouse_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            u32::try_from(version).unwrap(),
            super::schema::SCHEMA_VERSION
        );
        use crate::store::UserStore;
        let found = store
            .unconfirmed_before(Timestamp::from_millis(2_000))
            .await
            .unwrap();
        assert_eq!(
            found
                .iter()
                .map(crate::store::record::encode_text)
                .collect::<Vec<_>>(),
            vec![crate::store::record::encode_text(&waiting)]
        );
    }

    /// A database a newer binary has migrated is refused, and nothing in
    /// it changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_refused_untouched() {
        let scratch = super::testing::Scratch::new().await;
        drop(super::PgStore::open(&scratch.database).await.unwrap());
        let client = plain_client(&scratch.database).await;
        let newer = i32::try_from(super::schema::SCHEMA_VERSION + 1).unwrap();
        client
            .execute(
                "INSERT INTO gatehouse_schema VALUES ($1, 'from the future', 0)",
                &[&newer],
            )
            .await
            .unwrap();
        let dump = || async {
            let rows = client
                .query(
                    "SELECT table_name, column_name FROM information_schema.columns \
                     WHERE table_schema = current_schema() ORDER BY 1, 2",
                    &[],
                )
                .await
                .unwrap();
            let meta = client
                .query("SELECT name, value FROM gatehouse_meta ORDER BY name", &[])
                .await
                .unwrap();
            (
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>(),
                meta.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>(),
            )
        };
        let before = dump().await;
        let err = super::PgStore::open(&scratch.database)
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(err, super::OpenError::NewerSchema { found, .. } if found == super::schema::SCHEMA_VERSION + 1),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("newer"), "{text}");
        assert_eq!(dump().await, before);
    }

    /// Replicas starting together: each open applies or finds the schema,
    /// none fails, and each migration is recorded once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_together_migrate_once() {
        let scratch = super::testing::Scratch::new().await;
        let opens = (0..4).map(|_| {
            let db = scratch.database.clone();
            tokio::spawn(async move { super::PgStore::open(&db).await.map(|_| ()) })
        });
        for o in opens.collect::<Vec<_>>() {
            o.await.unwrap().unwrap();
        }
        let client = plain_client(&scratch.database).await;
        let rows = client
            .query("SELECT version FROM gatehouse_schema ORDER BY version", &[])
            .await
            .unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(
            versions,
            (1..=i32::try_from(super::schema::SCHEMA_VERSION).unwrap()).collect::<Vec<_>>()
        );
    }

    fn url_with(scratch: &super::testing::Scratch, query: &str) -> String {
        let mut url = url::Url::parse(&std::env::var(super::testing::TEST_PG).unwrap()).unwrap();
        url.set_path(&format!("/{}", scratch.database.dbname()));
        url.set_query(Some(query));
        url.to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_connection_is_encrypted_and_verify_full_checks_the_certificate() {
        let ca = cluster_with_tls().await;
        let scratch = super::testing::Scratch::new().await;
        let full = super::Database::parse(&url_with(
            &scratch,
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ))
        .unwrap();
        let store = super::PgStore::open(&full).await.unwrap();
        let row = store
            .query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .unwrap();
        assert!(row.get::<_, bool>(0), "the connection is TLS");
        let require = super::Database::parse(&url_with(&scratch, "sslmode=require")).unwrap();
        super::PgStore::open(&require).await.unwrap();
        // Another CA: refused, and the error says why.
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let wrong =
            std::env::temp_dir().join(format!("gatehouse-wrong-ca-{}.pem", std::process::id()));
        std::fs::write(&wrong, other.cert.pem()).unwrap();
        let bad = super::Database::parse(&url_with(
            &scratch,
            &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
        ))
        .unwrap();
        let err = super::PgStore::open(&bad).await.err().expect("refused");
        let text = format!("{err}");
        assert!(
            text.contains("cannot connect") && text.to_lowercase().contains("certificate"),
            "{text}"
        );
        let _ = std::fs::remove_file(&ca);
        let _ = std::fs::remove_file(&wrong);
    }
}
