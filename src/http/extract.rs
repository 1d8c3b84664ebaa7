//! Extractors: where raw requests become values the handlers can trust.
//! - `Form<T>`: a urlencoded form, strictly UTF-8, size-limited, and
//!   CSRF-checked, so no form handler can forget the check.
//! - `Query<T>`: a query string, with our error page on failure.
//! - `ClientIp`: the peer address (the limiter's key).
//! - `PageUser` / `ApiUser` / `MaybeUser`: the logged-in user, if any.

use super::client::client_address;
use super::cookies::{Browser, session_name};
use crate::app::AppState;
use crate::domain::session::{Session, SessionKey, SessionToken};
use crate::domain::{User, UserStatus};
use crate::http::error::{ApiError, AppError};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use percent_encoding::percent_decode;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Larger than any of our forms (two 1024-byte passwords, percent-encoded,
/// are under 20 KiB).
pub const FORM_LIMIT: usize = 64 * 1024;

pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let state = AppState::from_ref(state);
        let browser = request.extensions().get::<Browser>().cloned();
        let pairs = read_pairs(request).await?;
        let mut csrf = None;
        let mut fields = Vec::new();
        for (key, value) in pairs {
            if key == "csrf" {
                if csrf.replace(value).is_some() {
                    return Err(AppError::BadRequest(
                        "The form had two CSRF tokens. Reload the page and try again.",
                    ));
                }
            } else {
                fields.push((key, value));
            }
        }
        let valid = match (browser, csrf) {
            (Some(b), Some(token)) => b.verify_csrf(&state, &token),
            _ => false,
        };
        if !valid {
            return Err(AppError::Forbidden(
                "This form has expired or did not come from gatehouse's own page. Reload the page and try again.",
            ));
        }
        // The pairs are checked UTF-8 now; serde_urlencoded maps them onto
        // `T` (Option fields, defaults, duplicate-field errors).
        let checked = serde_urlencoded::to_string(&fields).map_err(|_| {
            AppError::BadRequest("The form could not be read. Reload the page and try again.")
        })?;
        serde_urlencoded::from_str::<T>(&checked).map(Form).map_err(|_| {
            AppError::BadRequest(
                "The form was incomplete or had repeated fields. Reload the page and try again.",
            )
        })
    }
}

/// The pairs of a urlencoded body of at most `FORM_LIMIT` bytes.
async fn read_pairs(request: Request) -> Result<Vec<(String, String)>, AppError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(AppError::BadRequest(
            "This address takes a form sent as application/x-www-form-urlencoded, as a browser sends it.",
        ));
    }
    let body = axum::body::to_bytes(request.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| AppError::TooLarge)?;
    parse_pairs(&body)
}

/// A form an app sends (OAuth: the token, revocation and userinfo
/// endpoints, a POSTed authorization request): urlencoded, size-limited,
/// strictly UTF-8, each parameter at most once (RFC 6749 §3.1), and no
/// CSRF token (the app authenticates itself, or nothing changes). A
/// malformed one is answered as OAuth does: 400
/// `{"error":"invalid_request"}`.
pub struct AppForm<T>(pub T);

impl<T, S> FromRequest<S> for AppForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Response> {
        let invalid = |description: &str| {
            (
                axum::http::StatusCode::BAD_REQUEST,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                axum::Json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": description,
                })),
            )
                .into_response()
        };
        // No body at all (a userinfo POST with only the Bearer header,
        // RFC 6750 §2.1): no parameters.
        let bodiless = !request.headers().contains_key(header::CONTENT_TYPE)
            && request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0")
            && !request.headers().contains_key(header::TRANSFER_ENCODING);
        if bodiless {
            return serde_urlencoded::from_str::<T>("")
                .map(AppForm)
                .map_err(|_| invalid("the request has no parameters"));
        }
        let pairs = match read_pairs(request).await {
            Ok(p) => p,
            Err(AppError::TooLarge) => return Err(invalid("the request body is too large")),
            Err(_) => {
                return Err(invalid(
                    "send the parameters as application/x-www-form-urlencoded UTF-8",
                ));
            }
        };
        let mut seen = std::collections::HashSet::new();
        if !pairs.iter().all(|(k, _)| seen.insert(k.as_str())) {
            return Err(invalid("a parameter was sent more than once"));
        }
        let text = serde_urlencoded::to_string(&pairs)
            .map_err(|_| invalid("the parameters could not be read"))?;
        serde_urlencoded::from_str::<T>(&text)
            .map(AppForm)
            .map_err(|_| invalid("the parameters could not be read"))
    }
}

/// `application/x-www-form-urlencoded` pairs, refusing bytes that are not
/// UTF-8 (which a lenient decoder would quietly turn into U+FFFD).
fn parse_pairs(body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    body.split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            Ok((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

fn decode_component(raw: &[u8]) -> Result<String, AppError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            AppError::BadRequest(
                "The form held text that is not valid UTF-8. Retype it and send it again.",
            )
        })
}

pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|_| {
                AppError::BadRequest("The address has a malformed query string. Check the link.")
            })
    }
}

/// The client's address: the socket's peer, or, when the peer is one of
/// `--trusted-proxies`, the client its forwarding headers name
/// (`http::client::client_address`). Limits, lockout, sessions, login
/// history, audit and mails all take it from here.
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Without a socket (router called directly) there is no peer.
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        };
        let state = AppState::from_ref(state);
        Ok(Self(client_address(
            peer.0.ip(),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// A valid session and its user.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub user: User,
    pub key: SessionKey,
    pub session: Session,
}

/// Checks the session cookie: only reads the store; the last-seen time goes
/// to the in-memory cache (no write on this path; issue 2 §6).
pub async fn authenticate(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<Authenticated>, AppError> {
    authenticate_token(state, jar.get(session_name(state)).map(|c| c.value())).await
}

/// `authenticate` for the raw session cookie value.
pub async fn authenticate_token(
    state: &AppState,
    cookie: Option<&str>,
) -> Result<Option<Authenticated>, AppError> {
    let Some(token) = cookie.and_then(SessionToken::from_cookie) else {
        return Ok(None);
    };
    let key = token.key();
    let Some((session, user)) = state.store.session_with_user(&key).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if state
        .config
        .session
        .is_expired(&session, state.sessions.last_seen(&key, &session), now)
    {
        return Ok(None);
    }
    if user.status != UserStatus::Active {
        return Ok(None);
    }
    state.sessions.touch(key, now);
    Ok(Some(Authenticated { user, key, session }))
}

async fn authenticate_parts<S>(
    parts: &mut Parts,
    state: &S,
) -> Result<Option<Authenticated>, AppError>
where
    AppState: FromRef<S>,
{
    let state = AppState::from_ref(state);
    // The edge middleware has read the cookies already.
    match parts.extensions.get::<Browser>() {
        Some(browser) => authenticate_token(&state, browser.session.as_deref()).await,
        None => authenticate(&state, &CookieJar::from_headers(&parts.headers)).await,
    }
}

impl Authenticated {
    /// Has the user accepted the current Terms and Privacy Policy?
    pub fn has_current_consent(&self, state: &AppState) -> bool {
        state.documents.is_current(self.user.consent.as_ref())
    }
}

/// The user of a page; without a valid session, a redirect to `/login`;
/// without consent to the current documents, a redirect to `/consent`
/// (SPEC §3: asked again before they reach the Summary).
pub struct PageUser(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for PageUser
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match authenticate_parts(parts, state).await {
            Ok(Some(a)) if a.has_current_consent(&AppState::from_ref(state)) => Ok(Self(a)),
            Ok(Some(_)) => Err(Redirect::to("/consent").into_response()),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A logged-in user whether or not they have accepted the current
/// documents: for the consent page itself.
pub struct SessionUser(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for SessionUser
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match authenticate_parts(parts, state).await {
            Ok(Some(a)) => Ok(Self(a)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The user of an API call; without a valid session, 401 JSON; without
/// consent to the current documents, 403 JSON.
pub struct ApiUser(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for ApiUser
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match authenticate_parts(parts, state).await {
            Ok(Some(a)) if a.has_current_consent(&AppState::from_ref(state)) => Ok(Self(a)),
            Ok(Some(_)) => Err((
                axum::http::StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({
                    "error": "consent_required",
                    "message": "Accept the current Terms of Service and Privacy Policy first: open /consent in a browser."
                })),
            )
                .into_response()),
            Ok(None) => Err((
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({
                    "error": "not_logged_in",
                    "message": "Log in first: this needs a valid gatehouse session cookie."
                })),
            )
                .into_response()),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

/// The user if logged in, else nobody (for pages anyone may see).
pub struct MaybeUser(pub Option<Authenticated>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser
where
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Ok(Self(authenticate_parts(parts, state).await?))
    }
}

/// The browser's User-Agent, shortened for storage.
pub fn user_agent(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_decode_plus_and_percent() {
        let pairs = parse_pairs(b"id=a%40b.c&password=p+w%21&x").unwrap();
        assert_eq!(pairs[0], ("id".into(), "a@b.c".into()));
        assert_eq!(pairs[1], ("password".into(), "p w!".into()));
        assert_eq!(pairs[2], ("x".into(), String::new()));
    }

    #[test]
    fn invalid_utf8_in_a_form_is_refused() {
        assert!(parse_pairs(b"id=%FF%FE").is_err());
    }
}
