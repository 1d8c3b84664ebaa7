//! Logging in with a passkey, without a password (issue 15): `POST
//! /login/passkey/start` (a challenge for the page's script, JSON; its key
//! in the passkey cookie) and `POST /login/passkey` (the passkey's answer,
//! filled in by the script: a session, then on to the return address).

use crate::app::AppState;
use crate::http::cookies::{self, Browser};
use crate::http::error::AppError;
use crate::http::extract::{ClientIp, Form, user_agent};
use crate::http::pages::login::Notice;
use crate::http::routes::login::{locked, logged_in, render_notice};
use crate::services::second_step::{PasskeyLogin, PasskeyOutcome};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    rd: String,
    /// Offered in the ID field's suggestions (conditional mediation).
    #[serde(default)]
    autofill: String,
}

pub async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<StartForm>,
) -> Result<Response, AppError> {
    // Each challenge is a write: the per-client login limit holds.
    state
        .login_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    let rd = state.return_to(&form.rd).map(|u| u.to_string());
    Ok(
        match state
            .login()
            .start_passkey_login(rd, !form.autofill.is_empty())
            .await?
        {
            Ok((token, options)) => {
                let jar = CookieJar::new().add(cookies::passkey(token.to_cookie(), &state));
                (jar, axum::Json(options)).into_response()
            }
            Err(e) => (
                StatusCode::CONFLICT,
                axum::Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response(),
        },
    )
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    credential: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Result<Response, AppError> {
    let error =
        |msg: &str, status| render_notice(&state, &browser, Notice::Error(msg.into()), status);
    let Some(ceremony) = browser.passkey_key() else {
        return Ok(error(
            "The passkey request timed out. Try again.",
            StatusCode::BAD_REQUEST,
        ));
    };
    let request = PasskeyLogin {
        ceremony,
        answer: form.credential.chars().take(64 * 1024).collect(),
        ip,
        user_agent: user_agent(&headers),
        replaces: browser.session_key(),
    };
    let gone = cookies::removal(cookies::passkey_name(&state), &state);
    let response = match state.login().passkey_login(request).await? {
        PasskeyOutcome::Success { token, device, rd } => {
            let jar = logged_in(&state, &browser, &token, &device).add(gone);
            let to = rd.unwrap_or_else(|| "/".into());
            return Ok((jar, Redirect::to(&to)).into_response());
        }
        PasskeyOutcome::Refused(msg) => error(msg, StatusCode::UNAUTHORIZED),
        PasskeyOutcome::Expired => error(
            "The passkey request timed out. Try again.",
            StatusCode::BAD_REQUEST,
        ),
        PasskeyOutcome::Locked { until, now } => locked(&state, &browser, "", now, until, None),
    };
    Ok((CookieJar::new().add(gone), response).into_response())
}
