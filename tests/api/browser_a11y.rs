//! Accessibility in real headless Chromium: axe-core (from npm, see
//! package.json) audits every page in light and dark, on a desktop and on a
//! 360 px phone, and fails on any serious or critical violation; every page
//! must render (not blank), not overflow a phone sideways, and leave no
//! error in the browser console. Then the keyboard alone: the login form,
//! the sidebar toggle and the user menu, with visible focus; and the drawer
//! that replaces the sidebar on phones.

use crate::browser::{Browser, log_in};
use crate::support::{PASSWORD, TestApp, spawn_app, spawn_with};
use axum::http::Method;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use gatehouse::config::{Config, SignupMode};
use serde_json::{Value, json};

pub const TAB: char = '\u{E004}';
pub const ENTER: char = '\u{E007}';
pub const ESCAPE: char = '\u{E00C}';

/// A screen the pages are looked at on: size and colour scheme.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub phone: bool,
    pub dark: bool,
}

pub const DESKTOP_LIGHT: View = View {
    name: "desktop-light",
    width: 1280,
    height: 800,
    phone: false,
    dark: false,
};
pub const DESKTOP_DARK: View = View {
    name: "desktop-dark",
    dark: true,
    ..DESKTOP_LIGHT
};
pub const PHONE_LIGHT: View = View {
    name: "phone-light",
    width: 360,
    height: 780,
    phone: true,
    dark: false,
};
pub const PHONE_DARK: View = View {
    name: "phone-dark",
    dark: true,
    ..PHONE_LIGHT
};
pub const VIEWS: [View; 4] = [DESKTOP_LIGHT, DESKTOP_DARK, PHONE_LIGHT, PHONE_DARK];

/// A command chromedriver has beyond W3C WebDriver, under the session.
#[derive(Debug)]
struct SessionCmd {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionCmd {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.expect("a session"),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// Every audit runs in a browser that keeps its console log.
pub async fn audit_browser() -> Browser {
    let browser = Browser::start_with(&[]).await;
    browser.emulate(DESKTOP_LIGHT).await;
    browser
}

impl Browser {
    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(SessionCmd {
                path: "goog/cdp/execute",
                body: json!({ "cmd": cmd, "params": params }),
            })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Looks at the page (and the next ones) as on `view`: the viewport
    /// size, phone or not, light or dark. Reduced motion, so that nothing
    /// is caught halfway through a transition.
    pub async fn emulate(&self, view: View) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": view.width, "height": view.height,
                "deviceScaleFactor": 1, "mobile": view.phone,
            }),
        )
        .await;
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [
                { "name": "prefers-color-scheme", "value": if view.dark { "dark" } else { "light" } },
                { "name": "prefers-reduced-motion", "value": "reduce" },
            ]}),
        )
        .await;
        self.settle().await;
    }

    /// Waits until styles and layout are up to date and every transition
    /// has run to its end (a colour halfway would fool the contrast check).
    pub async fn settle(&self) {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
                 (async () => {
                   await frame(); await frame();
                   for (let i = 0; i < 20; i++) {
                     const running = document.getAnimations().filter((a) => a.playState === 'running');
                     if (running.length === 0) break;
                     await Promise.all(running.map((a) => a.finished.catch(() => {})));
                     await frame();
                   }
                   done(true);
                 })();",
                vec![],
            )
            .await
            .unwrap();
    }

    /// The console's errors since the last call: uncaught exceptions,
    /// `console.error`, CSP violations, resources that failed to load. The
    /// page's own HTTP status (a 404 page, a 403, a 401 after a wrong
    /// password) is meant, and not counted.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(SessionCmd {
                path: "se/log",
                body: json!({ "type": "browser" }),
            })
            .await
            .expect("the browser log (started with Browser::start_with)");
        let here = self.client.current_url().await.unwrap().to_string();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| {
                !(m.starts_with(&format!(
                    "{here} - Failed to load resource: the server responded with a status of"
                )))
            })
            .collect()
    }

    /// The serious and critical violations axe-core finds on the page.
    pub async fn axe(&self) -> Vec<String> {
        if self.js("return typeof window.axe").await != json!("object") {
            let source = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/node_modules/axe-core/axe.min.js"
            ))
            .expect("node_modules/axe-core: run `make deps` (npm ci)");
            self.client.execute(&source, vec![]).await.unwrap();
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then((r) => done(r.violations.map((v) => ({
                     id: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.map((n) => n.target.join(' ') + '  ' + (n.failureSummary || '').replace(/\\s+/g, ' ')),
                   }))))
                   .catch((e) => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await
            .unwrap();
        result
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .map(|v| {
                let nodes: Vec<String> = v["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| format!("      {}", n.as_str().unwrap()))
                    .collect();
                format!(
                    "{} ({}): {}\n{}",
                    v["id"].as_str().unwrap(),
                    v["impact"].as_str().unwrap(),
                    v["help"].as_str().unwrap(),
                    nodes.join("\n")
                )
            })
            .collect()
    }

    /// Why the page would count as blank: no text, or no stylesheet.
    pub async fn blank(&self) -> Option<String> {
        let v = self
            .js(
                "const text = document.body ? document.body.innerText.trim() : '';
                 const styled = getComputedStyle(document.body).fontFamily.includes('system-ui');
                 const main = document.querySelector('main');
                 const tall = main ? main.getBoundingClientRect().height : 0;
                 return [text.length, styled, tall];",
            )
            .await;
        if v[0].as_u64() == Some(0) {
            Some("no text".into())
        } else if v[1] != json!(true) {
            Some("the stylesheet is not applied".into())
        } else if v[2].as_f64().unwrap_or(0.0) < 100.0 {
            Some("no <main>, or an empty one".into())
        } else {
            None
        }
    }

    /// What axe does not check of the forms: a field marked invalid is
    /// described by a message; an error is announced (inside an alert or a
    /// live region) or tied to its field; password fields say which
    /// password they want, for password managers.
    pub async fn form_problems(&self) -> Vec<String> {
        let v = self
            .js(r#"const problems = [];
                const name = (e) => e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + e.className;
                for (const f of document.querySelectorAll('[aria-invalid="true"]')) {
                  const ids = (f.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
                  const said = ids.map((id) => document.getElementById(id))
                    .filter((e) => e && e.textContent.trim()
                      && (e.closest('.notice.error, .field-error') || e.querySelector('.notice.error')));
                  if (!said.length) problems.push(name(f) + ' is marked invalid, but no error message describes it');
                }
                for (const e of document.querySelectorAll('.notice.error, .field-error')) {
                  const live = e.closest('[role=alert], [role=status], [aria-live]');
                  const tied = e.id && document.querySelector('[aria-describedby~="' + e.id + '"]');
                  if (!live && !tied) problems.push('the error ' + name(e) + ' is neither announced nor tied to a field');
                }
                for (const f of document.querySelectorAll('input[type=password]')) {
                  const a = f.getAttribute('autocomplete');
                  if (a !== 'current-password' && a !== 'new-password') problems.push(name(f) + ' has autocomplete=' + a);
                }
                const id = document.getElementById('login-id');
                if (id && id.getAttribute('autocomplete') !== 'username') problems.push('#login-id is not autocomplete=username');
                return problems;"#)
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    }

    /// How far the page is wider than the screen (0: it fits).
    pub async fn overflow_x(&self) -> i64 {
        self.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await
        .as_i64()
        .unwrap()
    }

    /// Audits the page as it is now on each view; the problems, with
    /// `what` and the view in front of each.
    pub async fn audit(&self, what: &str) -> Vec<String> {
        let mut problems: Vec<String> = self
            .form_problems()
            .await
            .into_iter()
            .map(|p| format!("{what}: {p}"))
            .collect();
        for view in VIEWS {
            self.emulate(view).await;
            let at = format!("{what} [{}]", view.name);
            if let Some(why) = self.blank().await {
                problems.push(format!("{at}: blank page: {why}"));
            }
            if view.phone {
                let over = self.overflow_x().await;
                if over > 0 {
                    problems.push(format!("{at}: {over} px wider than the screen"));
                }
            }
            for v in self.axe().await {
                problems.push(format!("{at}: {v}"));
            }
        }
        for e in self.console_errors().await {
            problems.push(format!("{what}: console error: {e}"));
        }
        self.emulate(DESKTOP_LIGHT).await;
        problems
    }

    /// Opens `path` and audits it.
    pub async fn audit_path(&self, app: &TestApp, path: &str) -> Vec<String> {
        self.goto(&app.url(path)).await;
        self.audit(path).await
    }

    /// Presses one key after another.
    pub async fn keys(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(actions).await.unwrap();
    }

    /// Whether the element with focus is `css`.
    pub async fn focused(&self, css: &str) -> bool {
        self.js(&format!(
            "return document.activeElement === document.querySelector(\"{css}\")"
        ))
        .await
            == json!(true)
    }

    /// What has focus, for messages.
    pub async fn focus_name(&self) -> String {
        self.js(
            "const e = document.activeElement;
             return e ? e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim().slice(0, 30) : 'nothing'",
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
    }

    /// Whether the focused element shows it: `:focus-visible` with an
    /// outline or a ring (box-shadow).
    pub async fn focus_is_visible(&self) -> bool {
        self.js("const e = document.activeElement;
             if (!e || e === document.body || !e.matches(':focus-visible')) return false;
             const s = getComputedStyle(e);
             const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
             const r = e.getBoundingClientRect();
             return (outline || s.boxShadow !== 'none') && r.width > 0 && r.height > 0;")
            .await
            == json!(true)
    }

    /// Tab, then: focus is on `css`, and visibly so.
    async fn tab_to(&self, css: &str) {
        self.keys(&TAB.to_string()).await;
        assert!(
            self.focused(css).await,
            "Tab should reach {css}, it is on {}",
            self.focus_name().await
        );
        assert!(self.focus_is_visible().await, "no visible focus on {css}");
    }

    async fn attr(&self, css: &str, name: &str) -> Value {
        self.js(&format!(
            "return document.querySelector(\"{css}\").getAttribute('{name}')"
        ))
        .await
    }
}

fn assert_clean(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[tokio::test]
async fn the_pages_before_login_pass_axe_in_light_and_dark_on_desktop_and_phone() {
    let app = spawn_app().await; // invitations only, pinned endpoint
    let user = app.add_user("ada@example.com", "ada", PASSWORD).await;
    let browser = audit_browser().await;
    let mut problems = Vec::new();

    problems.extend(browser.audit_path(&app, "/login").await);
    log_in(&browser, &app, "ada", "Wrong-pass1!").await;
    problems.extend(browser.audit("/login with a wrong password").await);
    problems.extend(browser.audit_path(&app, "/signup").await); // needs a token
    problems.extend(browser.audit_path(&app, "/terms").await);
    problems.extend(browser.audit_path(&app, "/privacy").await);
    problems.extend(browser.audit_path(&app, "/forgot-password").await);
    browser.fill("#recovery-email", "not an address").await;
    browser
        .js("document.getElementById('recovery-email').form.noValidate = true; return true")
        .await;
    browser
        .submit("form[action='/forgot-password'] button[type=submit]")
        .await;
    assert!(!browser.text("#recovery-error").await.is_empty());
    problems.extend(browser.audit("/forgot-password with a bad address").await);
    browser.fill("#recovery-email", "ada@example.com").await;
    browser
        .submit("form[action='/forgot-password'] button[type=submit]")
        .await;
    problems.extend(browser.audit("/forgot-password sent").await);
    let link = app.reset_link(user.id).await;
    problems.extend(browser.audit_path(&app, &link).await);
    browser.fill("#reset-password", "N3w-passphrase!").await;
    browser
        .fill("#reset-password-confirm", "N3w-passphrase?")
        .await;
    browser.submit("#reset-form button[type=submit]").await;
    problems.extend(browser.audit("/reset-password with errors").await);
    problems.extend(
        browser
            .audit_path(&app, "/verify-email?code=not-a-real-code")
            .await,
    );
    problems.extend(browser.audit_path(&app, "/no-such-page").await);

    // The lock page, at the 11th wrong password in a row.
    for _ in 0..10 {
        app.post_login("ada", "Wrong-pass1!").await;
    }
    log_in(&browser, &app, "ada", "Wrong-pass1!").await;
    assert!(browser.text("#lock-notice").await.contains("locked"));
    problems.extend(browser.audit("the lock page").await);

    browser.close().await;
    assert_clean(problems);
}

#[tokio::test]
async fn signup_the_documents_dialog_and_the_closed_pages_pass_axe() {
    let app = spawn_with(|c: &mut Config| {
        c.signup = SignupMode::Open;
        c.endpoint_editable = true;
    })
    .await;
    let browser = audit_browser().await;
    let mut problems = Vec::new();

    problems.extend(browser.audit_path(&app, "/login").await); // editable endpoint
    problems.extend(browser.audit_path(&app, "/signup").await);
    browser.fill("#signup-password", "short").await; // the rule ticked off
    browser.fill("#signup-password-confirm", "other").await;
    problems.extend(browser.audit("/signup while typing").await);

    browser.goto(&app.url("/signup")).await;
    browser.fill("#signup-email", "not an address").await;
    browser.fill("#signup-username", "x").await;
    browser.fill("#signup-password", "short").await;
    browser.fill("#signup-password-confirm", "other").await;
    browser
        .js("document.getElementById('signup-form').noValidate = true; return true")
        .await;
    browser.submit("#signup-form button[type=submit]").await;
    assert!(browser.text("#signup-status").await.contains("correct"));
    problems.extend(browser.audit("/signup with errors").await);

    for dialog in ["terms-dialog", "privacy-dialog"] {
        browser.goto(&app.url("/signup")).await;
        browser
            .click(&format!(".checkbox-field a[data-dialog={dialog}]"))
            .await;
        assert_eq!(
            browser
                .js(&format!("return document.getElementById('{dialog}').open"))
                .await,
            json!(true)
        );
        problems.extend(browser.audit(&format!("/signup with {dialog} open")).await);
    }

    let closed = spawn_with(|c: &mut Config| {
        c.signup = SignupMode::Closed;
        c.password_reset = false;
    })
    .await;
    problems.extend(browser.audit_path(&closed, "/login").await);
    problems.extend(browser.audit_path(&closed, "/signup").await);
    problems.extend(browser.audit_path(&closed, "/forgot-password").await);

    browser.close().await;
    assert_clean(problems);
}

#[tokio::test]
async fn the_pages_after_login_pass_axe_in_light_and_dark_on_desktop_and_phone() {
    let app = spawn_app().await;
    app.add_user_without_consent("cyd@example.com", "cyd").await;
    // History: a failed try, and another session (with an End button).
    app.post_login("cyd", "Wrong-pass1!").await;
    app.login_ok("cyd", PASSWORD).await;
    let browser = audit_browser().await;
    let mut problems = Vec::new();

    log_in(&browser, &app, "cyd", PASSWORD).await;
    browser.wait_for_path("/consent").await;
    problems.extend(browser.audit("/consent").await);
    browser.click("a[data-dialog=terms-dialog]").await;
    problems.extend(browser.audit("/consent with the Terms open").await);
    browser.press(ESCAPE).await;
    browser
        .js("document.getElementById('consent-form').noValidate = true; return true")
        .await;
    browser.submit("#consent-form button[type=submit]").await;
    problems.extend(browser.audit("/consent without the box ticked").await);
    browser.click("#agree").await;
    browser.submit("#consent-form button[type=submit]").await;
    browser.wait_for_path("/").await;

    problems.extend(browser.audit("/ (Summary)").await);
    browser.click("#user-menu summary").await;
    problems.extend(browser.audit("/ with the user menu open").await);
    browser.click("#sidebar-toggle").await;
    assert!(browser.is_collapsed().await);
    problems.extend(browser.audit("/ with the sidebar collapsed").await);
    browser.click("#sidebar-toggle").await;

    problems.extend(browser.audit_path(&app, "/account").await);
    assert_eq!(
        browser
            .js("return document.querySelectorAll('#login-history tbody tr').length >= 3")
            .await,
        json!(true),
        "the history has rows"
    );
    browser.fill("#current-password", "Wrong-pass1!").await;
    browser.fill("#new-password", "N3w-passphrase!").await;
    browser
        .fill("#new-password-confirm", "N3w-passphrase!")
        .await;
    browser.submit("#password-form button[type=submit]").await;
    problems.extend(
        browser
            .audit("/account with a wrong current password")
            .await,
    );

    // The drawer, open on a phone.
    browser.emulate(PHONE_LIGHT).await;
    browser.goto(&app.url("/account")).await;
    browser.click("#drawer-toggle").await;
    browser.settle().await;
    for view in [PHONE_LIGHT, PHONE_DARK] {
        browser.emulate(view).await;
        for v in browser.axe().await {
            problems.push(format!(
                "/account with the drawer open [{}]: {v}",
                view.name
            ));
        }
    }
    browser.emulate(DESKTOP_LIGHT).await;
    problems.extend(browser.audit_path(&app, "/no-such-page").await);

    browser.close().await;
    assert_clean(problems);
}

#[tokio::test]
async fn the_login_form_works_with_the_keyboard_alone() {
    let app = spawn_app().await;
    app.add_user("dee@example.com", "dee", PASSWORD).await;
    let browser = audit_browser().await;
    browser.goto(&app.url("/login")).await;

    // The ID field has focus from the start; then the order of the form.
    assert!(
        browser.focused("#login-id").await,
        "the ID field should have focus, {} has",
        browser.focus_name().await
    );
    browser.keys("dee").await;
    browser.tab_to("#login-password").await;
    browser.keys(PASSWORD).await;
    browser.tab_to("#login-endpoint").await;
    browser.tab_to("#login-form button[type=submit]").await;
    browser.keys(&ENTER.to_string()).await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("h1.page-title").await, "Summary");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_sidebar_toggle_and_the_user_menu_work_with_the_keyboard() {
    let app = spawn_app().await;
    app.add_user("eve@example.com", "eve", PASSWORD).await;
    let browser = audit_browser().await;
    log_in(&browser, &app, "eve", PASSWORD).await;
    browser.wait_for_path("/").await;

    // From the top of the page: the skip link, the menu, the toggle.
    browser.tab_to("a.skip-link").await;
    browser.tab_to("a.nav-link[href='/']").await;
    browser.tab_to("a.nav-link[href='/account']").await;
    browser.tab_to("#sidebar-toggle").await;
    browser.keys(&ENTER.to_string()).await;
    assert!(browser.is_collapsed().await, "Enter collapses");
    assert_eq!(
        browser.attr("#sidebar-toggle", "aria-expanded").await,
        json!("false")
    );
    assert_eq!(
        browser.attr("#sidebar-toggle", "aria-label").await,
        json!("Expand sidebar")
    );
    // Collapsed, the links keep their names (for screen readers and as
    // tooltips), and focus stays visible.
    assert_eq!(
        browser
            .js("return [...document.querySelectorAll('.nav-link')].map((a) => [a.title, a.textContent.trim()])")
            .await,
        json!([["Summary", "Summary"], ["Account", "Account"]])
    );
    assert!(browser.focus_is_visible().await);
    browser.keys(" ").await;
    assert!(!browser.is_collapsed().await, "Space expands");

    // The user menu: opens with Enter, its items next in order, Escape
    // closes it and gives focus back.
    browser.tab_to("#user-menu summary").await;
    browser.keys(&ENTER.to_string()).await;
    assert_eq!(
        browser
            .js("return document.getElementById('user-menu').open")
            .await,
        json!(true)
    );
    browser
        .tab_to("#user-menu a.menu-item[href='/account']")
        .await;
    browser.tab_to("#logout-button").await;
    browser.keys(&ESCAPE.to_string()).await;
    assert_eq!(
        browser
            .js("return document.getElementById('user-menu').open")
            .await,
        json!(false)
    );
    assert!(
        browser.focused("#user-menu summary").await,
        "focus back on the menu button"
    );

    // Log Out, by keyboard.
    browser.keys(&ENTER.to_string()).await;
    browser
        .tab_to("#user-menu a.menu-item[href='/account']")
        .await;
    browser.tab_to("#logout-button").await;
    browser.keys(&ENTER.to_string()).await;
    browser.wait_for_path("/login?logged_out=1").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn on_a_phone_the_sidebar_is_a_drawer_and_nothing_overflows() {
    let app = spawn_app().await;
    app.add_user("fin@example.com", "fin", PASSWORD).await;
    let browser = audit_browser().await;
    browser.emulate(PHONE_LIGHT).await;
    log_in(&browser, &app, "fin", PASSWORD).await;
    browser.wait_for_path("/").await;

    let sidebar_shown = "const s = getComputedStyle(document.getElementById('sidebar'));
        const r = document.getElementById('sidebar').getBoundingClientRect();
        return s.visibility === 'visible' && r.left >= 0 && r.right > 0;";
    let toggle_shown =
        "return document.getElementById('drawer-toggle').getBoundingClientRect().width > 0";
    assert_eq!(
        browser.js(toggle_shown).await,
        json!(true),
        "the menu button is there"
    );
    assert_eq!(
        browser.js(sidebar_shown).await,
        json!(false),
        "the drawer starts closed"
    );
    assert_eq!(browser.overflow_x().await, 0);

    // Opened by its button: in view, focus on its first link.
    browser.click("#drawer-toggle").await;
    browser.settle().await;
    assert_eq!(
        browser.js(sidebar_shown).await,
        json!(true),
        "the drawer opens"
    );
    assert_eq!(
        browser.attr("#drawer-toggle", "aria-expanded").await,
        json!("true")
    );
    assert!(
        browser.focused("a.nav-link[href='/']").await,
        "{}",
        browser.focus_name().await
    );
    assert_eq!(browser.overflow_x().await, 0);

    // Escape closes it, focus back on the button.
    browser.keys(&ESCAPE.to_string()).await;
    browser.settle().await;
    assert_eq!(
        browser.js(sidebar_shown).await,
        json!(false),
        "Escape closes it"
    );
    assert_eq!(
        browser.attr("#drawer-toggle", "aria-expanded").await,
        json!("false")
    );
    assert!(
        browser.focused("#drawer-toggle").await,
        "{}",
        browser.focus_name().await
    );

    // With the keyboard: Enter opens it, a link in it leads on.
    browser.keys(&ENTER.to_string()).await;
    browser.settle().await;
    assert_eq!(browser.js(sidebar_shown).await, json!(true));
    browser.tab_to("a.nav-link[href='/account']").await;
    browser.keys(&ENTER.to_string()).await;
    browser.wait_for_path("/account").await;
    assert_eq!(
        browser.js(sidebar_shown).await,
        json!(false),
        "closed on the next page"
    );
    assert_eq!(
        browser.overflow_x().await,
        0,
        "the tables scroll inside their box"
    );
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_audit_itself_finds_a_violation_a_console_error_and_a_blank_page() {
    let app = spawn_app().await;
    let browser = audit_browser().await;
    browser.goto(&app.url("/login")).await;
    assert_eq!(browser.audit("/login").await, Vec::<String>::new());

    // A button without a name, text without contrast, a script error.
    browser
        .js(
            "const b = document.createElement('button'); b.id = 'nameless';
             document.querySelector('main').append(b);
             const p = document.createElement('p'); p.textContent = 'faint';
             p.style.color = '#ddd'; p.style.background = '#fff';
             document.querySelector('.auth-card').append(p);
             document.getElementById('login-endpoint').setAttribute('aria-invalid', 'true');
             setTimeout(() => { throw new Error('probe failure'); });
             return true",
        )
        .await;
    let problems = browser.audit("/login, broken").await.join("\n");
    assert!(problems.contains("button-name (critical)"), "{problems}");
    assert!(problems.contains("#nameless"), "{problems}");
    assert!(problems.contains("color-contrast (serious)"), "{problems}");
    assert!(
        problems.contains("Uncaught Error: probe failure"),
        "{problems}"
    );
    assert!(
        problems.contains("#login-endpoint is marked invalid, but no error message describes it"),
        "{problems}"
    );

    browser
        .js("document.body.replaceChildren(); return true")
        .await;
    assert_eq!(browser.blank().await, Some("no text".to_string()));
    browser.close().await;
}

#[tokio::test]
async fn the_second_factor_pages_pass_axe() {
    use gatehouse::domain::second_factor::TotpSecret;
    let app = crate::support::spawn_with(|c| {
        c.two_factor.require = gatehouse::config::Require2fa::All;
    })
    .await;
    app.add_user("ida@example.com", "ida", PASSWORD).await;
    let browser = audit_browser().await;
    let mut problems = Vec::new();

    // The policy's enrolment, right after the password.
    log_in(&browser, &app, "ida", PASSWORD).await;
    browser.wait_for_path("/login/enrol").await;
    problems.extend(browser.audit("/login/enrol").await);
    browser.fill("#code", "000000").await;
    browser.submit("#app-setup-form button[type=submit]").await;
    problems.extend(browser.audit("/login/enrol with a wrong code").await);
    let key = browser
        .js("return document.getElementById('totp-secret').dataset.secret")
        .await;
    let secret = TotpSecret::from_base32(key.as_str().unwrap()).unwrap();
    browser
        .fill("#code", &secret.code_at(app.clock.now()))
        .await;
    browser.submit("#app-setup-form button[type=submit]").await;
    problems.extend(browser.audit("the recovery codes after enrolment").await);
    browser.submit("#continue").await;
    browser.wait_for_path("/").await;
    problems.extend(browser.audit_path(&app, "/account").await);

    // The second step of the next login.
    browser.client.delete_all_cookies().await.unwrap();
    log_in(&browser, &app, "ida", PASSWORD).await;
    browser.wait_for_path("/login/second-factor").await;
    problems.extend(browser.audit("/login/second-factor").await);
    browser.fill("#code", "123456").await;
    browser
        .submit("#second-factor-form button[type=submit]")
        .await;
    problems.extend(
        browser
            .audit("/login/second-factor with a wrong code")
            .await,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
