//! OpenID Connect records: clients, signing keys, grants, and codes and
//! tokens under their hashes, with indexes by user and by family so that
//! revoking either touches only its own rows.

use super::{RedbStore, decode, encode};
use crate::clock::Timestamp;
use crate::domain::UserId;
use crate::domain::oidc::{OidcClient, OidcGrant, OidcToken, SigningKey, TokenKind};
use crate::store::{OidcStore, Spend, StoreResult};
use async_trait::async_trait;
use redb::{
    MultimapTableDefinition, ReadableMultimapTable, ReadableTable, TableDefinition,
    WriteTransaction,
};

pub(super) const OIDC_CLIENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("oidc_clients");
pub(super) const OIDC_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("oidc_keys");
/// (user, client id) -> grant.
pub(super) const OIDC_GRANTS: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("oidc_grants");
pub(super) const OIDC_TOKENS: TableDefinition<[u8; 32], &[u8]> =
    TableDefinition::new("oidc_tokens");
pub(super) const OIDC_TOKENS_BY_USER: MultimapTableDefinition<u64, [u8; 32]> =
    MultimapTableDefinition::new("oidc_tokens_by_user");
pub(super) const OIDC_TOKENS_BY_FAMILY: MultimapTableDefinition<u64, [u8; 32]> =
    MultimapTableDefinition::new("oidc_tokens_by_family");

pub(super) fn create_tables(txn: &WriteTransaction) -> anyhow::Result<()> {
    txn.open_table(OIDC_CLIENTS)?;
    txn.open_table(OIDC_KEYS)?;
    txn.open_table(OIDC_GRANTS)?;
    txn.open_table(OIDC_TOKENS)?;
    txn.open_multimap_table(OIDC_TOKENS_BY_USER)?;
    txn.open_multimap_table(OIDC_TOKENS_BY_FAMILY)?;
    Ok(())
}

pub(super) fn insert_token(
    txn: &WriteTransaction,
    hash: &[u8; 32],
    token: &OidcToken,
) -> anyhow::Result<()> {
    txn.open_table(OIDC_TOKENS)?
        .insert(*hash, encode(token).as_slice())?;
    txn.open_multimap_table(OIDC_TOKENS_BY_USER)?
        .insert(token.user.0, *hash)?;
    txn.open_multimap_table(OIDC_TOKENS_BY_FAMILY)?
        .insert(token.family, *hash)?;
    Ok(())
}

fn remove_token(txn: &WriteTransaction, hash: &[u8; 32]) -> anyhow::Result<Option<OidcToken>> {
    let removed = txn
        .open_table(OIDC_TOKENS)?
        .remove(*hash)?
        .map(|v| v.value().to_vec());
    let Some(bytes) = removed else {
        return Ok(None);
    };
    let token: OidcToken = decode(&bytes, "OpenID token")?;
    txn.open_multimap_table(OIDC_TOKENS_BY_USER)?
        .remove(token.user.0, *hash)?;
    txn.open_multimap_table(OIDC_TOKENS_BY_FAMILY)?
        .remove(token.family, *hash)?;
    Ok(Some(token))
}

fn hashes_of(
    txn: &WriteTransaction,
    table: MultimapTableDefinition<u64, [u8; 32]>,
    key: u64,
) -> anyhow::Result<Vec<[u8; 32]>> {
    let index = txn.open_multimap_table(table)?;
    let mut out = Vec::new();
    for h in index.get(key)? {
        out.push(h?.value());
    }
    Ok(out)
}

fn remove_family(txn: &WriteTransaction, family: u64) -> anyhow::Result<usize> {
    let mut n = 0;
    for h in hashes_of(txn, OIDC_TOKENS_BY_FAMILY, family)? {
        n += usize::from(remove_token(txn, &h)?.is_some());
    }
    Ok(n)
}

/// Every code and token of `user` (with `client`: only that app's), inside
/// the caller's transaction: a reset, a disabled or deleted account and
/// "log out everywhere" end them with the sessions.
pub(super) fn remove_user_tokens(
    txn: &WriteTransaction,
    user: UserId,
    client: Option<&str>,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for h in hashes_of(txn, OIDC_TOKENS_BY_USER, user.0)? {
        let belongs = match client {
            None => true,
            Some(c) => txn
                .open_table(OIDC_TOKENS)?
                .get(h)?
                .map(|v| decode::<OidcToken>(v.value(), "OpenID token"))
                .transpose()?
                .is_some_and(|t| t.client == c),
        };
        if belongs {
            n += usize::from(remove_token(txn, &h)?.is_some());
        }
    }
    Ok(n)
}

/// A deleted account's grants.
pub(super) fn remove_user_grants(txn: &WriteTransaction, user: UserId) -> anyhow::Result<()> {
    let mut grants = txn.open_table(OIDC_GRANTS)?;
    let mut keys: Vec<String> = Vec::new();
    for row in grants.range((user.0, "")..)? {
        let (k, _) = row?;
        let (u, c) = k.value();
        if u != user.0 {
            break;
        }
        keys.push(c.to_owned());
    }
    for c in keys {
        grants.remove((user.0, c.as_str()))?;
    }
    Ok(())
}

#[async_trait]
impl OidcStore for RedbStore {
    async fn create_client(&self, client: OidcClient) -> StoreResult<bool> {
        self.write(|txn| {
            let mut clients = txn.open_table(OIDC_CLIENTS)?;
            let key = OidcClient::name_key(&client.name);
            for row in clients.iter()? {
                let (id, v) = row?;
                let other: OidcClient = decode(v.value(), "OpenID client")?;
                if id.value() == client.id || OidcClient::name_key(&other.name) == key {
                    return Ok(false);
                }
            }
            clients.insert(client.id.as_str(), encode(&client).as_slice())?;
            Ok(true)
        })
    }

    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>> {
        let txn = self.read()?;
        let found = txn.open_table(OIDC_CLIENTS)?.get(id)?;
        Ok(found
            .map(|v| decode(v.value(), "OpenID client"))
            .transpose()?)
    }

    async fn clients(&self) -> StoreResult<Vec<OidcClient>> {
        let txn = self.read()?;
        let mut out: Vec<OidcClient> = Vec::new();
        for row in txn.open_table(OIDC_CLIENTS)?.iter()? {
            out.push(decode(row?.1.value(), "OpenID client")?);
        }
        out.sort_by_key(|c| OidcClient::name_key(&c.name));
        Ok(out)
    }

    async fn update_client(&self, client: OidcClient) -> StoreResult<bool> {
        self.write(|txn| {
            let mut clients = txn.open_table(OIDC_CLIENTS)?;
            if clients.get(client.id.as_str())?.is_none() {
                return Ok(false);
            }
            let key = OidcClient::name_key(&client.name);
            for row in clients.iter()? {
                let (id, v) = row?;
                let other: OidcClient = decode(v.value(), "OpenID client")?;
                if id.value() != client.id && OidcClient::name_key(&other.name) == key {
                    return Ok(false);
                }
            }
            clients.insert(client.id.as_str(), encode(&client).as_slice())?;
            Ok(true)
        })
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        self.write(|txn| {
            if txn.open_table(OIDC_CLIENTS)?.remove(id)?.is_none() {
                return Ok(false);
            }
            let mut grants = txn.open_table(OIDC_GRANTS)?;
            let mut theirs: Vec<u64> = Vec::new();
            for row in grants.iter()? {
                let (k, _) = row?;
                let (u, c) = k.value();
                if c == id {
                    theirs.push(u);
                }
            }
            for u in theirs {
                grants.remove((u, id))?;
            }
            drop(grants);
            let hashes: Vec<[u8; 32]> = {
                let tokens = txn.open_table(OIDC_TOKENS)?;
                let mut out = Vec::new();
                for row in tokens.iter()? {
                    let (k, v) = row?;
                    let t: OidcToken = decode(v.value(), "OpenID token")?;
                    if t.client == id {
                        out.push(k.value());
                    }
                }
                out
            };
            for h in hashes {
                remove_token(txn, &h)?;
            }
            Ok(true)
        })
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let txn = self.read()?;
        let mut out = Vec::new();
        for row in txn.open_table(OIDC_KEYS)?.iter()? {
            out.push(decode(row?.1.value(), "signing key")?);
        }
        Ok(out)
    }

    async fn add_signing_key(&self, key: SigningKey, only_if_none: bool) -> StoreResult<bool> {
        self.write(|txn| {
            let mut keys = txn.open_table(OIDC_KEYS)?;
            if only_if_none && keys.iter()?.next().is_some() {
                return Ok(false);
            }
            keys.insert(key.kid.as_str(), encode(&key).as_slice())?;
            Ok(true)
        })
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<usize> {
        self.write(|txn| {
            let mut keys = txn.open_table(OIDC_KEYS)?;
            let mut n = 0;
            for kid in kids {
                n += usize::from(keys.remove(kid.as_str())?.is_some());
            }
            Ok(n)
        })
    }

    async fn grant(&self, user: UserId, client: &str) -> StoreResult<Option<OidcGrant>> {
        let txn = self.read()?;
        let found = txn.open_table(OIDC_GRANTS)?.get((user.0, client))?;
        Ok(found.map(|v| decode(v.value(), "grant")).transpose()?)
    }

    async fn set_grant(&self, grant: OidcGrant) -> StoreResult<()> {
        self.write(|txn| {
            txn.open_table(OIDC_GRANTS)?.insert(
                (grant.user.0, grant.client.as_str()),
                encode(&grant).as_slice(),
            )?;
            Ok(())
        })
    }

    async fn grants_of(&self, user: UserId) -> StoreResult<Vec<OidcGrant>> {
        let txn = self.read()?;
        let mut out = Vec::new();
        for row in txn.open_table(OIDC_GRANTS)?.range((user.0, "")..)? {
            let (k, v) = row?;
            if k.value().0 != user.0 {
                break;
            }
            out.push(decode(v.value(), "grant")?);
        }
        Ok(out)
    }

    async fn revoke_grant(&self, user: UserId, client: &str) -> StoreResult<bool> {
        self.write(|txn| {
            let had = txn
                .open_table(OIDC_GRANTS)?
                .remove((user.0, client))?
                .is_some();
            let ended = remove_user_tokens(txn, user, Some(client))?;
            Ok(had || ended > 0)
        })
    }

    async fn put_tokens(&self, tokens: Vec<([u8; 32], OidcToken)>) -> StoreResult<()> {
        self.write(|txn| {
            for (h, t) in &tokens {
                insert_token(txn, h, t)?;
            }
            Ok(())
        })
    }

    async fn token_of(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
    ) -> StoreResult<Option<OidcToken>> {
        let txn = self.read()?;
        let found = txn.open_table(OIDC_TOKENS)?.get(*hash)?;
        let token: Option<OidcToken> = found
            .map(|v| decode(v.value(), "OpenID token"))
            .transpose()?;
        Ok(token.filter(|t| t.kind == kind && t.is_live(now)))
    }

    async fn access_of(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<(OidcToken, crate::domain::User, OidcClient)>> {
        let txn = self.read()?;
        let Some(found) = txn.open_table(OIDC_TOKENS)?.get(*hash)? else {
            return Ok(None);
        };
        let token: OidcToken = decode(found.value(), "OpenID token")?;
        if token.kind != TokenKind::Access || !token.is_live(now) {
            return Ok(None);
        }
        let Some(user) = txn.open_table(super::USERS)?.get(token.user.0)? else {
            return Ok(None);
        };
        let user: crate::domain::User = decode(user.value(), "user")?;
        let Some(client) = txn.open_table(OIDC_CLIENTS)?.get(token.client.as_str())? else {
            return Ok(None);
        };
        let client: OidcClient = decode(client.value(), "OpenID client")?;
        Ok(Some((token, user, client)))
    }

    async fn spend_token(
        &self,
        hash: &[u8; 32],
        kind: TokenKind,
        now: Timestamp,
        issue: Vec<([u8; 32], OidcToken)>,
    ) -> StoreResult<Spend> {
        self.write(|txn| {
            let stored = txn
                .open_table(OIDC_TOKENS)?
                .get(*hash)?
                .map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(Spend::Unknown);
            };
            let mut token: OidcToken = decode(&bytes, "OpenID token")?;
            if token.kind != kind || !token.is_live(now) {
                return Ok(Spend::Unknown);
            }
            if token.spent_at.is_some() {
                return Ok(Spend::Reused(remove_family(txn, token.family)?));
            }
            token.spent_at = Some(now);
            txn.open_table(OIDC_TOKENS)?
                .insert(*hash, encode(&token).as_slice())?;
            for (h, t) in &issue {
                insert_token(txn, h, t)?;
            }
            Ok(Spend::Spent(token))
        })
    }

    async fn revoke_token(&self, hash: &[u8; 32], client: &str) -> StoreResult<usize> {
        self.write(|txn| {
            let stored = txn
                .open_table(OIDC_TOKENS)?
                .get(*hash)?
                .map(|v| v.value().to_vec());
            let Some(bytes) = stored else {
                return Ok(0);
            };
            let token: OidcToken = decode(&bytes, "OpenID token")?;
            if token.client != client {
                return Ok(0);
            }
            match token.kind {
                TokenKind::Refresh => remove_family(txn, token.family),
                _ => Ok(usize::from(remove_token(txn, hash)?.is_some())),
            }
        })
    }

    async fn revoke_user_tokens(&self, user: UserId) -> StoreResult<usize> {
        self.write(|txn| remove_user_tokens(txn, user, None))
    }

    async fn purge_tokens_oidc(&self, now: Timestamp) -> StoreResult<usize> {
        self.write(|txn| {
            let expired: Vec<[u8; 32]> = {
                let tokens = txn.open_table(OIDC_TOKENS)?;
                let mut out = Vec::new();
                for row in tokens.iter()? {
                    let (k, v) = row?;
                    let t: OidcToken = decode(v.value(), "OpenID token")?;
                    if !t.is_live(now) {
                        out.push(k.value());
                    }
                }
                out
            };
            for h in &expired {
                remove_token(txn, h)?;
            }
            Ok(expired.len())
        })
    }
}
