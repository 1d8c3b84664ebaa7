//! The session cache: checking a session never writes to the database
//! (issue 2 §6). The last-seen time goes into an in-memory map that a
//! background task writes in one batch (`SessionCache::flush`). The
//! session records and their expiry rule are in `domain::session`.

use crate::clock::Timestamp;
use crate::domain::session::{Session, SessionKey};
use crate::store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::Mutex;

/// Last-seen times not yet written to the store.
#[derive(Default)]
pub struct SessionCache {
    pending: Mutex<HashMap<SessionKey, Timestamp>>,
}

impl SessionCache {
    /// The latest known last-seen time of a stored session.
    pub fn last_seen(&self, key: &SessionKey, stored: &Session) -> Timestamp {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .get(key)
            .copied()
            .map_or(stored.last_seen, |t| t.max(stored.last_seen))
    }

    pub fn touch(&self, key: SessionKey, now: Timestamp) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, now);
    }

    pub fn forget(&self, key: &SessionKey) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Writes every pending last-seen time in one transaction. On failure
    /// the times are put back for the next try.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let batch: Vec<_> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.touch_sessions(&batch).await {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (k, t) in batch {
                let entry = pending.entry(k).or_insert(t);
                *entry = (*entry).max(t);
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}
