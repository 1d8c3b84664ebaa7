//! `/forgot-password` and `/reset-password` (SPEC §2, §4; the seed's
//! "When you forgot your password").
//!
//! Forgot: CSRF -> per-client limit -> the address parsed ->
//! `Recovery::forgot` -> the same answer, at once, whether or not an
//! account has that address.
//! Reset: the link shows a form (no change on GET) -> the password rule,
//! against the names of the link's account -> `Recovery::reset` -> the
//! login page (no automatic login).

use crate::app::AppState;
use crate::domain::{EmailAddress, LinkToken, NewPassword, TokenProblem};
use crate::http::cookies::{self, Browser};
use crate::http::error::AppError;
use crate::http::extract::{ClientIp, Form, Query};
use crate::http::pages::recovery::{self, ResetView};
use crate::services::recovery::{Outcome, ResetTarget};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

pub async fn forgot_page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
) -> Response {
    if !state.config.password_reset {
        return (StatusCode::FORBIDDEN, recovery::reset_disabled()).into_response();
    }
    recovery::forgot(&browser.csrf_token(&state), None).into_response()
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    pub email: String,
}

pub async fn forgot_submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    Form(form): Form<EmailForm>,
) -> Result<Response, AppError> {
    if !state.config.password_reset {
        return Ok((StatusCode::FORBIDDEN, recovery::reset_disabled()).into_response());
    }
    state
        .mail_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let email = match EmailAddress::parse(&form.email) {
        Ok(e) => e,
        Err(msg) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                recovery::forgot(&browser.csrf_token(&state), Some(msg)),
            )
                .into_response());
        }
    };
    state.recovery().forgot(email);
    Ok(recovery::forgot_sent().into_response())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn reset_link_failed(state: &AppState, browser: &Browser, problem: TokenProblem) -> Response {
    let why = match problem {
        TokenProblem::Expired => "This link has expired.",
        TokenProblem::Unknown => {
            "This link is not valid: it was already used, a newer one was sent, or it was not copied whole."
        }
    };
    let page = recovery::link_failed(
        &browser.csrf_token(state),
        "Choose a new password",
        why,
        "/forgot-password",
        "Send a new link",
    );
    (StatusCode::BAD_REQUEST, page).into_response()
}

/// The account of a live reset link, or why there is none.
async fn account_of(
    state: &AppState,
    raw: &str,
) -> Result<Result<ResetTarget, TokenProblem>, AppError> {
    let Some(token) = LinkToken::parse(raw) else {
        return Ok(Err(TokenProblem::Unknown));
    };
    Ok(state.recovery().account_of(token).await?)
}

pub async fn reset_page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    if !state.config.password_reset {
        return Ok((StatusCode::FORBIDDEN, recovery::reset_disabled()).into_response());
    }
    let raw = q.token.unwrap_or_default();
    if let Err(problem) = account_of(&state, &raw).await? {
        return Ok(reset_link_failed(&state, &browser, problem));
    }
    let csrf = browser.csrf_token(&state);
    Ok(recovery::reset(&ResetView {
        csrf: &csrf,
        token: &raw,
        policy: state.config.password_policy,
        errors: &[],
    })
    .into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    if !state.config.password_reset {
        return Ok((StatusCode::FORBIDDEN, recovery::reset_disabled()).into_response());
    }
    let target = match account_of(&state, &form.token).await? {
        Ok(found) => found,
        Err(problem) => return Ok(reset_link_failed(&state, &browser, problem)),
    };
    let mut errors: Vec<String> = Vec::new();
    let password = NewPassword::parse(
        state.config.password_policy,
        &state.common_passwords,
        form.password.clone(),
        &[
            target.user().email.as_str(),
            target.user().username.as_str(),
        ],
    )
    .map_err(|problems| errors.extend(problems.iter().map(ToString::to_string)))
    .ok();
    if form.password != form.password_confirm {
        errors.push("The two passwords differ. Type the same password twice.".into());
    }
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        let csrf = browser.csrf_token(&state);
        let view = ResetView {
            csrf: &csrf,
            token: &form.token,
            policy: state.config.password_policy,
            errors: &errors,
        };
        return Ok((StatusCode::BAD_REQUEST, recovery::reset(&view)).into_response());
    };
    Ok(
        match state.recovery().reset(&target, &password, ip).await? {
            Outcome::Done(user) => {
                // This browser proved it reads the owner's mail: a device
                // cookie lets it log in past a guesser's lock (issue 11).
                let device = crate::auth::device::Device::new(user.id);
                let jar =
                    CookieJar::new().add(cookies::device(state.devices.sign(&device), &state));
                (jar, Redirect::to("/login?reset=1")).into_response()
            }
            // Used up by a concurrent request between the check and now.
            Outcome::LinkFailed(problem) => reset_link_failed(&state, &browser, problem),
            Outcome::Busy => return Err(AppError::Busy),
        },
    )
}
