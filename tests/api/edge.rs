//! The edge of the server, attacked the way an outside review did it
//! (issue 11): slow clients, made-up hosts, forwarding headers, and
//! /metrics as an oracle.

use crate::support::*;
use gatehouse::domain::LoginId;
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn socket_addr(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

/// A connection from `source` (any 127.x address is this machine) that
/// sends the start of a request and never its end.
async fn slow_client(app: &TestApp, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(socket_addr(app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection (what it sent, if
/// anything); fails when it is still open after 20 s.
async fn closed_by_server(mut stream: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("the server closed the connection");
        match read {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn a_slowloris_is_cut_off_and_healthz_keeps_answering() {
    let (app, connections) = spawn_with_connection_clock(|c| {
        c.max_connections_per_client = 8;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(slow_client(&app, "127.0.0.2").await);
    }
    // The first 8 are held; the other 12 are closed at once, unread.
    let mut held = Vec::new();
    let mut refused = 0;
    let mut reads = tokio::task::JoinSet::new();
    for (i, stream) in slow.into_iter().enumerate() {
        reads.spawn(async move { (i, closed_by_server(stream).await) });
    }
    while refused < 12 {
        let (i, _) = reads.join_next().await.unwrap().unwrap();
        refused += 1;
        held.push(i);
    }
    assert_eq!(
        reads.len(),
        8,
        "8 connections stay open, waiting for headers"
    );
    let text = app.metrics_text().await;
    assert_eq!(metric(&text, "gatehouse_connections_refused_total"), 12.0);
    assert_eq!(metric(&text, "gatehouse_connections_open"), 8.0);
    // Everyone else is served meanwhile.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    // Past --header-read-timeout (10 s) the held ones are closed too.
    connections.advance(Duration::from_secs(11));
    while let Some(done) = reads.join_next().await {
        done.unwrap();
    }
    let text = app.metrics_text().await;
    // The 8, and the kept-alive connection that asked /healthz.
    assert_eq!(metric(&text, "gatehouse_connections_timed_out_total"), 9.0);
    // And the address may connect again.
    let mut again = slow_client(&app, "127.0.0.2").await;
    again
        .write_all(b"\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(again).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let (app, connections) = spawn_with_connection_clock(|_| {}).await;
    let mut stream = TcpStream::connect(socket_addr(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "answered first");
    connections.advance(Duration::from_secs(9));
    // Still open: a second request on it is answered.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Idle for longer than the timeout after that answer: closed.
    connections.advance(Duration::from_secs(11));
    closed_by_server(stream).await;
}

#[tokio::test]
async fn a_request_for_another_host_gets_421() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/login"))
        .header("host", "rebind.attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("This gatehouse answers at http://127.0.0.1:"),
        "{body}"
    );
    assert!(body.contains("--allowed-hosts"), "{body}");
    let r = app
        .client
        .post(app.url("/login"))
        .header("host", "rebind.attacker.example:8080")
        .form(&[("id", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    // Other names of loopback are this machine.
    let r = app
        .client
        .get(app.url("/login"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Health checks ask by address, whatever the base URL says.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("host", "10.0.0.5:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn allowed_hosts_add_names() {
    let app = spawn_with(|c| {
        c.base_url = Some("https://login.example.com/".parse().unwrap());
        c.allowed_hosts = vec!["auth.example.org".into()];
    })
    .await;
    for (host, status) in [
        ("login.example.com", StatusCode::OK),
        ("auth.example.org", StatusCode::OK),
        ("127.0.0.1", StatusCode::MISDIRECTED_REQUEST),
        ("evil.example", StatusCode::MISDIRECTED_REQUEST),
    ] {
        let r = app
            .client
            .get(app.url("/login"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{host}");
    }
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener() {
    let app = spawn_app().await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let text = app.metrics_text().await;
    assert!(text.contains("gatehouse_logins_total"));
}

#[tokio::test]
async fn metrics_move_alike_for_a_known_and_an_unknown_address() {
    let smtp = crate::smtp::SmtpServer::start(crate::smtp::Options::default());
    let url = smtp.url();
    let app = spawn_with(move |c| {
        c.mail.smtp = Some(gatehouse::mail::SmtpSettings::parse(&url).unwrap());
    })
    .await;
    app.add_user("ida@example.com", "ida", PASSWORD).await;
    let after_request = async |email: &str| {
        app.post_form("/forgot-password", "/forgot-password", &[("email", email)])
            .await;
        app.state.mail_requests.settled().await;
        app.state.outbox.flushed().await;
        let text = app.metrics_text().await;
        text.lines()
            .filter(|l| l.starts_with("gatehouse_mail") || l.starts_with("gatehouse_outbox"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let before = after_request("nobody@example.com").await;
    let known = after_request("ida@example.com").await;
    assert_eq!(smtp.count(), 1, "the known address got its mail");
    let unknown = after_request("noone@example.com").await;
    assert_eq!(before, known, "a mail sent moved a metric");
    assert_eq!(known, unknown);
}

/// A client behind a proxy on loopback: every request says
/// `X-Forwarded-For: <client>`.
fn proxied_client(forwarded_for: &'static str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        reqwest::header::HeaderValue::from_static(forwarded_for),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn login_with(
    app: &TestApp,
    client: &reqwest::Client,
    id: &str,
    password: &str,
) -> StatusCode {
    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&html);
    client
        .post(app.url("/login"))
        .form(&[
            ("id", id),
            ("password", password),
            ("endpoint", ""),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = spawn_with(|c| {
        c.trusted_proxies = "loopback".parse().unwrap();
        c.login_rate_per_minute = std::num::NonZeroU32::new(3).unwrap();
    })
    .await;
    let attacker = proxied_client("203.0.113.66");
    for _ in 0..3 {
        login_with(&app, &attacker, "victim", "Wrong-pass1!").await;
    }
    assert_eq!(
        login_with(&app, &attacker, "victim", "Wrong-pass1!").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The real user, behind the same proxy, is not limited by it.
    app.add_user("vic@example.com", "victim", PASSWORD).await;
    let user = proxied_client("198.51.100.7");
    assert_eq!(
        login_with(&app, &user, "victim", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    // Audit, login history and the session name the client, not the proxy.
    let id = app
        .state
        .store
        .user_by_login_id(&LoginId::parse("victim").unwrap())
        .await
        .unwrap();
    let id = id.expect("the user").id;
    let history = app.state.store.login_history(id).await.unwrap();
    assert!(
        history.iter().any(|a| a.ok && a.ip == "198.51.100.7"),
        "{history:?}"
    );
    let sessions = app.state.store.sessions_of(id).await.unwrap();
    assert_eq!(sessions[0].1.ip, "198.51.100.7");
    let events = app
        .state
        .store
        .audit_events(None, Some(id), 10)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.ip.as_deref() == Some("198.51.100.7")),
        "{events:?}"
    );
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    // No --trusted-proxies: every X-Forwarded-For is the client's own.
    let app = spawn_with(|c| {
        c.login_rate_per_minute = std::num::NonZeroU32::new(3).unwrap();
    })
    .await;
    for forged in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let c = proxied_client(forged);
        login_with(&app, &c, "victim", "Wrong-pass1!").await;
    }
    let c = proxied_client("203.0.113.4");
    assert_eq!(
        login_with(&app, &c, "victim", "Wrong-pass1!").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a made-up X-Forwarded-For bought a new budget"
    );
    app.add_user("val@example.com", "val", PASSWORD).await;
    let app2 = spawn_with(|c| {
        c.trusted_proxies = "10.0.0.0/8".parse().unwrap();
    })
    .await;
    app2.add_user("val@example.com", "val", PASSWORD).await;
    let c = proxied_client("203.0.113.9");
    assert_eq!(
        login_with(&app2, &c, "val", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let id = app2
        .state
        .store
        .user_by_login_id(&LoginId::parse("val").unwrap())
        .await
        .unwrap();
    let sessions = app2.state.store.sessions_of(id.unwrap().id).await.unwrap();
    assert_eq!(
        sessions[0].1.ip, "127.0.0.1",
        "the peer is not a trusted proxy"
    );
}

#[tokio::test]
async fn the_lock_notice_names_the_client_behind_the_proxy() {
    let smtp = crate::smtp::SmtpServer::start(crate::smtp::Options::default());
    let url = smtp.url();
    let app = spawn_with(move |c| {
        c.mail.smtp = Some(gatehouse::mail::SmtpSettings::parse(&url).unwrap());
        c.trusted_proxies = "loopback".parse().unwrap();
        c.login_rate_per_minute = std::num::NonZeroU32::new(1000).unwrap();
    })
    .await;
    app.add_user("lou@example.com", "lou", PASSWORD).await;
    let attacker = proxied_client("203.0.113.66");
    for _ in 0..11 {
        login_with(&app, &attacker, "lou", "Wrong-pass1!").await;
    }
    let notice = smtp.wait_for(1).await.remove(0);
    assert!(notice.text.contains("203.0.113.66"), "{}", notice.text);
    assert!(
        !notice.text.contains("address 127.0.0.1"),
        "{}",
        notice.text
    );
}
