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
