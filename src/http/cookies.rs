//! Our cookies, built in one place so their flags and names cannot drift:
//! - `gatehouse_session`: the session token (HttpOnly, SameSite=Lax,
//!   Secure under https; SPEC §4).
//! - `gatehouse_csrf`: the browser's CSRF secret (HttpOnly, SameSite=Strict).
//! - `gatehouse_device`: the device cookie (`auth::device`; HttpOnly,
//!   SameSite=Strict, 400 days): this browser logged in to that account.
//!
//! With `--cookie-domain`, the session cookie is set for the domain that
//! covers the host the browser logged in at (`Domain=example.com`), so
//! every app on its sub-domains sees it (forward auth); the others stay
//! this host's.
//!
//! When cookies are Secure (an https base URL, or `--secure-cookies`) they
//! are named with the `__Host-` prefix (the session cookie with a domain:
//! `__Secure-`) (`__Host-gatehouse_session`): the
//! browser then takes them only over https, for this host exactly, with
//! `Path=/` and no `Domain`, so neither a sub-domain nor a plain-http page
//! on the network can set or shadow them (ASVS 3.3.1).
//! - `gatehouse_pending`: a half-login's random key (HttpOnly,
//!   SameSite=Strict, five minutes): the password was right, the second
//!   step is next (`services::second_step`). The server keeps the state.
//! - `gatehouse_passkey`: the random key of a "log in with a passkey"
//!   challenge (HttpOnly, SameSite=Strict, five minutes).
//! - `gatehouse_sidebar`: `collapsed` when the sidebar is narrow, read by
//!   the server so the page is rendered at the right width (no flash); set
//!   by the page's script, so not HttpOnly, and it holds nothing secret.

use crate::app::AppState;
use crate::crypto::random_token;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const SESSION: &str = "gatehouse_session";
pub const CSRF: &str = "gatehouse_csrf";
pub const DEVICE: &str = "gatehouse_device";
const HOST_DEVICE: &str = "__Host-gatehouse_device";
const HOST_SESSION: &str = "__Host-gatehouse_session";
/// With `--cookie-domain` the session cookie carries `Domain`, which a
/// `__Host-` cookie may not: `__Secure-` still makes the browser take it
/// only over https.
const SECURE_SESSION: &str = "__Secure-gatehouse_session";
const HOST_CSRF: &str = "__Host-gatehouse_csrf";
pub const PENDING: &str = "gatehouse_pending";
const HOST_PENDING: &str = "__Host-gatehouse_pending";

/// The half-login cookie's name here: `__Host-` prefixed when Secure.
pub fn pending_name(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_PENDING
    } else {
        PENDING
    }
}

pub const PASSKEY: &str = "gatehouse_passkey";
const HOST_PASSKEY: &str = "__Host-gatehouse_passkey";

/// The passkey-login cookie's name here: `__Host-` prefixed when Secure.
pub fn passkey_name(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_PASSKEY
    } else {
        PASSKEY
    }
}

/// The passkey-login cookie: as long as its challenge lives.
pub fn passkey(value: String, state: &AppState) -> Cookie<'static> {
    let mut c = base(passkey_name(state), value, state.secure_cookies());
    c.set_same_site(SameSite::Strict);
    c.set_max_age(to_cookie_age(crate::domain::pending::PENDING_LIFETIME));
    c
}

/// The half-login cookie: as long as the half-login lives.
pub fn pending(value: String, state: &AppState) -> Cookie<'static> {
    let mut c = base(pending_name(state), value, state.secure_cookies());
    c.set_same_site(SameSite::Strict);
    c.set_max_age(to_cookie_age(crate::domain::pending::PENDING_LIFETIME));
    c
}

/// The session cookie's name here: `__Host-` prefixed when Secure.
pub fn session_name(state: &AppState) -> &'static str {
    match (
        state.secure_cookies(),
        state.config.cookie_domain.is_empty(),
    ) {
        (true, true) => HOST_SESSION,
        (true, false) => SECURE_SESSION,
        (false, _) => SESSION,
    }
}

/// The cookie domain that covers the host a request came to, if any.
pub fn domain_for<'a>(state: &'a AppState, host: &str) -> Option<&'a str> {
    state
        .config
        .cookie_domain
        .iter()
        .find(|d| d.covers(host))
        .map(|d| d.domain.as_str())
}

/// The host a request came to, lower case, without port.
pub fn request_host(headers: &axum::http::HeaderMap) -> String {
    let raw = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    crate::http::client::host_name(raw).to_ascii_lowercase()
}

/// The device cookie's name here: `__Host-` prefixed when Secure.
pub fn device_name(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_DEVICE
    } else {
        DEVICE
    }
}

/// The device cookie: what browsers keep longest (400 days).
pub fn device(value: String, state: &AppState) -> Cookie<'static> {
    let mut c = base(device_name(state), value, state.secure_cookies());
    c.set_same_site(SameSite::Strict);
    c.set_max_age(cookie::time::Duration::days(400));
    c
}

/// The CSRF cookie's name here: `__Host-` prefixed when Secure.
pub fn csrf_name(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_CSRF
    } else {
        CSRF
    }
}
pub const SIDEBAR: &str = "gatehouse_sidebar";

/// What the request's cookies say about the browser; put in the request's
/// extensions by `with_browser` (the edge middleware) for every request.
#[derive(Clone, Debug)]
pub struct Browser {
    /// The CSRF secret the browser sent, if well formed.
    pub secret: Option<String>,
    /// A new secret, made only when a page renders a form for a browser
    /// that had none (API calls and assets never pay for one).
    fresh: Arc<OnceLock<String>>,
    /// The raw session cookie, if any (valid or not).
    pub session: Option<String>,
    /// The raw device cookie, if any (`AppState::devices` verifies it).
    pub device: Option<String>,
    /// The raw half-login cookie, if any.
    pub pending: Option<String>,
    /// The raw passkey-login cookie, if any.
    pub passkey: Option<String>,
    /// The host the request came to (lower case, no port): which cookie
    /// domain the session cookie gets.
    pub host: String,
    pub sidebar_collapsed: bool,
}

impl Browser {
    /// The key of the browser's half-login, if its cookie is well formed.
    pub fn pending_key(&self) -> Option<crate::domain::session::SessionKey> {
        key_of(self.pending.as_deref())
    }

    /// The key of the browser's passkey-login challenge, if any.
    pub fn passkey_key(&self) -> Option<crate::domain::session::SessionKey> {
        key_of(self.passkey.as_deref())
    }

    /// The key of the browser's session cookie, if well formed.
    pub fn session_key(&self) -> Option<crate::domain::session::SessionKey> {
        key_of(self.session.as_deref())
    }

    /// The token for this browser's forms (giving it a secret if needed).
    pub fn csrf_token(&self, state: &AppState) -> String {
        let secret = match &self.secret {
            Some(s) => s.as_str(),
            None => self.fresh.get_or_init(random_token::<32>).as_str(),
        };
        state
            .csrf
            .token(secret, self.session.as_deref().unwrap_or(""))
    }

    /// Checks a submitted token against the secret the browser sent (none
    /// sent: no token can match).
    pub fn verify_csrf(&self, state: &AppState, token: &str) -> bool {
        self.secret.as_deref().is_some_and(|s| {
            state
                .csrf
                .verify(s, self.session.as_deref().unwrap_or(""), token)
        })
    }
}

fn key_of(cookie: Option<&str>) -> Option<crate::domain::session::SessionKey> {
    cookie
        .and_then(crate::domain::session::SessionToken::from_cookie)
        .map(|t| t.key())
}

fn base(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .build()
}

/// The session cookie, for every host of the cookie domain that covers
/// the browser's host (else for that host alone).
pub fn session(value: String, state: &AppState, browser: &Browser) -> Cookie<'static> {
    let mut c = base(session_name(state), value, state.secure_cookies());
    c.set_same_site(SameSite::Lax);
    c.set_max_age(to_cookie_age(state.config.session.lifetime));
    if let Some(domain) = domain_for(state, &browser.host) {
        c.set_domain(domain.to_string());
    }
    c
}

/// Deletes the session cookie (with the `Domain` it was set with).
pub fn session_removal(state: &AppState, browser: &Browser) -> Cookie<'static> {
    let mut c = removal(session_name(state), state);
    if let Some(domain) = domain_for(state, &browser.host) {
        c.set_domain(domain.to_string());
    }
    c
}

pub fn csrf(value: String, state: &AppState) -> Cookie<'static> {
    let mut c = base(csrf_name(state), value, state.secure_cookies());
    c.set_same_site(SameSite::Strict);
    c
}

/// A cookie that deletes `name` in the browser (Secure when cookies are:
/// a browser ignores a `__Host-` cookie without it, removals included).
pub fn removal(name: &'static str, state: &AppState) -> Cookie<'static> {
    let mut c = base(name, String::new(), state.secure_cookies());
    c.make_removal();
    c
}

fn to_cookie_age(d: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn set_cookie_header(c: &Cookie<'_>) -> HeaderValue {
    HeaderValue::from_str(&c.to_string()).expect("cookies we build are valid header values")
}

/// A CSRF secret as we make them: 32 random bytes, URL-safe base64.
fn is_well_formed_secret(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Part of the edge middleware: reads our cookies into a `Browser`; a new CSRF secret made
/// while rendering a form is sent back (unless the handler set its own).
pub async fn with_browser(state: &AppState, mut request: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let existing = jar
        .get(csrf_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| is_well_formed_secret(v));
    let fresh = Arc::new(OnceLock::new());
    let host = request_host(request.headers());
    request.extensions_mut().insert(Browser {
        secret: existing,
        fresh: Arc::clone(&fresh),
        session: jar.get(session_name(state)).map(|c| c.value().to_owned()),
        device: jar.get(device_name(state)).map(|c| c.value().to_owned()),
        pending: jar.get(pending_name(state)).map(|c| c.value().to_owned()),
        passkey: jar.get(passkey_name(state)).map(|c| c.value().to_owned()),
        host,
        sidebar_collapsed: jar.get(SIDEBAR).is_some_and(|c| c.value() == "collapsed"),
    });
    let mut response = next.run(request).await;
    // A page made a token from a new secret: the browser must keep it.
    if let Some(secret) = fresh.get() {
        let prefix = format!("{}=", csrf_name(state));
        let handler_set_it = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
        if !handler_set_it {
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie_header(&csrf(secret.clone(), state)),
            );
        }
    }
    response
}
