//! The real binary: `user add | list | unlock`, `serve`, and their errors.

use crate::support::PASSWORD;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

pub use crate::support::cli::{Run, gatehouse};

/// `user add EMAIL --username NAME --password-stdin` with a good password.
fn add_account(dir: &Path, email: &str, username: &str) -> Run {
    gatehouse(
        dir,
        &[
            "user",
            "add",
            email,
            "--username",
            username,
            "--password-stdin",
        ],
        Some(PASSWORD),
    )
}

fn stdout(o: &Run) -> String {
    o.stdout()
}

fn stderr(o: &Run) -> String {
    o.stderr()
}

#[test]
fn user_add_then_list_shows_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let add = gatehouse(
        dir.path(),
        &[
            "user",
            "add",
            "Alice@Example.com",
            "--admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    add.ok();
    assert!(
        stdout(&add).contains("created admin alice <alice@example.com>"),
        "{}",
        stdout(&add)
    );

    let list = gatehouse(dir.path(), &["user", "list", "--json"], None);
    assert!(list.status.success());
    let users: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(users[0]["email"], "alice@example.com");
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["status"], "active");

    let table = gatehouse(dir.path(), &["user", "list"], None);
    assert!(stdout(&table).contains("alice@example.com"));
}

#[tokio::test]
async fn a_user_made_by_the_cli_logs_in_to_the_server() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let add = add_account(dir.path(), "bob@example.com", "Bob");
    add.ok();
    let app = crate::support::spawn_in(
        dir,
        gatehouse::Clock::manual(crate::support::start_time()),
        |_| {},
    )
    .await;
    app.login_ok("bob", PASSWORD).await;
}

#[test]
fn a_weak_password_is_refused_with_the_reason_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let add = gatehouse(
        dir.path(),
        &[
            "user",
            "add",
            "a@example.com",
            "--username",
            "abc",
            "--password-stdin",
        ],
        Some("short"),
    );
    add.code(2);
    let err = stderr(&add);
    assert!(err.contains("Use at least 9 characters"), "{err}");
    assert!(err.contains("Add at least one digit"), "{err}");
}

#[test]
fn a_duplicate_account_is_refused_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        add_account(dir.path(), "a@example.com", "abc")
            .status
            .success()
    );
    let again = add_account(dir.path(), "A@EXAMPLE.com", "xyz");
    again.code(1);
    assert!(stderr(&again).contains("already exists"));
    let name = add_account(dir.path(), "b@example.com", "ABC");
    name.code(1);
    assert!(stderr(&name).contains("username is taken"));
}

#[test]
fn bad_usage_exits_2_with_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let o = gatehouse(
        dir.path(),
        &["user", "add", "not-an-email", "--password-stdin"],
        Some(PASSWORD),
    );
    o.code(2);
    assert!(stderr(&o).contains("valid email address"));
    let o = gatehouse(dir.path(), &["user", "frobnicate"], None);
    o.code(2);
    let o = gatehouse(dir.path(), &["user", "add", "a@example.com"], None);
    o.code(2);
    assert!(stderr(&o).contains("give one with --username"));
}

#[test]
fn commands_say_plainly_when_a_server_holds_the_database() {
    crate::redb_only!("one process holds the embedded file");
    let dir = tempfile::tempdir().unwrap();
    let _held = gatehouse::store::redb::RedbStore::open(dir.path()).unwrap();
    std::fs::File::create(dir.path().join("probe")).unwrap();
    let o = gatehouse(dir.path(), &["user", "list"], None);
    o.code(1);
    let err = stderr(&o);
    assert!(err.contains("in use by another gatehouse process"), "{err}");
    assert!(err.contains("Stop the server"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err}");
}

#[test]
fn unlock_reports_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        add_account(dir.path(), "a@example.com", "abc")
            .status
            .success()
    );
    let o = gatehouse(dir.path(), &["user", "unlock", "nobody"], None);
    assert!(o.status.success());
    assert!(stdout(&o).contains("no account has the ID"));
    let o = gatehouse(dir.path(), &["user", "unlock", "abc"], None);
    assert!(stdout(&o).contains("had no failed logins or lock; nothing to do"));
}

#[test]
fn list_and_unlock_refuse_a_directory_without_a_database() {
    crate::redb_only!("the embedded file must exist");
    let dir = tempfile::tempdir().unwrap();
    for args in [&["user", "list"][..], &["user", "unlock", "alice"][..]] {
        let o = gatehouse(dir.path(), args, None);
        o.code(2);
        assert!(
            stderr(&o).contains("there is no gatehouse database")
                && stderr(&o).contains("--data-dir")
        );
    }
    assert!(
        !dir.path().join("gatehouse.redb").exists(),
        "no empty database was made"
    );
}

#[test]
fn serve_on_a_data_dir_that_is_a_file_fails_with_what_to_do() {
    crate::redb_only!("the embedded file is made in the data directory");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let o = gatehouse(
        &file,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        None,
    );
    o.code(1);
    let err = stderr(&o);
    assert!(
        err.contains("is a file, not a directory") && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn serve_on_a_port_in_use_fails_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let o = gatehouse(
        dir.path(),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "off",
        ],
        None,
    );
    o.code(1);
    let err = stderr(&o);
    assert!(
        err.contains("cannot listen on") && err.contains("choose another --listen"),
        "{err}"
    );
}

#[test]
fn serve_refuses_impossible_settings() {
    let dir = tempfile::tempdir().unwrap();
    let o = gatehouse(dir.path(), &["serve", "--bcrypt-cost", "40"], None);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an impossible setting is bad usage"
    );
    assert!(stderr(&o).contains("--bcrypt-cost must be between 4 and 31"));
    let o = gatehouse(dir.path(), &["serve", "--lockout-duration", "soon"], None);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap rejects a malformed duration as bad usage"
    );
}

#[test]
fn serve_starts_says_where_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .envs(crate::support::backend::database_url(dir.path()).map(|u| ("GATEHOUSE_DATABASE", u)))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
    let store = if crate::support::backend::on_postgres() {
        "PostgreSQL postgres://"
    } else {
        "gatehouse.redb"
    };
    assert!(first.contains(store), "{first}");
    let addr = first
        .split("bound to ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    // The database was closed cleanly: a command can open it now.
    assert!(
        gatehouse(dir.path(), &["user", "list"], None)
            .status
            .success()
    );
}

#[test]
fn invite_create_prints_a_link_and_list_and_revoke_manage_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = gatehouse(
        dir.path(),
        &[
            "invite",
            "create",
            "--uses",
            "2",
            "--expires",
            "12h",
            "--email",
            "Zoe@Example.com",
            "--admin",
            "--base-url",
            "https://login.example.com",
        ],
        None,
    );
    o.ok();
    let out = stdout(&o);
    let link = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("https://login.example.com/signup?token=")
        })
        .expect("a link");
    assert_eq!(link.len(), 43, "256-bit token: {out}");
    assert!(
        out.contains("2 accounts, admin, expires") && out.contains("only for zoe@example.com"),
        "{out}"
    );

    let list = gatehouse(dir.path(), &["invite", "list", "--json"], None);
    let invites: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(invites[0]["status"], "active");
    assert_eq!(invites[0]["uses_left"], 2);
    assert_eq!(invites[0]["role"], "admin");
    assert_eq!(invites[0]["email"], "zoe@example.com");
    let raw = crate::support::backend::stored_bytes(dir.path());
    assert!(
        !raw.windows(link.len()).any(|w| w == link.as_bytes()),
        "only the token's hash is stored"
    );

    let revoke = gatehouse(dir.path(), &["invite", "revoke", "1"], None);
    assert!(revoke.status.success());
    let table = stdout(&gatehouse(dir.path(), &["invite", "list"], None));
    assert!(table.contains("revoked"), "{table}");
    let missing = gatehouse(dir.path(), &["invite", "revoke", "99"], None);
    missing.code(2);
    assert!(stderr(&missing).contains("no invitation 99"));
}

#[test]
fn invite_create_refuses_bad_arguments_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    for (args, words) in [
        (
            &["invite", "create", "--uses", "0"][..],
            "--uses must be at least 1",
        ),
        (
            &["invite", "create", "--expires", "soonish"][..],
            "write a duration such as 7d",
        ),
        (&["invite", "create", "--email", "nope"][..], "--email"),
    ] {
        let o = gatehouse(dir.path(), args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(words), "{args:?}: {}", stderr(&o));
    }
}

#[tokio::test]
async fn an_invitation_from_the_cli_lets_a_teammate_sign_up() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let o = gatehouse(dir.path(), &["invite", "create", "--json"], None);
    let made: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let token = made["link"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    let app = crate::support::spawn_in(
        dir.clone(),
        gatehouse::Clock::manual(crate::support::start_time()),
        |_| {},
    )
    .await;
    let r = app.sign_up("mate@example.com", "mate", &token).await;
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    app.stop().await;
    let list: serde_json::Value = serde_json::from_str(&stdout(&gatehouse(
        dir.path(),
        &["invite", "list", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(list[0]["status"], "used up");
    assert_eq!(list[0]["redeemed_by"][0]["username"], "mate");
}

#[test]
fn the_first_start_prints_a_single_use_admin_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .envs(crate::support::backend::database_url(dir.path()).map(|u| ("GATEHOUSE_DATABASE", u)))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.contains("/signup?token="))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("No admin account yet")),
        "{lines:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let list: serde_json::Value = serde_json::from_str(&stdout(&gatehouse(
        dir.path(),
        &["invite", "list", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(list[0]["role"], "admin");
    assert_eq!(list[0]["uses"], 1);
    assert_eq!(list[0]["first_run"], true);
}

#[tokio::test]
async fn user_add_without_a_password_prints_a_link_that_sets_it() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let o = gatehouse(
        dir.path(),
        &[
            "user",
            "add",
            "bea@example.com",
            "--base-url",
            "https://login.example.com",
        ],
        None,
    );
    o.ok();
    let out = stdout(&o);
    let link = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://login.example.com/reset-password?token="))
        .expect("a link");
    let path = link
        .strip_prefix("https://login.example.com")
        .unwrap()
        .to_string();

    let app = crate::support::spawn_in(dir, gatehouse::Clock::system(), |_| {}).await;
    assert_eq!(
        app.post_login("bea", PASSWORD).await.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "no password yet"
    );
    let html = app.get_text(&path).await.1;
    let token = path.split("token=").nth(1).unwrap();
    let csrf = crate::support::csrf_from(&html);
    let r = app
        .client
        .post(app.url("/reset-password"))
        .form(&[
            ("token", token),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?reset=1");
    app.login_ok("bea", PASSWORD).await;
}

#[test]
fn a_lock_or_invitation_ending_after_the_year_9999_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "far@example.com", "far").ok();
    let lock = gatehouse(dir.path(), &["user", "lock", "far", "--for", "9000y"], None);
    lock.code(2);
    assert!(
        lock.stderr().contains("after the year 9999"),
        "{}",
        lock.report()
    );
    let invite = gatehouse(
        dir.path(),
        &["invite", "create", "--expires", "9000y"],
        None,
    );
    invite.code(2);
    assert!(
        invite.stderr().contains("after the year 9999"),
        "{}",
        invite.report()
    );
    // Nothing was half-done: the account is not locked, and listing works.
    let list = gatehouse(dir.path(), &["user", "list", "--json"], None);
    list.ok();
    let users: serde_json::Value = serde_json::from_str(&list.stdout()).unwrap();
    assert_eq!(users[0]["locked_until"], serde_json::Value::Null);
    let show = gatehouse(dir.path(), &["user", "show", "far"], None);
    show.ok();
}

#[test]
fn open_signup_with_smtp_but_without_verification_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = gatehouse(
        dir.path(),
        &[
            "serve",
            "--signup",
            "open",
            "--smtp-url",
            "smtp://127.0.0.1:1?tls=none",
            "--require-verification",
            "false",
        ],
        None,
    );
    o.code(2);
    assert!(
        stderr(&o).contains("--signup open with --smtp-url needs --require-verification on"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn open_signup_without_verification_warns_loudly_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .envs(crate::support::backend::database_url(dir.path()).map(|u| ("GATEHOUSE_DATABASE", u)))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--signup",
            "open",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut warned = false;
    for line in lines.map_while(Result::ok) {
        if line.starts_with("WARNING: --signup open without email verification") {
            warned = true;
            break;
        }
        if line.contains("one-time link") || line.contains("/signup?token=") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no warning about open signup without verification");
}
