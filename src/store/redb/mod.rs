//! The embedded store: one redb file, opened by one process at a time.
//!
//! Every write transaction uses two-phase commit: we store strings chosen
//! by strangers (emails, usernames, IDs), and redb's default one-phase
//! commit trusts a checksum that a crafted value could in principle
//! collide with (redb docs, `set_two_phase_commit`). Records are JSON, so
//! a field added later reads back from an old record with its default.

mod audit;
mod backup;
mod groups;
mod invites;
pub(crate) use invites::kept_first_run;
mod lockout;
mod mail;
mod oidc;
mod second_factors;
mod sessions;
mod transfer;
mod users;

use super::{Backup, BackupStats, DATABASE_FILE, Store, StoreError, StoreResult};
use anyhow::Context;
use async_trait::async_trait;
use redb::{
    Database, DatabaseError, Durability, MultimapTableDefinition, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};
use std::path::{Path, PathBuf};

/// The schema this binary reads and writes. Bump it (and add a migration)
/// whenever a table or record changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
const USERS_BY_EMAIL: TableDefinition<&str, u64> = TableDefinition::new("users_by_email");
const USERS_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("users_by_name");
const SESSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sessions");
const SESSIONS_BY_USER: MultimapTableDefinition<u64, [u8; 32]> =
    MultimapTableDefinition::new("sessions_by_user");
const LOCKOUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("lockouts");
const INVITES: TableDefinition<u64, &[u8]> = TableDefinition::new("invites");
const INVITES_BY_HASH: TableDefinition<[u8; 32], u64> = TableDefinition::new("invites_by_hash");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// (user, sequence of its audit events).
const AUDIT_BY_USER: TableDefinition<(u64, u64), ()> = TableDefinition::new("audit_by_user");
/// (user, sequence) -> login attempt; the newest `LOGIN_HISTORY` kept.
const LOGINS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("logins");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// group name -> its members (the accounts keep the same in `User::groups`).
const GROUP_MEMBERS: MultimapTableDefinition<&str, u64> =
    MultimapTableDefinition::new("group_members");
const TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("tokens");
/// (user, purpose code) -> token hash: one live token per user and purpose.
const TOKENS_BY_USER: TableDefinition<(u64, u8), [u8; 32]> = TableDefinition::new("tokens_by_user");

const META_SCHEMA: &str = "schema_version";
const META_PASSWORD_KEY: &str = "password_key";
const META_NEXT_USER: &str = "next_user_id";
const META_NEXT_INVITE: &str = "next_invite_id";
const META_NEXT_MAIL: &str = "next_mail_id";
const META_NEXT_LOGIN: &str = "next_login_seq";
const META_NEXT_AUDIT: &str = "next_audit_seq";

/// Why the database could not be opened, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the database {0} is in use by another gatehouse process, most likely the running \
         server. Stop the server (for example `systemctl stop gatehouse`), run this command, \
         then start the server again"
    )]
    InUse(PathBuf),
    #[error(
        "the database {path} has schema version {found}, newer than this gatehouse knows \
         ({SCHEMA_VERSION}). Run the newer gatehouse that wrote it, or restore a backup"
    )]
    NewerSchema { path: PathBuf, found: u32 },
    #[error(
        "{0} is not a gatehouse database (it has no schema version). \
         Point --data-dir at gatehouse's own data directory"
    )]
    NotOurs(PathBuf),
    #[error(
        "the database {path} could not be read ({cause}). If the file is damaged, restore a \
         backup; if it is not gatehouse's, point --data-dir elsewhere"
    )]
    Unreadable { path: PathBuf, cause: String },
    #[error(
        "the data directory {path} cannot be used: {cause}. Create it with `mkdir -p`, \
         make it writable by this user, or choose another --data-dir"
    )]
    DataDir { path: PathBuf, cause: String },
}

pub struct RedbStore {
    db: Database,
    password_key: [u8; 32],
    /// Sessions with their users as last read (`session_with_user`, the
    /// check every protected request makes), kept until the next write.
    sessions_read: ReadCache,
}

/// Decoded records valid while no write transaction has committed since
/// they were read: every commit bumps `generation`, and an entry of an
/// older generation is read again. The generation is loaded before the
/// read transaction begins and bumped after each commit, so an entry is
/// never older than its generation says.
#[derive(Default)]
pub(super) struct ReadCache {
    generation: std::sync::atomic::AtomicU64,
    entries: std::sync::Mutex<
        std::collections::HashMap<
            [u8; 32],
            (u64, crate::domain::session::Session, crate::domain::User),
        >,
    >,
}

/// Beyond this many entries the cache starts again empty.
const READ_CACHE_MAX: usize = 10_000;

impl ReadCache {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// After every commit.
    pub(super) fn invalidate(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(super) fn get(
        &self,
        key: &[u8; 32],
    ) -> Option<(crate::domain::session::Session, crate::domain::User)> {
        let now = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(g, _, _)| *g == now)
            .map(|(_, s, u)| (s.clone(), u.clone()))
    }

    pub(super) fn put(
        &self,
        key: [u8; 32],
        generation: u64,
        session: &crate::domain::session::Session,
        user: &crate::domain::User,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= READ_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key, (generation, session.clone(), user.clone()));
    }
}

impl RedbStore {
    /// Opens (creating when missing) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        let dir_err = |cause: String| OpenError::DataDir {
            path: data_dir.to_path_buf(),
            cause,
        };
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(dir_err("it is a file, not a directory".into()));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| dir_err(e.to_string()))?;
        restrict_to_owner(data_dir);
        let path = data_dir.join(DATABASE_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse(path)),
            // A file that is there but is not redb (its magic number is
            // wrong): not a directory problem.
            Err(DatabaseError::Storage(redb::StorageError::Io(e)))
                if e.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Err(OpenError::NotOurs(path));
            }
            Err(DatabaseError::Storage(redb::StorageError::Io(e))) => {
                return Err(dir_err(e.to_string()));
            }
            Err(e) => {
                return Err(OpenError::Unreadable {
                    path,
                    cause: e.to_string(),
                });
            }
        };
        // The file holds password hashes, the pre-hash key and live
        // links: its owner only, whatever the umask.
        owner_only_file(&path);
        let unreadable = |e: anyhow::Error| OpenError::Unreadable {
            path: path.clone(),
            cause: format!("{e:#}"),
        };
        let password_key =
            init_schema(&db, &path).map_err(|e| match e.downcast::<OpenError>() {
                Ok(open) => open,
                Err(other) => unreadable(other),
            })?;
        Ok(Self {
            db,
            password_key,
            sessions_read: ReadCache::default(),
        })
    }

    /// Runs `f` in a durable two-phase-commit write transaction and
    /// commits it, off the async threads (`blocking`); an error from `f`
    /// aborts the transaction.
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> anyhow::Result<T>) -> StoreResult<T> {
        self.write_with(Durability::Immediate, f)
    }

    /// `write` with a chosen durability (`None`: no fsync, for last-seen
    /// times).
    fn write_with<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> anyhow::Result<T>,
    ) -> StoreResult<T> {
        blocking(|| {
            let mut txn = self
                .db
                .begin_write()
                .context("failed to begin a write transaction")?;
            if matches!(durability, Durability::Immediate) {
                txn.set_two_phase_commit(true);
            } else {
                txn.set_durability(durability)
                    .context("failed to set the durability of a write transaction")?;
            }
            let value = f(&txn)?;
            txn.commit()
                .context("failed to commit a write transaction")?;
            self.sessions_read.invalidate();
            Ok(value)
        })
        .map_err(StoreError::Other)
    }

    /// A read transaction: reads take microseconds and never wait for a
    /// writer (MVCC), so they run inline on the caller's thread.
    fn read(&self) -> StoreResult<redb::ReadTransaction> {
        Ok(self
            .db
            .begin_read()
            .context("failed to begin a read transaction")?)
    }
}

/// Runs `f`, which blocks (a commit's fsync takes milliseconds), without
/// stalling the other tasks of a multi-threaded runtime: tokio hands this
/// thread's tasks to another worker meanwhile (`block_in_place`). On a
/// current-thread runtime (the CLI, unit tests) or outside one, `f` simply
/// runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// redb's errors, as the rest of the program sees them: a failing disk
/// is `Unavailable`, anything else `Other`.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                let e: redb::Error = e.into();
                match e {
                    redb::Error::Io(io) => StoreError::Unavailable(anyhow::Error::new(io)),
                    other => StoreError::Other(anyhow::Error::new(other)),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

impl Store for RedbStore {
    fn password_key(&self) -> [u8; 32] {
        self.password_key
    }
}

#[async_trait]
impl Backup for RedbStore {
    async fn backup(&self, to: &Path) -> StoreResult<BackupStats> {
        Ok(blocking(|| backup::copy(&self.db, to))?)
    }
}

/// Checks the schema version, creating the tables on a new database.
fn init_schema(db: &Database, path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut txn = db.begin_write()?;
    txn.set_two_phase_commit(true);
    let is_new =
        txn.list_tables()?.next().is_none() && txn.list_multimap_tables()?.next().is_none();
    let key = {
        let mut meta = txn.open_table(META)?;
        let version = meta.get(META_SCHEMA)?.map(|v| decode_u32(v.value()));
        match version {
            None if !is_new => return Err(OpenError::NotOurs(path.to_path_buf()).into()),
            None => {
                meta.insert(META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
                meta.insert(META_NEXT_USER, 1u64.to_le_bytes().as_slice())?;
                meta.insert(
                    META_PASSWORD_KEY,
                    crate::crypto::random_bytes::<32>().as_slice(),
                )?;
            }
            Some(Some(v)) if v == SCHEMA_VERSION => {}
            Some(Some(v)) if v > SCHEMA_VERSION => {
                return Err(OpenError::NewerSchema {
                    path: path.to_path_buf(),
                    found: v,
                }
                .into());
            }
            Some(_) => return Err(OpenError::NotOurs(path.to_path_buf()).into()),
        }
        let key = meta.get(META_PASSWORD_KEY)?.map(|v| v.value().to_vec());
        key.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| OpenError::NotOurs(path.to_path_buf()))?
    };
    // Open (and so create) every table, so that readers never meet a
    // missing one.
    txn.open_table(USERS)?;
    txn.open_table(USERS_BY_EMAIL)?;
    txn.open_table(USERS_BY_NAME)?;
    txn.open_table(SESSIONS)?;
    txn.open_multimap_table(SESSIONS_BY_USER)?;
    txn.open_table(LOCKOUTS)?;
    txn.open_table(INVITES)?;
    txn.open_table(INVITES_BY_HASH)?;
    txn.open_table(OUTBOX)?;
    txn.open_table(LOGINS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(AUDIT_BY_USER)?;
    txn.open_table(TOKENS)?;
    txn.open_table(TOKENS_BY_USER)?;
    // Tables added since schema 1 are created here too, on old files.
    txn.open_table(GROUPS)?;
    txn.open_multimap_table(GROUP_MEMBERS)?;
    oidc::create_tables(&txn)?;
    second_factors::create_tables(&txn)?;
    txn.commit()?;
    Ok(key)
}

/// Takes the next number of a counter kept in `meta` (ids start at 1).
fn next_id(txn: &WriteTransaction, counter: &str) -> anyhow::Result<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta
        .get(counter)?
        .and_then(|v| decode_u64(v.value()))
        .unwrap_or(1);
    meta.insert(counter, (id + 1).to_le_bytes().as_slice())?;
    Ok(id)
}

/// Adds a login try to the user's history, dropping the oldest beyond
/// `LOGIN_HISTORY`.
fn record_attempt(
    txn: &WriteTransaction,
    user: crate::domain::UserId,
    attempt: &crate::domain::LoginAttempt,
) -> anyhow::Result<()> {
    let seq = next_id(txn, META_NEXT_LOGIN)?;
    let mut table = txn.open_table(LOGINS)?;
    table.insert((user.0, seq), encode(attempt).as_slice())?;
    let keys: Vec<(u64, u64)> = table
        .range((user.0, 0)..=(user.0, u64::MAX))?
        .map(|row| row.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for key in keys.iter().take(crate::domain::history_excess(keys.len())) {
        table.remove(*key)?;
    }
    Ok(())
}

fn decode_u32(bytes: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_le_bytes)
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_le_bytes)
}

use crate::store::record::{decode, encode};

/// The data directory holds password hashes: only its owner may enter it.
#[cfg(unix)]
fn restrict_to_owner(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not make the data directory owner-only");
    }
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) {}

/// Mode 0600 for a file with secrets (the database, a backup).
#[cfg(unix)]
pub(super) fn owner_only_file(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(file = %file.display(), error = %e, "could not make a file owner-only");
    }
}

#[cfg(not(unix))]
pub(super) fn owner_only_file(_file: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_temp() -> (tempfile::TempDir, Box<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        (dir, Box::new(store))
    }

    #[test]
    fn the_database_and_its_backups_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(DATABASE_FILE)), 0o600);
        let to = dir.path().join("copy.redb");
        backup::copy(&store.db, &to).unwrap();
        assert_eq!(mode(&to), 0o600);
    }

    mod contract {
        crate::contract_suite!(super::open_temp);
    }

    #[tokio::test]
    async fn a_backup_holds_every_table() {
        use crate::store::transfer::Transfer;
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("a")).unwrap();
        crate::store::contract::fill_every_table(&store).await;
        let copy = dir.path().join("b");
        std::fs::create_dir_all(&copy).unwrap();
        backup::copy(&store.db, &copy.join(DATABASE_FILE)).unwrap();
        let restored = RedbStore::open(&copy).unwrap();
        let (a, b) = (
            store.export().await.unwrap(),
            restored.export().await.unwrap(),
        );
        assert_eq!(a.summary(), b.summary());
        for t in a.summary() {
            assert!(t.rows > 0, "the example fills {}", t.table);
        }
    }

    #[test]
    fn a_new_database_gets_the_current_schema_and_keeps_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = RedbStore::open(dir.path()).unwrap().password_key();
        let again = RedbStore::open(dir.path()).unwrap().password_key();
        assert_eq!(key, again);
    }

    #[test]
    fn a_newer_schema_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::open(dir.path()).unwrap();
            store
                .write(|txn| {
                    let mut meta = txn.open_table(META)?;
                    meta.insert(META_SCHEMA, 99u32.to_le_bytes().as_slice())?;
                    Ok(())
                })
                .unwrap();
        }
        let err = RedbStore::open(dir.path()).err().unwrap();
        assert!(
            matches!(err, OpenError::NewerSchema { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_second_opener_is_told_the_database_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _held = RedbStore::open(dir.path()).unwrap();
        let err = RedbStore::open(dir.path()).err().unwrap();
        assert!(matches!(err, OpenError::InUse(_)), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATABASE_FILE), b"hello, not redb").unwrap();
        let err = RedbStore::open(dir.path()).err().unwrap();
        assert!(matches!(err, OpenError::NotOurs(_)), "{err}");
    }
}
