//! The verify endpoints a reverse proxy asks before it lets a request
//! through to an app (SPEC §9), at Authelia's paths so that existing
//! proxy configs keep working:
//! - `/api/authz/auth-request`: nginx `auth_request`. The target comes from
//!   `X-Original-URL` (and `X-Original-Method`). 200 lets it through; 401
//!   carries `Location`, the login page with `rd=`, which nginx turns into
//!   a redirect (`error_page 401 =302 $redirection_url`); 403 refuses.
//!   Never a redirect status: nginx makes a 500 of anything but 2xx, 401
//!   and 403.
//! - `/api/authz/forward-auth`: Traefik `forwardAuth` and Caddy
//!   `forward_auth`. The target comes from `X-Forwarded-Method`, `-Proto`,
//!   `-Host` and `-Uri`. A browser (`Accept: text/html`) that must log in
//!   gets 302 (GET, HEAD) or 303 (other methods) to the login page; other
//!   clients 401; 403 refuses.
//!
//! On 200 the user is named in `Remote-User`, `Remote-Email`,
//! `Remote-Name` and `Remote-Groups` (comma-separated), which the proxy
//! copies onto the request to the app. The target is read only from a peer
//! in `--trusted-proxies`: anyone else could name any URL. This is the hot
//! path of every request to every protected app: it reads the session and
//! never writes (the last-seen time goes to the session cache, as for
//! every page).

use crate::app::AppState;
use crate::domain::User;
use crate::domain::access::{Target, Verdict};
use crate::http::client::host_name;
use crate::http::cookies::session_name;
use crate::http::error::AppError;
use crate::http::extract::authenticate_token;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use url::Url;

const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
const REMOTE_EMAIL: HeaderName = HeaderName::from_static("remote-email");
const REMOTE_NAME: HeaderName = HeaderName::from_static("remote-name");
const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");

/// Whose contract a verify request follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proxy {
    Nginx,
    /// Traefik and Caddy.
    Forward,
}

pub async fn auth_request(State(state): State<AppState>, request: Request) -> Response {
    verify(&state, &request.into_parts().0, Proxy::Nginx).await
}

pub async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    verify(&state, &request.into_parts().0, Proxy::Forward).await
}

async fn verify(state: &AppState, request: &Parts, proxy: Proxy) -> Response {
    let peer = request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| state.config.trusted_proxies.contains(ip)) {
        tracing::warn!(
            peer = %peer.map_or("-".into(), |p| p.to_string()),
            "a verify request came from a peer that is not in --trusted-proxies, so its target \
             headers are not believed and it is refused (403). Add the proxy's address to \
             --trusted-proxies (trusted_proxies = \"loopback\" when it runs on this machine)"
        );
        return plain(
            StatusCode::FORBIDDEN,
            "gatehouse does not take verify requests from this address: add the proxy to --trusted-proxies.",
        );
    }
    let headers = &request.headers;
    let (url, method) = match target_of(headers, proxy) {
        Ok(t) => t,
        Err(why) => {
            tracing::warn!(proxy = ?proxy, why, "a verify request did not say what it is for");
            return plain(StatusCode::BAD_REQUEST, why);
        }
    };
    let host = url.host_str().unwrap_or_default();
    let target = Target::new(host, url.path(), &method);
    let user = match logged_in(state, request).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let decision = state.access_rules().decide(&target, user.as_ref());
    match (decision.verdict, user) {
        (Verdict::Pass, user) => passed(user.as_ref()),
        (Verdict::NeedLogin, _) => need_login(state, &url, &method, headers, proxy),
        (Verdict::Deny, user) => {
            let uncovered =
                decision.rule.is_none() && !state.access_rules().protects_host(&target.host);
            denied(user.as_ref(), uncovered, proxy)
        }
    }
}

/// The URL and method the proxy asks about.
fn target_of(headers: &HeaderMap, proxy: Proxy) -> Result<(Url, String), &'static str> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (raw, method) = match proxy {
        Proxy::Nginx => (
            text("x-original-url")
                .ok_or(
                    "X-Original-URL is missing: the nginx location that calls gatehouse must set \
                     proxy_set_header X-Original-URL $scheme://$http_host$request_uri;",
                )?
                .to_string(),
            text("x-original-method").unwrap_or("GET"),
        ),
        Proxy::Forward => {
            let missing = "X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri are needed: \
                           Traefik sends them with trustForwardHeader, Caddy's forward_auth always";
            let proto = text("x-forwarded-proto").ok_or(missing)?;
            let host = text("x-forwarded-host").ok_or(missing)?;
            let uri = text("x-forwarded-uri").unwrap_or("/");
            if !matches!(proto, "http" | "https") || !uri.starts_with('/') {
                return Err("X-Forwarded-Proto must be http or https, and X-Forwarded-Uri a path");
            }
            (
                format!("{proto}://{host}{uri}"),
                text("x-forwarded-method").unwrap_or("GET"),
            )
        }
    };
    let url = Url::parse(&raw).map_err(|_| "the target URL the proxy sent is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("the target URL must be http:// or https:// with a host");
    }
    if method.len() > 16 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("the method the proxy sent is not an HTTP method");
    }
    Ok((url, method.to_ascii_uppercase()))
}

/// The user of the browser's session, if it is valid and its owner has
/// accepted the current documents (else they are sent to log in, where
/// they are asked).
async fn logged_in(state: &AppState, request: &Parts) -> Result<Option<User>, AppError> {
    let cookie = cookie_value(&request.headers, session_name(state));
    Ok(authenticate_token(state, cookie)
        .await?
        .filter(|a| a.has_current_consent(state))
        .map(|a| a.user))
}

/// The value of the cookie `name` in the request's Cookie headers (the
/// browser's, passed on by the proxy), without parsing the others.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}

fn passed(user: Option<&User>) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Some(u) = user {
        let groups = u
            .groups
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let h = response.headers_mut();
        for (name, value) in [
            (REMOTE_USER, u.username.as_str()),
            (REMOTE_EMAIL, u.email.as_str()),
            (REMOTE_NAME, u.username.as_str()),
            (REMOTE_GROUPS, groups.as_str()),
        ] {
            // Usernames and groups are ASCII; an email's local part may
            // not be, and goes as its UTF-8 bytes.
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                h.insert(name, v);
            }
        }
    }
    response
}

fn need_login(
    state: &AppState,
    target: &Url,
    method: &str,
    headers: &HeaderMap,
    proxy: Proxy,
) -> Response {
    let host = target.host_str().map(host_name).unwrap_or_default();
    let mut login = state.login_url_for(host);
    login.query_pairs_mut().append_pair("rd", target.as_str());
    let Ok(location) = HeaderValue::from_str(login.as_str()) else {
        return plain(StatusCode::UNAUTHORIZED, "Log in first.");
    };
    let status = match proxy {
        // nginx: 401 with Location (error_page 401 =302 makes the redirect).
        Proxy::Nginx => StatusCode::UNAUTHORIZED,
        Proxy::Forward if wants_html(headers) => {
            if matches!(method, "GET" | "HEAD") {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            }
        }
        Proxy::Forward => StatusCode::UNAUTHORIZED,
    };
    let mut response = plain(status, "Log in first: see the Location header.");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// `uncovered`: no rule names the host at all.
fn denied(user: Option<&User>, uncovered: bool, proxy: Proxy) -> Response {
    let text = match (user, uncovered) {
        (_, true) => {
            "No access rule covers this address, so nobody may open it. The administrator adds an [[access]] rule for its host."
        }
        (Some(_), false) => {
            "You are logged in, but your account may not open this page. Ask your administrator to add you to a group that may."
        }
        (None, false) => "This page is closed to everyone.",
    };
    if proxy == Proxy::Nginx {
        // nginx shows its own 403 page; the body goes nowhere.
        return plain(StatusCode::FORBIDDEN, text);
    }
    AppError::Forbidden(text).into_response()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}
