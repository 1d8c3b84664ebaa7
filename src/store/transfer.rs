//! Everything a store holds, as one value (`Snapshot`), so that
//! `gatehouse migrate` can copy a store to the other backend and back, and
//! prove the copy: row counts and a SHA-256 per table, of both sides.

use crate::crypto::hex;
use crate::domain::lockout::LockoutState;
use crate::domain::oidc::{OidcClient, OidcGrant, OidcToken, SigningKey};
use crate::domain::session::{Session, SessionKey};
use crate::domain::{
    AuditEvent, Group, Invitation, LoginAttempt, OneTimeToken, OutboxEntry, User, UserId,
};
use crate::store::StoreResult;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// The next number each counter hands out (never one used before, even
/// of a deleted record: an account's id is its OpenID `sub`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub next_user: u64,
    pub next_invite: u64,
    pub next_mail: u64,
    pub next_login: u64,
    pub next_audit: u64,
}

/// Every record, each table in key order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub password_key: [u8; 32],
    pub counters: Counters,
    /// With their groups (`User::groups`): the memberships.
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub sessions: Vec<(SessionKey, Session)>,
    /// (sequence, account, try).
    pub logins: Vec<(u64, UserId, LoginAttempt)>,
    pub lockouts: Vec<(String, LockoutState)>,
    /// (hash of the token, invitation).
    pub invites: Vec<([u8; 32], Invitation)>,
    pub tokens: Vec<([u8; 32], OneTimeToken)>,
    pub outbox: Vec<OutboxEntry>,
    /// (sequence, event).
    pub audit: Vec<(u64, AuditEvent)>,
    pub oidc_clients: Vec<OidcClient>,
    pub oidc_keys: Vec<SigningKey>,
    pub oidc_grants: Vec<OidcGrant>,
    /// (hash of the code or token, record).
    pub oidc_tokens: Vec<([u8; 32], OidcToken)>,
    /// Each account's second factors (only those with any).
    pub second_factors: Vec<(UserId, crate::domain::second_factor::SecondFactors)>,
}

/// One table of a snapshot: how many rows, and the SHA-256 of their JSON
/// in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    pub table: &'static str,
    pub rows: usize,
    pub sha256: String,
}

fn sum<T: serde::Serialize>(table: &'static str, rows: &[T]) -> TableSum {
    let mut h = Sha256::new();
    for row in rows {
        h.update(crate::store::record::encode(row));
        h.update(b"\n");
    }
    TableSum {
        table,
        rows: rows.len(),
        sha256: hex(&h.finalize()),
    }
}

impl Snapshot {
    /// No records yet: a key and counters, the tables to fill.
    pub fn empty(password_key: [u8; 32], counters: Counters) -> Self {
        Self {
            password_key,
            counters,
            users: Vec::new(),
            groups: Vec::new(),
            sessions: Vec::new(),
            logins: Vec::new(),
            lockouts: Vec::new(),
            invites: Vec::new(),
            tokens: Vec::new(),
            outbox: Vec::new(),
            audit: Vec::new(),
            oidc_clients: Vec::new(),
            oidc_keys: Vec::new(),
            oidc_grants: Vec::new(),
            oidc_tokens: Vec::new(),
            second_factors: Vec::new(),
        }
    }

    /// Puts every table in key order (what both backends export).
    pub fn sorted(mut self) -> Self {
        self.users.sort_by_key(|u| u.id.0);
        self.groups.sort_by(|a, b| a.name.cmp(&b.name));
        self.sessions.sort_by_key(|(k, _)| k.0);
        self.logins.sort_by_key(|(seq, _, _)| *seq);
        self.lockouts.sort_by(|a, b| a.0.cmp(&b.0));
        self.invites.sort_by_key(|(_, i)| i.id);
        self.tokens.sort_by_key(|(h, _)| *h);
        self.outbox.sort_by_key(|e| e.id);
        self.audit.sort_by_key(|(seq, _)| *seq);
        self.oidc_clients.sort_by(|a, b| a.id.cmp(&b.id));
        self.oidc_keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        self.oidc_grants
            .sort_by(|a, b| (a.user.0, &a.client).cmp(&(b.user.0, &b.client)));
        self.oidc_tokens.sort_by_key(|(h, _)| *h);
        self.second_factors.sort_by_key(|(u, _)| u.0);
        self
    }

    /// Counts and checksums, table by table (the key, the counters and
    /// the memberships count as tables too).
    pub fn summary(&self) -> Vec<TableSum> {
        let memberships: Vec<(String, u64)> = {
            let mut m: Vec<(String, u64)> = self
                .users
                .iter()
                .flat_map(|u| u.groups.iter().map(|g| (g.to_string(), u.id.0)))
                .collect();
            m.sort();
            m
        };
        let sessions: Vec<(String, &Session)> =
            self.sessions.iter().map(|(k, s)| (hex(&k.0), s)).collect();
        let invites: Vec<(String, &Invitation)> =
            self.invites.iter().map(|(h, i)| (hex(h), i)).collect();
        let tokens: Vec<(String, &OneTimeToken)> =
            self.tokens.iter().map(|(h, t)| (hex(h), t)).collect();
        let oidc_tokens: Vec<(String, &OidcToken)> =
            self.oidc_tokens.iter().map(|(h, t)| (hex(h), t)).collect();
        vec![
            sum(
                "meta (password key, counters)",
                &[(hex(&self.password_key), self.counters)],
            ),
            sum("users", &self.users),
            sum("groups", &self.groups),
            sum("group members", &memberships),
            sum("sessions", &sessions),
            sum("login history", &self.logins),
            sum("lockout counters", &self.lockouts),
            sum("invitations", &invites),
            sum("one-time tokens", &tokens),
            sum("outbox", &self.outbox),
            sum("audit events", &self.audit),
            sum("OpenID clients", &self.oidc_clients),
            sum("signing keys", &self.oidc_keys),
            sum("OpenID grants", &self.oidc_grants),
            sum("OpenID codes and tokens", &oidc_tokens),
            sum("second factors", &self.second_factors),
        ]
    }

    /// Whether it holds nothing but a key and counters.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.groups.is_empty()
            && self.invites.is_empty()
            && self.outbox.is_empty()
            && self.audit.is_empty()
            && self.lockouts.is_empty()
            && self.oidc_clients.is_empty()
            && self.oidc_grants.is_empty()
    }
}

/// Reading and replacing a whole store.
#[async_trait]
pub trait Transfer: Send + Sync {
    /// Everything, from one consistent read.
    async fn export(&self) -> StoreResult<Snapshot>;
    /// Replaces everything (the password key and counters too) with
    /// `snapshot`, in one transaction: all or nothing.
    async fn import(&self, snapshot: &Snapshot) -> StoreResult<()>;
}
