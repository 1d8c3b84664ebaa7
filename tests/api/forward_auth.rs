//! The verify endpoints' contracts, asked the way each proxy asks
//! (nginx `auth_request`; Traefik `forwardAuth` and Caddy `forward_auth`,
//! whose header contract is the same), the return address after login,
//! the cookie domain, and `gatehouse access check`. The real nginx and
//! Caddy in front of a real app: `proxies.rs`.

use crate::support::cli::gatehouse;
use crate::support::{PASSWORD, TestApp, csrf_from, spawn_with};
use gatehouse::config::{Config, parse_access};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::path::Path;

pub const RULES: &str = r#"
[[access]]
hosts = ["wiki.example.test"]
paths = ["/public"]
policy = "bypass"

[[access]]
hosts = ["wiki.example.test"]
groups = ["ops"]
policy = "allow"

[[access]]
hosts = ["closed.example.test"]
policy = "deny"

[[access]]
hosts = ["*.example.test"]
methods = ["GET", "HEAD"]
policy = "allow"
"#;

/// gatehouse at auth.example.test (port 0 becomes the bound port), its
/// cookie for example.test, proxies on loopback trusted, and `rules`.
pub fn forward_auth_config(c: &mut Config, rules: &str) {
    c.base_url = Some("http://auth.example.test:0/".parse().unwrap());
    c.cookie_domain = vec![gatehouse::domain::access::CookieDomain::parse("example.test").unwrap()];
    c.trusted_proxies = "loopback".parse().unwrap();
    c.access = parse_access(rules, Path::new("test.toml")).unwrap();
    // The test helpers talk to 127.0.0.1; browsers below use the name.
    c.allowed_hosts = vec!["127.0.0.1".into()];
}

/// A browser that finds *.example.test on this machine (the URL's port
/// is kept), keeps cookies and does not follow redirects.
pub fn team_browser() -> reqwest::Client {
    let local: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("auth.example.test", local)
        .resolve("wiki.example.test", local)
        .resolve("app.example.test", local)
        .build()
        .unwrap()
}

/// An address of gatehouse under its own name.
fn at(app: &TestApp, path: &str) -> String {
    app.state.base_url.join(path).unwrap().to_string()
}

/// An app with alice (in ops) and bob (in no group).
async fn spawn_team() -> TestApp {
    let app = spawn_with(|c| forward_auth_config(c, RULES)).await;
    app.state
        .admin("cli:test".into())
        .add_group(gatehouse::domain::GroupName::parse("ops").unwrap())
        .await
        .unwrap();
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.add_user("bob@example.com", "bob", PASSWORD).await;
    app.state
        .store
        .add_member(
            &gatehouse::domain::GroupName::parse("ops").unwrap(),
            alice.id,
        )
        .await
        .unwrap();
    app
}

/// A session cookie header for `id` (as the browser would send it).
async fn session_of(app: &TestApp, id: &str) -> String {
    let r = login_returning(app, &team_browser(), id, "/").await;
    let value = TestApp::session_cookie(&r).expect("logged in");
    format!("gatehouse_session={value}")
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// nginx's subrequest: `X-Original-URL`, `X-Original-Method`, the
/// browser's cookies.
async fn nginx_asks(
    app: &TestApp,
    method: &str,
    url: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut r = plain_client()
        .get(app.url("/api/authz/auth-request"))
        .header("x-original-url", url)
        .header("x-original-method", method)
        .header("x-forwarded-for", "198.51.100.9");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

/// Traefik's or Caddy's request: `X-Forwarded-*`, the browser's Accept
/// and cookies; the app's Host (Caddy keeps it).
async fn forward_asks(
    app: &TestApp,
    method: &str,
    host: &str,
    uri: &str,
    accept: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut r = plain_client()
        .get(app.url("/api/authz/forward-auth"))
        .header("host", host)
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .header("accept", accept);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn nginx_gets_200_401_with_a_login_address_or_403_and_never_a_redirect() {
    let app = spawn_team().await;
    let page = "http://wiki.example.test:8443/page?x=1";

    let r = nginx_asks(&app, "GET", page, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let login = header(r.headers(), "location");
    let expected = format!(
        "{}/login?rd=http%3A%2F%2Fwiki.example.test%3A8443%2Fpage%3Fx%3D1",
        app.state.base_url.as_str().trim_end_matches('/')
    );
    assert_eq!(login, expected);
    assert!(login.starts_with("http://auth.example.test:"), "{login}");

    let public = nginx_asks(&app, "GET", "http://wiki.example.test/public/a", None).await;
    assert_eq!(
        public.status(),
        StatusCode::OK,
        "a bypass path needs no login"
    );
    assert!(public.headers().get("remote-user").is_none());

    let alice = session_of(&app, "alice").await;
    let r = nginx_asks(&app, "GET", page, Some(&alice)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "remote-user"), "alice");
    assert_eq!(header(r.headers(), "remote-email"), "alice@example.com");
    assert_eq!(header(r.headers(), "remote-name"), "alice");
    assert_eq!(header(r.headers(), "remote-groups"), "ops");

    let bob = session_of(&app, "bob").await;
    let r = nginx_asks(&app, "POST", page, Some(&bob)).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "bob is not in ops, and only GET is open to all"
    );
    let r = nginx_asks(&app, "GET", page, Some(&bob)).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "GET is open to every logged-in user"
    );
    assert_eq!(header(r.headers(), "remote-groups"), "");

    let r = nginx_asks(&app, "GET", "http://closed.example.test/", Some(&alice)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = nginx_asks(&app, "GET", "http://unknown.example.org/", None).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a host without a rule is refused, not sent to log in"
    );

    // A path that only looks public once the proxy or app resolves it.
    let r = nginx_asks(
        &app,
        "POST",
        "http://wiki.example.test/public/%2e%2e/admin",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let missing = plain_client()
        .get(app.url("/api/authz/auth-request"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.text().await.unwrap().contains("X-Original-URL"));
}

#[tokio::test]
async fn traefik_and_caddy_get_302_or_303_for_browsers_and_401_for_others() {
    let app = spawn_team().await;
    let html = "text/html,application/xhtml+xml";
    let r = forward_asks(&app, "GET", "wiki.example.test", "/page", html, None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        header(r.headers(), "location")
            .ends_with("/login?rd=http%3A%2F%2Fwiki.example.test%2Fpage")
    );
    let r = forward_asks(&app, "HEAD", "wiki.example.test", "/page", html, None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let r = forward_asks(&app, "POST", "wiki.example.test", "/form", html, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = forward_asks(
        &app,
        "GET",
        "wiki.example.test",
        "/api",
        "application/json",
        None,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "an API client is not redirected"
    );

    let alice = session_of(&app, "alice").await;
    let r = forward_asks(
        &app,
        "POST",
        "wiki.example.test",
        "/form",
        html,
        Some(&alice),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "remote-user"), "alice");
    assert_eq!(header(r.headers(), "remote-groups"), "ops");
    let bob = session_of(&app, "bob").await;
    let r = forward_asks(&app, "POST", "wiki.example.test", "/form", html, Some(&bob)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("may not open this page"));

    // After logging out everywhere the same cookie gets the login page again.
    app.state
        .account()
        .logout_everywhere(
            app.state
                .store
                .user_by_login_id(&gatehouse::domain::LoginId::parse("alice").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap();
    let r = forward_asks(
        &app,
        "GET",
        "wiki.example.test",
        "/page",
        html,
        Some(&alice),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn a_verify_request_from_a_peer_that_is_not_a_trusted_proxy_is_refused() {
    let app = spawn_with(|c| {
        forward_auth_config(c, RULES);
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    })
    .await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let alice = session_of(&app, "alice").await;
    let stranger = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/api/authz/auth-request", "/api/authz/forward-auth"] {
        let r = stranger
            .get(app.url(path))
            .header("cookie", &alice)
            .header("x-original-url", "http://wiki.example.test/page")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "wiki.example.test")
            .header("x-forwarded-uri", "/page")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r.headers().get("remote-user").is_none());
        assert!(r.text().await.unwrap().contains("--trusted-proxies"));
    }
    // The trusted one is answered.
    let r = nginx_asks(&app, "GET", "http://wiki.example.test/page", Some(&alice)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// The login form's fields with a return address.
async fn login_returning(
    app: &TestApp,
    client: &reqwest::Client,
    id: &str,
    rd: &str,
) -> reqwest::Response {
    let page = client
        .get(at(
            app,
            &format!(
                "/login?rd={}",
                url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
            ),
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(at(app, "/login"))
        .form(&[
            ("id", id),
            ("password", PASSWORD),
            ("endpoint", ""),
            ("csrf", &csrf_from(&page)),
            ("rd", rd),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_login_the_browser_returns_only_inside_the_team_s_domains() {
    let app = spawn_team().await;
    let location = |r: &reqwest::Response| header(r.headers(), "location");
    let ok = login_returning(
        &app,
        &team_browser(),
        "alice",
        "http://wiki.example.test:8443/page?x=1",
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "http://wiki.example.test:8443/page?x=1");
    let set: Vec<String> = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap();
    assert!(session.contains("Domain=example.test"), "{session}");

    for evil in [
        "//evil.com/",
        "\\\\evil.com",
        "/\\evil.com",
        "https:evil.com",
        "http://evil.com/",
        "http://wiki.example.test@evil.com/",
        "http://evil.com%2f.example.test/",
        "http://wiki.example.test.evil.com/",
        "http://exаmple.test/",
        "javascript:alert(1)",
    ] {
        let r = login_returning(&app, &team_browser(), "alice", evil).await;
        let to = location(&r);
        assert!(
            to == "/" || to.starts_with(app.state.base_url.as_str()),
            "{evil:?} sent the browser to {to:?}"
        );
    }

    // Logged in already: /login?rd= goes straight back.
    let client = team_browser();
    let first = login_returning(&app, &client, "alice", "/").await;
    assert_eq!(location(&first), at(&app, "/"));
    let again = client
        .get(at(&app, "/login?rd=http%3A%2F%2Fwiki.example.test%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&again), "http://wiki.example.test/x");
}

#[tokio::test]
async fn a_user_who_must_accept_the_terms_goes_through_consent_and_back() {
    let app = spawn_with(|c| forward_auth_config(c, RULES)).await;
    app.add_user_without_consent("cleo@example.com", "cleo")
        .await;
    let client = team_browser();
    let rd = "http://wiki.example.test/page";
    let r = login_returning(&app, &client, "cleo", rd).await;
    assert_eq!(
        header(r.headers(), "location"),
        rd,
        "the login returns to the app"
    );
    // The app's check sends her to log in (no consent yet); the login page
    // sends her to the documents, keeping the address.
    let login = client
        .get(at(&app, "/login?rd=http%3A%2F%2Fwiki.example.test%2Fpage"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(login.headers(), "location"),
        "/consent?rd=http%3A%2F%2Fwiki.example.test%2Fpage"
    );
    let page = client
        .get(at(
            &app,
            "/consent?rd=http%3A%2F%2Fwiki.example.test%2Fpage",
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let accepted = client
        .post(at(&app, "/consent"))
        .form(&[
            ("csrf", csrf_from(&page).as_str()),
            ("agree", "yes"),
            ("rd", rd),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(header(accepted.headers(), "location"), rd);
}

#[tokio::test]
async fn without_a_cookie_domain_the_session_cookie_stays_host_only_and_prefixed_under_https() {
    let app = spawn_with(|c| {
        c.base_url = Some("https://auth.example.test:0/".parse().unwrap());
        c.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    app.add_user("dora@example.com", "dora", PASSWORD).await;
    let r = app.post_login("dora", PASSWORD).await;
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.contains("gatehouse_session="))
        .unwrap();
    assert!(
        session.starts_with("__Host-gatehouse_session="),
        "{session}"
    );
    assert!(!session.contains("Domain="), "{session}");

    let app = spawn_with(|c| {
        forward_auth_config(c, RULES);
        c.base_url = Some("https://auth.example.test:0/".parse().unwrap());
    })
    .await;
    app.add_user("dora@example.com", "dora", PASSWORD).await;
    let r = plain_client()
        .get(app.url("/login"))
        .header("host", "auth.example.test")
        .send()
        .await
        .unwrap();
    let csrf_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()
                .map(|v| v.split(';').next().unwrap().to_string())
        })
        .unwrap();
    let csrf = csrf_from(&r.text().await.unwrap());
    let r = plain_client()
        .post(app.url("/login"))
        .header("host", "auth.example.test")
        .header("cookie", csrf_cookie)
        .form(&[
            ("id", "dora"),
            ("password", PASSWORD),
            ("endpoint", ""),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.contains("gatehouse_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.status()));
    assert!(
        session.starts_with("__Secure-gatehouse_session="),
        "{session}"
    );
    assert!(
        session.contains("Domain=example.test") && session.contains("Secure"),
        "{session}"
    );
}

#[tokio::test]
async fn access_check_says_which_rule_decides_and_why() {
    let app = spawn_team().await;
    let dir = app.dir.path().to_path_buf();
    let run = |args: Vec<&'static str>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || gatehouse(&dir, &args, None))
    };
    let bob = run(vec![
        "access",
        "check",
        "--user",
        "bob",
        "--method",
        "POST",
        "http://wiki.example.test/edit",
    ])
    .await
    .unwrap();
    let text = bob.ok().stdout();
    assert!(text.contains("rule 1: bypass (hosts wiki.example.test; paths /public): not for this host, path or method"), "{text}");
    assert!(text.contains("rule 2: allow (hosts wiki.example.test; groups ops): for this request, but it names other people"), "{text}");
    assert!(
        text.contains("rule 3: deny (hosts closed.example.test): not for this host"),
        "{text}"
    );
    assert!(text.contains("=> denied: no rule matches"), "{text}");
    let alice = run(vec![
        "access",
        "check",
        "--user",
        "alice",
        "http://wiki.example.test/edit",
    ])
    .await
    .unwrap();
    assert!(
        alice.ok().stdout().contains("=> let through by rule 2"),
        "{}",
        alice.report()
    );
    let anon = run(vec!["access", "check", "http://wiki.example.test/edit"])
        .await
        .unwrap();
    assert!(
        anon.ok()
            .stdout()
            .contains("=> sent to log in first by rule 2"),
        "{}",
        anon.report()
    );
    let bad = run(vec!["access", "check", "wiki.example.test/edit"])
        .await
        .unwrap();
    bad.code(2);
    assert!(bad.stderr().contains("not a full address"));
}

/// The real binary: `kill -HUP` reads the rules again; a file with a
/// mistake leaves the rules in force; sessions go on either way.
#[test]
fn sighup_reloads_the_access_rules_without_ending_sessions() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    let write_rules = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nmetrics_listen = \"off\"\ntrusted_proxies = \"loopback\"\nbcrypt_cost = 4\n\
                 signup = \"closed\"\n\n[[access]]\nhosts = [\"one.example.test\"]\npolicy = \"bypass\"\n{extra}"
            ),
        )
        .unwrap()
    };
    write_rules("");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .envs(
            crate::support::backend::database_url(&dir.path().join("data"))
                .map(|u| ("GATEHOUSE_DATABASE", u)),
        )
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env_remove("GATEHOUSE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    let addr = first
        .split("bound to ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let ask = |host: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /api/authz/auth-request HTTP/1.1\r\nHost: x\r\nX-Original-URL: http://{host}/\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply.lines().next().unwrap_or_default().to_string()
    };
    fn wait_for(lines: &mut impl Iterator<Item = std::io::Result<String>>, what: &str) {
        for line in lines.by_ref() {
            if line.unwrap().contains(what) {
                return;
            }
        }
        panic!("the server never said {what:?}");
    }
    wait_for(&mut out, "1 access rule(s)");
    assert!(ask("one.example.test").starts_with("HTTP/1.1 200"));
    assert!(ask("two.example.test").starts_with("HTTP/1.1 403"));
    // A session made before the reload.
    let add = gatehouse(
        &dir.path().join("data"),
        &["user", "add", "sam@example.com", "--password-stdin"],
        Some(PASSWORD),
    );
    add.ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    let browser = crate::support::new_client();
    runtime.block_on(async {
        let page = browser
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = browser
            .post(format!("{base}/login"))
            .form(&[
                ("id", "sam"),
                ("password", PASSWORD),
                ("endpoint", ""),
                ("csrf", &csrf_from(&page)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sam logged in");
    });
    // A CLI-made account has not accepted the documents yet: its live
    // session gets 403 consent_required, a dead one 401.
    let still_in = || {
        runtime.block_on(async {
            browser
                .get(format!("{base}/api/v1/session"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    assert_eq!(still_in(), StatusCode::FORBIDDEN);

    write_rules("[[access]]\nhosts = [\"two.example.test\"]\npolicy = \"bypass\"\n");
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    hup(child.id());
    wait_for(&mut out, "SIGHUP: 2 access rule(s) in force now");
    assert!(ask("two.example.test").starts_with("HTTP/1.1 200"));

    write_rules("[[access]]\nhosts = [\"three.example.test\"]\npolicy = \"sometimes\"\n");
    hup(child.id());
    wait_for(&mut err, "the old ones stay in force");
    assert!(
        ask("two.example.test").starts_with("HTTP/1.1 200"),
        "the rules in force stayed"
    );
    let listed = gatehouse(&dir.path().join("data"), &["user", "list"], None);
    assert!(
        listed.ok().stdout().contains("sam"),
        "the server still runs and holds the database"
    );
    assert_eq!(
        still_in(),
        StatusCode::FORBIDDEN,
        "the session lived through both reloads"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Traefik asks at the middleware's address (Host is gatehouse's), with
/// the app in X-Forwarded-Host, the client in X-Forwarded-For, and copies
/// only `authResponseHeaders` onto the request (replacing the client's).
#[tokio::test]
async fn traefik_s_request_shape_is_answered_like_caddy_s() {
    let app = spawn_team().await;
    let alice = session_of(&app, "alice").await;
    let ask = |cookie: Option<String>| {
        let mut r = plain_client()
            .get(app.url("/api/authz/forward-auth"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "wiki.example.test")
            .header("x-forwarded-uri", "/page?q=%2F")
            .header("x-forwarded-for", "203.0.113.5")
            .header("accept", "text/html");
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    let r = ask(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        header(r.headers(), "location")
            .ends_with("/login?rd=https%3A%2F%2Fwiki.example.test%2Fpage%3Fq%3D%252F"),
        "{}",
        header(r.headers(), "location")
    );
    let r = ask(Some(alice)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "remote-user"), "alice");
}
