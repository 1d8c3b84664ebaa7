//! The application: its shared state, and `App`, which binds the listener,
//! serves until told to stop, and shuts down cleanly (SIGTERM, Ctrl-C, or
//! a test's signal), flushing what is held in memory.

use crate::auth::csrf::CsrfKey;
use crate::auth::password::Passwords;
use crate::auth::pool::HashPool;
use crate::auth::ratelimit::{KeyedLimiter, LoginLimiter};
use crate::auth::session::SessionCache;
use crate::clock::Clock;
use crate::config::{Config, SignupMode};
use crate::documents::Documents;
use crate::domain::{CommonPasswords, InviteToken, Role, UserId};
use crate::error::AppError;
use crate::mail::Mailer;
use crate::mail::outbox::Outbox;
use crate::mail::requests::{MailRequest, MailRequests};
use crate::store::NewInvite;
use crate::store::Store;
use crate::store::redb::RedbStore;
use crate::summary::HostStats;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// `--base-url`, or the bound address when none was given.
    pub base_url: Url,
    pub store: Arc<dyn Store>,
    pub passwords: Passwords,
    pub sessions: SessionCache,
    pub limiter: LoginLimiter,
    pub signup_limiter: LoginLimiter,
    pub documents: Documents,
    pub mailer: Mailer,
    pub outbox: Outbox,
    pub mail_requests: MailRequests,
    /// Per-client limit of mail requests (forgot password, resend).
    pub mail_limiter: LoginLimiter,
    /// Mails per address from forgot/resend (3 per 15 minutes).
    pub mail_address_limiter: KeyedLimiter<String>,
    /// Tries to change the password per account (5 per 15 minutes).
    pub password_change_limiter: KeyedLimiter<UserId>,
    pub common_passwords: CommonPasswords,
    pub csrf: CsrfKey,
    pub clock: Clock,
    pub host: HostStats,
    pub metrics: crate::metrics::Metrics,
    pub started: Instant,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Runs a store call (a write: an fsync) off the async threads.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&dyn Store) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .context("a storage task failed")?
            .map_err(AppError::from)
    }

    /// `<base-url><path>?<param>=<value>`: a link for a mail or the log.
    pub fn link(&self, path: &str, param: &str, value: &str) -> String {
        let mut url = self
            .base_url
            .join(path)
            .expect("a base URL joins a relative path");
        url.query_pairs_mut().append_pair(param, value);
        url.into()
    }

    /// The signup link that carries an invitation token.
    pub fn invite_link(&self, token: &InviteToken) -> String {
        invite_link(&self.base_url, token)
    }

    /// Records an audit event after an action that has happened; a failure
    /// to record is logged loudly but does not undo or fail the action.
    pub async fn audit(&self, event: crate::store::AuditEvent) {
        let kind = event.kind.as_str();
        if let Err(e) = self.blocking(move |s| s.audit(vec![event])).await {
            tracing::error!(kind, error = ?e, "could not write an audit event");
        }
    }

    /// Cookies get `Secure` under https or with `--secure-cookies`.
    pub fn secure_cookies(&self) -> bool {
        self.config.secure_cookies || self.base_url.scheme() == "https"
    }
}

/// `<base-url>/signup?token=…`
pub fn invite_link(base_url: &Url, token: &InviteToken) -> String {
    let mut url = base_url
        .join("signup")
        .expect("a base URL joins a relative path");
    url.query_pairs_mut().append_pair("token", token.as_str());
    url.into()
}

/// A bound, ready-to-serve gatehouse.
pub struct App {
    listener: TcpListener,
    state: AppState,
    mail_requests: tokio::sync::mpsc::Receiver<MailRequest>,
    admin_socket: Option<tokio::net::UnixListener>,
}

impl App {
    /// Opens the store and binds the listener; `config.listen` with port 0
    /// picks a free port (tests).
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let documents =
            Documents::load(config.terms_file.as_deref(), config.privacy_file.as_deref())?;
        let store = {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || RedbStore::open(&dir))
                .await
                .context("the store task failed")??
        };
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "another program uses that port: stop it or choose another --listen"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges: choose a port above 1024 with --listen"
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    "this machine has no such address: use 127.0.0.1 or 0.0.0.0 in --listen"
                }
                _ => "check --listen",
            };
            anyhow::anyhow!("cannot listen on {}: {e}; {hint}", config.listen)
        })?;
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
            limiter: LoginLimiter::new(config.login_rate_per_minute, clock.clone()),
            signup_limiter: LoginLimiter::new(config.signup_rate_per_minute, clock.clone()),
            mail_limiter: LoginLimiter::new(config.signup_rate_per_minute, clock.clone()),
            mail_address_limiter: KeyedLimiter::new(
                std::num::NonZeroU32::new(3).expect("3"),
                Duration::from_secs(15 * 60),
                clock.clone(),
            ),
            password_change_limiter: KeyedLimiter::new(
                std::num::NonZeroU32::new(5).expect("5"),
                Duration::from_secs(15 * 60),
                clock.clone(),
            ),
            mailer,
            outbox: Outbox::default(),
            mail_requests,
            documents,
            common_passwords: CommonPasswords::embedded(),
            sessions: SessionCache::default(),
            store: Arc::new(store),
            host: HostStats::new(&config.data_dir),
            metrics: crate::metrics::Metrics::default(),
            started: Instant::now(),
            clock,
            base_url,
            config,
        }));
        let admin_socket = crate::cli::socket::bind(&state.config.data_dir);
        Ok(Self {
            listener,
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

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// First start (SPEC §3): while no admin account exists, a new
    /// single-use admin invitation (valid 24 hours; earlier ones are
    /// revoked) and its link, for the person installing gatehouse. None
    /// once an admin exists, or when signup is closed.
    pub fn first_run_link(&self) -> anyhow::Result<Option<String>> {
        if self.state.config.signup == SignupMode::Closed {
            return Ok(None);
        }
        let token = InviteToken::generate();
        let now = self.state.clock.now();
        let made = self.state.store.replace_first_run_invite(NewInvite {
            token_hash: token.hash(),
            created_at: now,
            expires_at: Some(now.plus(Duration::from_secs(24 * 3600))),
            max_uses: 1,
            email: None,
            role: Role::Admin,
            first_run: true,
        })?;
        Ok(made.map(|_| self.state.invite_link(&token)))
    }

    /// Serves until `shutdown` resolves, then finishes the requests in
    /// flight, stops the background tasks and writes what is pending.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
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
            tokio::spawn(crate::mail::outbox::run(state.clone(), stop_rx.clone())),
            tokio::spawn({
                let (state, stop) = (state.clone(), stop_rx.clone());
                async move {
                    if let Some(listener) = admin_socket {
                        crate::cli::socket::serve(state, listener, stop).await;
                    }
                }
            }),
            tokio::spawn(crate::mail::requests::run(
                state.clone(),
                mail_requests,
                stop_rx,
            )),
        ];
        let app =
            crate::http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the server failed")?;
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        let store = Arc::clone(&state.store);
        let written =
            tokio::task::spawn_blocking(move || state.sessions.flush(store.as_ref())).await;
        if let Ok(Err(e)) = written {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not write the last session activity at shutdown"
            );
        }
        Ok(())
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
        let s = state.clone();
        let result = tokio::task::spawn_blocking(move || s.sessions.flush(s.store.as_ref())).await;
        if let Ok(Err(e)) = result {
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
        state.limiter.forget_idle();
        state.signup_limiter.forget_idle();
        state.mail_limiter.forget_idle();
        state.password_change_limiter.forget_idle();
        state.mail_address_limiter.forget_idle();
        let s = state.clone();
        match tokio::task::spawn_blocking(move || purge_expired(&s)).await {
            Ok(Ok((sessions, counters))) if sessions + counters > 0 => {
                tracing::info!(
                    sessions,
                    counters,
                    "removed expired sessions and stale lockout counters"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(error = format!("{e:#}"), "could not remove expired records")
            }
            _ => {}
        }
    }
}

/// Deletes expired sessions and lockout counters that no longer matter;
/// returns how many of each. Blocking: call it off the async threads.
pub fn purge_expired(state: &AppState) -> anyhow::Result<(usize, usize)> {
    // Write pending activity first, so that a session used in the last
    // seconds is not mistaken for an idle one.
    state.sessions.flush(state.store.as_ref())?;
    let (now, session, lockout) = (
        state.clock.now(),
        state.config.session,
        state.config.lockout,
    );
    let sessions = state
        .store
        .purge_sessions(&|s| session.is_expired(s, s.last_seen, now))?;
    let counters = state.store.purge_lockouts(&|l| lockout.is_idle(l, now))?;
    let cutoff = crate::clock::Timestamp::from_millis(now.as_millis().saturating_sub(
        i64::try_from(state.config.audit_retention.as_millis()).unwrap_or(i64::MAX),
    ));
    let events = state.store.purge_audit(cutoff)?;
    let tokens = state.store.purge_tokens(now)?;
    if tokens > 0 {
        tracing::info!(tokens, "removed expired mailed-link tokens");
    }
    if events > 0 {
        tracing::info!(events, "removed audit events older than the retention");
    }
    Ok((sessions, counters))
}
