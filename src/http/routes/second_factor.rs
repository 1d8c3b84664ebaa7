//! The second step of a login (issue 15): `GET/POST /login/second-factor`
//! (a code of the app or a recovery code), `GET/POST /login/enrol` (an
//! app set up because the policy asks for one) and `POST /login/cancel`.
//! Each reads the browser's half-login cookie; the state is the server's
//! (`services::second_step`).

use crate::app::AppState;
use crate::http::cookies::{self, Browser};
use crate::http::error::AppError;
use crate::http::extract::{ClientIp, Form, user_agent};
use crate::http::pages::second_factor::{self as pages, AppSetup};
use crate::http::routes::login::{locked, logged_in, with_form_targets};
use crate::services::second_step::{StepOutcome, StepRequest};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use url::Url;

/// No live half-login: back to the password, with the cookie gone.
fn start_over(state: &AppState) -> Response {
    let jar = CookieJar::new().add(cookies::removal(cookies::pending_name(state), state));
    (jar, Redirect::to("/login?expired=1")).into_response()
}

pub async fn verify_page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
) -> Result<Response, AppError> {
    let Some(key) = browser.pending_key() else {
        return Ok(start_over(&state));
    };
    let Some((pending, _)) = state.login().half_login(&key).await? else {
        return Ok(start_over(&state));
    };
    if pending.step != crate::domain::pending::PendingStep::Verify {
        return Ok(Redirect::to("/login/enrol").into_response());
    }
    let passkey = has_passkey(&state, pending.user).await?;
    let page = pages::verify(&browser.csrf_token(&state), None, passkey).into_response();
    Ok(targets(&state, page, pending.rd.as_deref()).await)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    /// A passkey's answer (JSON), filled in by the page's script.
    #[serde(default)]
    passkey: String,
}

pub async fn verify_submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    submit(&state, &browser, ip, &headers, form, false).await
}

pub async fn enrol_page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
) -> Result<Response, AppError> {
    enrol_form(&state, &browser, None, StatusCode::OK).await
}

pub async fn enrol_submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    submit(&state, &browser, ip, &headers, form, true).await
}

#[derive(Deserialize)]
pub struct CancelForm {}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Form(CancelForm {}): Form<CancelForm>,
) -> Result<Response, AppError> {
    if let Some(key) = browser.pending_key() {
        state.login().cancel_half_login(&key).await?;
    }
    let jar = CookieJar::new().add(cookies::removal(cookies::pending_name(&state), &state));
    Ok((jar, Redirect::to("/login")).into_response())
}

async fn enrol_form(
    state: &AppState,
    browser: &Browser,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let Some(key) = browser.pending_key() else {
        return Ok(start_over(state));
    };
    let Some(enrolment) = state.login().enrolment(&key).await? else {
        return Ok(start_over(state));
    };
    let uri = enrolment
        .secret
        .otpauth_uri(&totp_issuer(state), enrolment.user.username.as_str());
    let csrf = browser.csrf_token(state);
    let page = pages::enrol(&AppSetup {
        csrf: &csrf,
        otpauth_uri: &uri,
        secret: &enrolment.secret.base32(),
        error,
        action: "/login/enrol",
    });
    let rd = state
        .login()
        .half_login(&key)
        .await?
        .and_then(|(p, _)| p.rd);
    Ok(targets(state, (status, page).into_response(), rd.as_deref()).await)
}

async fn submit(
    state: &AppState,
    browser: &Browser,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: CodeForm,
    enrolling: bool,
) -> Result<Response, AppError> {
    let Some(key) = browser.pending_key() else {
        return Ok(start_over(state));
    };
    // Codes are guessed as passwords are: the same per-client limit.
    state
        .login_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let half = state.login().half_login(&key).await?;
    let passkey = match &half {
        Some((p, _)) => has_passkey(state, p.user).await?,
        None => false,
    };
    let rd = half.and_then(|(p, _)| p.rd);
    let request = StepRequest {
        pending: key,
        typed: form.code.chars().take(64).collect(),
        passkey: Some(form.passkey).filter(|p| !p.is_empty()),
        ip,
        user_agent: user_agent(headers),
        replaces: browser.session_key(),
    };
    let response = match state.login().second_step(request).await? {
        StepOutcome::Success {
            token,
            device,
            rd,
            recovery_left,
            recovery_codes,
        } => {
            let jar = logged_in(state, browser, &token, &device);
            let next = rd.unwrap_or_else(|| "/".into());
            return Ok(if !recovery_codes.is_empty() {
                (jar, pages::enrolled(&recovery_codes, &next)).into_response()
            } else if let Some(left) = recovery_left {
                (jar, pages::recovery_used(left, &next)).into_response()
            } else {
                (jar, Redirect::to(&next)).into_response()
            });
        }
        StepOutcome::Wrong { replayed } => {
            let msg = match (enrolling, replayed) {
                (true, _) => {
                    "That code is not the one the app shows now. Check that the app's clock is right, and type the newest code."
                }
                (false, true) => {
                    "That code was used already. Wait for the next code in your app, then type it."
                }
                (false, false) => {
                    "That code (or passkey) is wrong. Type the 6-digit code your app shows now, or one of your recovery codes, or use your passkey again."
                }
            };
            if enrolling {
                return enrol_form(state, browser, Some(msg), StatusCode::UNAUTHORIZED).await;
            }
            (
                StatusCode::UNAUTHORIZED,
                pages::verify(&browser.csrf_token(state), Some(msg), passkey),
            )
                .into_response()
        }
        StepOutcome::Expired => return Ok(start_over(state)),
        StepOutcome::Locked { until, now } => {
            let mut page = locked(state, browser, "", now, until, rd.as_deref());
            let removal =
                cookies::set_cookie_header(&cookies::removal(cookies::pending_name(state), state));
            page.headers_mut()
                .append(axum::http::header::SET_COOKIE, removal);
            page
        }
    };
    Ok(targets(state, response, rd.as_deref()).await)
}

async fn has_passkey(state: &AppState, user: crate::domain::UserId) -> Result<bool, AppError> {
    Ok(state.passkeys.available() && !state.store.second_factors(user).await?.passkeys.is_empty())
}

/// The name an authenticator app shows above the code: this server's host.
pub fn totp_issuer(state: &AppState) -> String {
    state.base_url.host_str().unwrap_or("gatehouse").to_string()
}

async fn targets(state: &AppState, response: Response, rd: Option<&str>) -> Response {
    let rd = rd.and_then(|r| Url::parse(r).ok());
    with_form_targets(state, response, rd.as_ref()).await
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /login/second-factor/passkey`: the challenge for one of the
/// account's passkeys, for the page's script (JSON).
pub async fn passkey_options(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Form(EmptyForm {}): Form<EmptyForm>,
) -> Result<Response, AppError> {
    let options = match browser.pending_key() {
        Some(key) => state.login().second_step_passkey(&key).await?,
        None => None,
    };
    Ok(match options {
        Some(o) => axum::Json(o).into_response(),
        None => (
            StatusCode::CONFLICT,
            axum::Json(serde_json::json!({"error": "No passkey can answer here: log in again, or type a code."})),
        )
            .into_response(),
    })
}
