//! The whole database as a `Snapshot` (one REPEATABLE READ transaction,
//! so replicas may keep serving), and a snapshot written into it (one
//! transaction: all or nothing).

use super::schema::{hex, unhex};
use super::{PgStore, classify, id_i64, id_u64, ms, transaction};
use crate::clock::Timestamp;
use crate::domain::UserId;
use crate::domain::session::{Session, SessionKey};
use crate::store::record::{decode, encode_text};
use crate::store::transfer::{Counters, Snapshot, Transfer};
use crate::store::{StoreError, StoreResult};
use anyhow::Context;
use async_trait::async_trait;

const SEQUENCES: [&str; 5] = [
    "gatehouse_user_ids",
    "gatehouse_invite_ids",
    "gatehouse_mail_ids",
    "gatehouse_login_seq",
    "gatehouse_audit_seq",
];

fn hash32(bytes: &[u8]) -> anyhow::Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).context("a stored hash is not 32 bytes")
}

#[async_trait]
impl Transfer for PgStore {
    async fn export(&self) -> StoreResult<Snapshot> {
        let mut client = self.client().await?;
        let result: anyhow::Result<Snapshot> = async {
            let t = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let key: String = t
                .query_one(
                    "SELECT value FROM gatehouse_meta WHERE name = 'password_key'",
                    &[],
                )
                .await?
                .get(0);
            let mut next = [1u64; 5];
            for (i, seq) in SEQUENCES.iter().enumerate() {
                let row = t
                    .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
                    .await?;
                let (last, called): (i64, bool) = (row.get(0), row.get(1));
                next[i] = id_u64(last) + u64::from(called);
            }
            let text = |r: &tokio_postgres::Row, i: usize| -> String { r.get(i) };
            let mut s = Snapshot::empty(
                unhex(&key).context("the stored password key is not 32 bytes of hex")?,
                Counters {
                    next_user: next[0],
                    next_invite: next[1],
                    next_mail: next[2],
                    next_login: next[3],
                    next_audit: next[4],
                },
            );
            for r in t.query("SELECT record FROM users", &[]).await? {
                s.users.push(decode(text(&r, 0).as_bytes(), "user")?);
            }
            for r in t.query("SELECT record FROM user_groups", &[]).await? {
                s.groups.push(decode(text(&r, 0).as_bytes(), "group")?);
            }
            for r in t
                .query(
                    "SELECT key, user_id, created_at, last_seen, ip, user_agent FROM sessions",
                    &[],
                )
                .await?
            {
                s.sessions.push((
                    SessionKey(hash32(r.get(0))?),
                    Session {
                        user: UserId(id_u64(r.get(1))),
                        created_at: Timestamp::from_millis(r.get(2)),
                        last_seen: Timestamp::from_millis(r.get(3)),
                        ip: r.get(4),
                        user_agent: r.get(5),
                    },
                ));
            }
            for r in t
                .query("SELECT seq, user_id, record FROM logins", &[])
                .await?
            {
                s.logins.push((
                    id_u64(r.get(0)),
                    UserId(id_u64(r.get(1))),
                    decode(text(&r, 2).as_bytes(), "login attempt")?,
                ));
            }
            for r in t.query("SELECT key, record FROM lockouts", &[]).await? {
                s.lockouts
                    .push((r.get(0), decode(text(&r, 1).as_bytes(), "lockout")?));
            }
            for r in t
                .query("SELECT token_hash, record FROM invites", &[])
                .await?
            {
                s.invites.push((
                    hash32(r.get(0))?,
                    decode(text(&r, 1).as_bytes(), "invitation")?,
                ));
            }
            for r in t.query("SELECT hash, record FROM tokens", &[]).await? {
                s.tokens
                    .push((hash32(r.get(0))?, decode(text(&r, 1).as_bytes(), "token")?));
            }
            for r in t
                .query("SELECT record, claimed_until FROM outbox", &[])
                .await?
            {
                let mut e: crate::domain::OutboxEntry = decode(text(&r, 0).as_bytes(), "outbox")?;
                e.held_until = r.get::<_, Option<i64>>(1).map(Timestamp::from_millis);
                s.outbox.push(e);
            }
            for r in t.query("SELECT seq, record FROM audit", &[]).await? {
                s.audit.push((
                    id_u64(r.get(0)),
                    decode(text(&r, 1).as_bytes(), "audit event")?,
                ));
            }
            for r in t.query("SELECT record FROM oidc_clients", &[]).await? {
                s.oidc_clients
                    .push(decode(text(&r, 0).as_bytes(), "OpenID client")?);
            }
            for r in t.query("SELECT record FROM oidc_keys", &[]).await? {
                s.oidc_keys
                    .push(decode(text(&r, 0).as_bytes(), "signing key")?);
            }
            for r in t.query("SELECT record FROM oidc_grants", &[]).await? {
                s.oidc_grants.push(decode(text(&r, 0).as_bytes(), "grant")?);
            }
            for r in t.query("SELECT hash, record FROM oidc_tokens", &[]).await? {
                s.oidc_tokens.push((
                    hash32(r.get(0))?,
                    decode(text(&r, 1).as_bytes(), "OpenID token")?,
                ));
            }
            for r in t
                .query("SELECT user_id, record FROM second_factors", &[])
                .await?
            {
                s.second_factors.push((
                    UserId(id_u64(r.get(0))),
                    decode(text(&r, 1).as_bytes(), "second factors")?,
                ));
            }
            t.commit().await?;
            Ok(s.sorted())
        }
        .await;
        result.map_err(classify)
    }

    async fn import(&self, s: &Snapshot) -> StoreResult<()> {
        let result: StoreResult<()> = transaction!(self, |t| {
            t.batch_execute(
                "TRUNCATE pending_logins, second_factors, oidc_tokens, oidc_grants, oidc_clients, oidc_keys, group_members, \
                 tokens, sessions, user_groups, users, logins, lockouts, invites, outbox, audit",
            )
            .await?;
            t.execute(
                "UPDATE gatehouse_meta SET value = $1 WHERE name = 'password_key'",
                &[&hex(&s.password_key)],
            )
            .await?;
            let next = [
                s.counters.next_user,
                s.counters.next_invite,
                s.counters.next_mail,
                s.counters.next_login,
                s.counters.next_audit,
            ];
            for (seq, next) in SEQUENCES.iter().zip(next) {
                t.execute(
                    &format!("SELECT setval('{seq}', $1, false)"),
                    &[&id_i64(next.max(1))],
                )
                .await?;
            }
            let insert_user = t
                .prepare(
                    "INSERT INTO users (id, email, username_key, role, password_hash, record, \
                     unconfirmed_since) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .await?;
            for u in &s.users {
                t.execute(
                    &insert_user,
                    &[
                        &id_i64(u.id.0),
                        &u.email.as_str(),
                        &u.username.key(),
                        &super::users::role_text(u.role),
                        &u.password_hash,
                        &encode_text(u),
                        &super::users::unconfirmed_since(u),
                    ],
                )
                .await?;
            }
            for g in &s.groups {
                t.execute(
                    "INSERT INTO user_groups (name, record) VALUES ($1, $2)",
                    &[&g.name.as_str(), &encode_text(g)],
                )
                .await?;
            }
            for u in &s.users {
                for g in &u.groups {
                    t.execute(
                        "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2)",
                        &[&g.as_str(), &id_i64(u.id.0)],
                    )
                    .await?;
                }
            }
            let insert_session = t
                .prepare(
                    "INSERT INTO sessions (key, user_id, created_at, last_seen, ip, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await?;
            for (k, x) in &s.sessions {
                t.execute(
                    &insert_session,
                    &[
                        &&k.0[..],
                        &id_i64(x.user.0),
                        &ms(x.created_at),
                        &ms(x.last_seen),
                        &x.ip,
                        &x.user_agent,
                    ],
                )
                .await?;
            }
            let insert_login = t
                .prepare("INSERT INTO logins (seq, user_id, record) VALUES ($1, $2, $3)")
                .await?;
            for (seq, user, attempt) in &s.logins {
                t.execute(
                    &insert_login,
                    &[&id_i64(*seq), &id_i64(user.0), &encode_text(attempt)],
                )
                .await?;
            }
            for (key, state) in &s.lockouts {
                t.execute(
                    "INSERT INTO lockouts (key, record) VALUES ($1, $2)",
                    &[key, &encode_text(state)],
                )
                .await?;
            }
            for (hash, invite) in &s.invites {
                t.execute(
                    "INSERT INTO invites (id, token_hash, first_run, record) VALUES ($1, $2, $3, $4)",
                    &[
                        &id_i64(invite.id),
                        &&hash[..],
                        &invite.first_run,
                        &encode_text(invite),
                    ],
                )
                .await?;
            }
            for (hash, token) in &s.tokens {
                t.execute(
                    "INSERT INTO tokens (hash, user_id, purpose, expires_at, record) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &&hash[..],
                        &id_i64(token.user.0),
                        &i16::from(token.purpose.code()),
                        &ms(token.expires_at),
                        &encode_text(token),
                    ],
                )
                .await?;
            }
            for e in &s.outbox {
                let mut record = e.clone();
                record.held_until = None;
                t.execute(
                    "INSERT INTO outbox (id, next_attempt_at, claimed_until, record) \
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &id_i64(e.id),
                        &e.next_attempt_at.map(ms),
                        &e.held_until.map(ms),
                        &encode_text(&record),
                    ],
                )
                .await?;
            }
            let insert_audit = t
                .prepare("INSERT INTO audit (seq, at, user_id, record) VALUES ($1, $2, $3, $4)")
                .await?;
            for (seq, event) in &s.audit {
                t.execute(
                    &insert_audit,
                    &[
                        &id_i64(*seq),
                        &ms(event.at),
                        &event.user.map(|u| id_i64(u.0)),
                        &encode_text(event),
                    ],
                )
                .await?;
            }
            for c in &s.oidc_clients {
                t.execute(
                    "INSERT INTO oidc_clients (id, name_key, record) VALUES ($1, $2, $3)",
                    &[
                        &c.id,
                        &crate::domain::oidc::OidcClient::name_key(&c.name),
                        &encode_text(c),
                    ],
                )
                .await?;
            }
            for k in &s.oidc_keys {
                t.execute(
                    "INSERT INTO oidc_keys (kid, record) VALUES ($1, $2)",
                    &[&k.kid, &encode_text(k)],
                )
                .await?;
            }
            for g in &s.oidc_grants {
                t.execute(
                    "INSERT INTO oidc_grants (user_id, client_id, record) VALUES ($1, $2, $3)",
                    &[&id_i64(g.user.0), &g.client, &encode_text(g)],
                )
                .await?;
            }
            for (hash, token) in &s.oidc_tokens {
                super::oidc::insert_token(&t, hash, token).await?;
            }
            for (user, factors) in &s.second_factors {
                t.execute(
                    "INSERT INTO second_factors (user_id, record) VALUES ($1, $2)",
                    &[&id_i64(user.0), &encode_text(factors)],
                )
                .await?;
            }
            anyhow::Ok(())
        });
        result.map_err(|e| match e {
            StoreError::Other(e) => {
                StoreError::Other(e.context("the copy was not written (nothing changed)"))
            }
            other => other,
        })
    }
}
