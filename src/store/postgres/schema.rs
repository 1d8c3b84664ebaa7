//! Migrations, embedded in the binary and applied in order at start, in
//! one transaction under an advisory lock: two replicas starting together
//! apply each once (the second waits, then finds them applied). A
//! database whose schema is newer than this binary knows is refused and
//! left exactly as it was.

use super::{Database, OpenError, SqlState};
use deadpool_postgres::Object;

/// (version, what it does, SQL). Append only: a released migration never
/// changes.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "first schema",
        include_str!("migrations/0001_first_schema.sql"),
    ),
    (
        2,
        "unconfirmed accounts by index",
        include_str!("migrations/0002_unconfirmed_accounts.sql"),
    ),
    (
        3,
        "OpenID Connect clients, keys, grants and tokens",
        include_str!("migrations/0003_openid_connect.sql"),
    ),
    (
        4,
        "second factors",
        include_str!("migrations/0004_second_factors.sql"),
    ),
    (
        5,
        "half-logins and passkey challenges",
        include_str!("migrations/0005_pending_logins.sql"),
    ),
];

/// The schema this binary reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock migrations hold ("gatehous" in ASCII).
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573;

/// Brings the schema to `SCHEMA_VERSION`; returns the password pre-hash
/// key (made with the schema).
pub(super) async fn migrate(
    client: &mut Object,
    database: &Database,
) -> Result<[u8; 32], OpenError> {
    let target = database.shown().to_owned();
    let fail = |e: tokio_postgres::Error| -> OpenError {
        if super::is_unavailable(&e) {
            return OpenError::Unreachable {
                target: target.clone(),
                cause: e.to_string(),
            };
        }
        let cause = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
        match e.code() {
            Some(&SqlState::DUPLICATE_TABLE | &SqlState::DUPLICATE_OBJECT) => OpenError::NotOurs {
                target: target.clone(),
                cause,
            },
            _ => OpenError::Failed {
                target: target.clone(),
                cause,
            },
        }
    };
    let t = client.transaction().await.map_err(fail)?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    t.batch_execute(
        "CREATE TABLE IF NOT EXISTS gatehouse_schema (\
             version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, \
             applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(fail)?;
    let found: Option<i32> = t
        .query_one("SELECT max(version) FROM gatehouse_schema", &[])
        .await
        .map_err(fail)?
        .get(0);
    let found = found.map_or(0, |v| u32::try_from(v).unwrap_or(0));
    if found > SCHEMA_VERSION {
        // Dropping the transaction rolls it back: nothing was changed.
        return Err(OpenError::NewerSchema {
            target: target.clone(),
            found,
        });
    }
    let now = crate::clock::Clock::system().now().as_millis();
    for (version, description, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        t.batch_execute(sql).await.map_err(fail)?;
        let v = i32::try_from(*version).unwrap_or(i32::MAX);
        t.execute(
            "INSERT INTO gatehouse_schema (version, description, applied_at) VALUES ($1, $2, $3)",
            &[&v, description, &now],
        )
        .await
        .map_err(fail)?;
        tracing::info!(version, description, "database schema migrated");
    }
    let fresh = hex(&crate::crypto::random_bytes::<32>());
    t.execute(
        "INSERT INTO gatehouse_meta (name, value) VALUES ('password_key', $1) \
         ON CONFLICT (name) DO NOTHING",
        &[&fresh],
    )
    .await
    .map_err(fail)?;
    // The row replicas lock to make the first-run invitation one at a
    // time.
    t.execute(
        "INSERT INTO gatehouse_meta (name, value) VALUES ('first_run', '') \
         ON CONFLICT (name) DO NOTHING",
        &[],
    )
    .await
    .map_err(fail)?;
    let key: String = t
        .query_one(
            "SELECT value FROM gatehouse_meta WHERE name = 'password_key'",
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    t.commit().await.map_err(fail)?;
    unhex(&key).ok_or_else(|| OpenError::NotOurs {
        target,
        cause: "its password_key is not 32 bytes of hex".into(),
    })
}

pub(super) use crate::crypto::hex;

pub(super) fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}
