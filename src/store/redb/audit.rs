//! The audit log: events by sequence number, indexed by the account they
//! concern.

use super::{AUDIT, AUDIT_BY_USER, META_NEXT_AUDIT, RedbStore, decode, encode, next_id};
use crate::clock::Timestamp;
use crate::domain::AuditEvent;
use crate::domain::UserId;
use crate::store::AuditStore;
use crate::store::StoreResult;
use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

/// Records one event inside a caller's transaction.
pub(super) fn record(txn: &WriteTransaction, event: &AuditEvent) -> anyhow::Result<()> {
    let seq = next_id(txn, META_NEXT_AUDIT)?;
    txn.open_table(AUDIT)?
        .insert(seq, encode(event).as_slice())?;
    if let Some(user) = event.user {
        txn.open_table(AUDIT_BY_USER)?.insert((user.0, seq), ())?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for RedbStore {
    async fn audit(&self, events: Vec<AuditEvent>) -> StoreResult<()> {
        self.write(|txn| events.iter().try_for_each(|e| record(txn, e)))
    }

    async fn audit_events(
        &self,
        since: Option<Timestamp>,
        user: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEvent>> {
        let txn = self.read()?;
        let events = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        let keep = |e: &AuditEvent| since.is_none_or(|t| e.at >= t);
        match user {
            Some(user) => {
                let index = txn.open_table(AUDIT_BY_USER)?;
                for row in index.range((user.0, 0)..=(user.0, u64::MAX))?.rev() {
                    let ((_, seq), _) = (row?.0.value(), ());
                    if let Some(v) = events.get(seq)? {
                        let e: AuditEvent = decode(v.value(), "audit event")?;
                        if !keep(&e) {
                            break;
                        }
                        out.push(e);
                    }
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            None => {
                for row in events.iter()?.rev() {
                    let (_, v) = row?;
                    let e: AuditEvent = decode(v.value(), "audit event")?;
                    if !keep(&e) || out.len() >= limit {
                        break;
                    }
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    async fn purge_audit(&self, before: Timestamp, keep_at_most: usize) -> StoreResult<usize> {
        self.write(|txn| {
            let mut events = txn.open_table(AUDIT)?;
            let mut index = txn.open_table(AUDIT_BY_USER)?;
            let total = usize::try_from(events.len()?).unwrap_or(usize::MAX);
            let mut old = Vec::new();
            for row in events.iter()? {
                let (k, v) = row?;
                let e: AuditEvent = decode(v.value(), "audit event")?;
                // Sequence order is time order: stop at the first young
                // one that fits under the cap.
                if e.at >= before && total - old.len() <= keep_at_most {
                    break;
                }
                old.push((k.value(), e.user));
            }
            for (seq, user) in &old {
                events.remove(*seq)?;
                if let Some(u) = user {
                    index.remove((u.0, *seq))?;
                }
            }
            Ok(old.len())
        })
    }
}
