//! An account's second factors: one record per account, changed only by
//! `SecondFactors::apply` inside a write transaction.

use super::{RedbStore, USERS, decode, encode};
use crate::domain::UserId;
use crate::domain::second_factor::{FactorChange, FactorOutcome, SecondFactors};
use crate::store::{SecondFactorStore, StoreResult};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

pub(super) const SECOND_FACTORS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("second_factors");

pub(super) fn create_tables(txn: &WriteTransaction) -> anyhow::Result<()> {
    txn.open_table(SECOND_FACTORS)?;
    Ok(())
}

/// Inside a deletion of the account.
pub(super) fn remove_user_factors(txn: &WriteTransaction, user: UserId) -> anyhow::Result<()> {
    txn.open_table(SECOND_FACTORS)?.remove(user.0)?;
    Ok(())
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
}
