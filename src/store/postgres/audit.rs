//! The audit log: events by sequence number, with their time and account
//! as columns.

use super::{PgStore, id_i64, ms, next_val, transaction};
use crate::clock::Timestamp;
use crate::domain::{AuditEvent, UserId};
use crate::store::record::{decode, encode_text};
use crate::store::{AuditStore, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;

/// Records one event inside a caller's transaction.
pub(super) async fn record(t: &Transaction<'_>, event: &AuditEvent) -> anyhow::Result<()> {
    let seq = next_val(t, "gatehouse_audit_seq").await?;
    t.execute(
        &t.prepare_cached("INSERT INTO audit (seq, at, user_id, record) VALUES ($1, $2, $3, $4)")
            .await?,
        &[
            &id_i64(seq),
            &ms(event.at),
            &event.user.map(|u| id_i64(u.0)),
            &encode_text(event),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl AuditStore for PgStore {
    async fn audit(&self, events: Vec<AuditEvent>) -> StoreResult<()> {
        transaction!(self, |t| {
            for e in &events {
                record(&t, e).await?;
            }
            anyhow::Ok(())
        })
    }

    async fn audit_events(
        &self,
        since: Option<Timestamp>,
        user: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEvent>> {
        let since = since.map_or(i64::MIN, ms);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match user {
            Some(u) => {
                self.query(
                    "SELECT record FROM audit WHERE user_id = $1 AND at >= $2 \
                     ORDER BY seq DESC LIMIT $3",
                    &[&id_i64(u.0), &since, &limit],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT record FROM audit WHERE at >= $1 ORDER BY seq DESC LIMIT $2",
                    &[&since, &limit],
                )
                .await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "audit event"))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn purge_audit(&self, before: Timestamp, keep_at_most: usize) -> StoreResult<usize> {
        let keep = i64::try_from(keep_at_most).unwrap_or(i64::MAX);
        transaction!(self, |t| {
            let old = t
                .execute(
                    &t.prepare_cached("DELETE FROM audit WHERE at < $1").await?,
                    &[&ms(before)],
                )
                .await?;
            // Beyond the cap, the oldest by sequence.
            let over = t
                .execute(
                    &t.prepare_cached(
                        "DELETE FROM audit WHERE seq < (SELECT min(seq) FROM \
                         (SELECT seq FROM audit ORDER BY seq DESC LIMIT $1) AS newest)",
                    )
                    .await?,
                    &[&keep],
                )
                .await?;
            anyhow::Ok(usize::try_from(old + over).unwrap_or(usize::MAX))
        })
    }
}
