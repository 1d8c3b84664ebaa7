//! The whole file as a `Snapshot`, and a snapshot written into it.

use super::oidc::{
    OIDC_CLIENTS, OIDC_GRANTS, OIDC_KEYS, OIDC_TOKENS, OIDC_TOKENS_BY_FAMILY, OIDC_TOKENS_BY_USER,
};
use super::{
    AUDIT, AUDIT_BY_USER, GROUP_MEMBERS, GROUPS, INVITES, INVITES_BY_HASH, LOCKOUTS, LOGINS, META,
    META_NEXT_AUDIT, META_NEXT_INVITE, META_NEXT_LOGIN, META_NEXT_MAIL, META_NEXT_USER,
    META_PASSWORD_KEY, OUTBOX, RedbStore, SESSIONS, SESSIONS_BY_USER, TOKENS, TOKENS_BY_USER,
    USERS, USERS_BY_EMAIL, USERS_BY_NAME, decode, decode_u64, encode,
};
use crate::domain::session::SessionKey;
use crate::domain::{Invitation, OneTimeToken, UserId};
use crate::store::StoreResult;
use crate::store::transfer::{Counters, Snapshot, Transfer};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

/// Deletes every row of every table (for `migrate --force`).
fn clear(txn: &WriteTransaction) -> anyhow::Result<()> {
    macro_rules! clear_tables {
        ($($t:expr),*) => {$(
            txn.open_table($t)?.retain(|_, _| false)?;
        )*};
    }
    clear_tables!(
        USERS,
        USERS_BY_EMAIL,
        USERS_BY_NAME,
        SESSIONS,
        LOCKOUTS,
        INVITES,
        INVITES_BY_HASH,
        OUTBOX,
        AUDIT,
        AUDIT_BY_USER,
        LOGINS,
        GROUPS,
        TOKENS,
        TOKENS_BY_USER,
        OIDC_CLIENTS,
        OIDC_KEYS,
        OIDC_GRANTS,
        OIDC_TOKENS,
        super::second_factors::SECOND_FACTORS
    );
    for table in [OIDC_TOKENS_BY_USER, OIDC_TOKENS_BY_FAMILY] {
        let mut index = txn.open_multimap_table(table)?;
        let keys: Vec<u64> = {
            use redb::ReadableMultimapTable;
            index
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?
        };
        for k in keys {
            index.remove_all(k)?;
        }
    }
    let mut by_user = txn.open_multimap_table(SESSIONS_BY_USER)?;
    let users: Vec<u64> = {
        use redb::ReadableMultimapTable;
        by_user
            .iter()?
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?
    };
    for u in users {
        by_user.remove_all(u)?;
    }
    let mut members = txn.open_multimap_table(GROUP_MEMBERS)?;
    let groups: Vec<String> = {
        use redb::ReadableMultimapTable;
        members
            .iter()?
            .map(|r| r.map(|(k, _)| k.value().to_owned()))
            .collect::<Result<_, _>>()?
    };
    for g in groups {
        members.remove_all(g.as_str())?;
    }
    Ok(())
}

#[async_trait]
impl Transfer for RedbStore {
    async fn export(&self) -> StoreResult<Snapshot> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        let counter = |name: &str| -> StoreResult<u64> {
            Ok(meta
                .get(name)?
                .and_then(|v| decode_u64(v.value()))
                .unwrap_or(1))
        };
        let counters = Counters {
            next_user: counter(META_NEXT_USER)?,
            next_invite: counter(META_NEXT_INVITE)?,
            next_mail: counter(META_NEXT_MAIL)?,
            next_login: counter(META_NEXT_LOGIN)?,
            next_audit: counter(META_NEXT_AUDIT)?,
        };
        let password_key = meta
            .get(META_PASSWORD_KEY)?
            .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
            .unwrap_or(self.password_key);
        let mut snapshot = Snapshot::empty(password_key, counters);
        for row in txn.open_table(USERS)?.iter()? {
            snapshot.users.push(decode(row?.1.value(), "user")?);
        }
        for row in txn.open_table(GROUPS)?.iter()? {
            snapshot.groups.push(decode(row?.1.value(), "group")?);
        }
        for row in txn.open_table(SESSIONS)?.iter()? {
            let (k, v) = row?;
            snapshot
                .sessions
                .push((SessionKey(k.value()), decode(v.value(), "session")?));
        }
        for row in txn.open_table(LOGINS)?.iter()? {
            let (k, v) = row?;
            let (user, seq) = k.value();
            snapshot
                .logins
                .push((seq, UserId(user), decode(v.value(), "login attempt")?));
        }
        for row in txn.open_table(LOCKOUTS)?.iter()? {
            let (k, v) = row?;
            snapshot
                .lockouts
                .push((k.value().to_owned(), decode(v.value(), "lockout")?));
        }
        let invites = txn.open_table(INVITES)?;
        for row in txn.open_table(INVITES_BY_HASH)?.iter()? {
            let (hash, id) = row?;
            if let Some(v) = invites.get(id.value())? {
                let invite: Invitation = decode(v.value(), "invitation")?;
                snapshot.invites.push((hash.value(), invite));
            }
        }
        for row in txn.open_table(TOKENS)?.iter()? {
            let (k, v) = row?;
            let token: OneTimeToken = decode(v.value(), "token")?;
            snapshot.tokens.push((k.value(), token));
        }
        for row in txn.open_table(OUTBOX)?.iter()? {
            snapshot.outbox.push(decode(row?.1.value(), "outbox")?);
        }
        for row in txn.open_table(AUDIT)?.iter()? {
            let (k, v) = row?;
            snapshot
                .audit
                .push((k.value(), decode(v.value(), "audit event")?));
        }
        for row in txn.open_table(OIDC_CLIENTS)?.iter()? {
            snapshot
                .oidc_clients
                .push(decode(row?.1.value(), "OpenID client")?);
        }
        for row in txn.open_table(OIDC_KEYS)?.iter()? {
            snapshot
                .oidc_keys
                .push(decode(row?.1.value(), "signing key")?);
        }
        for row in txn.open_table(OIDC_GRANTS)?.iter()? {
            snapshot.oidc_grants.push(decode(row?.1.value(), "grant")?);
        }
        for row in txn.open_table(OIDC_TOKENS)?.iter()? {
            let (k, v) = row?;
            snapshot
                .oidc_tokens
                .push((k.value(), decode(v.value(), "OpenID token")?));
        }
        for row in txn
            .open_table(super::second_factors::SECOND_FACTORS)?
            .iter()?
        {
            let (k, v) = row?;
            snapshot
                .second_factors
                .push((UserId(k.value()), decode(v.value(), "second factors")?));
        }
        Ok(snapshot.sorted())
    }

    async fn import(&self, s: &Snapshot) -> StoreResult<()> {
        self.write(|txn| {
            clear(txn)?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(META_PASSWORD_KEY, s.password_key.as_slice())?;
                for (name, next) in [
                    (META_NEXT_USER, s.counters.next_user),
                    (META_NEXT_INVITE, s.counters.next_invite),
                    (META_NEXT_MAIL, s.counters.next_mail),
                    (META_NEXT_LOGIN, s.counters.next_login),
                    (META_NEXT_AUDIT, s.counters.next_audit),
                ] {
                    meta.insert(name, next.to_le_bytes().as_slice())?;
                }
            }
            let mut users = txn.open_table(USERS)?;
            let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
            let mut by_name = txn.open_table(USERS_BY_NAME)?;
            let mut members = txn.open_multimap_table(GROUP_MEMBERS)?;
            for u in &s.users {
                users.insert(u.id.0, encode(u).as_slice())?;
                by_email.insert(u.email.as_str(), u.id.0)?;
                by_name.insert(u.username.key().as_str(), u.id.0)?;
                for g in &u.groups {
                    members.insert(g.as_str(), u.id.0)?;
                }
            }
            let mut groups = txn.open_table(GROUPS)?;
            for g in &s.groups {
                groups.insert(g.name.as_str(), encode(g).as_slice())?;
            }
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut sessions_by_user = txn.open_multimap_table(SESSIONS_BY_USER)?;
            for (k, session) in &s.sessions {
                sessions.insert(k.0, encode(session).as_slice())?;
                sessions_by_user.insert(session.user.0, k.0)?;
            }
            let mut logins = txn.open_table(LOGINS)?;
            for (seq, user, attempt) in &s.logins {
                logins.insert((user.0, *seq), encode(attempt).as_slice())?;
            }
            let mut lockouts = txn.open_table(LOCKOUTS)?;
            for (key, state) in &s.lockouts {
                lockouts.insert(key.as_str(), encode(state).as_slice())?;
            }
            let mut invites = txn.open_table(INVITES)?;
            let mut invites_by_hash = txn.open_table(INVITES_BY_HASH)?;
            for (hash, invite) in &s.invites {
                invites.insert(invite.id, encode(invite).as_slice())?;
                invites_by_hash.insert(*hash, invite.id)?;
            }
            let mut tokens = txn.open_table(TOKENS)?;
            let mut tokens_by_user = txn.open_table(TOKENS_BY_USER)?;
            for (hash, token) in &s.tokens {
                tokens.insert(*hash, encode(token).as_slice())?;
                tokens_by_user.insert((token.user.0, token.purpose.code()), *hash)?;
            }
            let mut outbox = txn.open_table(OUTBOX)?;
            for entry in &s.outbox {
                outbox.insert(entry.id, encode(entry).as_slice())?;
            }
            let mut audit = txn.open_table(AUDIT)?;
            let mut audit_by_user = txn.open_table(AUDIT_BY_USER)?;
            for (seq, event) in &s.audit {
                audit.insert(*seq, encode(event).as_slice())?;
                if let Some(u) = event.user {
                    audit_by_user.insert((u.0, *seq), ())?;
                }
            }
            let mut clients = txn.open_table(OIDC_CLIENTS)?;
            for c in &s.oidc_clients {
                clients.insert(c.id.as_str(), encode(c).as_slice())?;
            }
            let mut keys = txn.open_table(OIDC_KEYS)?;
            for k in &s.oidc_keys {
                keys.insert(k.kid.as_str(), encode(k).as_slice())?;
            }
            let mut grants = txn.open_table(OIDC_GRANTS)?;
            for g in &s.oidc_grants {
                grants.insert((g.user.0, g.client.as_str()), encode(g).as_slice())?;
            }
            for (h, t) in &s.oidc_tokens {
                super::oidc::insert_token(txn, h, t)?;
            }
            let mut factors = txn.open_table(super::second_factors::SECOND_FACTORS)?;
            for (u, f) in &s.second_factors {
                factors.insert(u.0, encode(f).as_slice())?;
            }
            Ok(())
        })
    }
}
