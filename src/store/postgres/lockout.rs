//! Lockout counters by key. The rule is `domain::lockout`; a counter is
//! read under a row lock, so failures on every replica add up.

use super::{PgStore, record_attempt, transaction};
use crate::clock::Timestamp;
use crate::domain::lockout::{
    AfterFailure, FailedLogin, FailureOutcome, LockoutPolicy, LockoutState,
};
use crate::store::record::{decode, encode_text};
use crate::store::{LockoutStore, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;

fn state_of(record: &str) -> anyhow::Result<LockoutState> {
    decode(record.as_bytes(), "lockout")
}

/// Counts one failure on `key`: the row is made (at its default) if
/// missing and locked, so concurrent failures wait and all count.
async fn count(
    t: &Transaction<'_>,
    policy: LockoutPolicy,
    key: &str,
    at: Timestamp,
) -> anyhow::Result<AfterFailure> {
    t.execute(
        &t.prepare_cached(
            "INSERT INTO lockouts (key, record) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .await?,
        &[&key, &encode_text(&LockoutState::default())],
    )
    .await?;
    let row = t
        .query_one(
            &t.prepare_cached("SELECT record FROM lockouts WHERE key = $1 FOR UPDATE")
                .await?,
            &[&key],
        )
        .await?;
    let current = state_of(row.get(0))?;
    let (next, outcome) = policy.after_failure(&current, at);
    if next == LockoutState::default() {
        t.execute(
            &t.prepare_cached("DELETE FROM lockouts WHERE key = $1")
                .await?,
            &[&key],
        )
        .await?;
    } else {
        t.execute(
            &t.prepare_cached("UPDATE lockouts SET record = $2 WHERE key = $1")
                .await?,
            &[&key, &encode_text(&next)],
        )
        .await?;
    }
    Ok(outcome)
}

#[async_trait]
impl LockoutStore for PgStore {
    async fn lockout(&self, key: &str) -> StoreResult<LockoutState> {
        let row = self
            .query_opt("SELECT record FROM lockouts WHERE key = $1", &[&key])
            .await?;
        Ok(row
            .map(|r| state_of(r.get(0)))
            .transpose()?
            .unwrap_or_default())
    }

    async fn record_failure(
        &self,
        policy: LockoutPolicy,
        failure: FailedLogin,
    ) -> StoreResult<FailureOutcome> {
        transaction!(self, |t| {
            if let Some(user) = failure.user {
                record_attempt(&t, user, &failure.attempt()).await?;
            }
            let outcome = FailureOutcome {
                id: count(&t, policy, &failure.key, failure.at).await?,
                account: match failure.account_key.as_deref() {
                    Some(key) => Some(count(&t, policy, key, failure.at).await?),
                    None => None,
                },
            };
            for event in failure.audit_events(&outcome, policy.threshold) {
                super::audit::record(&t, &event).await?;
            }
            anyhow::Ok(outcome)
        })
    }

    async fn set_lockouts(&self, keys: &[String], state: LockoutState) -> StoreResult<()> {
        transaction!(self, |t| {
            let statement = t
                .prepare_cached(
                    "INSERT INTO lockouts (key, record) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record",
                )
                .await?;
            let record = encode_text(&state);
            for key in keys {
                t.execute(&statement, &[key, &record]).await?;
            }
            anyhow::Ok(())
        })
    }

    async fn clear_lockouts(&self, keys: &[String]) -> StoreResult<usize> {
        let n = self
            .execute("DELETE FROM lockouts WHERE key = ANY($1)", &[&keys])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn purge_lockouts(&self, policy: LockoutPolicy, now: Timestamp) -> StoreResult<usize> {
        transaction!(self, |t| {
            // Locked while judged: a failure counted meanwhile waits, and
            // is counted on a fresh row if this one goes.
            let rows = t
                .query(
                    &t.prepare_cached("SELECT key, record FROM lockouts FOR UPDATE")
                        .await?,
                    &[],
                )
                .await?;
            let mut idle = Vec::new();
            for row in &rows {
                if state_of(row.get(1)).is_ok_and(|s| policy.is_idle(&s, now)) {
                    idle.push(row.get::<_, String>(0));
                }
            }
            if !idle.is_empty() {
                t.execute(
                    &t.prepare_cached("DELETE FROM lockouts WHERE key = ANY($1)")
                        .await?,
                    &[&idle],
                )
                .await?;
            }
            anyhow::Ok(idle.len())
        })
    }
}
