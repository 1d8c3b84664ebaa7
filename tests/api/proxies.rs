//! Real nginx and real Caddy in front of a real app, each configured with
//! the very snippet `gatehouse proxy snippet` prints (SPEC §9). The app
//! echoes the headers it receives, so the tests see what reaches it.
//! `make test` installs nginx and Caddy from Debian; each test starts its
//! own on a free port in a temp dir.

use crate::forward_auth::{forward_auth_config, team_browser};
use crate::support::cli::gatehouse;
use crate::support::{PASSWORD, TestApp, csrf_from, spawn_with};
use axum::http::HeaderMap;
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const NGINX: &str = "/usr/sbin/nginx";
const CADDY: &str = "/usr/bin/caddy";

/// The protected app: answers every request with the headers it got,
/// one `name: value` per line.
pub struct Upstream {
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        async fn echo(uri: axum::http::Uri, headers: HeaderMap) -> String {
            let mut out = format!("app saw {uri}\n");
            for (name, value) in &headers {
                out.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            out
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(echo);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, _task: task }
    }
}

/// A port nobody listens on now (nginx and Caddy take no port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (a proxy we
/// started says nothing when it is ready), at most 10 s.
pub async fn until_listening(port: u16, child: &mut Child, log: &Path) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the proxy exited ({status}) before it listened:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the proxy did not listen on {port} within 10 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    pub port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// The snippet as the real binary prints it.
fn snippet(kind: &str, upstream: SocketAddr, gatehouse_addr: SocketAddr, port: u16) -> String {
    let dir = tempfile::tempdir().unwrap();
    let run = gatehouse(
        dir.path(),
        &[
            "proxy",
            "snippet",
            kind,
            "--host",
            "app.example.test",
            "--upstream",
            &format!("http://{upstream}"),
            "--gatehouse",
            &format!("http://{gatehouse_addr}"),
            "--http-port",
            &port.to_string(),
        ],
        None,
    );
    run.ok();
    run.stdout()
}

pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Proxy {
    /// nginx with `server` (a snippet) inside its `http` block.
    pub async fn nginx(server: &str, port: u16) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: run `make test` (it installs it) or `apt-get install -y nginx`"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        for sub in ["client", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // As root, nginx's workers would run as nobody, who cannot enter
        // the temp dir: keep them root here.
        let user = if running_as_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/client;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\n{server}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        until_listening(port, &mut child, &dir.path().join("error.log")).await;
        Self {
            port,
            _child: child,
            _dir: dir,
        }
    }

    /// Caddy with `site` (a snippet) after global options that keep it to
    /// itself (no admin API, no certificates, storage in its temp dir).
    pub async fn caddy(site: &str, port: u16) -> Self {
        assert!(
            Path::new(CADDY).exists(),
            "{CADDY} is missing: run `make test` (it installs it) or `apt-get install -y caddy`"
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, conf).unwrap();
        let log = dir.path().join("caddy.log");
        let mut child = Command::new(CADDY)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("caddy starts");
        until_listening(port, &mut child, &log).await;
        Self {
            port,
            _child: child,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://app.example.test:{}{path}", self.port)
    }
}

/// gatehouse for the team (alice in ops, bob in no group) with rules for
/// app.example.test: /public open to all, the rest for ops.
async fn spawn_gatehouse() -> TestApp {
    let rules = r#"
[[access]]
hosts = ["app.example.test"]
paths = ["/public"]
policy = "bypass"

[[access]]
hosts = ["app.example.test"]
groups = ["ops"]
policy = "allow"
"#;
    let app = spawn_with(|c| forward_auth_config(c, rules)).await;
    let admin = app.state.admin("cli:test".into());
    let ops = gatehouse::domain::GroupName::parse("ops").unwrap();
    admin.add_group(ops.clone()).await.unwrap();
    let alice = app.add_user("alice@example.com", "alice", PASSWORD).await;
    app.add_user("bob@example.com", "bob", PASSWORD).await;
    app.state.store.add_member(&ops, alice.id).await.unwrap();
    app
}

fn gatehouse_addr(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Follows a browser's way from the app to the login and back: the
/// login page the proxy sends it to, the form, the redirect to the app.
async fn log_in_through(browser: &reqwest::Client, proxy: &Proxy, path: &str, id: &str) -> String {
    let first = browser
        .get(proxy.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.status(),
        StatusCode::FOUND,
        "a stranger is redirected"
    );
    let login = location(&first);
    assert!(login.starts_with("http://auth.example.test:"), "{login}");
    let page = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rd = url::Url::parse(&login)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(rd, proxy.url(path));
    let action = url::Url::parse(&login).unwrap().join("/login").unwrap();
    let done = browser
        .post(action)
        .form(&[
            ("id", id),
            ("password", PASSWORD),
            ("endpoint", ""),
            ("csrf", &csrf_from(&page)),
            ("rd", &rd),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    location(&done)
}

/// The journey every proxy must pass.
async fn journey(proxy: &Proxy, app: &TestApp) {
    let alice = team_browser();
    let back = log_in_through(&alice, proxy, "/notes?id=7", "alice").await;
    assert_eq!(
        back,
        proxy.url("/notes?id=7"),
        "back at the app after logging in"
    );
    let seen = alice
        .get(&back)
        .header("accept", "text/html")
        .header("remote-user", "mallory")
        .header("remote-groups", "admins")
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let text = seen.text().await.unwrap();
    assert!(text.contains("app saw /notes?id=7"), "{text}");
    assert!(text.contains("remote-user: alice\n"), "{text}");
    assert!(text.contains("remote-email: alice@example.com\n"), "{text}");
    assert!(text.contains("remote-groups: ops\n"), "{text}");
    assert!(
        !text.contains("mallory") && !text.contains("admins"),
        "a forged header reached the app: {text}"
    );

    // Anonymous on the open path: through, and the forgery still stopped.
    let open = team_browser()
        .get(proxy.url("/public/readme"))
        .header("remote-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let text = open.text().await.unwrap();
    assert!(
        !text.contains("mallory"),
        "a forged header reached the app: {text}"
    );
    assert!(!text.to_ascii_lowercase().contains("remote-user"), "{text}");

    // Outside the rule's group: 403.
    let bob = team_browser();
    log_in_through(&bob, proxy, "/", "bob").await;
    let refused = bob
        .get(proxy.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A return address on another site goes to gatehouse's own page.
    let evil = alice
        .get(
            app.state
                .base_url
                .join("/login?rd=http%3A%2F%2Fevil.example.org%2F")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&evil),
        "/",
        "logged in: sent to / rather than to another site"
    );

    // Logged out: refused again.
    let home = alice
        .get(app.state.base_url.join("/").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let out = alice
        .post(app.state.base_url.join("/logout").unwrap())
        .form(&[("csrf", csrf_from(&home))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let again = alice
        .get(proxy.url("/notes"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::FOUND,
        "after logout the app is closed again"
    );
}

#[tokio::test]
async fn nginx_with_the_printed_snippet_guards_an_app() {
    let app = spawn_gatehouse().await;
    let upstream = Upstream::start().await;
    let port = free_port();
    let proxy = Proxy::nginx(
        &snippet("nginx", upstream.addr, gatehouse_addr(&app), port),
        port,
    )
    .await;
    journey(&proxy, &app).await;
}

#[tokio::test]
async fn caddy_with_the_printed_snippet_guards_an_app() {
    let app = spawn_gatehouse().await;
    let upstream = Upstream::start().await;
    let port = free_port();
    let proxy = Proxy::caddy(
        &snippet("caddy", upstream.addr, gatehouse_addr(&app), port),
        port,
    )
    .await;
    journey(&proxy, &app).await;
}

/// `gatehouse proxy check URL` with a config file that says what the
/// running gatehouse's settings are.
async fn proxy_check(app: &TestApp, proxy: &Proxy, extra_config: &str) -> crate::support::cli::Run {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(
        &config,
        format!("base_url = \"{}\"\n{extra_config}", app.state.base_url),
    )
    .unwrap();
    let url = proxy.url("/notes");
    let connect = format!("127.0.0.1:{}", proxy.port);
    let config = config.display().to_string();
    tokio::task::spawn_blocking(move || {
        let data = tempfile::tempdir().unwrap();
        gatehouse(
            data.path(),
            &[
                "proxy",
                "check",
                &url,
                "--connect-to",
                &connect,
                "--config",
                &config,
            ],
            None,
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn proxy_check_passes_a_good_nginx_and_names_what_is_wrong_with_a_bad_one() {
    let app = spawn_gatehouse().await;
    let upstream = Upstream::start().await;
    let port = free_port();
    let good = snippet("nginx", upstream.addr, gatehouse_addr(&app), port);
    let proxy = Proxy::nginx(&good, port).await;
    let run = proxy_check(&app, &proxy, "cookie_domain = \"example.test\"\n").await;
    let text = run.ok().stdout();
    assert!(
        text.contains("ok       a stranger is sent to the login page"),
        "{}",
        run.report()
    );
    assert!(
        text.contains("ok       and comes back to"),
        "{}",
        run.report()
    );
    assert!(!text.contains("PROBLEM"), "{}", run.report());

    // Without a cookie domain, the login's cookie never reaches the app.
    let run = proxy_check(&app, &proxy, "").await;
    run.code(1);
    assert!(
        run.stdout().contains("cookie_domain = \"example.test\""),
        "{}",
        run.report()
    );
    drop(proxy);

    // The 401 not turned into a redirect.
    let port = free_port();
    let broken = snippet("nginx", upstream.addr, gatehouse_addr(&app), port)
        .replace("error_page 401 =302 $gatehouse_login;", "");
    let proxy = Proxy::nginx(&broken, port).await;
    let run = proxy_check(&app, &proxy, "cookie_domain = \"example.test\"\n").await;
    run.code(1);
    assert!(
        run.stdout()
            .contains("error_page 401 =302 $gatehouse_login"),
        "{}",
        run.report()
    );
    drop(proxy);

    // An app that is not behind gatehouse at all, and passes forgeries on.
    let port = free_port();
    let open = format!(
        "server {{\n  listen {port};\n  location / {{ proxy_pass http://{}; }}\n}}\n",
        upstream.addr
    );
    let proxy = Proxy::nginx(&open, port).await;
    let run = proxy_check(&app, &proxy, "cookie_domain = \"example.test\"\n").await;
    run.code(1);
    let text = run.stdout();
    assert!(
        text.contains("the proxy does not ask gatehouse"),
        "{}",
        run.report()
    );
    assert!(
        text.contains("forged Remote-User header from the client reached the app"),
        "{}",
        run.report()
    );
}

/// A person in Chromium opens the app behind nginx, logs in on the page
/// nginx sends them to, and is back at the app, which knows who they are.
#[tokio::test]
async fn in_chromium_through_nginx_a_person_logs_in_and_is_back_at_the_app() {
    use crate::browser::Browser;
    let app = spawn_gatehouse().await;
    let upstream = Upstream::start().await;
    let port = free_port();
    let proxy = Proxy::nginx(
        &snippet("nginx", upstream.addr, gatehouse_addr(&app), port),
        port,
    )
    .await;
    // Every *.example.test name is this machine (ports are kept).
    let browser =
        Browser::start_with(&["--host-resolver-rules=MAP *.example.test 127.0.0.1"]).await;
    browser.goto(&proxy.url("/notes")).await;
    let here = browser.client.current_url().await.unwrap();
    assert_eq!(
        here.host_str(),
        Some("auth.example.test"),
        "sent to gatehouse: {here}"
    );
    assert_eq!(here.path(), "/login");
    browser.fill("#login-id", "alice").await;
    browser.fill("#login-password", PASSWORD).await;
    browser.submit("#login-form button[type=submit]").await;
    let back = browser.client.current_url().await.unwrap();
    assert_eq!(back.as_str(), proxy.url("/notes"), "back at the app");
    let body = browser.text("body").await;
    assert!(body.contains("app saw /notes"), "{body}");
    assert!(body.contains("remote-user: alice"), "{body}");
    assert!(body.contains("remote-groups: ops"), "{body}");
    browser.close().await;
}
