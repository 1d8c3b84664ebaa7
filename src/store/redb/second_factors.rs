//! An account's second factors: one record per account, changed only by
//! `SecondFactors::apply` inside a write transaction.

use super::{RedbStore, USERS, decode, encode};
use crate::clock::Timestamp;
use crate::domain::UserId;
use crate::domain::pending::Pending;
use crate::domain::second_factor::{FactorChange, FactorOutcome, SecondFactors};
use crate::domain::session::SessionKey;
use crate::store::{SecondFactorStore, StoreResult};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

pub(super) const SECOND_FACTORS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("second_factors");
/// Half-logins by the SHA-256 of their cookie.
pub(super) const PENDING_LOGINS: TableDefinition<[u8; 32], &[u8]> =
    TableDefinition::new("pending_logins");

pub(super) fn create_tables(txn: &WriteTransaction) -> anyhow::Result<()> {
    txn.open_table(SECOND_FACTORS)?;
    txn.open_table(PENDING_LOGINS)?;
    Ok(())
}

/// Inside a deletion of the account.
pub(super) fn remove_user_factors(txn: &WriteTransaction, user: UserId) -> anyhow::Result<()> {
    txn.open_table(SECOND_FACTORS)?.remove(user.0)?;
    let mut pending = txn.open_table(PENDING_LOGINS)?;
    let theirs = keys_where(&pending, |p| p.user() == Some(user))?;
    for key in theirs {
        pending.remove(key)?;
    }
    Ok(())
}

/// The half-logins that `keep` picks (a full scan: the table holds only
/// the last few minutes' logins).
fn keys_where(
    table: &impl ReadableTable<[u8; 32], &'static [u8]>,
    keep: impl Fn(&Pending) -> bool,
) -> anyhow::Result<Vec<[u8; 32]>> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let p: Pending = decode(v.value(), "half-login")?;
        if keep(&p) {
            out.push(k.value());
        }
    }
    Ok(out)
}

#[async_trait]
impl SecondFactorStore for RedbStore {
    async fn second_factors(&self, user: UserId) -> StoreResult<SecondFactors> {
        let txn = self.read()?;
        let found = txn.open_table(SECOND_FACTORS)?.get(user.0)?;
        Ok(found
            .map(|v| decode(v.value(), "second factors"))
            .transpose()?
            .unwrap_or_default())
    }

    async fn change_second_factors(
        &self,
        user: UserId,
        change: FactorChange,
    ) -> StoreResult<Option<FactorOutcome>> {
        self.write(|txn| {
            if txn.open_table(USERS)?.get(user.0)?.is_none() {
                return Ok(None);
            }
            let mut table = txn.open_table(SECOND_FACTORS)?;
            let mut factors: SecondFactors = table
                .get(user.0)?
                .map(|v| decode(v.value(), "second factors"))
                .transpose()?
                .unwrap_or_default();
            let outcome = factors.apply(change);
            if factors == SecondFactors::default() {
                table.remove(user.0)?;
            } else {
                table.insert(user.0, encode(&factors).as_slice())?;
            }
            Ok(Some(outcome))
        })
    }

    async fn put_pending(&self, key: &SessionKey, pending: &Pending) -> StoreResult<()> {
        self.write(|txn| {
            if let Some(user) = pending.user()
                && txn.open_table(USERS)?.get(user.0)?.is_none()
            {
                return Ok(());
            }
            txn.open_table(PENDING_LOGINS)?
                .insert(key.0, encode(pending).as_slice())?;
            Ok(())
        })
    }

    async fn pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>> {
        let txn = self.read()?;
        let found = txn.open_table(PENDING_LOGINS)?.get(key.0)?;
        Ok(found.map(|v| decode(v.value(), "half-login")).transpose()?)
    }

    async fn take_pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>> {
        self.write(|txn| {
            let removed = txn
                .open_table(PENDING_LOGINS)?
                .remove(key.0)?
                .map(|v| v.value().to_vec());
            removed.map(|b| decode(&b, "half-login")).transpose()
        })
    }

    async fn purge_pending(&self, now: Timestamp) -> StoreResult<usize> {
        self.write(|txn| {
            let mut table = txn.open_table(PENDING_LOGINS)?;
            let expired = keys_where(&table, |p| !p.is_live(now))?;
            for key in &expired {
                table.remove(key)?;
            }
            Ok(expired.len())
        })
    }
}
