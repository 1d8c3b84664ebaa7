//! `GET /signup` and `POST /signup` (SPEC §3).
//!
//! A signup goes: mode (closed: 403) -> CSRF (in `Form`) -> per-client
//! limit -> every field parsed, all problems collected and shown next to
//! their fields -> `services::signup` -> the login page, "check your
//! email", or the form with the problem next to its field.

use crate::app::AppState;
use crate::config::SignupMode;
use crate::domain::{EmailAddress, InviteToken, NewPassword, UserStatus, Username};
use crate::http::cookies::Browser;
use crate::http::error::AppError;
use crate::http::extract::{ClientIp, Form, Query};
use crate::http::pages::recovery;
use crate::http::pages::signup::{self, FieldErrors, SignupValues, SignupView};
use crate::services::signup::{Outcome, SignupRequest};
use crate::store::Unique;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SignupQuery {
    token: Option<String>,
    rd: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    Query(q): Query<SignupQuery>,
) -> Response {
    if state.config.signup == SignupMode::Closed {
        return closed();
    }
    let values = SignupValues {
        token: q.token.unwrap_or_default(),
        rd: checked_rd(&state, q.rd.as_deref().unwrap_or_default()),
        ..Default::default()
    };
    render(
        &state,
        &browser,
        &values,
        &FieldErrors::default(),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    token: String,
    agree: Option<String>,
    #[serde(default)]
    rd: String,
}

/// A return address that may be used, as text (else empty).
fn checked_rd(state: &AppState, raw: &str) -> String {
    state.return_to(raw).map(String::from).unwrap_or_default()
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    Form(form): Form<SignupForm>,
) -> Result<Response, AppError> {
    if state.config.signup == SignupMode::Closed {
        return Ok(closed());
    }
    state
        .signup_limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;
    state
        .signup_global_limiter
        .check(())
        .map_err(|retry_after| AppError::SignupsPaused { retry_after })?;

    let values = SignupValues {
        email: form.email.clone(),
        username: form.username.clone(),
        token: form.token.clone(),
        rd: checked_rd(&state, &form.rd),
    };
    let mut errors = FieldErrors::default();
    let Some(request) = parse(&state, form, ip, &mut errors) else {
        return Ok(render(
            &state,
            &browser,
            &values,
            &errors,
            StatusCode::BAD_REQUEST,
        ));
    };
    let status = match state.signup().sign_up(request).await? {
        Outcome::Created(user) if user.status == UserStatus::PendingVerification => {
            let csrf = browser.csrf_token(&state);
            return Ok(recovery::check_email(&csrf, user.email.as_str()).into_response());
        }
        Outcome::Created(_) => {
            let mut to = "/login?signed_up=1".to_string();
            if !values.rd.is_empty() {
                to.push_str("&rd=");
                to.extend(url::form_urlencoded::byte_serialize(values.rd.as_bytes()));
            }
            return Ok(Redirect::to(&to).into_response());
        }
        Outcome::Busy => return Err(AppError::Busy),
        Outcome::Taken(Unique::Email) => {
            errors.email = Some("An account with this email address already exists. Log in instead, or use another address.".into());
            StatusCode::CONFLICT
        }
        Outcome::Taken(Unique::Username) => {
            errors.username = Some(
                "This username is taken (ignoring upper and lower case). Choose another.".into(),
            );
            StatusCode::CONFLICT
        }
        Outcome::Invitation(problem) => {
            errors.token = Some(problem.to_string());
            StatusCode::FORBIDDEN
        }
    };
    Ok(render(&state, &browser, &values, &errors, status))
}

/// Every field parsed; all problems collected into `errors`, to be shown
/// next to their fields.
fn parse(
    state: &AppState,
    form: SignupForm,
    ip: std::net::IpAddr,
    errors: &mut FieldErrors,
) -> Option<SignupRequest> {
    let email = EmailAddress::parse(&form.email)
        .map_err(|m| errors.email = Some(m.into()))
        .ok();
    let username = Username::parse(&form.username)
        .map_err(|m| errors.username = Some(m.into()))
        .ok();
    let invitation = if form.token.trim().is_empty() {
        if state.config.signup == SignupMode::Invite {
            errors.token = Some(
                "Enter your invitation token: it is in the invitation link you were sent.".into(),
            );
        }
        None
    } else {
        InviteToken::parse(&form.token)
            .map_err(|p| errors.token = Some(p.to_string()))
            .ok()
    };
    let password = NewPassword::parse(
        state.config.password_policy,
        &state.common_passwords,
        form.password.clone(),
        &[form.email.trim(), form.username.trim()],
    )
    .map_err(|problems| errors.password = problems.iter().map(ToString::to_string).collect())
    .ok();
    if form.password != form.password_confirm {
        errors.confirm = Some("The two passwords differ. Type the same password twice.".into());
    }
    if form.agree.is_none() {
        errors.agree =
            Some("Read and accept the Terms of Service and the Privacy Policy to sign up.".into());
    }
    if errors.any() {
        return None;
    }
    Some(SignupRequest {
        email: email?,
        username: username?,
        password: password?,
        invitation,
        ip,
    })
}

fn closed() -> Response {
    (StatusCode::FORBIDDEN, signup::closed()).into_response()
}

fn render(
    state: &AppState,
    browser: &Browser,
    values: &SignupValues,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let csrf = browser.csrf_token(state);
    let invite_mode = state.config.signup == SignupMode::Invite;
    let view = SignupView {
        csrf: &csrf,
        values,
        errors,
        show_token: invite_mode || !values.token.is_empty(),
        token_required: invite_mode,
        policy: state.config.password_policy,
        documents: &state.documents,
    };
    (status, signup::page(&view)).into_response()
}
