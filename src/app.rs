//! The application: its shared state, and `App`, which binds the listener,
//! serves until told to stop, and shuts down cleanly (SIGTERM, Ctrl-C, or
//! a test's signal), flushing what is held in memory.

use crate::auth::csrf::CsrfKey;
use crate::auth::device::DeviceKey;
use crate::auth::password::Passwords;
use crate::auth::pool::HashPool;
use crate::auth::ratelimit::{ClientLimiter, KeyedLimiter};
use crate::auth::session::SessionCache;
use crate::clock::Clock;
use crate::config::{Config, SignupMode};
use crate::documents::Documents;
use crate::domain::access::AccessRules;
use crate::domain::{CommonPasswords, InviteToken, Role, UserId};
use crate::host::HostStats;
use crate::http::client::AllowedHosts;
use crate::http::server::Limits;
use crate::mail::Mailer;
use crate::mail::outbox::{Outbox, OutboxWorker};
use crate::mail::requests::{MailQueue, MailRequests};
use crate::metrics::Metrics;
use crate::services::Links;
use crate::services::account::Account;
use crate::services::admin::Admin;
use crate::services::login::Login;
use crate::services::mail_requests::MailRequestHandler;
use crate::services::oidc::Oidc;
use crate::services::recovery::Recovery;
use crate::services::signup::Signup;
use crate::services::verification::Verification;
use crate::store::{Backup, FirstRun, NewInvite, Store};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

/// Everything a request handler may need. Cheap to clone. The flows get
/// their parts from it (`login()`, `signup()`, …): each only what it uses.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// `--base-url`, or the bound address when none was given.
    pub base_url: Url,
    pub links: Links,
    /// The `Host` names requests may carry (the base URL's, `--allowed-hosts`).
    pub allowed_hosts: AllowedHosts,
    pub store: Arc<dyn Store>,
    /// The store's file copy, when the backend is a file (redb).
    pub backup: Option<Arc<dyn Backup>>,
    pub passwords: Passwords,
    /// Signs and checks device cookies.
    pub devices: DeviceKey,
    /// WebAuthn for the base URL (off when its host is an IP address).
    pub passkeys: crate::auth::passkeys::Passkeys,
    pub sessions: SessionCache,
    pub login_limiter: ClientLimiter,
    pub signup_limiter: ClientLimiter,
    /// Signups from everyone together (`--signup-global-limit`).
    pub signup_global_limiter: KeyedLimiter<()>,
    /// Per-client limit of mail requests (forgot password, resend).
    pub mail_limiter: ClientLimiter,
    /// Mails per address from forgot/resend.
    pub mail_address_limiter: Arc<KeyedLimiter<String>>,
    /// Tries to change the password per account.
    pub password_change_limiter: KeyedLimiter<UserId>,
    pub documents: Documents,
    pub mailer: Arc<Mailer>,
    pub outbox: Arc<Outbox>,
    pub mail_requests: MailRequests,
    pub common_passwords: CommonPasswords,
    pub csrf: CsrfKey,
    pub clock: Clock,
    pub host: HostStats,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// The OpenID Connect issuer: the base URL without its trailing slash.
    pub issuer: String,
    /// The access rules in force (`access_rules`; SIGHUP replaces them).
    access: RwLock<Arc<AccessRules>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// What the accept loop enforces (http/server.rs).
    pub fn connection_limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.config.header_read_timeout,
            max_connections: self.config.max_connections,
            max_per_client: self.config.max_connections_per_client,
            trusted_proxies: self.config.trusted_proxies.clone(),
            drain: self.config.request_timeout,
        }
    }

    pub fn login(&self) -> Login<'_> {
        Login {
            store: self.store.as_ref(),
            passwords: &self.passwords,
            lockout: self.config.lockout,
            clock: &self.clock,
            sessions: &self.sessions,
            mail: &self.mail_requests,
            metrics: &self.metrics,
            session_cap: self.config.max_sessions_per_user,
            two_factor: &self.config.two_factor,
            passkeys: &self.passkeys,
        }
    }

    pub fn signup(&self) -> Signup<'_> {
        Signup {
            store: self.store.as_ref(),
            passwords: &self.passwords,
            clock: &self.clock,
            documents: &self.documents,
            mail: &self.mail_requests,
            metrics: &self.metrics,
            require_verification: self.config.require_verification,
        }
    }

    pub fn verification(&self) -> Verification<'_> {
        Verification {
            store: self.store.as_ref(),
            clock: &self.clock,
            mail: &self.mail_requests,
        }
    }

    pub fn recovery(&self) -> Recovery<'_> {
        Recovery {
            store: self.store.as_ref(),
            passwords: &self.passwords,
            clock: &self.clock,
            mail: &self.mail_requests,
            outbox: &self.outbox,
            links: &self.links,
        }
    }

    pub fn account(&self) -> Account<'_> {
        Account {
            store: self.store.as_ref(),
            passwords: &self.passwords,
            clock: &self.clock,
            sessions: &self.sessions,
            session_policy: self.config.session,
            outbox: &self.outbox,
            links: &self.links,
            password_change_limiter: &self.password_change_limiter,
            passkeys: &self.passkeys,
        }
    }

    pub fn oidc(&self) -> Oidc<'_> {
        Oidc {
            store: self.store.as_ref(),
            clock: &self.clock,
            policy: self.config.oidc,
            issuer: &self.issuer,
        }
    }

    pub fn admin(&self, actor: String) -> Admin<'_> {
        Admin {
            store: self.store.as_ref(),
            backup: self.backup.as_deref(),
            passwords: &self.passwords,
            password_policy: self.config.password_policy,
            common_passwords: &self.common_passwords,
            lockout: self.config.lockout,
            links: self.links.clone(),
            clock: self.clock.clone(),
            actor,
        }
    }

    /// The signup link that carries an invitation token.
    pub fn invite_link(&self, token: &InviteToken) -> String {
        self.links.invite(token)
    }

    /// Cookies get `Secure` under https or with `--secure-cookies`.
    /// The access rules in force now.
    pub fn access_rules(&self) -> Arc<AccessRules> {
        Arc::clone(&self.access.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads the config file's access rules again (SIGHUP) and puts them
    /// in force; on a mistake the rules in force stay. Sessions are not
    /// touched. Returns how many rules there are now.
    pub fn reload_access(&self) -> anyhow::Result<usize> {
        let rules = crate::config::load_access(self.config.file.as_deref())?;
        let n = rules.0.len();
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
        Ok(n)
    }

    /// Makes the store's declared apps (OpenID Connect) those given; says
    /// what changed in the log.
    pub async fn sync_declared_clients(
        &self,
        declared: &[crate::domain::oidc::OidcClient],
    ) -> anyhow::Result<crate::services::oidc_admin::Synced> {
        let synced = self
            .admin("config".into())
            .sync_declared_clients(declared)
            .await
            .context("the config file's [[oidc_client]] apps could not be put in place")?;
        if synced != Default::default() {
            tracing::info!(
                added = synced.added,
                updated = synced.updated,
                removed = synced.removed,
                "apps declared in the config file (OpenID Connect) put in place"
            );
        }
        Ok(synced)
    }

    /// Reads the config file's `[[oidc_client]]` tables again (SIGHUP) and
    /// puts them in place. A mistake in the file, or an id or name an app
    /// of the CLI has, changes nothing; a name swap between two declared
    /// apps stops part-way (the message says how to do it).
    pub async fn reload_declared_clients(
        &self,
    ) -> anyhow::Result<crate::services::oidc_admin::Synced> {
        let declared = crate::config::load_oidc_clients(self.config.file.as_deref())?;
        self.sync_declared_clients(&declared).await
    }

    /// Where a browser may go back to after logging in (`rd`), if anywhere.
    pub fn return_to(&self, raw: &str) -> Option<Url> {
        let access = self.access_rules();
        crate::domain::return_to::ReturnRules {
            base: &self.base_url,
            cookie_domains: &self.config.cookie_domain,
            access: &access,
        }
        .check(raw)
    }

    /// The login page for a browser at `host`: that of the cookie domain
    /// covering it when the domain names one, else ours.
    pub fn login_url_for(&self, host: &str) -> Url {
        let base = self
            .config
            .cookie_domain
            .iter()
            .find(|d| d.covers(host))
            .and_then(|d| d.login_url.as_ref())
            .unwrap_or(&self.base_url);
        base.join("login").unwrap_or_else(|_| base.clone())
    }

    pub fn secure_cookies(&self) -> bool {
        self.config.secure_cookies || self.base_url.scheme() == "https"
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            store: Arc::clone(&self.store),
            mailer: Arc::clone(&self.mailer),
            clock: self.clock.clone(),
            metrics: Arc::clone(&self.metrics),
            outbox: Arc::clone(&self.outbox),
            hold: crate::mail::outbox::hold_for(self.config.mail.timeout),
        }
    }

    fn mail_request_handler(&self) -> MailRequestHandler {
        MailRequestHandler {
            store: Arc::clone(&self.store),
            clock: self.clock.clone(),
            links: self.links.clone(),
            outbox: Arc::clone(&self.outbox),
            per_address: Arc::clone(&self.mail_address_limiter),
            password_reset: self.config.password_reset,
            reset_ttl: self.config.reset_token_ttl,
            verify_ttl: self.config.verify_token_ttl,
            lockout_threshold: self.config.lockout.threshold,
        }
    }
}

/// How long a first-run link made by one replica of a shared database
/// stands for the others starting meanwhile.
pub const FIRST_RUN_SHARED: Duration = Duration::from_secs(10 * 60);

/// What a start did about the first admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstRunLink {
    /// A new link, to print.
    Link(String),
    /// Another replica made the live link then: it is in its output.
    MadeElsewhere(crate::clock::Timestamp),
    /// An admin exists, or signup is closed.
    NotNeeded,
}

/// A bound, ready-to-serve gatehouse.
pub struct App {
    listener: TcpListener,
    /// `--metrics-listen`, unless off.
    metrics_listener: Option<TcpListener>,
    /// What the connection timeouts run on (`connection_clock`).
    connection_clock: Clock,
    state: AppState,
    mail_requests: MailQueue,
    admin_socket: Option<tokio::net::UnixListener>,
}

impl App {
    /// Opens the store and binds the listener; `config.listen` with port 0
    /// picks a free port (tests).
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let documents =
            Documents::load(config.terms_file.as_deref(), config.privacy_file.as_deref())?;
        let crate::store::Opened { store, backup } =
            crate::store::open(&config.data_dir, config.database()?.as_ref()).await?;
        let listener = bind(config.listen, "--listen").await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr, "--metrics-listen").await?),
            None => None,
        };
        fit_open_file_limit(config.max_connections);
        let bound = listener
            .local_addr()
            .context("failed to read the bound address")?;
        let base_url = config.base_url_for(bound);
        let pool = HashPool::new(config.hash_workers, config.hash_queue)
            .context("failed to start the password hashing threads")?;
        let key = store.password_key();
        let mailer = Mailer::new(&config.mail, &base_url)?;
        let (mail_requests, mail_rx) = MailRequests::new();
        let state = AppState(Arc::new(Inner {
            passwords: Passwords::new(key, config.bcrypt_cost, pool),
            csrf: CsrfKey::derive(&key),
            devices: DeviceKey::derive(&key),
            passkeys: crate::auth::passkeys::Passkeys::new(&base_url),
            login_limiter: ClientLimiter::new(config.login_rate_per_minute, clock.clone()),
            signup_limiter: ClientLimiter::new(config.signup_rate_per_minute, clock.clone()),
            signup_global_limiter: KeyedLimiter::new(
                config.signup_global_limit,
                config.signup_global_window,
                clock.clone(),
            ),
            mail_limiter: ClientLimiter::new(config.mail_rate_per_minute, clock.clone()),
            mail_address_limiter: Arc::new(KeyedLimiter::new(
                config.mail_per_address,
                config.mail_per_address_window,
                clock.clone(),
            )),
            password_change_limiter: KeyedLimiter::new(
                config.password_change_attempts,
                config.password_change_window,
                clock.clone(),
            ),
            mailer: Arc::new(mailer),
            outbox: Arc::new(Outbox::default()),
            mail_requests,
            documents,
            common_passwords: CommonPasswords::embedded(),
            sessions: SessionCache::default(),
            backup,
            store,
            host: HostStats::new(&config.data_dir),
            metrics: Arc::new(Metrics::default()),
            started: Instant::now(),
            access: RwLock::new(Arc::new(config.access.clone())),
            clock,
            links: Links::new(base_url.clone()),
            issuer: base_url.as_str().trim_end_matches('/').to_owned(),
            // The login pages named for cookie domains are ours too.
            allowed_hosts: AllowedHosts::new(
                base_url.host_str().unwrap_or_default(),
                &config
                    .allowed_hosts
                    .iter()
                    .cloned()
                    .chain(
                        config
                            .cookie_domain
                            .iter()
                            .filter_map(|d| d.login_url.as_ref()?.host_str().map(str::to_owned)),
                    )
                    .collect::<Vec<_>>(),
            ),
            base_url,
            config,
        }));
        // The apps the config file declares, into the store.
        state
            .sync_declared_clients(&state.config.oidc_clients)
            .await?;
        // The hash census is taken by the first housekeeping round, in the
        // background: a store of a million accounts does not delay serving.
        let admin_socket = crate::admin_socket::bind(&state.config.data_dir);
        Ok(Self {
            listener,
            metrics_listener,
            connection_clock: Clock::system(),
            state,
            mail_requests: mail_rx,
            admin_socket,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served, unless `--metrics-listen off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs the connection timeouts on `clock` instead of the system's
    /// (tests move a manual clock past `--header-read-timeout`).
    pub fn connection_clock(mut self, clock: Clock) -> Self {
        self.connection_clock = clock;
        self
    }

    /// First start (SPEC §3): while no admin account exists, a new
    /// single-use admin invitation (valid 24 hours; earlier ones are
    /// revoked) and its link, for the person installing gatehouse. On a
    /// shared database a live one made in the last `FIRST_RUN_SHARED`
    /// (by a replica starting at the same time) is kept instead: one link,
    /// in that replica's output. Nothing once an admin exists, or when
    /// signup is closed.
    pub async fn first_run(&self) -> anyhow::Result<FirstRunLink> {
        if self.state.config.signup == SignupMode::Closed {
            return Ok(FirstRunLink::NotNeeded);
        }
        let token = InviteToken::generate();
        let now = self.state.clock.now();
        let keep_since = self
            .state
            .config
            .database
            .is_some()
            .then(|| now.minus(FIRST_RUN_SHARED));
        let made = self
            .state
            .store
            .replace_first_run_invite(
                NewInvite {
                    token_hash: token.hash(),
                    created_at: now,
                    expires_at: Some(now.plus(Duration::from_secs(24 * 3600))),
                    max_uses: 1,
                    email: None,
                    role: Role::Admin,
                    first_run: true,
                    groups: Vec::new(),
                },
                keep_since,
            )
            .await?;
        Ok(match made {
            FirstRun::Made(_) => FirstRunLink::Link(self.state.invite_link(&token)),
            FirstRun::Kept { made_at } => FirstRunLink::MadeElsewhere(made_at),
            FirstRun::AdminExists => FirstRunLink::NotNeeded,
        })
    }

    /// `first_run`'s link, if it made one.
    pub async fn first_run_link(&self) -> anyhow::Result<Option<String>> {
        Ok(match self.first_run().await? {
            FirstRunLink::Link(link) => Some(link),
            _ => None,
        })
    }

    /// Serves until `shutdown` resolves, then finishes the requests in
    /// flight, stops the background tasks and writes what is pending.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            metrics_listener,
            connection_clock,
            state,
            mail_requests,
            admin_socket,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks = [
            tokio::spawn(flush_sessions(state.clone(), stop_rx.clone())),
            tokio::spawn(housekeeping(state.clone(), stop_rx.clone())),
            tokio::spawn(
                state
                    .host
                    .clone()
                    .sample_every(Duration::from_secs(2), stop_rx.clone()),
            ),
            tokio::spawn(state.outbox_worker().run(stop_rx.clone())),
            tokio::spawn({
                let (state, stop) = (state.clone(), stop_rx.clone());
                async move {
                    if let Some(listener) = admin_socket {
                        let path = crate::admin_socket::path(&state.config.data_dir);
                        let handler = crate::cli::admin::socket_handler(state);
                        crate::admin_socket::serve(path, listener, handler, stop).await;
                    }
                }
            }),
            tokio::spawn(
                state
                    .mail_request_handler()
                    .run(mail_requests, stop_rx.clone()),
            ),
            tokio::spawn({
                let (state, clock, mut stop) = (state.clone(), connection_clock.clone(), stop_rx);
                async move {
                    if let Some(listener) = metrics_listener {
                        let limits = Limits {
                            max_connections: 16,
                            max_per_client: 16,
                            ..state.connection_limits()
                        };
                        let router = crate::http::metrics_router(state.clone());
                        let stopped = async move {
                            let _ = stop.changed().await;
                        };
                        crate::http::server::serve(listener, router, limits, clock, None, stopped)
                            .await;
                    }
                }
            }),
        ];
        crate::http::server::serve(
            listener,
            crate::http::router(state.clone()),
            state.connection_limits(),
            connection_clock,
            Some(Arc::clone(&state.metrics)),
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        if let Err(e) = state.sessions.flush(state.store.as_ref()).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not write the last session activity at shutdown"
            );
        }
        Ok(())
    }
}

/// Binds a listener, with an error that says what to change.
async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("another program uses that port: stop it or choose another {flag}")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("ports below 1024 need privileges: choose a port above 1024 with {flag}")
            }
            std::io::ErrorKind::AddrNotAvailable => {
                format!("this machine has no such address: use 127.0.0.1 or 0.0.0.0 in {flag}")
            }
            _ => format!("check {flag}"),
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}; {hint}")
    })
}

/// Each connection holds a file handle: raises the soft limit toward the
/// hard one so that `--max-connections` fit (with room for the database,
/// the log and SMTP), and says so when they cannot.
fn fit_open_file_limit(max_connections: usize) {
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            "the open-file limit is below what --max-connections needs: raise it \
             (LimitNOFILE= in the systemd unit, ulimit -n) or lower --max-connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
}

/// Writes batched last-seen times every 30 seconds.
async fn flush_sessions(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = state.sessions.flush(state.store.as_ref()).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not write session activity; will retry"
            );
        }
    }
}

/// Hourly: `purge_expired`, and forgets idle rate-limit entries.
async fn housekeeping(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        state.login_limiter.forget_idle();
        state.signup_limiter.forget_idle();
        state.mail_limiter.forget_idle();
        state.password_change_limiter.forget_idle();
        state.mail_address_limiter.forget_idle();
        match purge_expired(&state).await {
            Ok((sessions, counters)) if sessions + counters > 0 => {
                tracing::info!(
                    sessions,
                    counters,
                    "removed expired sessions and stale lockout counters"
                );
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "could not remove expired records")
            }
            _ => {}
        }
    }
}

/// Deletes accounts still waiting for their address to be confirmed once
/// the verification link's lifetime (`--verify-token-ttl`) has passed since
/// they signed up: a stranger who signs up with someone else's address
/// holds it only that long (issue 11). Returns how many.
async fn expire_unverified(
    state: &AppState,
    now: crate::clock::Timestamp,
) -> anyhow::Result<usize> {
    let store = state.store.as_ref();
    let mut n = 0;
    let cutoff = now.minus(state.config.verify_token_ttl);
    for user in store.unconfirmed_before(cutoff).await? {
        if store.delete_user(user.id).await? {
            let event =
                crate::domain::AuditEvent::new(now, crate::domain::AuditKind::Admin, "system")
                    .user(user.id)
                    .detail("unconfirmed account deleted: its verification link ran out");
            store.audit(vec![event]).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Counts the stored password hashes by kind, so that an unknown ID is
/// checked at the cost most of them have (`Passwords::set_census`). At
/// start and hourly: hashes move to the configured cost as people log in.
pub async fn take_census(state: &AppState) -> anyhow::Result<crate::auth::password::Census> {
    use crate::auth::password::Census;
    let heads = state.store.count_hash_prefixes(Census::PREFIX_LEN).await?;
    let census = Census::of_prefixes(&heads);
    state.passwords.set_census(&census);
    Ok(census)
}

/// Deletes expired sessions and lockout counters that no longer matter;
/// returns how many of each. Also old audit events and expired tokens.
pub async fn purge_expired(state: &AppState) -> anyhow::Result<(usize, usize)> {
    // Write pending activity first, so that a session used in the last
    // seconds is not mistaken for an idle one.
    let store = state.store.as_ref();
    state.sessions.flush(store).await?;
    let now = state.clock.now();
    let sessions = store.purge_sessions(state.config.session, now).await?;
    let counters = store.purge_lockouts(state.config.lockout, now).await?;
    let cutoff = crate::clock::Timestamp::from_millis(now.as_millis().saturating_sub(
        i64::try_from(state.config.audit_retention.as_millis()).unwrap_or(i64::MAX),
    ));
    let events = store
        .purge_audit(cutoff, state.config.audit_max_events)
        .await?;
    take_census(state).await?;
    let unverified = expire_unverified(state, now).await?;
    if unverified > 0 {
        tracing::info!(
            accounts = unverified,
            "deleted accounts whose address was not confirmed in time"
        );
    }
    let tokens = store.purge_tokens(now).await?;
    if tokens > 0 {
        tracing::info!(tokens, "removed expired mailed-link tokens");
    }
    let app_tokens = store.purge_tokens_oidc(now).await?;
    if app_tokens > 0 {
        tracing::info!(
            tokens = app_tokens,
            "removed expired OpenID Connect codes and tokens"
        );
    }
    store.purge_pending(now).await?;
    let keys = state.oidc().purge_keys().await?;
    if keys > 0 {
        tracing::info!(keys, "removed signing keys no ID token needs any more");
    }
    if events > 0 {
        tracing::info!(
            events,
            "removed audit events older than the retention or beyond --audit-max-events"
        );
    }
    Ok((sessions, counters))
}
