//! `/forgot-password` and `/reset-password` (SPEC §2, §4; the seed's
//! "When you forgot your password").
//!
//! Forgot: CSRF -> per-client limit -> the address parsed -> the request
//! handed to the background (`mail::requests`) -> the same answer, at
//! once, whether or not an account has that address.
//! Reset: the link shows a form (no change on GET) -> the password rule ->
//! one bcrypt on the pool -> one transaction that consumes the token, sets
//! the hash, ends every session, clears the lockout and queues the
//! "password changed" mail -> the login page (no automatic login).

use crate::app::AppState;
use crate::auth::pool::Busy;
use crate::auth::sha256;
use crate::domain::{EmailAddress, NewPassword};
use crate::error::AppError;
use crate::http::cookies::Browser;
use crate::http::extract::{ClientIp, Form, Query};
use crate::http::pages::recovery::{self, ResetView};
use crate::mail::messages;
use crate::mail::requests::MailRequest;
use crate::store::{AuditEvent, AuditKind, TokenProblem, TokenPurpose};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// A token as it came in a link; anything longer than ours is no token.
pub fn token_hash(raw: &str) -> Option<[u8; 32]> {
    let t = raw.trim();
    (!t.is_empty() && t.len() <= 64).then(|| sha256(t.as_bytes()))
}

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
    state.mail_requests.submit(MailRequest::Reset { email });
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

/// The live reset token behind `raw`, or why there is none.
fn live_reset_token(
    state: &AppState,
    raw: &str,
) -> anyhow::Result<Result<crate::store::OneTimeToken, TokenProblem>> {
    let Some(hash) = token_hash(raw) else {
        return Ok(Err(TokenProblem::Unknown));
    };
    Ok(match state.store.token(&hash)? {
        Some(t) if t.purpose == TokenPurpose::Reset && state.clock.now() < t.expires_at => Ok(t),
        Some(t) if t.purpose == TokenPurpose::Reset => Err(TokenProblem::Expired),
        _ => Err(TokenProblem::Unknown),
    })
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
    if let Err(problem) = live_reset_token(&state, &raw)? {
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
    let token = match live_reset_token(&state, &form.token)? {
        Ok(t) => t,
        Err(problem) => return Ok(reset_link_failed(&state, &browser, problem)),
    };
    let Some(user) = state.store.user(token.user)? else {
        return Ok(reset_link_failed(&state, &browser, TokenProblem::Unknown));
    };
    let mut errors: Vec<String> = Vec::new();
    let password = NewPassword::parse(
        state.config.password_policy,
        &state.common_passwords,
        form.password.clone(),
        &[user.email.as_str(), user.username.as_str()],
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
    let new_hash = state
        .passwords
        .hash(&password)
        .await
        .map_err(|Busy| AppError::Busy)?;
    let Some(hash) = token_hash(&form.token) else {
        return Ok(reset_link_failed(&state, &browser, TokenProblem::Unknown));
    };
    let now = state.clock.now();
    let login = state.link("login", "from", "mail");
    let done = state
        .blocking(move |s| {
            s.consume_reset(&hash, now, new_hash, &|u| {
                messages::password_changed(&u.email, u.username.as_str(), now, &login)
            })
        })
        .await?;
    match done {
        Ok(user) => {
            state.outbox.wake();
            tracing::info!(user = %user.id, "password reset by mailed link");
            state
                .audit(
                    AuditEvent::new(now, AuditKind::ResetDone, "self")
                        .user(user.id)
                        .ip(ip),
                )
                .await;
            Ok(Redirect::to("/login?reset=1").into_response())
        }
        // Used up by a concurrent request between the check and now.
        Err(problem) => Ok(reset_link_failed(&state, &browser, problem)),
    }
}
