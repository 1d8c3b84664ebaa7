//! `gatehouse oidc client add | list | show | remove | rotate-secret` and
//! `gatehouse oidc rotate-key | keys` (docs/oidc.md): the apps that log
//! users in through gatehouse, and the keys that sign their ID tokens.
//! What they do is `services::oidc_admin`; run through `admin::execute`,
//! on the running server or on the database directly.

use super::admin::{Ctx, Out};
use super::group::group_arg;
use crate::domain::GroupName;
use crate::domain::oidc::OidcClient;
use crate::services::oidc_admin::NewClient;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum OidcCommand {
    /// Manage the apps (OpenID Connect clients) that log users in here.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Make a new ID-token signing key: published now, signing in one
    /// hour; the old key stays published until its tokens expire.
    RotateKey {
        /// Sign with the new key at once and remove the old keys (after a
        /// leak: ID tokens signed with them stop verifying).
        #[arg(long)]
        now: bool,
    },
    /// Print a new random client secret and its SHA-256, for an app
    /// declared in the config file (`secret_sha256`); stores nothing.
    NewSecret,
    /// List the signing keys.
    Keys {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register an app; prints its client id and (unless --public) its
    /// secret, once.
    Add {
        /// What users see on the consent page, such as Grafana.
        name: String,
        /// The app's callback address, exactly as the app sends it
        /// (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where the app may send the browser after logging out
        /// (RP-initiated logout; repeat for several).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// An app that cannot keep a secret (a single-page or mobile
        /// app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Only members of these groups may use the app (comma-separated
        /// or repeated).
        #[arg(long, value_delimiter = ',', value_parser = group_arg, value_name = "GROUP")]
        groups: Vec<GroupName>,
        /// Skip the consent page (the team's own apps).
        #[arg(long)]
        trusted: bool,
    },
    /// List the apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one app (by client id or name).
    Show {
        client: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an app: its users' consents and tokens end.
    Remove { client: String },
    /// Give a confidential app a new secret (printed once); the old one
    /// stops working at once.
    RotateSecret { client: String },
}

pub async fn exec(ctx: &Ctx<'_>, cmd: OidcCommand, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    match cmd {
        OidcCommand::Client { command } => client(ctx, command, out).await?,
        OidcCommand::RotateKey { now } => {
            let r = admin.rotate_key(now).await?;
            if now {
                out.line(format!(
                    "the new key {} signs now; {} old key(s) removed: ID tokens they signed no longer verify, so users of apps that check them log in again",
                    r.kid, r.removed
                ));
            } else {
                out.line(format!(
                    "made the key {}: published now, it signs from {} on; the old key stays published until the ID tokens it signed have expired",
                    r.kid, r.signs_from
                ));
            }
        }
        OidcCommand::NewSecret => out.line(new_secret_text()),
        OidcCommand::Keys { json } => {
            let keys = admin.signing_keys().await?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|(kid, created, from, signing)| {
                        json!({"kid": kid, "created_at": created.to_string(), "signs_from": from.to_string(), "signing": signing})
                    })
                    .collect();
                out.line(serde_json::to_string_pretty(&rows)?);
            } else if keys.is_empty() {
                out.line("No signing key yet: the server makes one at its first start.");
            } else {
                out.line(format!(
                    "{:<18} {:<26} {:<26} NOW",
                    "KEY", "CREATED", "SIGNS FROM"
                ));
                for (kid, created, from, signing) in keys {
                    let now = if signing { "signing" } else { "published" };
                    out.line(format!(
                        "{kid:<18} {:<26} {:<26} {now}",
                        created.to_string(),
                        from.to_string()
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn client(ctx: &Ctx<'_>, cmd: ClientCommand, out: &mut Out) -> anyhow::Result<()> {
    let admin = &ctx.admin;
    let issuer = ctx
        .admin
        .links
        .base()
        .as_str()
        .trim_end_matches('/')
        .to_string();
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            groups,
            trusted,
        } => {
            let r = admin
                .add_client(NewClient {
                    name,
                    redirect_uris,
                    post_logout_redirect_uris,
                    public,
                    groups,
                    trusted,
                })
                .await?;
            out.line(format!("registered the app {}", r.client.name));
            for uri in r
                .client
                .redirect_uris
                .iter()
                .filter(|u| crate::domain::oidc::is_plain_http(u))
            {
                out.line(format!(
                    "  warning: {uri} is plain http: the app's codes cross the network unencrypted; use https unless the network is yours alone"
                ));
            }
            out.line(format!("  issuer:        {issuer}"));
            out.line(format!("  client id:     {}", r.client.id));
            match r.secret {
                Some(secret) => {
                    out.line(format!("  client secret: {secret}"));
                    out.line("Copy the secret now: gatehouse keeps only its hash. Lost it? `gatehouse oidc client rotate-secret` makes a new one.");
                }
                None => out.line("  a public client: no secret; it must use PKCE (S256)"),
            }
            out.line(format!(
                "The app finds everything else at {issuer}/.well-known/openid-configuration (docs/oidc.md)."
            ));
        }
        ClientCommand::List { json } => {
            let clients = admin.clients().await?;
            if json {
                let rows: Vec<_> = clients.iter().map(client_json).collect();
                out.line(serde_json::to_string_pretty(&rows)?);
            } else if clients.is_empty() {
                out.line("No apps yet. Register one with: gatehouse oidc client add NAME --redirect-uri URI");
            } else {
                out.line(format!(
                    "{:<24} {:<26} {:<13} GROUPS",
                    "APP", "CLIENT ID", "TYPE"
                ));
                for c in &clients {
                    out.line(format!(
                        "{:<24} {:<26} {:<13} {}",
                        c.name,
                        c.id,
                        kind(c),
                        groups_text(c)
                    ));
                }
            }
        }
        ClientCommand::Show { client, json } => {
            let c = admin.find_client(&client).await?;
            if json {
                out.line(serde_json::to_string_pretty(&client_json(&c))?);
            } else {
                out.line(format!("app:            {}", c.name));
                out.line(format!("client id:      {}", c.id));
                out.line(format!("type:           {}", kind(&c)));
                if c.declared {
                    out.line("source:         the config file ([[oidc_client]]): edit it there");
                }
                out.line(format!(
                    "consent page:   {}",
                    if c.trusted {
                        "skipped (trusted)"
                    } else {
                        "shown"
                    }
                ));
                out.line(format!("groups:         {}", groups_text(&c)));
                out.line(format!("created:        {}", c.created_at));
                for uri in &c.redirect_uris {
                    out.line(format!("redirect URI:   {uri}"));
                }
                for uri in &c.post_logout_redirect_uris {
                    out.line(format!("after logout:   {uri}"));
                }
                out.line(format!("issuer:         {issuer}"));
            }
        }
        ClientCommand::Remove { client } => {
            let c = admin.find_client(&client).await?;
            admin.remove_client(&c).await?;
            out.line(format!(
                "removed the app {} ({}); its users' consents and tokens ended",
                c.name, c.id
            ));
        }
        ClientCommand::RotateSecret { client } => {
            let c = admin.find_client(&client).await?;
            let secret = admin.rotate_secret(&c).await?;
            out.line(format!("a new secret for {} ({}):", c.name, c.id));
            out.line(format!("  client secret: {secret}"));
            out.line("The old secret stopped working. Put the new one into the app's settings now: gatehouse keeps only its hash.");
        }
    }
    Ok(())
}

/// `oidc new-secret`'s output: a random secret and the hex of its
/// SHA-256 as a config line (it needs no database).
pub fn new_secret_text() -> String {
    let secret = crate::crypto::random_token::<32>();
    let hash = crate::crypto::hex(&crate::crypto::sha256(secret.as_bytes()));
    format!(
        "client secret: {secret}\nsecret_sha256 = \"{hash}\"\n\
         Give the app the secret; put the secret_sha256 line into its [[oidc_client]] table \
         (or the secret alone into a file that secret_file names)."
    )
}

fn kind(c: &OidcClient) -> &'static str {
    match (c.is_public(), c.declared) {
        (true, false) => "public",
        (false, false) => "confidential",
        (true, true) => "public, config",
        (false, true) => "confidential, config",
    }
}

fn groups_text(c: &OidcClient) -> String {
    if c.groups.is_empty() {
        "everyone".into()
    } else {
        c.groups
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn client_json(c: &OidcClient) -> serde_json::Value {
    json!({
        "name": c.name,
        "client_id": c.id,
        "public": c.is_public(),
        "trusted": c.trusted,
        "declared_in_config": c.declared,
        "groups": c.groups,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "created_at": c.created_at.to_string(),
    })
}
