//! Backup: every table copied from one read transaction into a new redb
//! file, written beside the target and renamed into place when complete,
//! so a half-written backup never carries the final name.

use super::oidc::{
    OIDC_CLIENTS, OIDC_GRANTS, OIDC_KEYS, OIDC_TOKENS, OIDC_TOKENS_BY_FAMILY, OIDC_TOKENS_BY_USER,
};
use super::{
    AUDIT, AUDIT_BY_USER, GROUP_MEMBERS, GROUPS, INVITES, INVITES_BY_HASH, LOCKOUTS, LOGINS, META,
    OUTBOX, SESSIONS, SESSIONS_BY_USER, TOKENS, TOKENS_BY_USER, USERS, USERS_BY_EMAIL,
    USERS_BY_NAME,
};
use crate::store::BackupStats;
use anyhow::Context;
use redb::{
    Database, Key, MultimapTableDefinition, ReadTransaction, ReadableDatabase,
    ReadableMultimapTable, ReadableTable, TableDefinition, Value, WriteTransaction,
};
use std::path::Path;

fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> anyhow::Result<u64> {
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    let mut n = 0;
    for row in source.iter()? {
        let (k, v) = row?;
        target.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

fn copy_multimap<K: Key + 'static, V: Key + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: MultimapTableDefinition<K, V>,
) -> anyhow::Result<u64> {
    let source = from.open_multimap_table(table)?;
    let mut target = to.open_multimap_table(table)?;
    let mut n = 0;
    for row in source.iter()? {
        let (k, values) = row?;
        for v in values {
            target.insert(k.value(), v?.value())?;
            n += 1;
        }
    }
    Ok(n)
}

pub(super) fn copy(db: &Database, to: &Path) -> anyhow::Result<BackupStats> {
    let partial = to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        let target = Database::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        // It holds what the database holds: owner only, before any data.
        super::owner_only_file(&partial);
        let from = db
            .begin_read()
            .context("failed to begin the backup's read transaction")?;
        let mut txn = target.begin_write()?;
        txn.set_two_phase_commit(true);
        let mut stats = BackupStats::default();
        copy_table(&from, &txn, META)?;
        stats.users = copy_table(&from, &txn, USERS)?;
        stats.other += copy_table(&from, &txn, USERS_BY_EMAIL)?;
        stats.other += copy_table(&from, &txn, USERS_BY_NAME)?;
        stats.sessions = copy_table(&from, &txn, SESSIONS)?;
        stats.other += copy_multimap(&from, &txn, SESSIONS_BY_USER)?;
        stats.other += copy_table(&from, &txn, LOCKOUTS)?;
        stats.other += copy_table(&from, &txn, INVITES)?;
        stats.other += copy_table(&from, &txn, INVITES_BY_HASH)?;
        stats.other += copy_table(&from, &txn, OUTBOX)?;
        stats.other += copy_table(&from, &txn, TOKENS)?;
        stats.other += copy_table(&from, &txn, TOKENS_BY_USER)?;
        stats.other += copy_table(&from, &txn, LOGINS)?;
        stats.other += copy_table(&from, &txn, AUDIT)?;
        stats.other += copy_table(&from, &txn, AUDIT_BY_USER)?;
        stats.other += copy_table(&from, &txn, GROUPS)?;
        stats.other += copy_multimap(&from, &txn, GROUP_MEMBERS)?;
        stats.other += copy_table(&from, &txn, OIDC_CLIENTS)?;
        stats.other += copy_table(&from, &txn, OIDC_KEYS)?;
        stats.other += copy_table(&from, &txn, OIDC_GRANTS)?;
        stats.other += copy_table(&from, &txn, super::second_factors::SECOND_FACTORS)?;
        stats.other += copy_table(&from, &txn, OIDC_TOKENS)?;
        stats.other += copy_multimap(&from, &txn, OIDC_TOKENS_BY_USER)?;
        stats.other += copy_multimap(&from, &txn, OIDC_TOKENS_BY_FAMILY)?;
        txn.commit().context("failed to commit the backup")?;
        drop(target);
        std::fs::rename(&partial, to)
            .with_context(|| format!("cannot move the backup into place at {}", to.display()))?;
        Ok(stats)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
