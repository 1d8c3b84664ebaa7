//! Lockout counters, keyed by normalised login ID. The rule itself is
//! `domain::lockout`; this file only reads and writes the counters.

use super::{LOCKOUTS, RedbStore, decode, encode, record_attempt};
use crate::clock::Timestamp;
use crate::domain::lockout::{
    AfterFailure, FailedLogin, FailureOutcome, LockoutPolicy, LockoutState,
};
use crate::store::{LockoutStore, StoreResult};
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl LockoutStore for RedbStore {
    async fn lockout(&self, key: &str) -> StoreResult<LockoutState> {
        let txn = self.read()?;
        let table = txn.open_table(LOCKOUTS)?;
        let found = table.get(key)?;
        Ok(found
            .map(|v| decode(v.value(), "lockout"))
            .transpose()?
            .unwrap_or_default())
    }

    async fn record_failure(
        &self,
        policy: LockoutPolicy,
        failure: FailedLogin,
    ) -> StoreResult<FailureOutcome> {
        self.write(|txn| {
            if let Some(user) = failure.user {
                record_attempt(txn, user, &failure.attempt())?;
            }
            let mut table = txn.open_table(LOCKOUTS)?;
            let mut count = |key: &str| -> anyhow::Result<AfterFailure> {
                let current: LockoutState = table
                    .get(key)?
                    .map(|v| decode(v.value(), "lockout"))
                    .transpose()?
                    .unwrap_or_default();
                let (next, outcome) = policy.after_failure(&current, failure.at);
                if next == LockoutState::default() {
                    table.remove(key)?;
                } else {
                    table.insert(key, encode(&next).as_slice())?;
                }
                Ok(outcome)
            };
            let outcome = FailureOutcome {
                id: count(&failure.key)?,
                account: failure.account_key.as_deref().map(&mut count).transpose()?,
            };
            drop(table);
            for event in failure.audit_events(&outcome, policy.threshold) {
                super::audit::record(txn, &event)?;
            }
            Ok(outcome)
        })
    }

    async fn set_lockouts(&self, keys: &[String], state: LockoutState) -> StoreResult<()> {
        self.write(|txn| {
            let mut table = txn.open_table(LOCKOUTS)?;
            for key in keys {
                table.insert(key.as_str(), encode(&state).as_slice())?;
            }
            Ok(())
        })
    }

    async fn clear_lockouts(&self, keys: &[String]) -> StoreResult<usize> {
        self.write(|txn| {
            let mut table = txn.open_table(LOCKOUTS)?;
            let mut removed = 0;
            for key in keys {
                if table.remove(key.as_str())?.is_some() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    async fn purge_lockouts(&self, policy: LockoutPolicy, now: Timestamp) -> StoreResult<usize> {
        self.write(|txn| {
            let mut table = txn.open_table(LOCKOUTS)?;
            let mut n = 0;
            table.retain(|_, v| match serde_json::from_slice::<LockoutState>(v) {
                Ok(state) if policy.is_idle(&state, now) => {
                    n += 1;
                    false
                }
                _ => true,
            })?;
            Ok(n)
        })
    }
}
