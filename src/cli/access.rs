//! `gatehouse access check [--user ID] [--method M] URL`: which access
//! rule decides a request and why (SPEC §9), with the running server's
//! rules when it runs (else the config file's).

use super::UsageError;
use super::admin::{Ctx, Out};
use crate::domain::LoginId;
use crate::domain::access::{AccessRules, Step, Target, Verdict};
use crate::services::admin::{join_groups, name};
use clap::Subcommand;
use url::Url;

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Say which rule decides a request to URL, for a user or for
    /// someone not logged in, and why.
    Check {
        /// The address as the browser asks for it, such as https://wiki.example.com/admin.
        url: String,
        /// Who asks (email address or username) [default: someone not logged in].
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
    },
}

pub async fn exec(ctx: &Ctx<'_>, cmd: AccessCommand, out: &mut Out) -> anyhow::Result<()> {
    let AccessCommand::Check { url, user, method } = cmd;
    let parsed = Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            UsageError(format!(
                "{url:?} is not a full address: write it as the browser asks for it, such as https://wiki.example.com/page"
            ))
        })?;
    let user = match user {
        Some(raw) => {
            let id = LoginId::parse(&raw).map_err(|m| UsageError(m.to_string()))?;
            Some(ctx.admin.find(&id).await?)
        }
        None => None,
    };
    let target = Target::new(
        parsed.host_str().unwrap_or_default(),
        parsed.path(),
        &method,
    );
    let rules: &AccessRules = &ctx.access;
    let who = match &user {
        Some(u) if u.groups.is_empty() => format!("{} (in no group)", name(u)),
        Some(u) => format!("{} (groups {})", name(u), join_groups(&u.groups)),
        None => "someone not logged in".to_string(),
    };
    out.line(format!(
        "{} {}{} for {who}:",
        target.method, target.host, target.path
    ));
    if rules.is_empty() {
        out.line("  there are no [[access]] rules (in the config file given with --config): every protected address is denied");
    }
    let steps = rules.explain(&target, user.as_ref());
    for (i, step) in &steps {
        let rule = &rules.0[*i];
        let said = match step {
            Step::NotThisRequest => "not for this host, path or method".to_string(),
            Step::NotThisUser => "for this request, but it names other people".to_string(),
            Step::Decides(v) => format!("decides: {}", verdict_text(*v)),
        };
        out.line(format!("  rule {}: {}: {said}", i + 1, rule.describe()));
    }
    let decision = rules.decide(&target, user.as_ref());
    out.line(match decision.rule {
        Some(i) => format!("=> {} by rule {}", verdict_text(decision.verdict), i + 1),
        None => "=> denied: no rule matches, and a protected host with no matching rule is denied. Add an [[access]] rule for it".to_string(),
    });
    Ok(())
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "let through",
        Verdict::NeedLogin => "sent to log in first",
        Verdict::Deny => "denied (403)",
    }
}
