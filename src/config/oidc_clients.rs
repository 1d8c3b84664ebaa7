//! The `[[oidc_client]]` tables of the config file: apps declared there
//! rather than with `gatehouse oidc client add` (configuration kept in
//! git, containers). Read at start and again on SIGHUP; the server then
//! makes the store's declared apps match (`Admin::sync_declared_clients`).
//! Every mistake names the table by its number and says what to write.
//!
//! ```toml
//! [[oidc_client]]
//! id = "grafana"                      # the client_id
//! name = "Grafana"
//! secret_file = "/run/credentials/gatehouse.service/grafana"   # or secret_sha256
//! redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
//! groups = ["staff"]
//! trusted = true
//! ```

use crate::clock::Timestamp;
use crate::domain::GroupName;
use crate::domain::oidc::{OidcClient, check_redirect_uri, parse_client_name};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Option<String>,
    name: Option<String>,
    secret_file: Option<PathBuf>,
    secret_sha256: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    trusted: bool,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    oidc_client: Vec<toml::Value>,
}

/// A client id as a config file may give it: 3 to 64 of `A-Z a-z 0-9 .
/// _ -` (what every app's settings field accepts).
fn check_id(id: &str) -> Result<(), &'static str> {
    if !(3..=64).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(
            "id must be 3 to 64 letters, digits, dots, dashes or underscores, such as \"grafana\"",
        );
    }
    Ok(())
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The declared apps in the TOML `text` of the file at `path`; relative
/// `secret_file`s are read relative to the file's directory.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Vec<OidcClient>> {
    let raw: RawFile = toml::from_str(text).with_context(|| {
        format!(
            "the config file {}: `oidc_client` must be a list of [[oidc_client]] tables",
            path.display()
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut clients: Vec<OidcClient> = Vec::new();
    for (i, value) in raw.oidc_client.into_iter().enumerate() {
        let n = i + 1;
        let at = || {
            format!(
                "the config file {}, [[oidc_client]] number {n}",
                path.display()
            )
        };
        let c: RawClient = value.try_into().with_context(|| {
            format!("{}: the keys are id, name, secret_file or secret_sha256 (or public = true), redirect_uris, post_logout_redirect_uris, groups, trusted", at())
        })?;
        let id = c.id.unwrap_or_default();
        check_id(&id).map_err(|m| anyhow::anyhow!("{}: {m}", at()))?;
        let name = parse_client_name(c.name.as_deref().unwrap_or_default())
            .map_err(|m| anyhow::anyhow!("{}: name: {m}", at()))?;
        if c.redirect_uris.is_empty() {
            bail!(
                "{}: give redirect_uris, the app's callback address(es), such as redirect_uris = [\"https://app.example.com/callback\"]",
                at()
            );
        }
        for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
            check_redirect_uri(uri).map_err(|m| anyhow::anyhow!("{}: {m}", at()))?;
        }
        let secret_hash = match (c.secret_file, c.secret_sha256, c.public) {
            (Some(file), None, false) => {
                let file = dir.join(file);
                let secret = std::fs::read_to_string(&file).with_context(|| {
                    format!("{}: cannot read secret_file {}", at(), file.display())
                })?;
                let secret = secret.trim_end_matches(['\n', '\r']);
                if secret.len() < 32 {
                    bail!(
                        "{}: the secret in {} has {} characters; use at least 32 random ones (`gatehouse oidc new-secret` makes one)",
                        at(),
                        file.display(),
                        secret.len()
                    );
                }
                Some(crate::crypto::sha256(secret.as_bytes()))
            }
            (None, Some(hex), false) => Some(hex32(&hex).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: secret_sha256 must be 64 hex digits, the SHA-256 of the secret (`gatehouse oidc new-secret` prints both)",
                    at()
                )
            })?),
            (None, None, true) => None,
            (None, None, false) => bail!(
                "{}: give secret_file or secret_sha256 for a confidential app, or public = true for one that cannot keep a secret (it must use PKCE)",
                at()
            ),
            _ => bail!(
                "{}: give one of secret_file, secret_sha256 or public = true",
                at()
            ),
        };
        let mut groups = Vec::new();
        for g in &c.groups {
            groups.push(
                GroupName::parse(g)
                    .map_err(|m| anyhow::anyhow!("{}: groups: {m} (got {g:?})", at()))?,
            );
        }
        groups.sort();
        groups.dedup();
        if clients.iter().any(|o| o.id == id) {
            bail!("{}: the id {id:?} is declared twice", at());
        }
        if clients
            .iter()
            .any(|o| OidcClient::name_key(&o.name) == OidcClient::name_key(&name))
        {
            bail!("{}: the name {name:?} is declared twice", at());
        }
        clients.push(OidcClient {
            id,
            name,
            secret_hash,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            groups,
            trusted: c.trusted,
            created_at: Timestamp::from_millis(0),
            declared: true,
        });
    }
    Ok(clients)
}

/// The declared apps of the config file at `path` (none without a file).
pub fn load(path: Option<&Path>) -> anyhow::Result<Vec<OidcClient>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    parse(&super::access::read_text(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> anyhow::Result<Vec<OidcClient>> {
        parse(text, Path::new("/etc/gatehouse/gatehouse.toml"))
    }

    #[test]
    fn a_declared_client_with_a_hashed_secret() {
        let hash = crate::crypto::hex(&crate::crypto::sha256(b"s"));
        let clients = parse_text(&format!(
            "[[oidc_client]]\nid = \"grafana\"\nname = \"Grafana\"\nsecret_sha256 = \"{hash}\"\n\
             redirect_uris = [\"https://g.example/cb\"]\ngroups = [\"Staff\", \"ops\"]\ntrusted = true\n"
        ))
        .unwrap();
        assert_eq!(clients.len(), 1);
        let c = &clients[0];
        assert!(c.declared && c.trusted && c.secret_matches("s"));
        assert_eq!(c.groups.len(), 2);
    }

    #[test]
    fn mistakes_name_the_table_and_say_what_to_write() {
        let err = |text: &str| format!("{:#}", parse_text(text).unwrap_err());
        assert!(err("[[oidc_client]]\nid = \"a b\"\n").contains("number 1: id must be"));
        let no_secret = err(
            "[[oidc_client]]\nid = \"app\"\nname = \"App\"\nredirect_uris = [\"https://a/cb\"]\n",
        );
        assert!(no_secret.contains("public = true"), "{no_secret}");
        let typo = err("[[oidc_client]]\nid = \"app\"\nredirect_uri = \"x\"\n");
        assert!(typo.contains("the keys are"), "{typo}");
        let twice = err(
            "[[oidc_client]]\nid = \"app\"\nname = \"A\"\npublic = true\nredirect_uris = [\"https://a/cb\"]\n\
             [[oidc_client]]\nid = \"app\"\nname = \"B\"\npublic = true\nredirect_uris = [\"https://a/cb\"]\n",
        );
        assert!(
            twice.contains("number 2") && twice.contains("declared twice"),
            "{twice}"
        );
        let short = err(
            "[[oidc_client]]\nid = \"app\"\nname = \"A\"\nsecret_sha256 = \"ab\"\nredirect_uris = [\"https://a/cb\"]\n",
        );
        assert!(short.contains("64 hex digits"), "{short}");
    }
}
