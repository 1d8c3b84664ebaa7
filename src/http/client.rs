//! Who the client is and which host it asked for, when gatehouse may sit
//! behind a reverse proxy.
//!
//! - `TrustedProxies` (`--trusted-proxies`): the peers whose forwarding
//!   headers are believed. From any other peer, `X-Forwarded-For`,
//!   `X-Real-IP` and `Forwarded` change nothing: the client is the socket's
//!   peer.
//! - `client_address`: from a trusted peer, the right-most address of the
//!   forwarding chain that is not itself a trusted proxy (a client can
//!   prepend anything to `X-Forwarded-For`; it cannot forge what our own
//!   proxies append).
//! - `AllowedHosts` (`--allowed-hosts`): the `Host` names gatehouse answers
//!   to; others get 421 (DNS rebinding).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The address ranges of the reverse proxies in front of gatehouse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `none`, or a comma-separated list of CIDRs (`10.0.0.0/8`), single
    /// addresses (`192.0.2.7`) and `loopback` (127.0.0.0/8 and ::1).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") || text.is_empty() {
            return Ok(Self::none());
        }
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim) {
            if item.eq_ignore_ascii_case("loopback") {
                nets.push(
                    IpNet::new(Ipv4Addr::new(127, 0, 0, 0).into(), 8).expect("a valid prefix"),
                );
                nets.push(IpNet::new(Ipv6Addr::LOCALHOST.into(), 128).expect("a valid prefix"));
            } else if let Ok(net) = item.parse::<IpNet>() {
                nets.push(net.trunc());
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else {
                return Err(format!(
                    "{item:?} is not an address range: write CIDRs such as 10.0.0.0/8 or \
                     192.0.2.7, separated by commas, or loopback, or none"
                ));
            }
        }
        Ok(Self(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let list: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// IPv4 peers of a dual-stack socket arrive as `::ffff:a.b.c.d`: one
/// address, one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then
/// the nearest hop of the forwarding chain that is not a trusted proxy.
/// Headers are read in the order `Forwarded` (RFC 7239), `X-Forwarded-For`,
/// `X-Real-IP`; the first present one is the chain. An entry that is not
/// an address (`unknown`, an obfuscated name, garbage) ends the walk at the
/// last trusted hop: nothing beyond it can be checked.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(ip) = hop else {
            return client;
        };
        client = canonical(*ip);
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// The hops the proxies wrote, left (farthest) to right (nearest); `None`
/// for an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
                    })
                    .and_then(forwarded_node)
            })
            .collect();
    }
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| plain_node(hop.trim()))
            .collect();
    }
    values("x-real-ip")
        .last()
        .map(|v| vec![plain_node(v.trim())])
        .unwrap_or_default()
}

/// A `for=` node of RFC 7239: `192.0.2.60`, `"192.0.2.60:8080"`,
/// `"[2001:db8::1]:4711"`.
fn forwarded_node(raw: &str) -> Option<IpAddr> {
    let node = raw.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let host = match node.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => node,
    };
    host.parse().ok()
}

/// An `X-Forwarded-For` / `X-Real-IP` entry: an address, perhaps with a
/// port (`192.0.2.60:1234`, `[2001:db8::1]:4711`).
fn plain_node(raw: &str) -> Option<IpAddr> {
    raw.parse().ok().or_else(|| forwarded_node(raw))
}

/// The `Host` names (without port) gatehouse answers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The base URL's host and the given extra names. A base URL on a
    /// loopback address also answers to the other names of loopback
    /// (`localhost`, `127.0.0.1`, `[::1]`): a rebinding attack comes with
    /// its own domain name, never with these.
    pub fn new(base_host: &str, extra: &[String]) -> Self {
        let mut names = vec![base_host.to_ascii_lowercase()];
        if is_loopback_name(base_host) {
            names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        names.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
        names.dedup();
        Self(names)
    }

    /// Whether a request's `Host` header (with or without port) names us.
    pub fn allows(&self, host_header: &str) -> bool {
        let name = host_name(host_header);
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn first(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
pub fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `--allowed-hosts`: comma-separated host names, without ports.
pub fn parse_host_list(text: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let valid = item
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !valid || item.contains("://") {
            return Err(format!(
                "{item:?} is not a host name: write names such as auth.example.com, \
                 separated by commas, without scheme or path"
            ));
        }
        hosts.push(item.to_ascii_lowercase());
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_forwarding_headers_change_nothing() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        let none = TrustedProxies::none();
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &none),
            ip("198.51.100.1")
        );
        let other: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &other),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn from_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "loopback,10.0.0.0/8".parse().unwrap();
        // The client forged the first entry; our proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
        let h = headers(&[("x-real-ip", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("10.1.1.1"), &h, &trusted),
            ip("203.0.113.9")
        );
        let h = headers(&[(
            "forwarded",
            "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(client_address(ip("::1"), &h, &trusted), ip("2001:db8::7"));
        // Forwarded wins over X-Forwarded-For when both are sent.
        let h = headers(&[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn garbage_in_the_chain_stops_at_the_last_trusted_hop() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.2".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("10.0.0.2")
        );
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("127.0.0.1")
        );
        // No header at all: the proxy itself.
        assert_eq!(
            client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv4_peers_are_one_address() {
        let trusted: TrustedProxies = "127.0.0.1".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.9")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_parse_with_errors_that_say_what_to_write() {
        assert_eq!(
            "none".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::none()
        );
        assert_eq!(
            "loopback".parse::<TrustedProxies>().unwrap().to_string(),
            "127.0.0.0/8,::1/128"
        );
        assert_eq!(
            "10.1.2.3/8, 192.0.2.7"
                .parse::<TrustedProxies>()
                .unwrap()
                .to_string(),
            "10.0.0.0/8,192.0.2.7/32"
        );
        let err = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(err.contains("write CIDRs"), "{err}");
    }

    #[test]
    fn hosts_are_matched_by_name_not_port() {
        let hosts = AllowedHosts::new("auth.example.com", &["login.example.org".into()]);
        assert!(hosts.allows("auth.example.com"));
        assert!(hosts.allows("AUTH.example.com:8443"));
        assert!(hosts.allows("login.example.org"));
        assert!(!hosts.allows("attacker.example"));
        assert!(!hosts.allows("localhost:8080"));
        let local = AllowedHosts::new("127.0.0.1", &[]);
        assert!(local.allows("localhost:8080"));
        assert!(local.allows("[::1]:8080"));
        assert!(!local.allows("rebind.attacker.example:8080"));
    }
}
