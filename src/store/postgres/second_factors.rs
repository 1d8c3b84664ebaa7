//! An account's second factors in SQL: one row per account, changed only
//! by `SecondFactors::apply` under the account's row lock.

use super::{PgStore, id_i64, ms, transaction};
use crate::clock::Timestamp;
use crate::domain::UserId;
use crate::domain::pending::Pending;
use crate::domain::second_factor::{FactorChange, FactorOutcome, SecondFactors};
use crate::domain::session::SessionKey;
use crate::store::record::{decode, encode_text};
use crate::store::{SecondFactorStore, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl SecondFactorStore for PgStore {
    async fn second_factors(&self, user: UserId) -> StoreResult<SecondFactors> {
        let row = self
            .query_opt(
                "SELECT record FROM second_factors WHERE user_id = $1",
                &[&id_i64(user.0)],
            )
            .await?;
        Ok(row
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "second factors"))
            .transpose()?
            .unwrap_or_default())
    }

    async fn change_second_factors(
        &self,
        user: UserId,
        change: FactorChange,
    ) -> StoreResult<Option<FactorOutcome>> {
        transaction!(self, |t| {
            let id = id_i64(user.0);
            // The account's row lock orders every change of its factors.
            let exists = t
                .query_opt(
                    &t.prepare_cached("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                        .await?,
                    &[&id],
                )
                .await?
                .is_some();
            let mut outcome = None;
            if exists {
                let row = t
                    .query_opt(
                        &t.prepare_cached("SELECT record FROM second_factors WHERE user_id = $1")
                            .await?,
                        &[&id],
                    )
                    .await?;
                let mut factors: SecondFactors = row
                    .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "second factors"))
                    .transpose()?
                    .unwrap_or_default();
                outcome = Some(factors.apply(change.clone()));
                if factors == SecondFactors::default() {
                    t.execute("DELETE FROM second_factors WHERE user_id = $1", &[&id])
                        .await?;
                } else {
                    t.execute(
                        "INSERT INTO second_factors (user_id, record) VALUES ($1, $2) \
                         ON CONFLICT (user_id) DO UPDATE SET record = EXCLUDED.record",
                        &[&id, &encode_text(&factors)],
                    )
                    .await?;
                }
            }
            anyhow::Ok(outcome)
        })
    }

    async fn put_pending(&self, key: &SessionKey, pending: &Pending) -> StoreResult<()> {
        // An account deleted meanwhile: nothing to keep (the foreign key
        // would refuse the row), and its next step finds nothing.
        self.execute(
            "INSERT INTO pending_logins (key, user_id, expires_at, record) \
             SELECT $1, $2, $3, $4 \
             WHERE $2::BIGINT IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $2) \
             ON CONFLICT (key) DO UPDATE SET user_id = EXCLUDED.user_id, \
             expires_at = EXCLUDED.expires_at, record = EXCLUDED.record",
            &[
                &key.0.as_slice(),
                &pending.user().map(|u| id_i64(u.0)),
                &ms(pending.expires_at()),
                &encode_text(pending),
            ],
        )
        .await?;
        Ok(())
    }

    async fn pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>> {
        let row = self
            .query_opt(
                "SELECT record FROM pending_logins WHERE key = $1",
                &[&key.0.as_slice()],
            )
            .await?;
        Ok(row
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "half-login"))
            .transpose()?)
    }

    async fn take_pending(&self, key: &SessionKey) -> StoreResult<Option<Pending>> {
        let row = self
            .query_opt(
                "DELETE FROM pending_logins WHERE key = $1 RETURNING record",
                &[&key.0.as_slice()],
            )
            .await?;
        Ok(row
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "half-login"))
            .transpose()?)
    }

    async fn purge_pending(&self, now: Timestamp) -> StoreResult<usize> {
        let n = self
            .execute(
                "DELETE FROM pending_logins WHERE expires_at <= $1",
                &[&ms(now)],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
