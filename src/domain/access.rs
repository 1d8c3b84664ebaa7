//! Access rules for the apps behind the proxy (SPEC §9): which requests
//! pass without a login, which need one (and whose), which are refused.
//! Rules are tried in order and the first that matches decides; a request
//! for a host that no rule matches is denied. Pure: the rules come from the
//! config file (`config::access`), the request from the proxy's headers
//! (`http::routes::authz`), the user from the session.
//!
//! A rule matches a request by host (exact, or `*.example.com` for every
//! sub-domain), path prefix and method. A rule that names `users` or
//! `groups` matches only those people (as in Authelia's `subject`): for
//! anyone else the next rule is tried, and someone not logged in is asked
//! to log in first, since the answer depends on who they are.

use super::User;
use super::group::GroupName;
use std::fmt;

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, logged in or not.
    Bypass,
    /// Logged-in users (those named, when the rule names any).
    Allow,
    /// Nobody (of those named, when the rule names any).
    Deny,
}

impl Policy {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "bypass" => Ok(Self::Bypass),
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            // Authelia's names for a login with one factor: the same here.
            "one_factor" => Ok(Self::Allow),
            other => Err(format!(
                "policy {other:?} is not one of bypass, allow, deny"
            )),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bypass => "bypass",
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// A host a rule is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// This host exactly (lower case, no port).
    Exact(String),
    /// Every sub-domain of this one (`*.example.com`: `.example.com`),
    /// not the domain itself.
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim().to_ascii_lowercase();
        let (wild, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(format!(
                "host {raw:?} is not a host name; write app.example.com, or *.example.com for every sub-domain (no scheme, port or path)"
            ));
        }
        Ok(if wild {
            Self::Subdomains(format!(".{name}"))
        } else {
            Self::Exact(name.to_string())
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Subdomains(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(h) => f.write_str(h),
            Self::Subdomains(s) => write!(f, "*{s}"),
        }
    }
}

/// One `[[access]]` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRule {
    pub hosts: Vec<HostPattern>,
    /// Path prefixes, each ending at a segment boundary (`/api` matches
    /// `/api` and `/api/x`, not `/apiary`); empty: every path.
    pub paths: Vec<String>,
    /// Upper-case methods; empty: every method.
    pub methods: Vec<String>,
    pub policy: Policy,
    /// Usernames or email addresses (lower case).
    pub users: Vec<String>,
    pub groups: Vec<GroupName>,
}

impl AccessRule {
    /// Whether the rule is for this request (host, path, method).
    pub fn matches_request(&self, target: &Target) -> bool {
        self.hosts.iter().any(|h| h.matches(&target.host))
            && (self.paths.is_empty()
                || self.paths.iter().any(|p| path_has_prefix(&target.path, p)))
            && (self.methods.is_empty() || self.methods.contains(&target.method))
    }

    /// Whether the rule names the people it is for.
    pub fn has_subjects(&self) -> bool {
        !self.users.is_empty() || !self.groups.is_empty()
    }

    /// Whether `user` is one of the people the rule names.
    pub fn names(&self, user: &User) -> bool {
        let username = user.username.key();
        self.users
            .iter()
            .any(|u| *u == username || u == user.email.as_str())
            || self.groups.iter().any(|g| user.in_group(g))
    }

    /// The rule in a line, for `access check` and logs.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "hosts {}",
            self.hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )];
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", self.paths.join(", ")));
        }
        if !self.methods.is_empty() {
            parts.push(format!("methods {}", self.methods.join(", ")));
        }
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!(
                "groups {}",
                self.groups
                    .iter()
                    .map(GroupName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        format!("{} ({})", self.policy, parts.join("; "))
    }
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The request a proxy asks about, normalised (`Target::new`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Lower case, without port.
    pub host: String,
    /// Dot segments resolved, percent-escapes decoded, repeated slashes
    /// made one: what an app behind the proxy will most likely serve.
    pub path: String,
    /// Upper case.
    pub method: String,
}

impl Target {
    /// `path` is the URL's path as parsed (`url::Url::path`: dot
    /// segments, also `%2e`, resolved).
    pub fn new(host: &str, path: &str, method: &str) -> Self {
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let mut clean = String::with_capacity(decoded.len());
        let mut segments: Vec<&str> = Vec::new();
        // Decoding may reveal new dot segments (`%252e` stays, but `%2f..`
        // becomes `/..`): resolve again on the decoded path.
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        clean.push('/');
        clean.push_str(&segments.join("/"));
        if decoded.ends_with('/') && !segments.is_empty() {
            clean.push('/');
        }
        Self {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            path: clean,
            method: method.to_ascii_uppercase(),
        }
    }
}

/// What a rule (or the lack of one) says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through (to the app, with the user's headers if known).
    Pass,
    /// Who asks decides: log in first.
    NeedLogin,
    /// Refuse it (403).
    Deny,
}

/// A verdict and the rule that gave it (None: no rule matched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub rule: Option<usize>,
}

/// Why one rule did or did not decide, for `access check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Not for this host, path or method.
    NotThisRequest,
    /// For this request, but it names other people.
    NotThisUser,
    Decides(Verdict),
}

/// The rules of the config file, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRules(pub Vec<AccessRule>);

impl AccessRules {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What rule `rule` says about `target` for `user`.
    pub fn step(rule: &AccessRule, target: &Target, user: Option<&User>) -> Step {
        if !rule.matches_request(target) {
            return Step::NotThisRequest;
        }
        if rule.policy == Policy::Bypass {
            return Step::Decides(Verdict::Pass);
        }
        let Some(user) = user else {
            // Allow needs a login; so does a rule that names people,
            // whatever its policy: only a login says who asks.
            return Step::Decides(if rule.policy == Policy::Allow || rule.has_subjects() {
                Verdict::NeedLogin
            } else {
                Verdict::Deny
            });
        };
        if rule.has_subjects() && !rule.names(user) {
            return Step::NotThisUser;
        }
        Step::Decides(match rule.policy {
            Policy::Allow | Policy::Bypass => Verdict::Pass,
            Policy::Deny => Verdict::Deny,
        })
    }

    /// The first rule that decides; none decides: denied.
    pub fn decide(&self, target: &Target, user: Option<&User>) -> Decision {
        for (i, rule) in self.0.iter().enumerate() {
            if let Step::Decides(verdict) = Self::step(rule, target, user) {
                return Decision {
                    verdict,
                    rule: Some(i),
                };
            }
        }
        Decision {
            verdict: Verdict::Deny,
            rule: None,
        }
    }

    /// Every rule's step up to the one that decides (for `access check`).
    pub fn explain(&self, target: &Target, user: Option<&User>) -> Vec<(usize, Step)> {
        let mut steps = Vec::new();
        for (i, rule) in self.0.iter().enumerate() {
            let step = Self::step(rule, target, user);
            let decided = matches!(step, Step::Decides(_));
            steps.push((i, step));
            if decided {
                break;
            }
        }
        steps
    }

    /// Whether some rule names this host (exactly or as a sub-domain):
    /// where a return address after login may point.
    pub fn protects_host(&self, host: &str) -> bool {
        self.0
            .iter()
            .any(|r| r.hosts.iter().any(|h| h.matches(host)))
    }
}

/// A domain the session cookie is set for (`--cookie-domain`), so that
/// every app on its sub-domains shares one login, with the address of the
/// gatehouse login page for it when it is not the base URL's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieDomain {
    /// Lower case, no leading dot.
    pub domain: String,
    pub login_url: Option<url::Url>,
}

impl CookieDomain {
    /// `example.com` or `example.com=https://auth.example.com/`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (name, url) = match raw.split_once('=') {
            Some((n, u)) => (n.trim(), Some(u.trim())),
            None => (raw.trim(), None),
        };
        let name = name.trim_start_matches('.');
        let HostPattern::Exact(domain) = HostPattern::parse(name)? else {
            return Err(format!(
                "{raw:?}: a cookie domain is a plain domain such as example.com (it covers every sub-domain)"
            ));
        };
        if !domain.contains('.')
            || domain
                .split('.')
                .all(|l| l.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!(
                "{raw:?} is too wide for a cookie: give the team's own domain, such as example.com"
            ));
        }
        let login_url = match url {
            None => None,
            Some(u) => {
                let parsed = url::Url::parse(u).map_err(|_| {
                    format!("{raw:?}: {u:?} is not a URL; write DOMAIN=https://auth.DOMAIN/")
                })?;
                let inside = parsed
                    .host_str()
                    .is_some_and(|h| h == domain || h.ends_with(&format!(".{domain}")));
                if !matches!(parsed.scheme(), "http" | "https") || !inside {
                    return Err(format!(
                        "{raw:?}: the login URL must be an http(s) address inside {domain}, such as https://auth.{domain}/"
                    ));
                }
                Some(parsed)
            }
        };
        Ok(Self { domain, login_url })
    }

    /// Whether the cookie reaches `host` (lower case, no port).
    pub fn covers(&self, host: &str) -> bool {
        host == self.domain
            || (host.len() > self.domain.len()
                && host.ends_with(self.domain.as_str())
                && host.as_bytes()[host.len() - self.domain.len() - 1] == b'.')
    }
}

impl fmt::Display for CookieDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.login_url {
            Some(u) => write!(f, "{}={u}", self.domain),
            None => f.write_str(&self.domain),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::{EmailAddress, Role, UserId, UserStatus, Username};

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            id: UserId(1),
            email: EmailAddress::parse(&format!("{name}@example.com")).unwrap(),
            username: Username::parse(name).unwrap(),
            password_hash: String::new(),
            role: Role::User,
            status: UserStatus::Active,
            created_at: Timestamp::from_millis(0),
            last_login: None,
            previous_login: None,
            email_verified_at: None,
            consent: None,
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g).unwrap())
                .collect(),
        }
    }

    fn rule(host: &str, policy: Policy) -> AccessRule {
        AccessRule {
            hosts: vec![HostPattern::parse(host).unwrap()],
            paths: vec![],
            methods: vec![],
            policy,
            users: vec![],
            groups: vec![],
        }
    }

    fn get(host: &str, path: &str) -> Target {
        Target::new(host, path, "get")
    }

    #[test]
    fn the_first_matching_rule_decides_and_no_rule_denies() {
        let mut public = rule("wiki.example.com", Policy::Bypass);
        public.paths = vec!["/public".into()];
        let mut ops = rule("wiki.example.com", Policy::Allow);
        ops.groups = vec![GroupName::parse("ops").unwrap()];
        let mut devs = rule("*.example.com", Policy::Allow);
        devs.users = vec!["dev".into()];
        let rules = AccessRules(vec![public, ops, devs]);
        let ann = user("ann", &["ops"]);
        let bob = user("bob", &[]);
        let dev = user("dev", &[]);

        let d = rules.decide(&get("wiki.example.com", "/public/a"), None);
        assert_eq!((d.verdict, d.rule), (Verdict::Pass, Some(0)));
        assert_eq!(
            rules
                .decide(&get("wiki.example.com", "/publicity"), None)
                .verdict,
            Verdict::NeedLogin,
            "a prefix ends at a segment boundary"
        );
        assert_eq!(
            rules.decide(&get("wiki.example.com", "/"), Some(&ann)).rule,
            Some(1)
        );
        let d = rules.decide(&get("wiki.example.com", "/"), Some(&bob));
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
        assert_eq!(
            rules.decide(&get("wiki.example.com", "/"), Some(&dev)).rule,
            Some(2)
        );
        assert_eq!(
            rules.decide(&get("example.com", "/"), Some(&dev)).verdict,
            Verdict::Deny,
            "*.example.com is not example.com itself"
        );
        assert_eq!(
            rules.decide(&get("other.org", "/"), None).verdict,
            Verdict::Deny,
            "a host without a rule is denied, even to strangers (not sent to log in)"
        );
    }

    #[test]
    fn paths_are_judged_as_the_app_will_read_them() {
        let mut public = rule("app.example.com", Policy::Bypass);
        public.paths = vec!["/public/".into()];
        let rules = AccessRules(vec![public, rule("app.example.com", Policy::Allow)]);
        for sneaky in [
            "/public/%2e%2e/admin",
            "/public/..%2fadmin",
            "/public%2f..%2fadmin",
        ] {
            let t = get("app.example.com", sneaky);
            assert_eq!(t.path, "/admin", "{sneaky}");
            assert_eq!(
                rules.decide(&t, None).verdict,
                Verdict::NeedLogin,
                "{sneaky}"
            );
        }
        assert_eq!(
            get("APP.example.com.", "//public//x").host,
            "app.example.com"
        );
        assert_eq!(get("a", "//public//x").path, "/public/x");
        assert_eq!(get("a", "/%70ublic/").path, "/public/");
    }

    #[test]
    fn deny_for_named_people_asks_strangers_to_log_in_first() {
        let mut contractors = rule("app.example.com", Policy::Deny);
        contractors.groups = vec![GroupName::parse("contractors").unwrap()];
        contractors.methods = vec!["POST".into()];
        let rules = AccessRules(vec![contractors, rule("app.example.com", Policy::Allow)]);
        let post = Target::new("app.example.com", "/", "post");
        assert_eq!(rules.decide(&post, None).verdict, Verdict::NeedLogin);
        assert_eq!(
            rules
                .decide(&post, Some(&user("kit", &["contractors"])))
                .verdict,
            Verdict::Deny
        );
        assert_eq!(
            rules.decide(&post, Some(&user("amy", &[]))).verdict,
            Verdict::Pass
        );
        assert_eq!(
            rules
                .decide(
                    &get("app.example.com", "/"),
                    Some(&user("kit", &["contractors"]))
                )
                .verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn explain_ends_where_decide_decides() {
        let mut named = rule("app.example.com", Policy::Allow);
        named.users = vec!["ann".into()];
        let rules = AccessRules(vec![rule("x.example.com", Policy::Allow), named]);
        let bob = user("bob", &[]);
        let t = get("app.example.com", "/");
        assert_eq!(
            rules.explain(&t, Some(&bob)),
            vec![(0, Step::NotThisRequest), (1, Step::NotThisUser)]
        );
        let ann = user("ann", &[]);
        assert_eq!(
            rules.explain(&t, Some(&ann)).last(),
            Some(&(1, Step::Decides(rules.decide(&t, Some(&ann)).verdict)))
        );
    }

    #[test]
    fn cookie_domains_cover_their_sub_domains_only() {
        let d = CookieDomain::parse(".Example.com").unwrap();
        assert!(d.covers("example.com") && d.covers("wiki.example.com"));
        assert!(!d.covers("badexample.com") && !d.covers("example.com.evil.org"));
        assert!(CookieDomain::parse("com").is_err());
        assert!(CookieDomain::parse("*.example.com").is_err());
        assert!(CookieDomain::parse("example.org=https://auth.example.com/").is_err());
        let with = CookieDomain::parse("example.org=https://auth.example.org/").unwrap();
        assert_eq!(
            with.login_url.unwrap().as_str(),
            "https://auth.example.org/"
        );
    }

    #[test]
    fn host_patterns_are_plain_names() {
        assert!(HostPattern::parse("https://app.example.com").is_err());
        assert!(HostPattern::parse("app.example.com:8080").is_err());
        assert!(HostPattern::parse("*").is_err());
        assert_eq!(
            HostPattern::parse("*.Example.com").unwrap(),
            HostPattern::Subdomains(".example.com".into())
        );
    }
}
