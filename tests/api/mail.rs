//! Mail end to end with a real SMTP server: verification, forgotten
//! password, lock notice, the outbox across SMTP outages and restarts,
//! STARTTLS with a password, and `gatehouse mail test`.

use crate::smtp::{Options, SmtpServer};
use crate::support::{PASSWORD, TestApp, spawn_app, spawn_in, spawn_with};
use gatehouse::config::{Config, SignupMode};
use gatehouse::domain::LoginId;
use gatehouse::mail::SmtpSettings;

use reqwest::StatusCode;
use std::time::Duration;

pub(crate) fn with_smtp(smtp: &SmtpServer) -> impl FnOnce(&mut Config) + use<> {
    let (url, ca) = (smtp.url(), smtp.ca_file.clone());
    move |c: &mut Config| {
        c.mail.smtp = Some(SmtpSettings::parse(&url).unwrap());
        c.mail.ca_file = ca;
        c.mail.from = Some("Login Desk <login@example.com>".into());
        c.require_verification = true;
        c.signup = SignupMode::Open;
    }
}

/// The path and query of a link in a mail, to follow with the test client.
fn path_of(link: &str, app: &TestApp) -> String {
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} is not on {}", app.address))
        .to_string()
}

fn csrf_and(html: &str) -> String {
    crate::support::csrf_from(html)
}

async fn follow_and_post(
    app: &TestApp,
    link: &str,
    action: &str,
    field: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (status, html) = app.get_text(&path_of(link, app)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let value = link.split('=').nth(1).unwrap();
    let csrf = csrf_and(&html);
    let mut form = vec![(field, value), ("csrf", csrf.as_str())];
    form.extend_from_slice(extra);
    app.client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signup_mails_a_link_that_confirms_the_address_then_login_works() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    let r = app.sign_up("nina@example.com", "nina", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("We sent a link to your email address")
    );

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["nina@example.com".to_string()]);
    assert_eq!(mail.from, "login@example.com");
    assert_eq!(mail.subject, "Confirm your email address");
    let link = mail.link(&format!("{}/verify-email?code=", app.address));
    assert!(mail.html.contains(&link), "the HTML part has the link too");

    // Before confirming: the right password is told to confirm, a wrong
    // one gets the usual answer.
    let wrong = app.post_login("nina", "Wrong-pass1!").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app.post_login("nina", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::FORBIDDEN);
    assert!(right.text().await.unwrap().contains("not confirmed yet"));

    // Opening the link changes nothing; the button does.
    let r = follow_and_post(&app, &link, "/verify-email", "code", &[]).await;
    assert_eq!(r.headers()["location"], "/login?verified=1");
    app.login_ok("nina", PASSWORD).await;
    // The link works once.
    assert_eq!(
        app.get(&path_of(&link, &app)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_new_verification_link_replaces_the_old_one() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.sign_up("olga@example.com", "olga", "").await;
    let first = smtp.wait_for(1).await[0].link(&format!("{}/verify-email?code=", app.address));
    let r = app
        .post_form(
            "/login",
            "/verify-email/resend",
            &[("email", "olga@example.com")],
        )
        .await;
    assert!(r.text().await.unwrap().contains("We sent a link"));
    let second = smtp.wait_for(2).await[1].link(&format!("{}/verify-email?code=", app.address));
    assert_ne!(first, second);
    let (status, html) = app.get_text(&path_of(&first, &app)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid or has expired") && html.contains("Send a new link"));
    follow_and_post(&app, &second, "/verify-email", "code", &[]).await;
    app.login_ok("olga", PASSWORD).await;
}

async fn forgot(app: &TestApp, email: &str) -> (StatusCode, String) {
    let r = app
        .post_form("/forgot-password", "/forgot-password", &[("email", email)])
        .await;
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn forgot_password_mails_a_link_that_sets_a_new_password_and_ends_every_session() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("pia@example.com", "pia", PASSWORD).await;
    let other = TestApp::session_cookie(&app.post_login("pia", PASSWORD).await).unwrap();

    let (unknown_status, unknown_page) = forgot(&app, "nobody@example.com").await;
    let (status, page) = forgot(&app, "pia@example.com").await;
    assert_eq!(
        (status, &page),
        (unknown_status, &unknown_page),
        "the same answer for unknown addresses"
    );
    assert!(page.contains("If an account exists for that address"));

    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails.len(),
        1,
        "nothing for the unknown address (handled first)"
    );
    assert_eq!(mails[0].subject, "Change your password");
    let link = mails[0].link(&format!("{}/reset-password?token=", app.address));

    let new = "N3w-passphrase!";
    let r = follow_and_post(
        &app,
        &link,
        "/reset-password",
        "token",
        &[("password", new), ("password_confirm", new)],
    )
    .await;
    assert_eq!(r.headers()["location"], "/login?reset=1");
    assert!(
        app.get_text("/login?reset=1")
            .await
            .1
            .contains("Your password was changed")
    );

    // Every session ended, including one in another browser.
    let replay = reqwest::Client::new()
        .get(app.url("/api/v1/session"))
        .header("cookie", format!("gatehouse_session={other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post_login("pia", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_ok("pia", new).await;

    let changed = smtp.wait_for(2).await.remove(1);
    assert_eq!(changed.subject, "Your password was changed");
    // The link was used up.
    assert_eq!(
        app.get(&path_of(&link, &app)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn reset_links_expire_and_a_newer_one_replaces_the_older() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("quinn@example.com", "quinn", PASSWORD).await;
    forgot(&app, "quinn@example.com").await;
    let first = smtp.wait_for(1).await[0].link(&format!("{}/reset-password?token=", app.address));
    forgot(&app, "quinn@example.com").await;
    let second = smtp.wait_for(2).await[1].link(&format!("{}/reset-password?token=", app.address));
    let (status, html) = app.get_text(&path_of(&first, &app)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "replaced");
    assert!(html.contains("a newer one was sent"));
    assert_eq!(
        app.get(&path_of(&second, &app)).await.status(),
        StatusCode::OK
    );

    app.clock.advance(Duration::from_secs(3601));
    let (status, html) = app.get_text(&path_of(&second, &app)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("This link has expired."));
}

/// A browser of its own (its own cookies), posting the login form.
async fn login_in(app: &TestApp, client: &reqwest::Client, id: &str, password: &str) -> StatusCode {
    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(app.url("/login"))
        .form(&[
            ("id", id),
            ("password", password),
            ("endpoint", ""),
            ("csrf", &csrf_and(&html)),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_locked_owner_is_mailed_once_without_a_link_that_a_guesser_could_cancel() {
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("rita@example.com", "rita", PASSWORD).await;
    for _ in 0..11 {
        app.post_login("rita", "Wrong-pass1!").await;
    }
    assert_eq!(
        app.post_login("rita", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let notice = smtp.wait_for(1).await.remove(0);
    assert_eq!(
        notice.subject,
        "Your account was locked after failed logins"
    );
    assert!(notice.text.contains("127.0.0.1"), "from which address");
    assert!(!notice.text.contains("token="), "no token: {}", notice.text);
    assert!(
        notice
            .text
            .contains(&format!("{}/forgot-password", app.address)),
        "{}",
        notice.text
    );
    // The owner asks for a link; the guesser locks the other name too
    // (the account is locked already: no second notice), and the owner's
    // link still works.
    app.post_form(
        "/forgot-password",
        "/forgot-password",
        &[("email", "rita@example.com")],
    )
    .await;
    for _ in 0..11 {
        app.post_login("rita@example.com", "Wrong-pass1!").await;
    }
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2, "one notice, one reset link");
    let link = mails[1].link(&format!("{}/reset-password?token=", app.address));
    let new = "Unl0cked-again!";
    follow_and_post(
        &app,
        &link,
        "/reset-password",
        "token",
        &[("password", new), ("password_confirm", new)],
    )
    .await;
    app.login_ok("rita", new).await;
    smtp.wait_for(3).await;
    assert_eq!(smtp.count(), 3, "a notice, a link, 'password changed'");
}

#[tokio::test]
async fn after_a_reset_the_owner_gets_in_though_the_guesser_locks_again_at_once() {
    // Observed before: the guesser re-locked both names 1.5 s after the
    // owner's reset, and the owner's new password got 429.
    let smtp = SmtpServer::start(Options::default());
    let app = spawn_with(with_smtp(&smtp)).await;
    app.add_user("sol@example.com", "sol", PASSWORD).await;
    let owner = crate::support::new_client();
    let guesser = crate::support::new_client();
    let stranger = crate::support::new_client();
    for id in ["sol", "sol@example.com"] {
        for _ in 0..11 {
            login_in(&app, &guesser, id, "Wrong-pass1!").await;
        }
    }
    smtp.wait_for(1).await;
    // The owner resets the password in a new browser...
    let html = owner
        .get(app.url("/forgot-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    owner
        .post(app.url("/forgot-password"))
        .form(&[("email", "sol@example.com"), ("csrf", &csrf_and(&html))])
        .send()
        .await
        .unwrap();
    let link = smtp.wait_for(2).await[1].link(&format!("{}/reset-password?token=", app.address));
    let html = owner.get(&link).send().await.unwrap().text().await.unwrap();
    let token = link.split('=').nth(1).unwrap();
    let new = "Unl0cked-again!";
    let r = owner
        .post(app.url("/reset-password"))
        .form(&[
            ("token", token),
            ("password", new),
            ("password_confirm", new),
            ("csrf", &csrf_and(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // ...the guesser locks both names again at once...
    for id in ["sol", "sol@example.com"] {
        for _ in 0..11 {
            login_in(&app, &guesser, id, "Wrong-pass1!").await;
        }
    }
    assert_eq!(
        login_in(&app, &stranger, "sol", new).await,
        StatusCode::TOO_MANY_REQUESTS,
        "strangers are locked out"
    );
    // ...and the browser that completed the reset gets in.
    assert_eq!(
        login_in(&app, &owner, "sol", new).await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_owners_usual_browser_gets_in_while_a_guesser_holds_the_lock() {
    let app = spawn_app().await;
    app.add_user("una@example.com", "una", PASSWORD).await;
    let usual = crate::support::new_client();
    let guesser = crate::support::new_client();
    assert_eq!(
        login_in(&app, &usual, "una", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    usual
        .post(app.url("/logout"))
        .form(&[(
            "csrf",
            &csrf_and(
                &usual
                    .get(app.url("/account"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            ),
        )])
        .send()
        .await
        .unwrap();
    for cycle in 0..3 {
        for id in ["una", "una@example.com"] {
            for _ in 0..11 {
                login_in(&app, &guesser, id, "Wrong-pass1!").await;
            }
        }
        assert_eq!(
            login_in(&app, &guesser, "una", PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "cycle {cycle}: the guesser, even with the password, is locked out"
        );
        assert_eq!(
            login_in(&app, &usual, "una", PASSWORD).await,
            StatusCode::SEE_OTHER,
            "cycle {cycle}: the usual browser gets in"
        );
        app.clock.advance(Duration::from_secs(24 * 3600));
    }
}

#[tokio::test]
async fn mail_waits_in_the_outbox_while_smtp_is_down_also_across_a_restart() {
    // A port with nothing behind it: connection refused. Below the
    // ephemeral range, so that no client socket of the machine can take it
    // as its own port and connect to itself (which answers, in silence).
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    let port = (start..start + 5_000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range");
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let configure = move |c: &mut Config| {
        c.mail.smtp = Some(SmtpSettings::parse(&url).unwrap());
        c.require_verification = true;
        c.signup = SignupMode::Open;
    };
    let app = spawn_with(configure.clone()).await;
    app.sign_up("sam@example.com", "sam", "").await;

    // The mail is stored and its first attempt fails.
    app.state.mail_requests.settled().await;
    app.state.outbox.flushed().await;
    let outbox = app.state.store.outbox().await.unwrap();
    let entry = outbox
        .into_iter()
        .find(|e| e.attempts > 0)
        .expect("one failed attempt");
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("connection refused"),
        "{:?}",
        entry.last_error
    );

    let (dir, clock) = app.stop().await;
    let smtp = SmtpServer::start_on(
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Options::default(),
    );
    clock.advance(Duration::from_secs(60));
    let app = spawn_in(dir, clock, configure).await;
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.subject, "Confirm your email address");
    let sam = app
        .state
        .store
        .user_by_login_id(&LoginId::parse("sam").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mail.to, vec![sam.email.to_string()]);
    // Delivered mail leaves the outbox.
    app.state.outbox.flushed().await;
    assert!(app.state.store.outbox().await.unwrap().is_empty());
}

#[tokio::test]
async fn mail_goes_out_over_starttls_with_a_password() {
    let smtp = SmtpServer::start(Options {
        starttls: true,
        login: Some(("gate".into(), "s3cret".into())),
        ..Default::default()
    });
    assert!(smtp.url().starts_with("smtp://gate:s3cret@localhost:"));
    let app = spawn_with(with_smtp(&smtp)).await;
    app.sign_up("tess@example.com", "tess", "").await;
    assert_eq!(
        smtp.wait_for(1).await[0].subject,
        "Confirm your email address"
    );
}

#[tokio::test]
async fn without_smtp_the_link_goes_to_the_log_and_the_account_is_active_unless_asked() {
    let app = spawn_with(|c| c.signup = SignupMode::Open).await;
    assert!(app.state.mailer.is_log());
    assert!(
        !app.state.config.require_verification,
        "off by default without SMTP"
    );
    assert_eq!(
        app.sign_up("una@example.com", "una", "").await.status(),
        StatusCode::SEE_OTHER
    );
    app.login_ok("una", PASSWORD).await;
}

#[tokio::test]
async fn password_reset_off_hides_the_button_and_says_to_ask_the_admin() {
    let app = spawn_with(|c| c.password_reset = false).await;
    assert!(!app.get_text("/login").await.1.contains("/forgot-password"));
    let (status, html) = app.get_text("/forgot-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("contact the administrator"));
    let on = spawn_with(|_| {}).await;
    assert!(
        on.get_text("/login")
            .await
            .1
            .contains(r#"href="/forgot-password""#)
    );
}

fn mail_test(smtp_url: &str, extra: &[&str]) -> crate::support::cli::Run {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "mail",
        "test",
        "--to",
        "ops@example.com",
        "--smtp-url",
        smtp_url,
        "--smtp-timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    crate::cli::gatehouse(dir.path(), &args, None)
}

#[tokio::test]
async fn mail_test_sends_one_mail_and_explains_failures_in_plain_words() {
    let smtp = SmtpServer::start(Options {
        starttls: true,
        login: Some(("gate".into(), "s3cret".into())),
        ..Default::default()
    });
    let ca = smtp.ca_file.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let ok = mail_test(&smtp.url(), &["--smtp-ca-file", ca]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("sent a test mail"));
    assert_eq!(smtp.wait_for(1).await[0].subject, "gatehouse test mail");

    let port = smtp.addr.port();
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            format!("smtp://gate:wrong@localhost:{port}"),
            vec!["--smtp-ca-file", ca],
            "refused the user name or password",
        ),
        (
            format!("smtp://gate:s3cret@localhost:{port}"),
            vec![],
            "certificate",
        ),
        (
            format!("smtps://gate:s3cret@localhost:{port}"),
            vec!["--smtp-ca-file", ca],
            "Wrong port for the TLS mode?",
        ),
        (
            "smtp://127.0.0.1:1?tls=none".to_string(),
            vec![],
            "connection refused",
        ),
    ];
    for (url, extra, words) in cases {
        let o = mail_test(&url, &extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{url}: {err}");
        assert!(err.contains(words), "{url}: expected {words:?} in {err}");
    }

    let refusing = SmtpServer::start(Options {
        refuse_sender: true,
        ..Default::default()
    });
    let o = mail_test(&refusing.url(), &[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the sender"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let none = crate::cli::gatehouse(
        tempfile::tempdir().unwrap().path(),
        &["mail", "test", "--to", "a@example.com"],
        None,
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("Set --smtp-url"));
}

#[tokio::test]
async fn mails_to_one_address_are_limited_as_the_settings_say() {
    let app = spawn_with(|c| {
        c.mail_per_address = std::num::NonZeroU32::new(2).unwrap();
        c.mail_per_address_window = Duration::from_secs(600);
    })
    .await;
    app.add_user("lim@example.com", "lim", PASSWORD).await;
    for _ in 0..3 {
        let r = app
            .post_form(
                "/forgot-password",
                "/forgot-password",
                &[("email", "lim@example.com")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "the same answer every time");
    }
    app.state.mail_requests.settled().await;
    let requested = |events: Vec<gatehouse::domain::AuditEvent>| {
        events
            .iter()
            .filter(|e| e.kind == gatehouse::domain::AuditKind::ResetRequested)
            .count()
    };
    let events = app.state.store.audit_events(None, None, 100).await.unwrap();
    assert_eq!(requested(events), 2, "the third request mailed nothing");
    // The window passes: the address may be mailed again.
    app.clock.advance(Duration::from_secs(600));
    app.post_form(
        "/forgot-password",
        "/forgot-password",
        &[("email", "lim@example.com")],
    )
    .await;
    app.state.mail_requests.settled().await;
    let events = app.state.store.audit_events(None, None, 100).await.unwrap();
    assert_eq!(requested(events), 3);
}
