//! Where a browser may be sent back to after logging in (`rd`, SPEC §9):
//! only to gatehouse itself, to a host inside a cookie domain, or to a
//! host an access rule protects — never an open redirect. The address is
//! parsed as a browser parses it (WHATWG URL: backslashes, tabs, `//`,
//! percent-escapes and IDN are resolved the way the browser will), and
//! judged on what it parsed to.

use super::access::{AccessRules, CookieDomain};
use url::Url;

/// What a return address may point at.
pub struct ReturnRules<'a> {
    /// gatehouse's own base URL.
    pub base: &'a Url,
    pub cookie_domains: &'a [CookieDomain],
    pub access: &'a AccessRules,
}

impl ReturnRules<'_> {
    /// The address to send the browser to, or None (send it to `/`).
    /// https only (http too when gatehouse itself is on http); no user
    /// name or password in it; at most 4 KiB.
    pub fn check(&self, raw: &str) -> Option<Url> {
        if raw.is_empty() || raw.len() > 4096 || raw.chars().any(|c| c.is_control()) {
            return None;
        }
        let url = self.base.join(raw).ok()?;
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.base.scheme() == "http",
            _ => false,
        };
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        if url.origin() == self.base.origin() {
            return Some(url);
        }
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            // An address such as https://10.0.0.5/ is no team's app name.
            _ => return None,
        };
        let inside =
            self.cookie_domains.iter().any(|d| d.covers(&host)) || self.access.protects_host(&host);
        inside.then_some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::{AccessRule, HostPattern, Policy};

    fn judge(base: &str, raw: &str) -> Option<String> {
        let base = Url::parse(base).unwrap();
        let domains = vec![CookieDomain::parse("example.com").unwrap()];
        let access = AccessRules(vec![AccessRule {
            hosts: vec![HostPattern::parse("files.example.org").unwrap()],
            paths: vec![],
            methods: vec![],
            policy: Policy::Allow,
            users: vec![],
            groups: vec![],
        }]);
        let rules = ReturnRules {
            base: &base,
            cookie_domains: &domains,
            access: &access,
        };
        rules.check(raw).map(|u| u.to_string())
    }

    const BASE: &str = "https://auth.example.com/";

    #[test]
    fn inside_the_domains_and_protected_hosts_it_returns() {
        assert_eq!(
            judge(BASE, "https://wiki.example.com/page?x=1").as_deref(),
            Some("https://wiki.example.com/page?x=1")
        );
        assert_eq!(
            judge(BASE, "https://example.com/").as_deref(),
            Some("https://example.com/")
        );
        assert!(judge(BASE, "https://files.example.org/a").is_some());
        assert_eq!(
            judge(BASE, "/account").as_deref(),
            Some("https://auth.example.com/account")
        );
    }

    #[test]
    fn every_trick_for_another_site_goes_nowhere() {
        for evil in [
            "//evil.com",
            "///evil.com",
            "https:evil.com/", // relative on https: stays ours, see below
            "\\\\evil.com",
            "/\\evil.com",
            "https://evil.com",
            "https://example.com.evil.com/",
            "https://evilexample.com/",
            "https://wiki.example.com@evil.com/",
            "https://user:pw@wiki.example.com/",
            "https://evil.com%2f.example.com/",
            "https://evil.com%40wiki.example.com/",
            "https://exаmple.com/", // Cyrillic а: xn--exmple-4nf.com
            "https://wiki.example.com\t.evil.com/",
            "http://wiki.example.com/", // plain http from an https gatehouse
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://10.0.0.5/",
            "",
        ] {
            let got = judge(BASE, evil);
            let ours = got
                .as_deref()
                .is_some_and(|u| u.starts_with("https://auth.example.com/"));
            assert!(got.is_none() || ours, "{evil:?} -> {got:?}");
        }
        // `https:evil.com` is a path on our own host, not evil.com.
        assert_eq!(
            judge(BASE, "https:evil.com/").as_deref(),
            Some("https://auth.example.com/evil.com/")
        );
    }

    #[test]
    fn plain_http_only_when_gatehouse_is_on_http() {
        assert!(
            judge(
                "http://auth.example.com:8080/",
                "http://wiki.example.com:81/"
            )
            .is_some()
        );
        assert!(judge(BASE, "http://wiki.example.com/").is_none());
    }
}
