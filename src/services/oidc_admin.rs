//! What an admin does to OpenID Connect apps and signing keys
//! (`gatehouse oidc …`), as `Admin` operations: each checks what it is
//! given, says what to do when it cannot, and leaves an audit event.

use super::admin::{Admin, AdminError, AdminResult};
use crate::auth::jwt;
use crate::crypto::{random_token, sha256};
use crate::domain::oidc::{
    KEY_PUBLISH_LEAD, KeyRing, OidcClient, check_redirect_uri, parse_client_name,
};
use crate::domain::{AuditEvent, AuditKind, GroupName};

/// An app to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub groups: Vec<GroupName>,
    pub trusted: bool,
}

/// A registered app and, for a confidential one, its secret (shown once).
pub struct Registered {
    pub client: OidcClient,
    pub secret: Option<String>,
}

/// What `rotate_key` did.
pub struct Rotated {
    pub kid: String,
    /// When the new key starts signing.
    pub signs_from: crate::clock::Timestamp,
    /// Keys removed at once (`--now`).
    pub removed: usize,
}

fn refused(text: impl Into<String>) -> AdminError {
    AdminError::Refused(text.into())
}

impl Admin<'_> {
    async fn audit_client(&self, client: &OidcClient, what: &str) -> AdminResult<()> {
        let event = AuditEvent::new(self.clock.now(), AuditKind::Admin, self.actor.clone())
            .subject(format!("oidc client {}", client.id))
            .detail(format!("oidc client {what} ({})", client.name));
        Ok(self.store.audit(vec![event]).await?)
    }

    /// Registers an app: a random client id and, unless public, a secret
    /// of 256 random bits of which only the SHA-256 is kept.
    pub async fn add_client(&self, new: NewClient) -> AdminResult<Registered> {
        let name = parse_client_name(&new.name).map_err(refused)?;
        if new.redirect_uris.is_empty() {
            return Err(refused(
                "give the app's callback address with --redirect-uri (the app's documentation names it), such as --redirect-uri https://grafana.example.com/login/generic_oauth",
            ));
        }
        for uri in new
            .redirect_uris
            .iter()
            .chain(&new.post_logout_redirect_uris)
        {
            check_redirect_uri(uri).map_err(refused)?;
        }
        self.require_groups(&new.groups).await?;
        let secret = (!new.public).then(random_token::<32>);
        let mut groups = new.groups;
        groups.sort();
        groups.dedup();
        let client = OidcClient {
            // Hex: an ID never starts with "-" (which a command line
            // would take for a flag) and is safe in any URL or config.
            id: crate::crypto::hex(&crate::crypto::random_bytes::<16>()),
            name,
            secret_hash: secret.as_deref().map(|s| sha256(s.as_bytes())),
            redirect_uris: dedup(new.redirect_uris),
            post_logout_redirect_uris: dedup(new.post_logout_redirect_uris),
            groups,
            trusted: new.trusted,
            created_at: self.clock.now(),
            declared: false,
        };
        if !self.store.create_client(client.clone()).await? {
            return Err(refused(format!(
                "an app named {:?} is registered already; see `gatehouse oidc client list`, or choose another name",
                client.name
            )));
        }
        self.audit_client(&client, "add").await?;
        Ok(Registered { client, secret })
    }

    /// Every app, by name.
    pub async fn clients(&self) -> AdminResult<Vec<OidcClient>> {
        Ok(self.store.clients().await?)
    }

    /// An app by its client id or its name (ignoring case).
    pub async fn find_client(&self, raw: &str) -> AdminResult<OidcClient> {
        if let Some(c) = self.store.client(raw.trim()).await? {
            return Ok(c);
        }
        let key = OidcClient::name_key(raw);
        self.store
            .clients()
            .await?
            .into_iter()
            .find(|c| OidcClient::name_key(&c.name) == key)
            .ok_or_else(|| {
                refused(format!(
                    "there is no app {raw:?} (by client id or name); see `gatehouse oidc client list`"
                ))
            })
    }

    /// Removes an app with its users' grants and tokens.
    pub async fn remove_client(&self, client: &OidcClient) -> AdminResult<()> {
        self.refuse_if_declared(client, "remove")?;
        if !self.store.delete_client(&client.id).await? {
            return Err(refused(format!(
                "the app {} was removed meanwhile; see `gatehouse oidc client list`",
                client.name
            )));
        }
        self.audit_client(client, "remove").await
    }

    /// A new secret for a confidential app; the old one stops working now.
    pub async fn rotate_secret(&self, client: &OidcClient) -> AdminResult<String> {
        self.refuse_if_declared(client, "give a new secret to")?;
        if client.is_public() {
            return Err(refused(format!(
                "{} is a public client: it has no secret (it proves itself with PKCE)",
                client.name
            )));
        }
        let secret = random_token::<32>();
        let mut changed = client.clone();
        changed.secret_hash = Some(sha256(secret.as_bytes()));
        if !self.store.update_client(changed).await? {
            return Err(refused(format!(
                "the app {} was removed meanwhile; see `gatehouse oidc client list`",
                client.name
            )));
        }
        self.audit_client(client, "rotate-secret").await?;
        Ok(secret)
    }

    /// A new signing key: published now, signing after `KEY_PUBLISH_LEAD`
    /// (so that apps that cache the key set learn it first), or at once
    /// with `now`, which also removes every other key (a leaked key).
    pub async fn rotate_key(&self, at_once: bool) -> AdminResult<Rotated> {
        let now = self.clock.now();
        let signs_from = if at_once {
            now
        } else {
            now.plus(KEY_PUBLISH_LEAD)
        };
        let key = tokio::task::spawn_blocking(move || jwt::generate_key(now, signs_from))
            .await
            .map_err(|e| AdminError::Store(crate::store::StoreError::Other(e.into())))?
            .map_err(|e| AdminError::Store(crate::store::StoreError::Other(e)))?;
        let kid = key.kid.clone();
        self.store.add_signing_key(key, false).await?;
        let mut removed = 0;
        if at_once {
            let others: Vec<String> = self
                .store
                .signing_keys()
                .await?
                .into_iter()
                .map(|k| k.kid)
                .filter(|k| *k != kid)
                .collect();
            removed = self.store.delete_signing_keys(&others).await?;
        }
        let event = AuditEvent::new(now, AuditKind::Admin, self.actor.clone())
            .subject(format!("oidc key {kid}"))
            .detail(if at_once {
                format!("oidc rotate-key --now ({removed} old key(s) removed)")
            } else {
                "oidc rotate-key".to_string()
            });
        self.store.audit(vec![event]).await?;
        Ok(Rotated {
            kid,
            signs_from,
            removed,
        })
    }

    /// The signing keys with what each does now: (kid, created, signs
    /// from, signing now?).
    pub async fn signing_keys(
        &self,
    ) -> AdminResult<
        Vec<(
            String,
            crate::clock::Timestamp,
            crate::clock::Timestamp,
            bool,
        )>,
    > {
        let keys = self.store.signing_keys().await?;
        let now = self.clock.now();
        let signing = KeyRing::new(&keys).signing(now).map(|k| k.kid.clone());
        Ok(keys
            .iter()
            .map(|k| {
                (
                    k.kid.clone(),
                    k.created_at,
                    k.signs_from,
                    signing.as_deref() == Some(k.kid.as_str()),
                )
            })
            .collect())
    }
}

/// What `sync_declared_clients` changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

impl Admin<'_> {
    /// Makes the store's declared apps those of the config file: adds the
    /// new, updates the changed (keeping when they were first added),
    /// removes those no longer declared (their grants and tokens end).
    /// Refused when a declared id or name is taken by an app registered
    /// with the CLI. Replicas starting together may run it at once: each
    /// step is one idempotent write.
    pub async fn sync_declared_clients(&self, declared: &[OidcClient]) -> AdminResult<Synced> {
        let stored = self.store.clients().await?;
        for d in declared {
            if let Some(other) = stored.iter().find(|s| {
                !s.declared
                    && (s.id == d.id
                        || OidcClient::name_key(&s.name) == OidcClient::name_key(&d.name))
            }) {
                return Err(refused(format!(
                    "the config file's [[oidc_client]] {:?} ({}) has the id or name of the app {} ({}) registered with `gatehouse oidc client add`; give it another id and name, or remove that app",
                    d.id, d.name, other.name, other.id
                )));
            }
        }
        // The names as they will be: checked before anything changes.
        for (i, d) in declared.iter().enumerate() {
            let key = OidcClient::name_key(&d.name);
            if declared[..i]
                .iter()
                .any(|o| OidcClient::name_key(&o.name) == key)
            {
                return Err(refused(format!(
                    "the config file declares the name {:?} twice",
                    d.name
                )));
            }
        }
        let known = self.group_names().await?;
        for d in declared {
            for g in d.groups.iter().filter(|g| !known.contains(g)) {
                tracing::warn!(
                    client = %d.id,
                    group = %g,
                    "the config file's [[oidc_client]] names a group that does not exist: nobody may use the app until it does (`gatehouse group add`)"
                );
            }
        }
        let mut synced = Synced::default();
        for s in stored.iter().filter(|s| s.declared) {
            if !declared.iter().any(|d| d.id == s.id) && self.store.delete_client(&s.id).await? {
                self.audit_client(s, "remove (no longer in the config file)")
                    .await?;
                synced.removed += 1;
            }
        }
        for d in declared {
            match stored.iter().find(|s| s.id == d.id) {
                Some(s) => {
                    let mut want = d.clone();
                    want.created_at = s.created_at;
                    if want != *s && self.store.update_client(want.clone()).await? {
                        self.audit_client(&want, "update (from the config file)")
                            .await?;
                        synced.updated += 1;
                    }
                }
                None => {
                    let mut new = d.clone();
                    new.created_at = self.clock.now();
                    if self.store.create_client(new.clone()).await? {
                        self.audit_client(&new, "add (from the config file)")
                            .await?;
                        synced.added += 1;
                    } else if self.store.client(&new.id).await?.is_none() {
                        return Err(refused(format!(
                            "the config file's [[oidc_client]] {:?} has the name {:?} of another app; see `gatehouse oidc client list`",
                            new.id, new.name
                        )));
                    }
                }
            }
        }
        Ok(synced)
    }

    /// Refuses to change an app the config file declares.
    pub fn refuse_if_declared(&self, client: &OidcClient, what: &str) -> AdminResult<()> {
        if client.declared {
            return Err(refused(format!(
                "{} is declared in the config file: to {what} it, edit its [[oidc_client]] table and reload (SIGHUP, or restart)",
                client.name
            )));
        }
        Ok(())
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
