//! The Account page's second factor (issue 15): `POST /account/2fa/app`
//! (a new app, waiting), `GET /account/2fa/app` (its QR code and key, until
//! its first code), `POST /account/2fa/app/confirm` (on, with recovery
//! codes shown once), `POST /account/2fa/recovery` (new codes) and `POST
//! /account/2fa/remove`, both after the password.

use crate::app::AppState;
use crate::domain::Password;
use crate::http::cookies::Browser;
use crate::http::error::{AppError, retry_after_secs};
use crate::http::extract::{Authenticated, ClientIp, Form, PageUser};
use crate::http::pages::layout::Nav;
use crate::http::pages::second_factor::{self as pages, AppSetup};
use crate::http::routes::second_factor::totp_issuer;
use crate::services::factors::FactorProblem;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct EmptyForm {}

pub async fn start_app(
    State(state): State<AppState>,
    PageUser(me): PageUser,
    Form(EmptyForm {}): Form<EmptyForm>,
) -> Result<Response, AppError> {
    // A waiting app is shown again rather than replaced: a reload of the
    // page must not break an app scanned already.
    if state
        .account()
        .factors(me.user.id)
        .await?
        .app_waiting
        .is_none()
    {
        state.account().start_app(&me.user).await?.map_err(|_| {
            AppError::BadRequest("An authenticator app is on already. Remove it first.")
        })?;
    }
    Ok(Redirect::to("/account/2fa/app").into_response())
}

pub async fn app_page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    PageUser(me): PageUser,
) -> Result<Response, AppError> {
    setup_page(&state, &browser, &me, None, StatusCode::OK).await
}

async fn setup_page(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let Some(secret) = state.account().factors(me.user.id).await?.app_waiting else {
        return Ok(Redirect::to("/account#second-factor").into_response());
    };
    let uri = secret.otpauth_uri(&totp_issuer(state), me.user.username.as_str());
    let csrf = browser.csrf_token(state);
    let content = pages::app_setup(&AppSetup {
        csrf: &csrf,
        otpauth_uri: &uri,
        secret: &secret.base32(),
        error,
        action: "/account/2fa/app/confirm",
    });
    let page = super::shell_page(
        state,
        browser,
        me,
        Nav::Account,
        "Set up an authenticator app",
        html! { h2 { "Set up an authenticator app" } (content) p { a href="/account" { "Back to your account" } } },
    );
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn confirm_app(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let code: String = form.code.chars().take(64).collect();
    match state.account().confirm_app(&me.user, &code, ip).await? {
        Ok(codes) => Ok(codes_page(
            &state,
            &browser,
            &me,
            "Your authenticator app is on",
            &codes,
        )),
        Err(FactorProblem::WrongCode) => {
            let msg = "That code is not the one the app shows now. Check that the app's clock is right, and type the newest code.";
            setup_page(&state, &browser, &me, Some(msg), StatusCode::UNAUTHORIZED).await
        }
        Err(_) => Ok(Redirect::to("/account#second-factor").into_response()),
    }
}

fn codes_page(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    title: &str,
    codes: &[String],
) -> Response {
    super::shell_page(
        state,
        browser,
        me,
        Nav::Account,
        title,
        html! {
            h2 { (title) }
            @if codes.is_empty() {
                p.notice.info role="status" { "Your recovery codes stay as they were." }
            } @else {
                (pages::recovery_codes(codes))
            }
            a.button.primary href="/account" id="continue" { "I have kept them: back to my account" }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn new_recovery_codes(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let password = Password::parse(form.password).ok();
    match state
        .account()
        .new_recovery_codes(&me.user, password, ip)
        .await?
    {
        Ok(codes) => Ok(codes_page(
            &state,
            &browser,
            &me,
            "New recovery codes",
            &codes,
        )),
        Err(problem) => refused(&state, &browser, &me, problem).await,
    }
}

pub async fn remove_app(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let password = Password::parse(form.password).ok();
    match state.account().remove_app(&me.user, password, ip).await? {
        Ok(()) => Ok(Redirect::to("/account?factor_removed=1").into_response()),
        Err(problem) => refused(&state, &browser, &me, problem).await,
    }
}

/// The Account page again, with what was wrong next to the form.
async fn refused(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    problem: FactorProblem,
) -> Result<Response, AppError> {
    let (status, msg) = match problem {
        FactorProblem::Busy => return Err(AppError::Busy),
        FactorProblem::TooManyTries { wait } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many tries with a wrong password. Wait {} seconds and try again.",
                retry_after_secs(wait)
            ),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "Your password is not right. Type your current password to confirm.".to_string(),
        ),
    };
    super::account::render(state, browser, me, None, &[], status, Some(&msg)).await
}

/// `POST /account/passkeys/start`: the challenge of a new passkey, for the
/// page's script (JSON).
pub async fn passkey_options(
    State(state): State<AppState>,
    PageUser(me): PageUser,
    Form(EmptyForm {}): Form<EmptyForm>,
) -> Result<Response, AppError> {
    Ok(
        match state.account().start_passkey(&me.user, &me.key).await? {
            Ok(options) => axum::Json(options).into_response(),
            Err(e) => (
                StatusCode::CONFLICT,
                axum::Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response(),
        },
    )
}

#[derive(Deserialize)]
pub struct AddPasskeyForm {
    #[serde(default)]
    name: String,
    /// The browser's answer (JSON), filled in by the page's script.
    #[serde(default)]
    credential: String,
}

pub async fn add_passkey(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<AddPasskeyForm>,
) -> Result<Response, AppError> {
    let answer: String = form.credential.chars().take(64 * 1024).collect();
    match state
        .account()
        .finish_passkey(&me.user, &me.key, &form.name, &answer, ip)
        .await?
    {
        Ok(codes) if codes.is_empty() => {
            Ok(Redirect::to("/account?passkey_added=1#second-factor").into_response())
        }
        Ok(codes) => Ok(codes_page(
            &state,
            &browser,
            &me,
            "Your passkey is added",
            &codes,
        )),
        Err(msg) => {
            super::account::render(
                &state,
                &browser,
                &me,
                None,
                &[],
                StatusCode::BAD_REQUEST,
                Some(&msg),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    name: String,
}

pub async fn rename_passkey(
    State(state): State<AppState>,
    PageUser(me): PageUser,
    Form(form): Form<RenameForm>,
) -> Result<Response, AppError> {
    if !state
        .account()
        .rename_passkey(&me.user, form.id, &form.name)
        .await?
    {
        return Err(AppError::BadRequest(
            "That passkey is not on your account. Reload the page and try again.",
        ));
    }
    Ok(Redirect::to("/account?passkey_renamed=1#second-factor").into_response())
}

#[derive(Deserialize)]
pub struct RemovePasskeyForm {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    password: String,
}

pub async fn remove_passkey(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<RemovePasskeyForm>,
) -> Result<Response, AppError> {
    let password = Password::parse(form.password).ok();
    match state
        .account()
        .remove_passkey(&me.user, form.id, password, ip)
        .await?
    {
        Ok(true) => Ok(Redirect::to("/account?passkey_removed=1#second-factor").into_response()),
        Ok(false) => Err(AppError::BadRequest(
            "That passkey is not on your account. Reload the page and try again.",
        )),
        Err(problem) => refused(&state, &browser, &me, problem).await,
    }
}
