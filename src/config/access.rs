//! The `[[access]]` rules of the config file (SPEC §9), read into
//! `domain::access::AccessRules`. Only the file holds them (a list of
//! tables has no flag); `gatehouse serve` reads them at start and again on
//! SIGHUP. Every mistake names the rule by its number and says what to
//! write instead.

use crate::domain::GroupName;
use crate::domain::access::{AccessRule, AccessRules, HostPattern, Policy};
use anyhow::Context;
use serde::Deserialize;
use std::path::Path;

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(alias = "host", alias = "domain")]
    hosts: Option<OneOrMany>,
    #[serde(alias = "path")]
    paths: Option<OneOrMany>,
    #[serde(alias = "method")]
    methods: Option<OneOrMany>,
    policy: Option<String>,
    #[serde(alias = "user")]
    users: Option<OneOrMany>,
    #[serde(alias = "group")]
    groups: Option<OneOrMany>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    access: Vec<toml::Value>,
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The rules in the TOML text of the file at `path` (for messages).
pub fn parse(text: &str, path: &Path) -> anyhow::Result<AccessRules> {
    let raw: RawFile = toml::from_str(text).with_context(|| {
        format!(
            "the config file {}: `access` must be a list of [[access]] tables",
            path.display()
        )
    })?;
    let mut rules = Vec::new();
    for (i, value) in raw.access.into_iter().enumerate() {
        let n = i + 1;
        let fail = |why: String| {
            anyhow::anyhow!(
                "the config file {}, [[access]] rule {n}: {why}. See docs/forward-auth.md, \"Access rules\"",
                path.display()
            )
        };
        let rule: RawRule = value
            .try_into()
            .map_err(|e: toml::de::Error| fail(e.message().to_string()))?;
        rules.push(rule_of(rule).map_err(fail)?);
    }
    Ok(AccessRules(rules))
}

/// The rules of the config file at `path` (none without a file).
pub fn load(path: Option<&Path>) -> anyhow::Result<AccessRules> {
    let Some(path) = path else {
        return Ok(AccessRules::default());
    };
    parse(&read_text(path)?, path)
}

/// The config file's text, for the tables that SIGHUP reads again.
pub(super) fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the config file {}; check --config",
            path.display()
        )
    })
}

fn rule_of(raw: RawRule) -> Result<AccessRule, String> {
    let hosts = raw
        .hosts
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .iter()
        .map(|h| HostPattern::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err("it has no `hosts`; write hosts = [\"app.example.com\"]".into());
    }
    let policy = Policy::parse(
        raw.policy
            .as_deref()
            .ok_or("it has no `policy`; write policy = \"allow\" (or \"bypass\", \"deny\")")?,
    )?;
    let paths = raw.paths.map(OneOrMany::into_vec).unwrap_or_default();
    for p in &paths {
        if !p.starts_with('/') || p.contains(['?', '#']) || p.contains("/../") || p.contains("/./")
        {
            return Err(format!(
                "path {p:?} must be a plain path prefix starting with /, such as \"/api\""
            ));
        }
    }
    let methods: Vec<String> = raw
        .methods
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    if let Some(bad) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(format!(
            "method {bad:?} is not an HTTP method; write GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS"
        ));
    }
    let users: Vec<String> = raw
        .users
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.trim().to_lowercase())
        .collect();
    if users.iter().any(String::is_empty) {
        return Err("a user is empty; write usernames or email addresses".into());
    }
    let groups = raw
        .groups
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .iter()
        .map(|g| GroupName::parse(g).map_err(|m| format!("group {g:?}: {m}")))
        .collect::<Result<Vec<_>, _>>()?;
    if policy == Policy::Bypass && (!users.is_empty() || !groups.is_empty()) {
        return Err(
            "a bypass rule lets everyone in, logged in or not, so it cannot name users or groups; use policy = \"allow\"".into(),
        );
    }
    Ok(AccessRule {
        hosts,
        paths,
        methods,
        policy,
        users,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> anyhow::Result<AccessRules> {
        parse(text, Path::new("gatehouse.toml"))
    }

    #[test]
    fn rules_are_read_in_order_with_their_aliases() {
        let rules = p(r#"
            listen = "127.0.0.1:9091"
            [[access]]
            host = "wiki.example.com"
            paths = ["/public"]
            policy = "bypass"
            [[access]]
            hosts = ["*.example.com"]
            policy = "one_factor"
            groups = ["Ops"]
            methods = ["get", "POST"]
        "#)
        .unwrap();
        assert_eq!(rules.0.len(), 2);
        assert_eq!(rules.0[0].policy, Policy::Bypass);
        assert_eq!(rules.0[1].policy, Policy::Allow);
        assert_eq!(rules.0[1].groups[0].as_str(), "ops");
        assert_eq!(rules.0[1].methods, vec!["GET", "POST"]);
    }

    #[test]
    fn each_mistake_names_its_rule_and_the_fix() {
        for (text, says) in [
            (
                "[[access]]\npolicy = \"allow\"",
                "rule 1: it has no `hosts`",
            ),
            ("[[access]]\nhosts = \"a.example.com\"", "no `policy`"),
            (
                "[[access]]\nhosts = \"a.example.com\"\npolicy = \"maybe\"",
                "not one of bypass",
            ),
            (
                "[[access]]\nhosts = \"https://a.example.com/\"\npolicy = \"allow\"",
                "not a host name",
            ),
            (
                "[[access]]\nhosts = \"a.example.com\"\npolicy = \"bypass\"\ngroups = [\"x\"]",
                "cannot name users",
            ),
            (
                "[[access]]\nhosts = \"a.example.com\"\npolicy = \"allow\"\npaths = \"api\"",
                "starting with /",
            ),
            (
                "[[access]]\nhosts = \"a.example.com\"\npolicy = \"allow\"\nmethods = \"FETCH\"",
                "not an HTTP method",
            ),
            (
                "[[access]]\nhosts = \"a.example.com\"\npolicy = \"allow\"\nsubject = \"x\"",
                "unknown field",
            ),
        ] {
            let err = format!("{:#}", p(text).unwrap_err());
            assert!(err.contains(says), "{text}: {err}");
            assert!(
                err.contains("rule 1") || err.contains("[[access]]"),
                "{err}"
            );
        }
    }
}
