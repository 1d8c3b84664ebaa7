//! Lockout counters, keyed by normalised login ID.

use super::{LOCKOUTS, RedbStore, decode, encode, record_attempt};
use crate::auth::lockout::LockoutState;
use crate::domain::UserId;
use crate::store::LockoutStore;
use crate::store::{AuditEvent, LoginAttempt};
use redb::ReadableTable;

impl LockoutStore for RedbStore {
    fn lockout(&self, key: &str) -> anyhow::Result<LockoutState> {
        let txn = self.read()?;
        let table = txn.open_table(LOCKOUTS)?;
        let found = table.get(key)?;
        Ok(found
            .map(|v| decode(v.value(), "lockout"))
            .transpose()?
            .unwrap_or_default())
    }

    fn update_lockout(
        &self,
        key: &str,
        f: &mut dyn FnMut(LockoutState) -> (LockoutState, Vec<AuditEvent>),
        attempt: Option<(UserId, LoginAttempt)>,
    ) -> anyhow::Result<LockoutState> {
        self.write(|txn| {
            if let Some((user, attempt)) = &attempt {
                record_attempt(txn, *user, attempt)?;
            }
            let mut table = txn.open_table(LOCKOUTS)?;
            let current = table
                .get(key)?
                .map(|v| decode(v.value(), "lockout"))
                .transpose()?;
            let (next, events) = f(current.unwrap_or_default());
            for event in &events {
                super::audit::record(txn, event)?;
            }
            if next == LockoutState::default() {
                table.remove(key)?;
            } else {
                table.insert(key, encode(&next).as_slice())?;
            }
            Ok(next)
        })
    }

    fn clear_lockouts(&self, keys: &[String]) -> anyhow::Result<usize> {
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

    fn purge_lockouts(&self, idle: &dyn Fn(&LockoutState) -> bool) -> anyhow::Result<usize> {
        self.write(|txn| {
            let mut table = txn.open_table(LOCKOUTS)?;
            let mut n = 0;
            table.retain(|_, v| match serde_json::from_slice::<LockoutState>(v) {
                Ok(state) if idle(&state) => {
                    n += 1;
                    false
                }
                _ => true,
            })?;
            Ok(n)
        })
    }
}
