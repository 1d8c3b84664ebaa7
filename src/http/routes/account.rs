//! `/account`: the profile, a new password (the current one first), the
//! user's sessions with "End", and the recent login history.

use crate::app::AppState;
use crate::auth::pool::Busy;
use crate::auth::session::SessionKey;
use crate::domain::{NewPassword, Password};
use crate::error::{AppError, retry_after_secs};
use crate::http::cookies::Browser;
use crate::http::extract::{Authenticated, ClientIp, Form, PageUser, Query};
use crate::http::pages::account::{self, AccountView, SessionRow};
use crate::http::pages::layout::Nav;
use crate::mail::messages;
use crate::store::{AuditEvent, AuditKind};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct AccountQuery {
    changed: Option<String>,
    ended: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    PageUser(me): PageUser,
    Query(q): Query<AccountQuery>,
) -> Result<Response, AppError> {
    let notice = if q.changed.is_some() {
        Some("Your password was changed, and your other sessions were ended.")
    } else if q.ended.is_some() {
        Some("That session was ended.")
    } else {
        None
    };
    Ok(render(&state, &browser, &me, notice, &[], StatusCode::OK)?)
}

fn hex(key: &SessionKey) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<SessionKey> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(SessionKey(out))
}

fn render(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    notice: Option<&str>,
    password_errors: &[String],
    status: StatusCode,
) -> anyhow::Result<Response> {
    let mut sessions = state.store.sessions_of(me.user.id)?;
    sessions.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
    let rows: Vec<_> = sessions
        .iter()
        .map(|(key, session)| SessionRow {
            session,
            id: hex(key),
            current: *key == me.key,
        })
        .collect();
    let history = state.store.login_history(me.user.id)?;
    let csrf = browser.csrf_token(state);
    let view = AccountView {
        user: &me.user,
        csrf: &csrf,
        sessions: &rows,
        history: &history,
        policy: state.config.password_policy,
        notice,
        password_errors,
    };
    let page = super::shell_page(
        state,
        browser,
        me,
        Nav::Account,
        "Account",
        account::content(&view),
    );
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    // A stolen session must not become a way to guess the password.
    if let Err(wait) = state.password_change_limiter.check(me.user.id) {
        let msg = format!(
            "Too many tries to change the password. Wait {} seconds and try again.",
            retry_after_secs(wait)
        );
        return Ok(render(
            &state,
            &browser,
            &me,
            None,
            &[msg],
            StatusCode::TOO_MANY_REQUESTS,
        )?);
    }
    let mut errors = Vec::new();
    let current = Password::parse(form.current).ok();
    let new = NewPassword::parse(
        state.config.password_policy,
        &state.common_passwords,
        form.password.clone(),
        &[me.user.email.as_str(), me.user.username.as_str()],
    )
    .map_err(|problems| errors.extend(problems.iter().map(ToString::to_string)))
    .ok();
    if form.password != form.password_confirm {
        errors.push("The two new passwords differ. Type the same password twice.".into());
    }
    let Some(current) = current else {
        errors.insert(0, "Enter your current password.".into());
        return Ok(render(
            &state,
            &browser,
            &me,
            None,
            &errors,
            StatusCode::BAD_REQUEST,
        )?);
    };
    let right = state
        .passwords
        .verify(&current, Some(me.user.password_hash.clone()))
        .await
        .map_err(|Busy| AppError::Busy)?;
    if !right {
        errors.insert(0, "Your current password is not right.".into());
    }
    let Some(new) = new.filter(|_| errors.is_empty()) else {
        return Ok(render(
            &state,
            &browser,
            &me,
            None,
            &errors,
            StatusCode::BAD_REQUEST,
        )?);
    };
    let hash = state
        .passwords
        .hash(&new)
        .await
        .map_err(|Busy| AppError::Busy)?;
    let now = state.clock.now();
    let notice = messages::password_changed(
        &me.user.email,
        me.user.username.as_str(),
        now,
        &state.link("login", "from", "mail"),
    );
    let (user, keep) = (me.user.id, me.key);
    let ended = state
        .blocking(move |s| s.change_password(user, hash, keep, notice, now))
        .await?;
    state.outbox.wake();
    tracing::info!(user = %me.user.id, %ip, sessions_ended = ended, "password changed");
    state
        .audit(
            AuditEvent::new(now, AuditKind::PasswordChanged, "self")
                .user(me.user.id)
                .ip(ip),
        )
        .await;
    Ok(Redirect::to("/account?changed=1").into_response())
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    session: String,
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<RevokeForm>,
) -> Result<Response, AppError> {
    let key = parse_hex(&form.session).ok_or(AppError::BadRequest(
        "That session is not known. Reload the page and try again.",
    ))?;
    // Only one's own sessions, and not the one in use (that is Log Out).
    let owned = state
        .store
        .session(&key)?
        .is_some_and(|s| s.user == me.user.id);
    if !owned || key == me.key {
        return Err(AppError::BadRequest(
            "That session is not known. Reload the page and try again.",
        ));
    }
    state.sessions.forget(&key);
    state.blocking(move |s| s.delete_session(&key)).await?;
    state
        .audit(
            AuditEvent::new(state.clock.now(), AuditKind::SessionRevoked, "self")
                .user(me.user.id)
                .ip(ip),
        )
        .await;
    Ok(Redirect::to("/account?ended=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_through_hex() {
        let key = SessionKey([0xab; 32]);
        assert_eq!(parse_hex(&hex(&key)), Some(key));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }
}
