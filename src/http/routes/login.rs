//! `GET /login` and `POST /login`: the flow of SPEC §4.
//!
//! A try goes: CSRF (in `Form`) -> endpoint (elsewhere? send the browser
//! there) -> parse ID and password -> per-client limit -> the ID's lock
//! (refused before any hashing) -> look-up -> one bcrypt on the pool,
//! against the user's hash or, for an unknown ID, a throw-away hash of
//! the same cost -> success: new session in one transaction; failure:
//! count it (the same for unknown IDs) and answer with the same words.

use crate::app::AppState;
use crate::auth::lockout::{AfterFailure, Gate};
use crate::auth::pool::Busy;
use crate::auth::random_token;
use crate::auth::session::{Session, SessionToken};
use crate::clock::Timestamp;
use crate::domain::{LoginId, LoginRecord, Password, UserStatus};
use crate::error::{AppError, retry_after_secs};
use crate::http::cookies::{self, Browser};
use crate::http::extract::{ClientIp, Form, MaybeUser, Query, user_agent};
use crate::http::pages::login::{self, LoginView, Notice};
use crate::http::pages::recovery;
use crate::mail::requests::MailRequest;
use crate::metrics::LoginOutcome;
use crate::store::{AuditEvent, AuditKind, CompletedLogin, LoginAttempt, lockout_keys_of};
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
    signed_up: Option<String>,
    reset: Option<String>,
    verified: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Query(q): Query<LoginQuery>,
) -> Response {
    if me.is_some() {
        return Redirect::to("/").into_response();
    }
    let notice = if q.reset.is_some() {
        Some(Notice::Info("Your password was changed, and every session of your account was ended. Log in with the new password.".into()))
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
    render(&state, &browser, "", notice, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    endpoint: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    if let Some(elsewhere) = other_endpoint(&state, &form.endpoint) {
        return match elsewhere {
            Ok(url) => Ok(Redirect::to(url.as_str()).into_response()),
            Err(msg) => Ok(render(
                &state,
                &browser,
                &form.id,
                Some(Notice::Error(msg.into())),
                StatusCode::BAD_REQUEST,
            )),
        };
    }
    let bad = |msg: &str| {
        render(
            &state,
            &browser,
            &form.id,
            Some(Notice::Error(msg.into())),
            StatusCode::BAD_REQUEST,
        )
    };
    let id = match LoginId::parse(&form.id) {
        Ok(id) => id,
        Err(msg) => return Ok(bad(msg)),
    };
    let password = match Password::parse(form.password) {
        Ok(p) => p,
        Err(msg) => return Ok(bad(msg)),
    };
    state
        .limiter
        .check(ip)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })?;

    let policy = state.config.lockout;
    let key = id.lockout_key();
    let now = state.clock.now();
    if let Gate::Locked { until } = policy.gate(&state.store.lockout(&key)?, now) {
        refused_by_lock(&state, &id, ip, now).await?;
        return Ok(locked(&state, &browser, &form.id, now, until));
    }

    let user = state.store.user_by_login_id(&id)?;
    let known = user.as_ref().map(|u| u.id);
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state
        .passwords
        .verify(&password, stored)
        .await
        .map_err(|Busy| {
            state.metrics.login(LoginOutcome::Busy);
            AppError::Busy
        })?;

    match user {
        Some(user) if matches => {
            // Failures hashed alongside this try may have set the lock
            // meanwhile: a locked ID is refused even with the right password.
            if let Gate::Locked { until } = policy.gate(&state.store.lockout(&key)?, now) {
                refused_by_lock(&state, &id, ip, now).await?;
                return Ok(locked(&state, &browser, &form.id, now, until));
            }
            if user.status != UserStatus::Active {
                // Said only to someone who knew the password: reveals
                // nothing to a guesser (SPEC §3).
                if user.status == UserStatus::PendingVerification {
                    let page =
                        recovery::unverified(&browser.csrf_token(&state), user.email.as_str());
                    return Ok((StatusCode::FORBIDDEN, page).into_response());
                }
                let msg = "This account is disabled. Contact your administrator.";
                return Ok(render(
                    &state,
                    &browser,
                    &form.id,
                    Some(Notice::Error(msg.into())),
                    StatusCode::FORBIDDEN,
                ));
            }
            let new_password_hash = state
                .passwords
                .upgrade(&password, &user.password_hash)
                .await
                .map_err(|Busy| AppError::Busy)?;
            let token = SessionToken::generate();
            let replaces = jar
                .get(cookies::SESSION)
                .and_then(|c| SessionToken::from_cookie(c.value()))
                .map(|t| t.key());
            let mut reset_lockouts = lockout_keys_of(&user);
            if !reset_lockouts.contains(&key) {
                reset_lockouts.push(key);
            }
            let login = CompletedLogin {
                user: user.id,
                key: token.key(),
                session: Session {
                    user: user.id,
                    created_at: now,
                    last_seen: now,
                    ip: ip.to_string(),
                    user_agent: user_agent(&headers),
                },
                replaces,
                reset_lockouts,
                login: LoginRecord {
                    at: now,
                    ip: ip.to_string(),
                },
                new_password_hash,
                audit: AuditEvent::new(now, AuditKind::LoginOk, "self")
                    .user(user.id)
                    .ip(ip),
            };
            state.blocking(move |s| s.complete_login(login)).await?;
            if let Some(old) = replaces {
                state.sessions.forget(&old);
            }
            tracing::info!(user = %user.id, %ip, "login succeeded");
            state.metrics.login(LoginOutcome::Ok);
            // A new session and a new CSRF secret at every login.
            let jar = jar
                .add(cookies::session(token.to_cookie(), &state))
                .add(cookies::csrf(random_token::<32>(), &state));
            Ok((jar, Redirect::to("/")).into_response())
        }
        _ => {
            // A known account keeps the failure in its history (in the
            // same transaction: unknown IDs cost the same one write).
            let attempt = known.map(|u| {
                (
                    u,
                    LoginAttempt {
                        at: now,
                        ip: ip.to_string(),
                        ok: false,
                    },
                )
            });
            let typed_for_audit = id.to_string();
            let outcome = state
                .blocking(move |s| {
                    let mut outcome = AfterFailure::Counted { failures: 0 };
                    s.update_lockout(
                        &key,
                        &mut |current| {
                            let (next, o) = policy.after_failure(&current, now);
                            outcome = o;
                            let mut events = vec![
                                AuditEvent::new(now, AuditKind::LoginFailed, "anonymous")
                                    .maybe_user(known)
                                    .ip(ip),
                            ];
                            if let AfterFailure::NowLocked { until } = o {
                                events.push(
                                    AuditEvent::new(now, AuditKind::LockSet, "system")
                                        .maybe_user(known)
                                        .subject(typed_for_audit.clone())
                                        .ip(ip)
                                        .detail(format!("until {until}")),
                                );
                            }
                            (next, events)
                        },
                        attempt,
                    )?;
                    Ok(outcome)
                })
                .await?;
            tracing::info!(%ip, "login failed");
            state.metrics.login(LoginOutcome::Failed);
            let typed = id.to_string();
            match outcome {
                AfterFailure::NowLocked { until } => {
                    state.metrics.lock_set();
                    // The admin needs the ID to lift the lock (`user unlock`).
                    tracing::warn!(id = %typed, %ip, until = %until, "an ID was locked after repeated failed logins");
                    // The owner of a real account is told, once (off the
                    // request path: an unknown ID answers in the same time).
                    if let Some(user) = known {
                        state.mail_requests.submit(MailRequest::LockNotice {
                            user,
                            ip: ip.to_string(),
                            until,
                        });
                    }
                    Ok(locked(&state, &browser, &form.id, now, until))
                }
                AfterFailure::StillLocked { until } => {
                    Ok(locked(&state, &browser, &form.id, now, until))
                }
                AfterFailure::Counted { .. } => Ok(render(
                    &state,
                    &browser,
                    &form.id,
                    Some(Notice::Error(INCORRECT.into())),
                    StatusCode::UNAUTHORIZED,
                )),
            }
        }
    }
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

/// Records a try refused by a lock (the ID is named: it is locked, so the
/// admin may need it; the account too when there is one).
async fn refused_by_lock(
    state: &AppState,
    id: &LoginId,
    ip: std::net::IpAddr,
    now: Timestamp,
) -> Result<(), AppError> {
    let user = state.store.user_by_login_id(id)?.map(|u| u.id);
    state.metrics.login(LoginOutcome::RefusedLocked);
    let event = AuditEvent::new(now, AuditKind::LoginRefusedLocked, "anonymous")
        .maybe_user(user)
        .subject(id.to_string())
        .ip(ip);
    state.blocking(move |s| s.audit(vec![event])).await
}

fn locked(
    state: &AppState,
    browser: &Browser,
    id: &str,
    now: Timestamp,
    until: Timestamp,
) -> Response {
    let wait = now.until(until);
    let minutes = retry_after_secs(wait).div_ceil(60);
    let mut response = render(
        state,
        browser,
        id,
        Some(Notice::Locked { until, minutes }),
        StatusCode::TOO_MANY_REQUESTS,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    response
}

fn render(
    state: &AppState,
    browser: &Browser,
    id: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let csrf = browser.csrf_token(state);
    let view = LoginView {
        csrf: &csrf,
        id,
        endpoint: state.base_url.as_str(),
        endpoint_editable: state.config.endpoint_editable,
        signup_open: state.config.signup != crate::config::SignupMode::Closed,
        password_reset: state.config.password_reset,
        notice,
    };
    (status, login::page(&view)).into_response()
}
