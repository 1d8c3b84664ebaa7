//! `GET /login` and `POST /login` (SPEC §4): CSRF (in `Form`) -> endpoint
//! (elsewhere? send the browser there) -> parse ID and password ->
//! per-client limit -> `services::login` -> one page per outcome.

use crate::app::AppState;
use crate::clock::Timestamp;
use crate::crypto::random_token;
use crate::domain::pending::PendingStep;
use crate::domain::session::SessionToken;
use crate::domain::{LoginId, Password};
use crate::http::cookies::{self, Browser};
use crate::http::error::{AppError, retry_after_secs};
use crate::http::extract::{ClientIp, Form, MaybeUser, Query, user_agent};
use crate::http::pages::login::{self, LoginView, Notice};
use crate::http::pages::recovery;
use crate::services::login::{LoginRequest, Outcome};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use url::Url;

/// The one answer to a wrong password and an unknown ID alike.
pub const INCORRECT: &str = "ID or password is incorrect.";

#[derive(Deserialize)]
pub struct LoginQuery {
    logged_out: Option<String>,
    everywhere: Option<String>,
    signed_up: Option<String>,
    reset: Option<String>,
    verified: Option<String>,
    /// A half-login ended before its second step.
    expired: Option<String>,
    /// Where the browser came from (a protected app): back there after.
    rd: Option<String>,
    /// Ask for the password although a session exists (an app's
    /// `prompt=login` or `max_age`).
    force: Option<String>,
    /// What an app suggests for the ID field (`login_hint`).
    login_hint: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Query(q): Query<LoginQuery>,
) -> Response {
    let rd = q.rd.as_deref().and_then(|r| state.return_to(r));
    if let Some(me) = me.filter(|_| q.force.is_none()) {
        // Logged in already: on to where they were going; the documents
        // first if they have not accepted the current ones.
        return match (me.has_current_consent(&state), &rd) {
            (true, Some(url)) => Redirect::to(url.as_str()),
            (true, None) => Redirect::to("/"),
            (false, rd) => Redirect::to(&consent_with(rd.as_ref())),
        }
        .into_response();
    }
    let notice = if q.expired.is_some() {
        Some(Notice::Error(
            "Your login was not finished in time, or too many codes were wrong. Log in again."
                .into(),
        ))
    } else if q.reset.is_some() {
        Some(Notice::Info("Your password was changed, and every session of your account was ended. Log in with the new password.".into()))
    } else if q.everywhere.is_some() {
        Some(Notice::Info(
            "You have logged out everywhere: every session of your account was ended.".into(),
        ))
    } else if q.verified.is_some() {
        Some(Notice::Info(
            "Your email address is confirmed. Log in.".into(),
        ))
    } else if q.signed_up.is_some() {
        Some(Notice::Info(
            "Your account is ready. Log in with your email address or username.".into(),
        ))
    } else {
        q.logged_out
            .map(|_| Notice::Info("You have logged out.".into()))
    };
    let hint: String = q.login_hint.unwrap_or_default().chars().take(254).collect();
    let rd_text = rd.as_ref().map(|u| u.to_string());
    let response = render(
        &state,
        &browser,
        &hint,
        notice,
        StatusCode::OK,
        rd_text.as_deref(),
    );
    crate::http::routes::oidc::allow_form_targets(&state, response, rd.as_ref()).await
}

/// `/consent`, carrying the return address on.
fn consent_with(rd: Option<&Url>) -> String {
    match rd {
        Some(u) => format!(
            "/consent?rd={}",
            url::form_urlencoded::byte_serialize(u.as_str().as_bytes()).collect::<String>()
        ),
        None => "/consent".into(),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    rd: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let rd = state.return_to(&form.rd);
    let rd_text = rd.as_ref().map(|u| u.to_string());
    let bad = |status, msg: &str| {
        render(
            &state,
            &browser,
            &form.id,
            Some(Notice::Error(msg.into())),
            status,
            rd_text.as_deref(),
        )
    };
    let response = submit_checked(
        &state,
        &browser,
        ip,
        &headers,
        &form,
        rd.as_ref(),
        rd_text.as_deref(),
        bad,
    )
    .await?;
    Ok(crate::http::routes::oidc::allow_form_targets(&state, response, rd.as_ref()).await)
}

#[allow(clippy::too_many_arguments)]
async fn submit_checked(
    state: &AppState,
    browser: &Browser,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: &LoginForm,
    rd: Option<&Url>,
    rd_text: Option<&str>,
    bad: impl Fn(StatusCode, &str) -> Response,
) -> Result<Response, AppError> {
    match other_endpoint(state, &form.endpoint) {
        Some(Ok(url)) => return Ok(Redirect::to(url.as_str()).into_response()),
        Some(Err(msg)) => return Ok(bad(StatusCode::BAD_REQUEST, msg)),
        None => {}
    }
    let id = match LoginId::parse(&form.id) {
        Ok(id) => id,
        Err(msg) => return Ok(bad(StatusCode::BAD_REQUEST, msg)),
    };
    let password = match Password::parse(form.password.clone()) {
        Ok(p) => p,
        Err(msg) => return Ok(bad(StatusCode::BAD_REQUEST, msg)),
    };
    state
        .login_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let request = LoginRequest {
        id,
        password,
        ip,
        user_agent: user_agent(headers),
        replaces: browser
            .session
            .as_deref()
            .and_then(SessionToken::from_cookie)
            .map(|t| t.key()),
        device: browser
            .device
            .as_deref()
            .and_then(|v| state.devices.verify(v)),
        rd: rd.map(|u| u.to_string()),
    };
    Ok(match state.login().login(request).await? {
        Outcome::Success { token, device, .. } => {
            // Back to the app that sent the browser here, if it may go
            // there (a page of ours asks for consent on the way).
            let to = rd.map_or("/", |u| u.as_str());
            (logged_in(state, browser, &token, &device), Redirect::to(to)).into_response()
        }
        Outcome::SecondStep { token, step } => {
            let jar = CookieJar::new().add(cookies::pending(token.to_cookie(), state));
            let to = match step {
                PendingStep::Verify => "/login/second-factor",
                PendingStep::Enrol => "/login/enrol",
            };
            (jar, Redirect::to(to)).into_response()
        }
        Outcome::Incorrect => bad(StatusCode::UNAUTHORIZED, INCORRECT),
        Outcome::Locked { until, now } => locked(state, browser, &form.id, now, until, rd_text),
        // Said only to someone who knew the password: reveals nothing to a
        // guesser (SPEC §3).
        Outcome::Unverified { email } => {
            let page = recovery::unverified(&browser.csrf_token(state), email.as_str());
            (StatusCode::FORBIDDEN, page).into_response()
        }
        Outcome::Disabled => bad(
            StatusCode::FORBIDDEN,
            "This account is disabled. Contact your administrator.",
        ),
        Outcome::Busy => return Err(AppError::Busy),
    })
}

/// The cookies of a new login: a new session, CSRF secret and device
/// cookie at every login; a half-login's cookie goes.
pub fn logged_in(
    state: &AppState,
    browser: &Browser,
    token: &SessionToken,
    device: &crate::auth::device::Device,
) -> CookieJar {
    let mut jar = CookieJar::new()
        .add(cookies::session(token.to_cookie(), state, browser))
        .add(cookies::csrf(random_token::<32>(), state))
        .add(cookies::device(state.devices.sign(device), state));
    if browser.pending.is_some() {
        jar = jar.add(cookies::removal(cookies::pending_name(state), state));
    }
    jar
}

/// A page that posts a form whose answer may redirect to `rd` (a
/// protected app, an app's OpenID callback): the browser's CSP
/// `form-action` must allow that target.
pub async fn with_form_targets(
    state: &AppState,
    mut response: Response,
    rd: Option<&Url>,
) -> Response {
    if let Some(to) = rd {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            crate::http::csp_with_form_target(to),
        );
    }
    crate::http::routes::oidc::allow_form_targets(state, response, rd).await
}

/// With `--endpoint-editable`, an endpoint other than ours sends the browser
/// to that server's login page (the password goes nowhere). `None`: ours,
/// or pinned.
fn other_endpoint(state: &AppState, typed: &str) -> Option<Result<Url, &'static str>> {
    let typed = typed.trim();
    if !state.config.endpoint_editable || typed.is_empty() {
        return None;
    }
    let Ok(url) = Url::parse(typed) else {
        return Some(Err(
            "The API endpoint must be a full http:// or https:// address, such as https://login.example.com.",
        ));
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Some(Err(
            "The API endpoint must be a full http:// or https:// address, such as https://login.example.com.",
        ));
    }
    if url.origin() == state.base_url.origin() {
        return None;
    }
    Some(
        url.join("login")
            .map_err(|_| "The API endpoint is not a usable address."),
    )
}

pub fn locked(
    state: &AppState,
    browser: &Browser,
    id: &str,
    now: Timestamp,
    until: Timestamp,
    rd: Option<&str>,
) -> Response {
    let wait = now.until(until);
    let minutes = retry_after_secs(wait).div_ceil(60);
    let mut response = render(
        state,
        browser,
        id,
        Some(Notice::Locked { until, minutes }),
        StatusCode::TOO_MANY_REQUESTS,
        rd,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    response
}

/// The login page with a notice (a passkey login that failed).
pub fn render_notice(
    state: &AppState,
    browser: &Browser,
    notice: Notice,
    status: StatusCode,
) -> Response {
    render(state, browser, "", Some(notice), status, None)
}

fn render(
    state: &AppState,
    browser: &Browser,
    id: &str,
    notice: Option<Notice>,
    status: StatusCode,
    rd: Option<&str>,
) -> Response {
    let csrf = browser.csrf_token(state);
    let form_target = rd.and_then(|r| url::Url::parse(r).ok());
    let view = LoginView {
        csrf: &csrf,
        id,
        endpoint: state.base_url.as_str(),
        endpoint_editable: state.config.endpoint_editable,
        signup_open: state.config.signup != crate::config::SignupMode::Closed,
        password_reset: state.config.password_reset,
        notice,
        rd,
        passkeys: state.passkeys.available(),
    };
    let mut response = (status, login::page(&view)).into_response();
    if let Some(to) = form_target {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            crate::http::csp_with_form_target(&to),
        );
    }
    response
}
