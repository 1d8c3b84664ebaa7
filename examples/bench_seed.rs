//! Benchmark seeder (`make bench`): fills a new data directory with users,
//! then leaves the database closed for the server to open.
//!
//! `cargo run --release --example bench_seed -- DATA_DIR USERS PASSWORD [COST] [DATABASE_URL]`
//!
//! With DATABASE_URL (`postgres://…`, plain TCP to a bench cluster), the
//! users go into that PostgreSQL database instead (made when missing; it
//! must hold no accounts yet), and DATA_DIR keeps only what a server on
//! PostgreSQL keeps there.
//!
//! - Opens the store with `RedbStore::open` (schema, password key), makes the
//!   admin with `create_user` (user 1, so the normal start finds an admin
//!   at once and writes no first-run invitation).
//! - Hashes PASSWORD once with `hash_now` at COST (default 12) and gives that
//!   hash to every other user: seeding costs one bcrypt, not millions.
//! - `create_user` is one durable two-phase commit per user (~4.4 ms here:
//!   over an hour for 1,000,000 users), so users 2..=USERS are written
//!   straight into the same redb tables, 50,000 per transaction: the
//!   records are `domain::User` serialised exactly as the store does
//!   (JSON), under the same keys (normalised email, lower-cased username).
//! - Reopens the store with `RedbStore::open` and checks that the last
//!   seeded user is found by email and by username through the store's
//!   own look-up, with a hash that verifies: a schema change in
//!   `src/store/redb` that this file did not follow fails here, loudly.
//!
//! Users are `user<N>` / `user<N>@bench.example` for N in 1..USERS, all
//! active and with consent to the current (template) documents, so that
//! `GET /api/v1/session` answers 200 for them.
//!
//! On PostgreSQL the schema and the admin come from `PgStore::open` and
//! `create_user` too; users 2..=USERS go in with multi-row INSERTs of
//! 50,000 (the same columns `create_user` writes, the record the same
//! JSON), the id sequence is moved past them, and the tables are vacuumed
//! and analysed, as a database that has lived a while would be. The same
//! read-back through the store follows.
//!
//! Prints one JSON line: users, seconds, file bytes (on PostgreSQL: the
//! bytes of our tables with their indexes and TOAST).

use gatehouse::auth::password::{hash_now, verify_now};
use gatehouse::clock::Timestamp;
use gatehouse::documents::Documents;
use gatehouse::domain::{EmailAddress, LoginId, Role, User, UserId, UserStatus, Username};
use gatehouse::store::postgres::{Database as PgDatabase, PgStore, create_database};
use gatehouse::store::redb::RedbStore;
use gatehouse::store::{DATABASE_FILE, NewUser, Store};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

// Mirrors of the private definitions in src/store/redb/mod.rs (checked by
// the read-back at the end).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
const USERS_BY_EMAIL: TableDefinition<&str, u64> = TableDefinition::new("users_by_email");
const USERS_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("users_by_name");
const META_NEXT_USER: &str = "next_user_id";

const BATCH: u64 = 50_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, users, password) = match args.as_slice() {
        [dir, users, password, ..] => (PathBuf::from(dir), users.parse::<u64>()?, password.clone()),
        _ => anyhow::bail!("usage: bench_seed DATA_DIR USERS PASSWORD [COST] [DATABASE_URL]"),
    };
    let cost: u32 = args.get(3).map_or(Ok(12), |c| c.parse())?;
    let database = args.get(4);
    anyhow::ensure!(users >= 1, "USERS counts the admin: at least 1");
    let started = Instant::now();
    let now = Timestamp::from_system_time(SystemTime::now());
    let consent = Documents::load(None, None)?.consent(now);
    std::fs::create_dir_all(&dir)?;

    let store: Box<dyn Store> = match database {
        Some(url) => {
            let db = PgDatabase::parse(url)?;
            create_database(&db.with_dbname("postgres"), db.dbname()).await?;
            Box::new(
                PgStore::open(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
        None => Box::new(RedbStore::open(&dir)?),
    };
    let key = store.password_key();
    let hash = hash_now(&key, cost, &password);
    let admin = store
        .create_user(
            NewUser {
                email: EmailAddress::parse("admin@bench.example").map_err(anyhow::Error::msg)?,
                username: Username::parse("admin").map_err(anyhow::Error::msg)?,
                password_hash: hash.clone(),
                role: Role::Admin,
                status: UserStatus::Active,
                created_at: now,
                consent: Some(consent.clone()),
                groups: Vec::new(),
            },
            None,
        )
        .await??;
    anyhow::ensure!(admin.id == UserId(1), "the database was not empty");
    drop(store);

    let user = |id: u64, i: u64| -> anyhow::Result<User> {
        Ok(User {
            id: UserId(id),
            email: EmailAddress::parse(&format!("user{i}@bench.example"))
                .map_err(anyhow::Error::msg)?,
            username: Username::parse(&format!("user{i}")).map_err(anyhow::Error::msg)?,
            password_hash: hash.clone(),
            role: Role::User,
            status: UserStatus::Active,
            created_at: now,
            last_login: None,
            previous_login: None,
            email_verified_at: None,
            consent: Some(consent.clone()),
            groups: Vec::new(),
        })
    };
    let table_bytes = match database {
        Some(url) => Some(seed_postgres(url, users, &user).await?),
        None => {
            seed_redb(&dir, users, &user)?;
            None
        }
    };

    // Read back through the store's own code.
    let store: Box<dyn Store> = match database {
        Some(url) => Box::new(
            PgStore::open(&PgDatabase::parse(url)?)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => Box::new(RedbStore::open(&dir)?),
    };
    if users > 1 {
        let last = users - 1;
        let by_name = store
            .user_by_login_id(&LoginId::parse(&format!("user{last}")).map_err(anyhow::Error::msg)?)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user{last} not found by username"))?;
        let by_email = store
            .user_by_login_id(
                &LoginId::parse(&format!("USER{last}@bench.example"))
                    .map_err(anyhow::Error::msg)?,
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("user{last} not found by email"))?;
        anyhow::ensure!(by_name.id == UserId(users) && by_email.id == by_name.id);
        anyhow::ensure!(
            verify_now(&store.password_key(), &password, &by_name.password_hash),
            "the seeded hash does not verify"
        );
    }
    anyhow::ensure!(
        store.user_count().await? == usize::try_from(users)?,
        "the store does not count {users} users"
    );
    drop(store);
    let bytes = match table_bytes {
        Some(bytes) => bytes,
        None => std::fs::metadata(dir.join(DATABASE_FILE))?.len(),
    };
    println!(
        "{{\"users\": {users}, \"seconds\": {:.3}, \"file_bytes\": {bytes}}}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Users 2..=USERS straight into the redb tables.
fn seed_redb(
    dir: &std::path::Path,
    users: u64,
    user: &dyn Fn(u64, u64) -> anyhow::Result<User>,
) -> anyhow::Result<()> {
    let db = Database::create(dir.join(DATABASE_FILE))?;
    let mut n = 1;
    while n < users {
        let end = (n + BATCH).min(users);
        let mut txn = db.begin_write()?;
        txn.set_two_phase_commit(true);
        {
            let mut meta = txn.open_table(META)?;
            let mut table = txn.open_table(USERS)?;
            let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
            let mut by_name = txn.open_table(USERS_BY_NAME)?;
            let mut id = meta
                .get(META_NEXT_USER)?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| anyhow::anyhow!("no next_user_id in meta: schema changed?"))?;
            let mut buf = Vec::with_capacity(512);
            for i in n..end {
                let user = user(id, i)?;
                buf.clear();
                serde_json::to_writer(&mut buf, &user)?;
                table.insert(id, buf.as_slice())?;
                by_email.insert(user.email.as_str(), id)?;
                by_name.insert(user.username.key().as_str(), id)?;
                id += 1;
            }
            meta.insert(META_NEXT_USER, id.to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        n = end;
    }
    Ok(())
}

/// Users 2..=USERS into the PostgreSQL tables, 50,000 per statement;
/// returns the bytes our tables take.
async fn seed_postgres(
    url: &str,
    users: u64,
    user: &dyn Fn(u64, u64) -> anyhow::Result<User>,
) -> anyhow::Result<u64> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    let t = client.transaction().await?;
    let insert = t
        .prepare(
            "INSERT INTO users (id, email, username_key, role, password_hash, record) \
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])",
        )
        .await?;
    let mut n = 1;
    while n < users {
        let end = (n + BATCH).min(users);
        let (mut ids, mut emails, mut names, mut roles, mut hashes, mut records) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in n..end {
            // Ids as create_user hands them out: the admin is 1.
            let user = user(i + 1, i)?;
            ids.push(i64::try_from(user.id.0)?);
            emails.push(user.email.as_str().to_owned());
            names.push(user.username.key());
            roles.push("user");
            hashes.push(user.password_hash.clone());
            records.push(serde_json::to_string(&user)?);
        }
        t.execute(&insert, &[&ids, &emails, &names, &roles, &hashes, &records])
            .await?;
        n = end;
    }
    t.execute(
        "SELECT setval('gatehouse_user_ids', $1)",
        &[&i64::try_from(users)?],
    )
    .await?;
    t.commit().await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    let row = client
        .query_one(
            "SELECT sum(pg_total_relation_size(c.oid))::BIGINT FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            &[],
        )
        .await?;
    drop(client);
    task.await??;
    Ok(u64::try_from(row.get::<_, i64>(0))?)
}
