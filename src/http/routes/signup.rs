//! `GET /signup` and `POST /signup` (SPEC §3).
//!
//! A signup goes: mode (closed: 403) -> CSRF (in `Form`) -> per-client
//! limit -> every field parsed, all problems collected and shown next to
//! their fields -> a read-only look at the invitation (a bad one costs no
//! hashing) -> one bcrypt on the pool -> one transaction that checks
//! and spends the invitation (if any), refuses taken names and creates
//! the account with its consent -> the login page.

use crate::app::AppState;
use crate::auth::pool::Busy;
use crate::config::SignupMode;
use crate::domain::{
    EmailAddress, InviteProblem, InviteToken, NewPassword, Role, UserStatus, Username,
};
use crate::error::AppError;
use crate::http::cookies::Browser;
use crate::http::extract::{ClientIp, Form, Query};
use crate::http::pages::recovery;
use crate::http::pages::signup::{self, FieldErrors, SignupValues, SignupView};
use crate::mail::requests::MailRequest;
use crate::store::{AuditEvent, AuditKind, CreateUserError, NewUser, Redemption};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SignupQuery {
    token: Option<String>,
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

    let values = SignupValues {
        email: form.email.clone(),
        username: form.username.clone(),
        token: form.token.clone(),
    };
    let mut errors = FieldErrors::default();
    let email = EmailAddress::parse(&form.email)
        .map_err(|m| errors.email = Some(m.into()))
        .ok();
    let username = Username::parse(&form.username)
        .map_err(|m| errors.username = Some(m.into()))
        .ok();
    let token = if form.token.trim().is_empty() {
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
    let (Some(email), Some(username), Some(password), false) =
        (email, username, password, errors.any())
    else {
        return Ok(render(
            &state,
            &browser,
            &values,
            &errors,
            StatusCode::BAD_REQUEST,
        ));
    };

    let now = state.clock.now();
    // A read-only look at the invitation first, so that a bad token costs
    // no bcrypt; the write transaction below checks it again, atomically.
    if let Some(t) = &token {
        let problem = match state.store.invite_by_token(&t.hash())? {
            None => Some(InviteProblem::Unknown),
            Some(invite) => invite.check(now, &email).err(),
        };
        if let Some(problem) = problem {
            errors.token = Some(problem.to_string());
            return Ok(render(
                &state,
                &browser,
                &values,
                &errors,
                StatusCode::FORBIDDEN,
            ));
        }
    }
    let password_hash = state
        .passwords
        .hash(&password)
        .await
        .map_err(|Busy| AppError::Busy)?;
    let new = NewUser {
        email,
        username,
        password_hash,
        role: Role::User,
        status: if state.config.require_verification {
            UserStatus::PendingVerification
        } else {
            UserStatus::Active
        },
        created_at: now,
        consent: Some(state.documents.consent(now)),
    };
    let redeem = token.map(|t| Redemption {
        token_hash: t.hash(),
        at: now,
    });
    let created = state
        .blocking(move |s| Ok(s.create_user(new, redeem)))
        .await?;
    match created {
        Ok(user) => {
            tracing::info!(user = %user.id, role = %user.role, %ip, "signed up");
            state.metrics.signup();
            let event = AuditEvent::new(now, AuditKind::Signup, "self")
                .user(user.id)
                .ip(ip)
                .detail(format!("role {}", user.role));
            state.audit(event).await;
            if user.status == UserStatus::PendingVerification {
                let shown = user.email.to_string();
                state
                    .mail_requests
                    .submit(MailRequest::Verify { email: user.email });
                return Ok(
                    recovery::check_email(&browser.csrf_token(&state), &shown).into_response()
                );
            }
            Ok(Redirect::to("/login?signed_up=1").into_response())
        }
        Err(CreateUserError::EmailTaken) => {
            errors.email = Some("An account with this email address already exists. Log in instead, or use another address.".into());
            Ok(render(
                &state,
                &browser,
                &values,
                &errors,
                StatusCode::CONFLICT,
            ))
        }
        Err(CreateUserError::UsernameTaken) => {
            errors.username = Some(
                "This username is taken (ignoring upper and lower case). Choose another.".into(),
            );
            Ok(render(
                &state,
                &browser,
                &values,
                &errors,
                StatusCode::CONFLICT,
            ))
        }
        Err(CreateUserError::Invite(problem)) => {
            errors.token = Some(problem.to_string());
            Ok(render(
                &state,
                &browser,
                &values,
                &errors,
                StatusCode::FORBIDDEN,
            ))
        }
        Err(CreateUserError::Other(e)) => Err(AppError::Internal(e)),
    }
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
