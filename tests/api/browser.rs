//! Journeys in real headless Chromium, driven over WebDriver
//! (chromedriver): what a person does, with the page's own script running.
//! `make test` installs Debian's `chromium` and `chromium-driver`.

use crate::support::{PASSWORD, TestApp, spawn_app};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A Chromium driven by its own chromedriver, with a fresh profile.
pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        Self::launch(&[], false).await
    }

    /// Like `start`, with `args` added to Chromium's command line, and with
    /// the browser's console kept for the WebDriver log (what
    /// `browser_a11y` reads to fail on console errors).
    pub async fn start_with(args: &[&str]) -> Self {
        Self::launch(args, true).await
    }

    async fn launch(extra_args: &[&str], console_log: bool) -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: run `make test` (it installs them) or `apt-get install -y chromium chromium-driver`"
            );
        }
        // chromedriver cannot take port 0, so ask the OS for a free port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        // It says when it listens; read until then instead of polling.
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("started successfully") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        let mut args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        args.as_array_mut()
            .unwrap()
            .extend(extra_args.iter().map(|a| json!(a)));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        if console_log {
            caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        }
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session starts");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits (bounded) until the page is at `path`. The browser is
    /// another process: WebDriver's own wait asks it every 50 ms.
    pub async fn wait_for_path(&self, path: &str) {
        let here = self.client.current_url().await.unwrap();
        let there = here.join(path).unwrap();
        let reached = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .every(Duration::from_millis(50))
            .for_url(&there)
            .await;
        assert!(
            reached.is_ok(),
            "never reached {path}, at {}",
            self.path().await
        );
    }

    /// Clicks a submit button and waits (bounded) for the next document.
    pub async fn submit(&self, css: &str) {
        self.js("window.__before_submit = true; return true").await;
        self.click(css).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = self
                .client
                .execute("return window.__before_submit === undefined && document.readyState === 'complete'", vec![])
                .await;
            if fresh.ok() == Some(json!(true)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the form never produced a new page"
            );
            // The browser is another process: ask again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    pub async fn is_collapsed(&self) -> bool {
        self.js("return document.documentElement.classList.contains('sidebar-collapsed')")
            .await
            == json!(true)
    }

    /// Presses one key with the keyboard, on whatever has focus.
    pub async fn press(&self, key: char) {
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

pub async fn log_in(browser: &Browser, app: &TestApp, id: &str, password: &str) {
    browser.goto(&app.url("/login")).await;
    browser.fill("#login-id", id).await;
    browser.fill("#login-password", password).await;
    browser.submit("#login-form button[type=submit]").await;
}

#[tokio::test]
async fn log_in_see_the_summary_collapse_the_sidebar_and_log_out() {
    let app = spawn_app().await;
    app.add_user("alice@example.com", "alice", PASSWORD).await;
    let browser = Browser::start().await;

    log_in(&browser, &app, "alice@example.com", PASSWORD).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    assert_eq!(
        browser
            .js("return document.querySelectorAll('[role=meter]').length")
            .await,
        json!(4)
    );

    // The button on the sidebar's edge collapses and expands it.
    assert!(!browser.is_collapsed().await);
    browser.click("#sidebar-toggle").await;
    assert!(browser.is_collapsed().await);
    assert_eq!(
        browser
            .client
            .find(Locator::Css("#sidebar-toggle"))
            .await
            .unwrap()
            .attr("aria-expanded")
            .await
            .unwrap(),
        Some("false".into())
    );
    browser.click("#sidebar-toggle").await;
    assert!(!browser.is_collapsed().await);

    // So does `[`, but not while typing in a field, nor with a modifier.
    browser.click("main").await;
    browser.press('[').await;
    assert!(browser.is_collapsed().await, "[ collapses");
    browser.press('[').await;
    assert!(!browser.is_collapsed().await, "[ expands again");
    browser
        .js("const i = document.createElement('input'); i.id = 'probe'; i.setAttribute('aria-label', 'probe'); document.querySelector('main').append(i); return true")
        .await;
    browser.click("#probe").await;
    browser.press('[').await;
    assert!(
        !browser.is_collapsed().await,
        "[ typed into a field is text, not a shortcut"
    );
    assert_eq!(
        browser
            .js("return document.getElementById('probe').value")
            .await,
        json!("[")
    );
    browser.click("main").await;
    let ctrl_bracket = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: '\u{E009}' })
        .then(KeyAction::Down { value: '[' })
        .then(KeyAction::Up { value: '[' })
        .then(KeyAction::Up { value: '\u{E009}' });
    browser.client.perform_actions(ctrl_bracket).await.unwrap();
    assert!(!browser.is_collapsed().await, "Ctrl+[ is not the shortcut");

    // The state survives a reload, rendered by the server (no flash).
    browser.press('[').await;
    assert!(browser.is_collapsed().await);
    browser.client.refresh().await.unwrap();
    assert!(browser.is_collapsed().await, "still collapsed after reload");
    let source = browser.client.source().await.unwrap();
    assert!(
        source.contains(r#"class="sidebar-collapsed""#),
        "collapsed in the served HTML itself"
    );

    // The user menu in the upper right: name, email, role, Log Out.
    browser.click("#user-menu summary").await;
    let menu = browser.text(".menu-panel").await;
    assert!(
        menu.contains("alice") && menu.contains("alice@example.com") && menu.contains("user"),
        "{menu}"
    );
    browser.submit("#logout-button").await;
    browser.wait_for_path("/login?logged_out=1").await;
    assert!(
        browser
            .text("#login-status")
            .await
            .contains("You have logged out.")
    );

    // Logged out on the server too: the Summary sends us to log in.
    browser.goto(&app.url("/")).await;
    browser.wait_for_path("/login").await;
    browser.close().await;
}

#[tokio::test]
async fn the_eleventh_wrong_password_shows_the_lock_page() {
    let app = spawn_app().await;
    app.add_user("bob@example.com", "bob", PASSWORD).await;
    let browser = Browser::start().await;
    for _ in 0..10 {
        log_in(&browser, &app, "bob", "Wrong-pass1!").await;
        assert!(
            browser
                .text("#login-status")
                .await
                .contains("ID or password is incorrect.")
        );
    }
    log_in(&browser, &app, "bob", "Wrong-pass1!").await;
    let lock = browser.text("#lock-notice").await;
    assert!(
        lock.contains("This ID is locked") && lock.contains("20 minutes"),
        "{lock}"
    );
    browser.close().await;
}
