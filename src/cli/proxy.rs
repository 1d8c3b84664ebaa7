//! `gatehouse proxy snippet nginx|caddy|traefik` prints a reverse proxy's
//! config that puts one app behind gatehouse (the integration tests run
//! nginx and Caddy with these very snippets); `gatehouse proxy check URL`
//! probes a protected address from outside, as a browser would, and says
//! in plain words what is wrong (SPEC §9).

use super::UsageError;
use crate::config::Config;
use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use std::fmt::Write as _;
use std::time::Duration;
use url::Url;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProxyKind {
    Nginx,
    Caddy,
    Traefik,
}

#[derive(Subcommand, Debug)]
pub enum ProxyCommand {
    /// Print the config that puts one app behind gatehouse.
    Snippet {
        kind: ProxyKind,
        /// The app's host name, as users type it.
        #[arg(long, value_name = "HOST")]
        host: String,
        /// Where the app itself listens.
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// Where the proxy reaches gatehouse [default: http://<--listen>].
        #[arg(long, value_name = "URL")]
        gatehouse: Option<String>,
        /// Serve the app on plain http on this port (behind a TLS
        /// terminator, or to try it out) instead of the proxy's https
        /// default.
        #[arg(long, value_name = "PORT")]
        http_port: Option<u16>,
    },
    /// Probe a protected URL from outside like a browser: is a stranger
    /// sent to this gatehouse's login, does the login cookie reach the
    /// app, are forged Remote-* headers kept from it?
    Check {
        /// The app's address, such as https://wiki.example.com/.
        url: String,
        /// Also look for the forged header in what the app answers (for
        /// an app that echoes its request headers, such as traefik/whoami).
        #[arg(long)]
        echo: bool,
        /// Resolve the URL's host to this address instead of asking DNS
        /// (to check a proxy before DNS points at it).
        #[arg(long, value_name = "ADDR:PORT")]
        connect_to: Option<std::net::SocketAddr>,
    },
}

pub fn run(config: &Config, cmd: &ProxyCommand) -> anyhow::Result<()> {
    match cmd {
        ProxyCommand::Snippet {
            kind,
            host,
            upstream,
            gatehouse,
            http_port,
        } => {
            let host = crate::domain::access::HostPattern::parse(host)
                .ok()
                .filter(|h| matches!(h, crate::domain::access::HostPattern::Exact(_)))
                .map(|h| h.to_string())
                .ok_or_else(|| {
                    UsageError(format!(
                        "--host {host:?} is not a host name; write it as users type it, such as app.example.com"
                    ))
                })?;
            let upstream = plain_url(upstream, "--upstream")?;
            let gatehouse = match gatehouse {
                Some(g) => plain_url(g, "--gatehouse")?,
                None => Url::parse(&format!("http://{}/", config.listen))
                    .context("--listen does not make a URL")?,
            };
            let s = Snippet {
                host,
                upstream,
                gatehouse,
                http_port: *http_port,
            };
            print!("{}", s.render(*kind, config));
            Ok(())
        }
        ProxyCommand::Check {
            url,
            echo,
            connect_to,
        } => {
            let url = plain_url(url, "URL")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            let report = runtime.block_on(check(config, &url, *echo, *connect_to));
            print!("{}", report.text);
            if report.problems > 0 {
                anyhow::bail!(
                    "{} problem(s) found; fix them and run `gatehouse proxy check {url}` again",
                    report.problems
                );
            }
            Ok(())
        }
    }
}

fn plain_url(raw: &str, what: &str) -> anyhow::Result<Url> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            UsageError(format!(
                "{what} {raw:?} is not a full address: write it such as http://127.0.0.1:3000"
            ))
            .into()
        })
}

/// What a snippet is made of.
pub struct Snippet {
    pub host: String,
    pub upstream: Url,
    pub gatehouse: Url,
    pub http_port: Option<u16>,
}

impl Snippet {
    /// The address as a proxy dials it: `host:port`.
    fn dial(url: &Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(80)
        )
    }

    fn base(url: &Url) -> String {
        url.as_str().trim_end_matches('/').to_string()
    }

    pub fn render(&self, kind: ProxyKind, config: &Config) -> String {
        let mut out = String::new();
        // nginx, Caddyfile and YAML all comment with `#`.
        let comment = "#";
        let _ = writeln!(
            out,
            "{comment} gatehouse forward auth for {host}: paste into your {kind:?} config.\n\
             {comment} gatehouse itself needs (in its config file):\n\
             {comment}   trusted_proxies = \"loopback\"   (or the proxy's address: only it may name the URL to check)\n\
             {comment}   cookie_domain = \"{domain}\"     (so the login cookie reaches {host}){cd}\n\
             {comment}   an [[access]] rule with hosts = [\"{host}\"]   (no rule: everyone is refused)\n\
             {comment} Check it from outside with: gatehouse proxy check {scheme}://{host}{port}/",
            host = self.host,
            domain = parent_domain(&self.host),
            cd = if config.cookie_domain.iter().any(|d| d.covers(&self.host)) {
                " [set already]"
            } else {
                ""
            },
            scheme = if self.http_port.is_some() {
                "http"
            } else {
                "https"
            },
            port = self.http_port.map_or(String::new(), |p| format!(":{p}")),
        );
        match kind {
            ProxyKind::Nginx => self.nginx(&mut out),
            ProxyKind::Caddy => self.caddy(&mut out),
            ProxyKind::Traefik => self.traefik(&mut out),
        }
        out
    }

    fn nginx(&self, out: &mut String) {
        let listen = match self.http_port {
            Some(p) => format!("listen {p};"),
            None => "listen 443 ssl;\n    # ssl_certificate and ssl_certificate_key of this host go here".into(),
        };
        let _ = write!(
            out,
            r#"server {{
    {listen}
    server_name {host};

    # gatehouse's verify endpoint, asked before every request (auth_request).
    location = /internal/gatehouse/authz {{
        internal;
        proxy_pass {gatehouse}/api/authz/auth-request;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Connection "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        proxy_set_header X-Forwarded-For $remote_addr;
    }}

    location / {{
        auth_request /internal/gatehouse/authz;
        auth_request_set $gatehouse_user $upstream_http_remote_user;
        auth_request_set $gatehouse_email $upstream_http_remote_email;
        auth_request_set $gatehouse_name $upstream_http_remote_name;
        auth_request_set $gatehouse_groups $upstream_http_remote_groups;
        # gatehouse answers 401 with the login page in Location: a redirect.
        auth_request_set $gatehouse_login $upstream_http_location;
        error_page 401 =302 $gatehouse_login;

        proxy_pass {upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Who is logged in, from gatehouse's answer only: these replace
        # whatever the client sent (an empty value sends no header).
        proxy_set_header Remote-User $gatehouse_user;
        proxy_set_header Remote-Email $gatehouse_email;
        proxy_set_header Remote-Name $gatehouse_name;
        proxy_set_header Remote-Groups $gatehouse_groups;
    }}
}}
"#,
            host = self.host,
            gatehouse = Self::base(&self.gatehouse),
            upstream = Self::base(&self.upstream),
        );
    }

    fn caddy(&self, out: &mut String) {
        let site = match self.http_port {
            Some(p) => format!("http://{}:{p}", self.host),
            None => self.host.clone(),
        };
        let _ = write!(
            out,
            r#"{site} {{
    # In this order: first drop any Remote-* header the client sent, then
    # ask gatehouse (its answer's Remote-* headers are copied onto the
    # request), then pass the request to the app.
    route {{
        request_header -Remote-User
        request_header -Remote-Email
        request_header -Remote-Name
        request_header -Remote-Groups
        forward_auth {gatehouse} {{
            uri /api/authz/forward-auth
            copy_headers Remote-User Remote-Email Remote-Name Remote-Groups
        }}
        # Caddy before 2.10 copies a header gatehouse did not send (a
        # bypass rule, nobody logged in) as its placeholder's text: drop it.
        @unset_user header_regexp Remote-User ^\{{http\.reverse_proxy\.
        request_header @unset_user -Remote-User
        @unset_email header_regexp Remote-Email ^\{{http\.reverse_proxy\.
        request_header @unset_email -Remote-Email
        @unset_name header_regexp Remote-Name ^\{{http\.reverse_proxy\.
        request_header @unset_name -Remote-Name
        @unset_groups header_regexp Remote-Groups ^\{{http\.reverse_proxy\.
        request_header @unset_groups -Remote-Groups
        reverse_proxy {upstream}
    }}
}}
"#,
            gatehouse = Self::dial(&self.gatehouse),
            upstream = Self::dial(&self.upstream),
        );
    }

    fn traefik(&self, out: &mut String) {
        let name = self.host.replace('.', "-");
        let entry = if self.http_port.is_some() {
            "web"
        } else {
            "websecure"
        };
        let _ = write!(
            out,
            r#"# Traefik dynamic configuration (file provider). forwardAuth replaces
# the authResponseHeaders on every request, so a client cannot forge them.
http:
  middlewares:
    gatehouse:
      forwardAuth:
        address: "{gatehouse}/api/authz/forward-auth"
        trustForwardHeader: true
        authResponseHeaders:
          - Remote-User
          - Remote-Email
          - Remote-Name
          - Remote-Groups
  routers:
    {name}:
      rule: "Host(`{host}`)"
      entryPoints: [{entry}]
      middlewares: [gatehouse]
      service: {name}
  services:
    {name}:
      loadBalancer:
        servers:
          - url: "{upstream}"
"#,
            host = self.host,
            gatehouse = Self::base(&self.gatehouse),
            upstream = Self::base(&self.upstream),
        );
    }
}

/// `wiki.example.com` -> `example.com` (what a cookie domain would be).
fn parent_domain(host: &str) -> &str {
    match host.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest,
        _ => host,
    }
}

/// What `check` found.
struct Report {
    text: String,
    problems: usize,
}

impl Report {
    fn ok(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(self.text, "ok       {}", what.as_ref());
    }
    fn problem(&mut self, what: impl AsRef<str>) {
        self.problems += 1;
        let _ = writeln!(self.text, "PROBLEM  {}", what.as_ref());
    }
    fn note(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(self.text, "note     {}", what.as_ref());
    }
}

/// One answer of the probe.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

const FORGED: &str = "gatehouse-forged-header-probe";

async fn check(
    config: &Config,
    url: &Url,
    echo: bool,
    connect_to: Option<std::net::SocketAddr>,
) -> Report {
    let mut r = Report {
        text: String::new(),
        problems: 0,
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let base = config.base_url_for(config.listen);
    let login = {
        let covering = config.cookie_domain.iter().find(|d| d.covers(&host));
        let b = covering
            .and_then(|d| d.login_url.clone())
            .unwrap_or(base.clone());
        b.join("login").unwrap_or(b)
    };
    let _ = writeln!(r.text, "Checking {url} as a browser that is not logged in:");

    // The cookie: a login at the login page must reach this host.
    let login_host = login.host_str().unwrap_or_default().to_ascii_lowercase();
    let covered = config.cookie_domain.iter().any(|d| d.covers(&host));
    if covered || login_host == host {
        r.ok(format!(
            "the login cookie set at {login_host} reaches {host}"
        ));
    } else {
        r.problem(format!(
            "a login at {login_host} sets a cookie that {host} never sees, so the browser goes round in circles. \
             Set cookie_domain = \"{}\" in gatehouse's config (a domain that covers both)",
            parent_domain(&host)
        ));
    }
    if url.scheme() == "http" && base.scheme() == "https" {
        r.problem(format!(
            "{url} is plain http while gatehouse is on https: the browser would not send the (Secure) login cookie, \
             and gatehouse does not send anyone back to an http address. Serve the app on https"
        ));
    }

    let answer = match fetch(url, connect_to).await {
        Ok(a) => a,
        Err(e) => {
            r.problem(format!(
                "could not reach {url}: {e:#}. Check the address, DNS and that the proxy listens there"
            ));
            return r;
        }
    };
    match answer.status {
        302 | 303 | 307 => {
            let to = answer.location.clone().unwrap_or_default();
            judge_redirect(&mut r, &to, url, &login);
        }
        401 => r.problem(
            "the proxy answered 401 to a browser instead of sending it to the login page. \
             nginx: the protected location needs `auth_request_set $gatehouse_login $upstream_http_location;` \
             and `error_page 401 =302 $gatehouse_login;`. Caddy, Traefik: ask /api/authz/forward-auth, which \
             redirects a browser (Accept: text/html). See `gatehouse proxy snippet`",
        ),
        403 => r.problem(
            "refused (403) before any login: either no [[access]] rule covers this host (`gatehouse access check URL` \
             says), or the proxy is not in gatehouse's trusted_proxies, so gatehouse refuses its verify requests \
             (gatehouse's log says which)",
        ),
        500 => r.problem(
            "the proxy answered 500: it could not ask gatehouse, or got an answer it does not understand. \
             Check the address of gatehouse in the proxy's config and the proxy's error log",
        ),
        502..=504 => r.problem(format!(
            "the proxy answered {}: it cannot reach the app (or gatehouse). Is the app running at the upstream address?",
            answer.status
        )),
        200..=299 => {
            let bypass = {
                let rules = &config.access;
                let t = crate::domain::access::Target::new(&host, url.path(), "GET");
                matches!(
                    rules.decide(&t, None).verdict,
                    crate::domain::access::Verdict::Pass
                )
            };
            if bypass {
                r.note(format!(
                    "the app answered {} without a login: a bypass rule lets everyone in here",
                    answer.status
                ));
            } else {
                r.problem(format!(
                    "the app answered {} without a login: the proxy does not ask gatehouse for this address",
                    answer.status
                ));
            }
            if answer.body.contains(FORGED) {
                r.problem(
                    "a forged Remote-User header from the client reached the app: make the proxy drop Remote-* headers \
                     from clients (see `gatehouse proxy snippet`)",
                );
            } else if echo {
                r.ok("a forged Remote-User header from the client did not reach the app");
            }
        }
        other => r.problem(format!("unexpected answer {other} from {url}")),
    }
    if echo && !(200..=299).contains(&answer.status) {
        r.note(
            "--echo looks for the forged header only in an answer of the app; a stranger was not let through to it, \
             which is as it should be",
        );
    }
    r
}

fn judge_redirect(r: &mut Report, to: &str, url: &Url, login: &Url) {
    let Ok(target) = url.join(to) else {
        r.problem(format!(
            "the redirect goes to {to:?}, which is not an address"
        ));
        return;
    };
    let same_page = target.origin() == login.origin() && target.path() == login.path();
    if !same_page {
        r.problem(format!(
            "a stranger is sent to {target}, not to this gatehouse's login page ({login}). \
             Does the proxy ask this gatehouse? Is --base-url (or the cookie domain's login URL) right?"
        ));
        return;
    }
    r.ok(format!("a stranger is sent to the login page {login}"));
    let rd = target
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    match rd {
        Some(rd) if Url::parse(&rd).is_ok_and(|u| u.host_str() == url.host_str()) => {
            r.ok(format!("and comes back to {rd} after logging in"));
        }
        Some(rd) => r.problem(format!(
            "the login page is told to return to {rd}, not to {url}: the proxy sends gatehouse the wrong address \
             (nginx: X-Original-URL $scheme://$http_host$request_uri; Traefik/Caddy: X-Forwarded-Host and -Uri)"
        )),
        None => r.problem(
            "the redirect carries no rd= return address, so users land on gatehouse's own page after logging in",
        ),
    }
}

/// One GET as a browser sends it (no cookie), with a forged Remote-User.
async fn fetch(url: &Url, connect_to: Option<std::net::SocketAddr>) -> anyhow::Result<Answer> {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    let host = url.host_str().context("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = match connect_to {
        Some(a) => a,
        None => tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?,
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .context("no answer within 10 seconds")?
    .with_context(|| format!("cannot connect to {addr}"))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "text/html,application/xhtml+xml")
        .header(hyper::header::USER_AGENT, "gatehouse-proxy-check")
        .header("remote-user", FORGED)
        .header("remote-groups", "admins")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .context("cannot make the request")?;
    let response = if url.scheme() == "https" {
        let connector = crate::mail::smtp::tls_connector(None)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .context("the host is not a TLS server name")?;
        let tls = connector
            .connect(name, tcp)
            .await
            .context("the TLS handshake failed (is the certificate valid for this host?)")?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        send.send_request(request).await?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        send.send_request(request).await?
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| {
            let bytes = b.to_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(256 * 1024)]).into_owned()
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        location,
        body,
    })
}
