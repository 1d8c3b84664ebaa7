//! Admin commands against a running server (through its socket) and
//! against a stopped one; audit, backup, config explain, healthcheck.

use crate::cli::gatehouse;
use crate::support::cli::cli;
use crate::support::{PASSWORD, spawn_app, spawn_in, spawn_with};
use reqwest::StatusCode;
use std::process::Output;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn commands_work_while_the_server_runs_and_take_effect_at_once() {
    let app = spawn_app().await;
    assert!(
        app.dir.path().join("gatehouse.sock").exists(),
        "the server opened its admin socket"
    );
    let dir = app.dir.path().to_path_buf();
    let add = tokio::task::spawn_blocking(move || {
        gatehouse(
            &dir,
            &["user", "add", "amy@example.com", "--password-stdin"],
            Some(PASSWORD),
        )
    })
    .await
    .unwrap();
    assert!(add.status.success(), "{}", err(&add));
    assert!(out(&add).contains("created user amy <amy@example.com>"));
    // The running server sees the account at once.
    app.login_ok("amy", PASSWORD).await;
}

#[tokio::test]
async fn unlock_on_a_running_server_lets_the_next_login_in() {
    let app = spawn_app().await;
    app.add_user("ben@example.com", "ben", PASSWORD).await;
    for _ in 0..11 {
        app.post_login("ben", "Wrong-pass1!").await;
    }
    assert_eq!(
        app.post_login("ben", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let o = cli(&app, &["user", "unlock", "ben"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("unlocked ben"));
    app.login_ok("ben", PASSWORD).await;
}

#[tokio::test]
async fn disable_and_delete_end_sessions_at_once_and_lock_refuses_logins() {
    let app = spawn_app().await;
    app.add_user("cat@example.com", "cat", PASSWORD).await;
    app.login_ok("cat", PASSWORD).await;
    let o = cli(&app, &["user", "disable", "cat"]).await;
    assert!(
        out(&o).contains("disabled cat <cat@example.com>; 1 session(s) ended"),
        "{}{}",
        out(&o),
        err(&o)
    );
    assert!(!app.session_is_live().await, "the session is over");
    assert_eq!(
        app.post_login("cat", PASSWORD).await.status(),
        StatusCode::FORBIDDEN,
        "told it is disabled"
    );
    cli(&app, &["user", "enable", "cat"]).await;
    app.login_ok("cat", PASSWORD).await;

    let o = cli(&app, &["user", "lock", "cat"]).await;
    assert!(out(&o).contains("locked cat"), "{}", err(&o));
    assert!(!app.session_is_live().await, "the session is over");
    assert_eq!(
        app.post_login("cat", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    cli(&app, &["user", "unlock", "cat"]).await;
    app.login_ok("cat", PASSWORD).await;

    let o = cli(&app, &["user", "delete", "cat"]).await;
    assert!(out(&o).contains("deleted cat"), "{}", err(&o));
    assert!(!app.session_is_live().await, "the session is over");
    assert_eq!(
        app.post_login("cat", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn user_logout_ends_one_accounts_sessions_or_everyones() {
    let app = spawn_app().await;
    app.add_user("dan@example.com", "dan", PASSWORD).await;
    app.add_user("eve@example.com", "evelyn", PASSWORD).await;
    app.login_ok("dan", PASSWORD).await;
    let eve = app.login_elsewhere("evelyn", PASSWORD, None).await;
    let eve = crate::support::TestApp::session_cookie(&eve).unwrap();
    let eve_live = async || {
        reqwest::Client::new()
            .get(app.url("/api/v1/session"))
            .header("cookie", format!("gatehouse_session={eve}"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    };
    let o = cli(&app, &["user", "logout", "dan"]).await;
    assert!(
        out(&o).contains("logged dan <dan@example.com> out: 1 session(s) ended"),
        "{}{}",
        out(&o),
        err(&o)
    );
    assert!(!app.session_is_live().await, "dan's session is over");
    assert!(eve_live().await, "evelyn's is not");
    app.login_ok("dan", PASSWORD).await;
    let o = cli(&app, &["user", "logout", "--all"]).await;
    assert!(
        out(&o).contains("logged everyone out: 2 session(s) of 2 account(s) ended"),
        "{}{}",
        out(&o),
        err(&o)
    );
    assert!(!app.session_is_live().await && !eve_live().await);
    let o = cli(&app, &["user", "logout"]).await;
    assert_eq!(o.status.code(), Some(2), "whose sessions? {}", err(&o));
    let events = app.state.store.audit_events(None, None, 50).await.unwrap();
    assert!(
        events.iter().any(|e| e
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("logout all"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_disabled_or_deleted() {
    let app = spawn_app().await;
    app.add_user_with(
        "root@example.com",
        "root",
        PASSWORD,
        gatehouse::domain::Role::Admin,
        gatehouse::domain::UserStatus::Active,
    )
    .await;
    for verb in ["demote", "disable", "delete"] {
        let o = cli(&app, &["user", verb, "root"]).await;
        assert_eq!(o.status.code(), Some(2), "{verb}: {}", err(&o));
        assert!(
            err(&o).contains("last active administrator"),
            "{verb}: {}",
            err(&o)
        );
    }
    app.add_user("deputy@example.com", "deputy", PASSWORD).await;
    assert!(
        cli(&app, &["user", "promote", "deputy"])
            .await
            .status
            .success()
    );
    assert!(
        cli(&app, &["user", "demote", "root"])
            .await
            .status
            .success()
    );
}

#[tokio::test]
async fn the_output_is_the_same_with_the_server_running_or_stopped() {
    let app = spawn_app().await;
    app.add_user("dan@example.com", "dan", PASSWORD).await;
    let running = cli(&app, &["user", "show", "dan", "--json"]).await;
    let (dir, _) = app.stop().await;
    assert!(
        !dir.path().join("gatehouse.sock").exists(),
        "the socket is removed at shutdown"
    );
    let stopped = gatehouse(dir.path(), &["user", "show", "dan", "--json"], None);
    assert!(running.status.success() && stopped.status.success());
    assert_eq!(out(&running), out(&stopped));
}

#[tokio::test]
async fn set_password_ends_sessions_and_lifts_the_lock() {
    let app = spawn_app().await;
    app.add_user("eve@example.com", "eve", PASSWORD).await;
    app.login_ok("eve", PASSWORD).await;
    let dir = app.dir.path().to_path_buf();
    let o = tokio::task::spawn_blocking(move || {
        gatehouse(
            &dir,
            &["user", "set-password", "eve", "--password-stdin"],
            Some("Fresh-pass-42!\n"),
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(!app.session_is_live().await, "the session is over");
    app.login_ok("eve", "Fresh-pass-42!").await;
}

#[tokio::test]
async fn the_audit_log_records_logins_locks_and_admin_actions() {
    let app = spawn_app().await;
    app.add_user("fay@example.com", "fay", PASSWORD).await;
    for _ in 0..11 {
        app.post_login("fay", "Wrong-pass1!").await;
    }
    app.post_login("fay", PASSWORD).await;
    cli(&app, &["user", "unlock", "fay"]).await;
    app.login_ok("fay", PASSWORD).await;

    let o = cli(&app, &["audit", "--user", "fay", "--json"]).await;
    assert!(o.status.success(), "{}", err(&o));
    let events: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "login_ok",
        "lock_cleared",
        "login_refused_locked",
        "lock_set",
        "login_failed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let cleared = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "lock_cleared")
        .unwrap();
    assert!(
        cleared["actor"].as_str().unwrap().starts_with("cli:"),
        "who did it"
    );
    // On PostgreSQL the command works on the database itself, on the
    // system's clock; the test server's clock stands at 2026-01-01.
    let since = if crate::support::backend::on_postgres() {
        "3650d"
    } else {
        "1h"
    };
    let text = out(&cli(&app, &["audit", "--since", since]).await.output);
    assert!(
        text.contains("login_failed") && text.contains("ip=127.0.0.1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_backup_taken_during_signups_opens_and_holds_every_acknowledged_account() {
    crate::redb_only!("a file copy of the embedded database");
    let app = spawn_with(|c| {
        c.signup = gatehouse::config::SignupMode::Open;
        c.signup_rate_per_minute = std::num::NonZeroU32::new(1000).unwrap();
    })
    .await;
    for n in 0..10 {
        assert_eq!(
            app.sign_up(&format!("u{n}@example.com"), &format!("user{n}"), "")
                .await
                .status(),
            StatusCode::SEE_OTHER
        );
    }
    let target = tempfile::tempdir().unwrap();
    let copy = target.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let more = {
        let (url, csrf_client) = (app.url("/signup"), crate::support::new_client());
        tokio::spawn(async move {
            for n in 10..30 {
                let html = csrf_client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let csrf = crate::support::csrf_from(&html);
                let (email, name) = (format!("u{n}@example.com"), format!("user{n}"));
                let form = [
                    ("email", email.as_str()),
                    ("username", name.as_str()),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                    ("agree", "yes"),
                    ("csrf", csrf.as_str()),
                ];
                csrf_client.post(&url).form(&form).send().await.unwrap();
            }
        })
    };
    let o = cli(&app, &["backup", "--to", copy.to_str().unwrap()]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("backed up"));
    more.await.unwrap();

    let list = gatehouse(&copy, &["user", "list", "--json"], None);
    assert!(list.status.success(), "the copy opens: {}", err(&list));
    let users: serde_json::Value = serde_json::from_str(&out(&list)).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    for n in 0..10 {
        assert!(
            names.contains(&format!("user{n}").as_str()),
            "user{n} was acknowledged before the backup"
        );
    }
    let again = cli(&app, &["backup", "--to", copy.to_str().unwrap()]).await;
    assert_eq!(again.status.code(), Some(2), "never overwrites");
}

#[test]
fn config_explain_names_the_source_of_each_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(
        &file,
        "lockout_threshold = 5\nsession_lifetime = \"3d\"\nbogus_key = 1\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "config",
            "explain",
            "--json",
            "--config",
            file.to_str().unwrap(),
            "--session-lifetime",
            "2d",
            "--smtp-url",
            "smtp://me:hunter2@mail.example.com",
        ])
        .env("GATEHOUSE_BCRYPT_COST", "11")
        .env("GATEHOUSE_NOT_A_SETTING", "x")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let rows: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let find = |k: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(find("lockout_threshold")["source"], "file");
    assert_eq!(find("lockout_threshold")["value"], "5");
    assert_eq!(
        find("session_lifetime")["source"],
        "flag",
        "a flag wins over the file"
    );
    assert_eq!(find("session_lifetime")["value"], "2d");
    assert_eq!(find("bcrypt_cost")["source"], "env");
    assert_eq!(find("lockout_duration")["source"], "default");
    let smtp = find("smtp_url")["value"].as_str().unwrap().to_string();
    assert!(
        smtp.contains("me:****@") && !smtp.contains("hunter2"),
        "secrets masked: {smtp}"
    );
    let warnings = err(&o);
    assert!(
        warnings.contains("bogus_key") && warnings.contains("GATEHOUSE_NOT_A_SETTING"),
        "{warnings}"
    );
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_server_answers() {
    let app = spawn_app().await;
    let url = app.url("/healthz");
    let ok = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["healthcheck", "--url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{}", err(&ok));
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["healthcheck", "--url", "http://127.0.0.1:1/healthz"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(err(&down).contains("no server answers"));
}

#[tokio::test]
async fn the_socket_refuses_another_user() {
    let app = spawn_app().await;
    let sock = app.dir.path().join("gatehouse.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600,
        "owner-only"
    );
    // Let another user (nobody) see the directory, so that only the
    // socket's own protection stands in the way; and run a copy of the
    // binary that nobody can execute.
    std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = as_nobody(app.dir.path(), &["user", "list"]).await;
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("belongs to another user"), "{}", err(&o));
}

#[tokio::test]
async fn a_refused_peer_gets_the_plain_message_not_a_reset() {
    // The socket opened to everyone (a mistaken chmod, or a root client
    // of a server run by another user): the peer check still refuses,
    // and says so in words.
    let app = spawn_app().await;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = app.dir.path().join("gatehouse.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    for _ in 0..5 {
        let o = as_nobody(app.dir.path(), &["user", "list"]).await;
        assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
        assert!(
            err(&o).contains("the admin socket answers only the user the server runs as"),
            "{}",
            err(&o)
        );
        assert!(!err(&o).contains("reset"), "{}", err(&o));
    }
}

/// Checks the Prometheus text format line by line: comments are HELP or
/// TYPE, every sample is `name{labels} value` with a number value, and
/// every sample's family was declared.
fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut declared = std::collections::HashSet::new();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                declared.insert(name.to_string());
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(
            declared.contains(name) || declared.contains(family),
            "undeclared: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_count_logins_and_parse_as_prometheus_text() {
    let app = spawn_app().await;
    app.add_user("gus@example.com", "gus", PASSWORD).await;
    app.post_login("gus", "Wrong-pass1!").await;
    app.login_ok("gus", PASSWORD).await;
    let r = app
        .client
        .get(format!("{}/metrics", app.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = parse_prometheus(&r.text().await.unwrap());
    assert_eq!(samples[r#"gatehouse_logins_total{outcome="ok"}"#], 1.0);
    assert_eq!(samples[r#"gatehouse_logins_total{outcome="failed"}"#], 1.0);
    assert_eq!(samples["gatehouse_active_sessions"], 1.0);
    assert_eq!(samples["gatehouse_users"], 1.0);
    assert!(
        samples.contains_key("gatehouse_outbox_depth")
            && samples.contains_key("gatehouse_hash_queue_depth")
    );
    let posts =
        samples[r#"gatehouse_request_duration_seconds_count{method="POST",route="/login"}"#];
    assert_eq!(posts, 2.0);
}

#[tokio::test]
async fn healthz_says_when_the_outbox_is_stuck() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = spawn_with(move |c| {
        c.mail.smtp = Some(
            gatehouse::mail::SmtpSettings::parse(&format!("smtp://127.0.0.1:{port}?tls=none"))
                .unwrap(),
        );
    })
    .await;
    app.add_user("hal@example.com", "hal", PASSWORD).await;
    app.post_form(
        "/forgot-password",
        "/forgot-password",
        &[("email", "hal@example.com")],
    )
    .await;
    // Until the first delivery attempt has failed.
    app.state.mail_requests.settled().await;
    app.state.outbox.flushed().await;
    let outbox = app.state.store.outbox().await.unwrap();
    assert!(outbox.iter().any(|e| e.attempts > 0), "one failed attempt");
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "failing for a moment is not stuck"
    );
    app.clock.advance(std::time::Duration::from_secs(3601));
    let (status, body) = app.get_text("/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Which part is degraded, never the SMTP server's words (they can
    // name hosts and users, and anyone may ask /healthz).
    assert!(body.starts_with("degraded: outbox stuck"), "{body}");
    assert!(
        !body.contains("refused") && !body.contains("127.0.0.1"),
        "{body}"
    );
}

#[tokio::test]
async fn an_admin_lock_is_not_lifted_by_a_password_reset() {
    let app = spawn_app().await;
    let ida = app.add_user("ida@example.com", "ida", PASSWORD).await;
    cli(&app, &["user", "lock", "ida"]).await;
    // A mailed reset link, as forgot-password would send it.
    let link = app.reset_link(ida.id).await;
    let secret = link.split("token=").nth(1).unwrap().to_string();
    let new = "Another-pass-7!";
    let csrf = app.csrf_of(&link).await;
    let r = app
        .client
        .post(app.url("/reset-password"))
        .form(&[
            ("token", secret.as_str()),
            ("password", new),
            ("password_confirm", new),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?reset=1");
    assert_eq!(
        app.post_login("ida", new).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "still locked by the admin"
    );
    cli(&app, &["user", "unlock", "ida"]).await;
    app.login_ok("ida", new).await;
}

#[tokio::test]
async fn a_data_directory_of_another_user_says_permission_denied() {
    crate::redb_only!("the embedded file belongs to the user it runs as");
    // A stopped server's data directory (0700, root's), and a command run
    // as nobody: the database is there, just not for this user.
    let app = spawn_app().await;
    app.add_user("pia@example.com", "pia", PASSWORD).await;
    let (dir, _) = app.stop().await;
    let o = as_nobody(dir.path(), &["user", "list"]).await;
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("permission denied"), "{}", err(&o));
    assert!(
        !err(&o).contains("there is no gatehouse database"),
        "{}",
        err(&o)
    );
}

/// Runs `gatehouse --data-dir DIR ARGS…` as the user nobody (uid 65534),
/// from a copy of the binary that nobody may execute.
async fn as_nobody(dir: &std::path::Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("gatehouse");
    std::fs::copy(env!("CARGO_BIN_EXE_gatehouse"), &bin).unwrap();
    let (dir, args) = (
        dir.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let o = std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("--data-dir")
            .arg(&dir)
            .args(&args)
            .output()
            .unwrap();
        drop(bin_dir);
        o
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn rehash_report_counts_hashes_and_unknown_ids_cost_what_most_accounts_cost() {
    let app = spawn_app().await;
    // Two accounts hashed at cost 5 before the setting became 4, one
    // imported from htpasswd as $2y$05$.
    let store = app.state.store.as_ref();
    let key = store.password_key();
    for (email, name) in [("kai@example.com", "kai"), ("lea@example.com", "lea")] {
        let u = app.add_user(email, name, PASSWORD).await;
        let old = gatehouse::auth::password::hash_now(&key, 5, PASSWORD);
        store.set_password_hash(u.id, old).await.unwrap();
    }
    let imp = app.add_user("max@example.com", "max", PASSWORD).await;
    let imported = bcrypt::hash(PASSWORD, 5)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    store.set_password_hash(imp.id, imported).await.unwrap();
    let (dir, clock) = app.stop().await;
    // At start the census is taken: an unknown ID is checked at cost 5,
    // what the stored hashes cost, not at the configured 4.
    let app = spawn_in(dir, clock, |_| {}).await;
    app.state.passwords.census_taken().await;
    assert_eq!(app.state.passwords.dummy_cost(), 5);
    let o = cli(&app, &["user", "rehash-report"]).await;
    let text = out(&o);
    assert!(
        text.contains("3 password hash(es); new ones are bcrypt cost 4"),
        "{text}{}",
        err(&o)
    );
    assert!(
        text.contains("bcrypt cost 5: 2  upgraded at their next login"),
        "{text}"
    );
    assert!(
        text.contains("bcrypt cost 5 (imported, $2y$): 1  upgraded at their next login"),
        "{text}"
    );
    assert!(
        text.contains("3 left to upgrade; an unknown ID is checked at cost 5"),
        "{text}"
    );
    // Logins upgrade them.
    for name in ["kai", "lea", "max"] {
        app.login_elsewhere(name, PASSWORD, None).await;
    }
    let o = cli(&app, &["user", "rehash-report", "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(out(&o).trim()).unwrap();
    assert_eq!(report["left_to_upgrade"], 0, "{report}");
    assert_eq!(report["total"], 3);
}
