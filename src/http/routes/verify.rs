//! `/verify-email` (the link in the verification mail: a page with a
//! button, then a POST that confirms) and `/verify-email/resend` (the same
//! answer whether or not an account waits for that address).

use super::recovery::EmailForm;
use crate::app::AppState;
use crate::domain::{EmailAddress, LinkToken};
use crate::http::cookies::Browser;
use crate::http::error::AppError;
use crate::http::extract::{ClientIp, Form, Query};
use crate::http::pages::recovery;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct CodeQuery {
    code: Option<String>,
}

fn failed(state: &AppState, browser: &Browser) -> Response {
    let page = recovery::link_failed(
        &browser.csrf_token(state),
        "Confirm your email address",
        "This confirmation link is invalid or has expired.",
        "/verify-email/resend",
        "Send a new link",
    );
    (StatusCode::BAD_REQUEST, page).into_response()
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, AppError> {
    let code = q.code.unwrap_or_default();
    let live = match LinkToken::parse(&code) {
        Some(token) => state.verification().is_live(&token).await?,
        None => false,
    };
    if !live {
        return Ok(failed(&state, &browser));
    }
    Ok(recovery::verify_confirm(&browser.csrf_token(&state), &code).into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let Some(token) = LinkToken::parse(&form.code) else {
        return Ok(failed(&state, &browser));
    };
    match state.verification().confirm(&token).await? {
        Ok(_) => Ok(Redirect::to("/login?verified=1").into_response()),
        Err(_) => Ok(failed(&state, &browser)),
    }
}

pub async fn resend(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    Form(form): Form<EmailForm>,
) -> Result<Response, AppError> {
    state
        .mail_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let Ok(email) = EmailAddress::parse(&form.email) else {
        return Ok(failed(&state, &browser));
    };
    let shown = email.to_string();
    state.verification().resend(email);
    Ok(recovery::check_email(&browser.csrf_token(&state), &shown).into_response())
}
