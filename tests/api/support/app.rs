//! `spawn_app()` and a client with one helper per route.

use gatehouse::auth::password::hash_now;
use gatehouse::clock::Clock;
use gatehouse::domain::InviteToken;
use gatehouse::domain::{EmailAddress, Role, User, UserStatus, Username};
use gatehouse::store::{NewInvite, NewUser, Store};
use gatehouse::{App, AppState, Config};
use reqwest::{Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A password that satisfies the default rule.
pub const PASSWORD: &str = "Corr3ct-horse!";

/// 2026-01-01T00:00:00Z: tests start at a fixed, known time.
pub fn start_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

pub struct TestApp {
    pub address: String,
    /// `http://…` of the metrics listener.
    pub metrics_address: String,
    pub state: AppState,
    pub clock: Clock,
    pub dir: Arc<TempDir>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The settings of every test app: port 0, cost 4, a manual clock.
pub fn test_config(dir: &TempDir) -> Config {
    let mut c = Config::defaults(dir.path().to_path_buf());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.bcrypt_cost = 4;
    c.hash_workers = 2;
    c.hash_queue = 256;
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    c.database = super::backend::database_for(dir.path());
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    spawn_in(dir, Clock::manual(start_time()), configure).await
}

/// Starts an app on an existing data directory (a restart).
pub async fn spawn_in(
    dir: Arc<TempDir>,
    clock: Clock,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_built(dir, clock, configure, async |_: &App| ())
        .await
        .0
}

/// A first start, as `gatehouse serve` does it: the app and the admin
/// invitation link it prints.
pub async fn spawn_first_run() -> (TestApp, String) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let (app, link) = spawn_built(
        dir,
        Clock::manual(start_time()),
        |_| {},
        async |app: &App| {
            app.first_run_link()
                .await
                .unwrap()
                .expect("no admin yet: a link")
        },
    )
    .await;
    (app, link)
}

/// An app whose connection timeouts run on a manual clock of their own,
/// returned with it: the test moves it past `--header-read-timeout`.
pub async fn spawn_with_connection_clock(configure: impl FnOnce(&mut Config)) -> (TestApp, Clock) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let connections = Clock::manual(start_time());
    let app = spawn_built_with(
        dir,
        Clock::manual(start_time()),
        configure,
        {
            let connections = connections.clone();
            move |app: App| app.connection_clock(connections)
        },
        async |_: &App| (),
    )
    .await
    .0;
    (app, connections)
}

/// Builds an app, lets `before` look at it before it serves, then serves.
async fn spawn_built<T>(
    dir: Arc<TempDir>,
    clock: Clock,
    configure: impl FnOnce(&mut Config),
    before: impl AsyncFnOnce(&App) -> T,
) -> (TestApp, T) {
    spawn_built_with(dir, clock, configure, |app| app, before).await
}

async fn spawn_built_with<T>(
    dir: Arc<TempDir>,
    clock: Clock,
    configure: impl FnOnce(&mut Config),
    adjust: impl FnOnce(App) -> App,
    before: impl AsyncFnOnce(&App) -> T,
) -> (TestApp, T) {
    super::init_test_log();
    let mut config = test_config(&dir);
    configure(&mut config);
    let app = App::build(config, clock.clone())
        .await
        .expect("the app builds");
    let app = adjust(app);
    let seen = before(&app).await;
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app
        .metrics_addr()
        .map_or_else(String::new, |a| format!("http://{a}"));
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let app = TestApp {
        address,
        metrics_address,
        state,
        clock,
        dir,
        client: new_client(),
        stop: Some(tx),
        handle: Some(handle),
    };
    (app, seen)
}

/// A client that keeps cookies and does not follow redirects.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_from(html: &str) -> String {
    let at = html
        .find(r#"name="csrf""#)
        .expect("the page has a CSRF field");
    let rest = &html[at..];
    let start = rest.find(r#"value=""#).expect("the CSRF field has a value") + 7;
    let end = rest[start..].find('"').unwrap();
    rest[start..start + end].to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET /metrics` from the metrics listener, on a connection of its
    /// own (tests that move the connection clock close idle ones).
    pub async fn metrics_text(&self) -> String {
        let r = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(mut self) -> (Arc<TempDir>, Clock) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
        let TestApp {
            dir, clock, state, ..
        } = self;
        drop(state);
        (dir, clock)
    }

    /// Creates an active account directly in the store, as if it had
    /// signed up and accepted the current documents.
    pub async fn add_user(&self, email: &str, username: &str, password: &str) -> User {
        self.add_user_with(email, username, password, Role::User, UserStatus::Active)
            .await
    }

    pub async fn add_user_with(
        &self,
        email: &str,
        username: &str,
        password: &str,
        role: Role,
        status: UserStatus,
    ) -> User {
        let consent = Some(self.state.documents.consent(self.clock.now()));
        self.create_user(email, username, password, role, status, consent)
            .await
    }

    /// An account that has not accepted the documents (as `user add` makes).
    pub async fn add_user_without_consent(&self, email: &str, username: &str) -> User {
        self.create_user(
            email,
            username,
            PASSWORD,
            Role::User,
            UserStatus::Active,
            None,
        )
        .await
    }

    async fn create_user(
        &self,
        email: &str,
        username: &str,
        password: &str,
        role: Role,
        status: UserStatus,
        consent: Option<gatehouse::domain::Consent>,
    ) -> User {
        let store: &dyn Store = self.state.store.as_ref();
        store
            .create_user(
                NewUser {
                    email: EmailAddress::parse(email).unwrap(),
                    username: Username::parse(username).unwrap(),
                    password_hash: hash_now(&store.password_key(), 4, password),
                    role,
                    status,
                    created_at: self.clock.now(),
                    consent,
                    groups: Vec::new(),
                },
                None,
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// A working password-reset link (path and query) for `user`, as the
    /// mail would carry it.
    pub async fn reset_link(&self, user: gatehouse::domain::UserId) -> String {
        use gatehouse::domain::{LinkToken, OneTimeToken, TokenPurpose};
        let secret = LinkToken::generate();
        let ttl = Duration::from_secs(3600);
        let token = OneTimeToken::new(TokenPurpose::Reset, user, self.clock.now(), ttl);
        self.state
            .store
            .issue_token(secret.hash(), token, None)
            .await
            .unwrap();
        format!("/reset-password?token={}", secret.as_str())
    }

    /// Logs in from another browser (a client with its own cookies),
    /// optionally with a User-Agent; returns the login's response.
    pub async fn login_elsewhere(
        &self,
        id: &str,
        password: &str,
        user_agent: Option<&str>,
    ) -> Response {
        let client = new_client();
        let with_agent = |r: reqwest::RequestBuilder| match user_agent {
            Some(ua) => r.header("user-agent", ua),
            None => r,
        };
        let html = with_agent(client.get(self.url("/login")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_from(&html);
        with_agent(client.post(self.url("/login")))
            .form(&[
                ("id", id),
                ("password", password),
                ("endpoint", ""),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        (r.status(), r.text().await.unwrap())
    }

    /// The CSRF token of the form on `path`.
    pub async fn csrf_of(&self, path: &str) -> String {
        let (_, html) = self.get_text(path).await;
        csrf_from(&html)
    }

    /// Posts a form, with the CSRF token of the page at `page`.
    pub async fn post_form(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf_of(page).await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &csrf));
        self.client
            .post(self.url(action))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_login(&self, id: &str, password: &str) -> Response {
        self.post_form(
            "/login",
            "/login",
            &[("id", id), ("password", password), ("endpoint", "")],
        )
        .await
    }

    /// Logs in and checks that it worked.
    pub async fn login_ok(&self, id: &str, password: &str) {
        let r = self.post_login(id, password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "login of {id} should succeed"
        );
        assert_eq!(r.headers()["location"], "/");
    }

    /// Posts the signup form with these fields (and a CSRF token).
    pub async fn post_signup(&self, fields: &[(&str, &str)]) -> Response {
        self.post_form("/signup", "/signup", fields).await
    }

    /// A complete, valid signup form for `email` and `username`.
    pub async fn sign_up(&self, email: &str, username: &str, token: &str) -> Response {
        self.post_signup(&[
            ("email", email),
            ("username", username),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("token", token),
            ("agree", "yes"),
        ])
        .await
    }

    /// Stores an invitation and returns its token.
    pub async fn invite(&self, configure: impl FnOnce(&mut NewInvite)) -> InviteToken {
        let token = InviteToken::generate();
        let mut new = NewInvite {
            token_hash: token.hash(),
            created_at: self.clock.now(),
            expires_at: Some(self.clock.now().plus(Duration::from_secs(7 * 24 * 3600))),
            max_uses: 1,
            email: None,
            role: Role::User,
            first_run: false,
            groups: Vec::new(),
        };
        configure(&mut new);
        self.state.store.create_invite(new).await.unwrap();
        token
    }

    pub async fn post_logout(&self) -> Response {
        self.post_form("/", "/logout", &[]).await
    }

    /// The value of our session cookie as the last response set it.
    pub fn session_cookie(r: &Response) -> Option<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("gatehouse_session="))
            .map(|v| v.split(';').next().unwrap().to_string())
            .filter(|v| !v.is_empty())
    }
}
