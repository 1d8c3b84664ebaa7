//! OpenID Connect records in SQL: the JSON record beside the columns that
//! queries need (user, client, family, expiry). A user's or client's
//! grants and tokens are deleted with it by the database (ON DELETE
//! CASCADE); a code or refresh token is spent under a row lock, so two
//! replicas never both honour one.

use super::{PgStore, id_i64, ms, transaction};
use crate::clock::Timestamp;
use crate::domain::UserId;
use crate::domain::oidc::{OidcClient, OidcGrant, OidcToken, SigningKey, TokenKind};
use crate::store::record::{decode, encode_text};
use crate::store::{OidcStore, Spend, StoreResult};
use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::Transaction;

fn kind_str(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Code => "code",
        TokenKind::Access => "access",
        TokenKind::Refresh => "refresh",
    }
}

fn family_i64(family: u64) -> i64 {
    id_i64(family)
}

pub(super) async fn insert_token(
    t: &Transaction<'_>,
    hash: &[u8; 32],
    token: &OidcToken,
) -> anyhow::Result<()> {
    t.execute(
        &t.prepare_cached(
            "INSERT INTO oidc_tokens (hash, kind, user_id, client_id, family, expires_at, record) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?,
        &[
            &&hash[..],
            &kind_str(token.kind),
            &id_i64(token.user.0),
            &token.client,
            &family_i64(token.family),
            &ms(token.expires_at),
            &encode_text(token),
        ],
    )
    .await?;
    Ok(())
}

/// Every code and token of `user`, in the caller's transaction (a reset,
/// a new password, "log out everywhere" end them with the sessions).
pub(super) async fn delete_user_tokens(t: &Transaction<'_>, user: UserId) -> anyhow::Result<u64> {
    Ok(t.execute(
        &t.prepare_cached("DELETE FROM oidc_tokens WHERE user_id = $1")
            .await?,
        &[&id_i64(user.0)],
    )
    .await?)
}

async fn delete_family(t: &Transaction<'_>, family: u64) -> anyhow::Result<usize> {
    let n = t
        .execute(
            &t.prepare_cached("DELETE FROM oidc_tokens WHERE family = $1")
                .await?,
            &[&family_i64(family)],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn token_of_row(row: &tokio_postgres::Row) -> anyhow::Result<OidcToken> {
    decode(row.get::<_, &str>(0).as_bytes(), "OpenID token")
}

#[async_trait]
impl OidcStore for PgStore {
    async fn create_client(&self, client: OidcClient) -> StoreResult<bool> {
        let n = self
            .execute(
                "INSERT INTO oidc_clients (id, name_key, record) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[
                    &client.id,
                    &OidcClient::name_key(&client.name),
                    &encode_text(&client),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>> {
        let row = self
            .query_opt("SELECT record FROM oidc_clients WHERE id = $1", &[&id])
            .await?;
        Ok(row
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "OpenID client"))
            .transpose()?)
    }

    async fn clients(&self) -> StoreResult<Vec<OidcClient>> {
        let rows = self
            .query("SELECT record FROM oidc_clients ORDER BY name_key", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "OpenID client"))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn update_client(&self, client: OidcClient) -> StoreResult<bool> {
        let n = self
            .execute(
                "UPDATE oidc_clients SET record = $2, name_key = $3 WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM oidc_clients o WHERE o.name_key = $3 AND o.id <> $1)",
                &[
                    &client.id,
                    &encode_text(&client),
                    &OidcClient::name_key(&client.name),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let n = self
            .execute("DELETE FROM oidc_clients WHERE id = $1", &[&id])
            .await?;
        Ok(n == 1)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows = self.query("SELECT record FROM oidc_keys", &[]).await?;
        Ok(rows
            .iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "signing key"))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn add_signing_key(&self, key: SigningKey, only_if_none: bool) -> StoreResult<bool> {
        transaction!(self, |t| {
            if only_if_none {
                // Replicas starting together take turns on one row (portable
                // SQL: no table lock); each then sees what the other stored.
                t.query_one(
                    &t.prepare_cached(
                        "SELECT value FROM gatehouse_meta WHERE name = 'password_key' FOR UPDATE",
                    )
                    .await?,
                    &[],
                )
                .await?;
                let existing = t
                    .query_opt(
                        &t.prepare_cached("SELECT 1 FROM oidc_keys LIMIT 1").await?,
                        &[],
                    )
                    .await?;
                if existing.is_some() {
                    return Ok(false);
                }
            }
            t.execute(
                &t.prepare_cached("INSERT INTO oidc_keys (kid, record) VALUES ($1, $2)")
                    .await?,
                &[&key.kid, &encode_text(&key)],
            )
            .await?;
            anyhow::Ok(true)
        })
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<usize> {
        let n = self
            .execute("DELETE FROM oidc_keys WHERE kid = ANY($1)", &[&kids])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn grant(&self, user: UserId, client: &str) -> StoreResult<Option<OidcGrant>> {
        let row = self
            .query_opt(
                "SELECT record FROM oidc_grants WHERE user_id = $1 AND client_id = $2",
                &[&id_i64(user.0), &client],
            )
            .await?;
        Ok(row
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "grant"))
            .transpose()?)
    }

    async fn set_grant(&self, grant: OidcGrant) -> StoreResult<()> {
        self.execute(
            "INSERT INTO oidc_grants (user_id, client_id, record) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET record = EXCLUDED.record",
            &[&id_i64(grant.user.0), &grant.client, &encode_text(&grant)],
        )
        .await?;
        Ok(())
    }

    async fn grants_of(&self, user: UserId) -> StoreResult<Vec<OidcGrant>> {
        let rows = self
            .query(
                "SELECT record FROM oidc_grants WHERE user_id = $1 ORDER BY client_id",
                &[&id_i64(user.0)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| decode(r.get::<_, &str>(0).as_bytes(), "grant"))
            .collect::<anyhow::Result<_>>()?)
    }

    async fn revoke_grant(&self, user: UserId, client: &str) -> StoreResult<bool> {
        transaction!(self, |t| {
            let grants = t
                .execute(
                    &t.prepare_cached(
                        "DELETE FROM oidc_grants WHERE user_id = $1 AND client_id = $2",
                    )
                    .await?,
                    &[&id_i64(user.0), &client],
                )
                .await?;
            let tokens = t
                .execute(
                    &t.prepare_cached(
                        "DELETE FROM oidc_tokens WHERE user_id = $1 AND client_id = $2",
                    )
                    .await?,
                    &[&id_i64(user.0), &client],
                )
                .await?;
            anyhow::Ok(grants + tokens > 0)
        })
    }

    async fn put_tokens(&self, tokens: Vec<([u8; 32], OidcToken)>) -> StoreResult<()> {
        transaction!(self, |t| {
            for (h, token) in &tokens {
                insert_token(&t, h, token).await?;
            }
            anyhow::Ok(())
        })
    }

    async fn token_of(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
    ) -> StoreResult<Option<OidcToken>> {
        let row = self
            .query_opt(
                "SELECT record FROM oidc_tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3",
                &[&&hash[..], &kind_str(kind), &ms(now)],
            )
            .await?;
        Ok(row.map(|r| token_of_row(&r)).transpose()?)
    }

    async fn access_of(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<(OidcToken, crate::domain::User, OidcClient)>> {
        let row = self
            .query_opt(
                "SELECT t.record, u.record, c.record FROM oidc_tokens t \
                 JOIN users u ON u.id = t.user_id JOIN oidc_clients c ON c.id = t.client_id \
                 WHERE t.hash = $1 AND t.kind = $2 AND t.expires_at > $3",
                &[&&hash[..], &kind_str(TokenKind::Access), &ms(now)],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let token = token_of_row(&row)?;
        let user = super::users::user_of(row.get(1))?;
        let client: OidcClient = decode(row.get::<_, &str>(2).as_bytes(), "OpenID client")?;
        Ok(Some((token, user, client)))
    }

    async fn spend_token(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
        issue: Vec<([u8; 32], OidcToken)>,
    ) -> StoreResult<Spend> {
        transaction!(self, |t| {
            let row = t
                .query_opt(
                    &t.prepare_cached(
                        "SELECT record FROM oidc_tokens \
                         WHERE hash = $1 AND kind = $2 AND expires_at > $3 FOR UPDATE",
                    )
                    .await?,
                    &[&&hash[..], &kind_str(kind), &ms(now)],
                )
                .await?;
            let Some(row) = row else {
                return Ok(Spend::Unknown);
            };
            let mut token = token_of_row(&row)?;
            // (No early return after a write: it would skip the commit.)
            if token.spent_at.is_some() {
                let ended = delete_family(&t, token.family).await?;
                anyhow::Ok(Spend::Reused(ended))
            } else {
                token.spent_at = Some(now);
                t.execute(
                    &t.prepare_cached("UPDATE oidc_tokens SET record = $2 WHERE hash = $1")
                        .await?,
                    &[&&hash[..], &encode_text(&token)],
                )
                .await?;
                for (h, new) in &issue {
                    insert_token(&t, h, new).await?;
                }
                anyhow::Ok(Spend::Spent(token))
            }
        })
    }

    async fn revoke_token(&self, hash: &[u8; 32], client: &str) -> StoreResult<usize> {
        transaction!(self, |t| {
            let row = t
                .query_opt(
                    &t.prepare_cached(
                        "SELECT record FROM oidc_tokens WHERE hash = $1 AND client_id = $2 FOR UPDATE",
                    )
                    .await?,
                    &[&&hash[..], &client],
                )
                .await?;
            let Some(row) = row else {
                return Ok(0);
            };
            let token = token_of_row(&row)?;
            // (No early return after a write: it would skip the commit.)
            if token.kind == TokenKind::Refresh {
                delete_family(&t, token.family).await
            } else {
                let n = t
                    .execute(
                        &t.prepare_cached("DELETE FROM oidc_tokens WHERE hash = $1")
                            .await?,
                        &[&&hash[..]],
                    )
                    .await?;
                anyhow::Ok(usize::try_from(n).context("count")?)
            }
        })
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<usize> {
        let n = self
            .execute(
                "DELETE FROM oidc_tokens WHERE user_id = $1",
                &[&id_i64(user.0)],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn purge_tokens_oidc(&self, now: Timestamp) -> StoreResult<usize> {
        let n = self
            .execute(
                "DELETE FROM oidc_tokens WHERE expires_at <= $1",
                &[&ms(now)],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
