//! `/account`: the profile, a new password (the current one first), the
//! user's sessions with "End", and the recent login history.

use crate::app::AppState;
use crate::crypto::random_token;
use crate::domain::session::SessionKey;
use crate::domain::{NewPassword, Password};
use crate::http::cookies::{self, Browser};
use crate::http::error::{AppError, retry_after_secs};
use crate::http::extract::{Authenticated, ClientIp, Form, PageUser, Query};
use crate::http::pages::account::{self, AccountView, SessionRow};
use crate::http::pages::layout::Nav;
use crate::services::account::{Current, PasswordChange};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct AccountQuery {
    changed: Option<String>,
    ended: Option<String>,
    revoked: Option<String>,
    factor_removed: Option<String>,
    passkey_added: Option<String>,
    passkey_renamed: Option<String>,
    passkey_removed: Option<String>,
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
    } else if q.revoked.is_some() {
        Some("The app's access was revoked: it must ask you again before it can use your account.")
    } else if q.passkey_added.is_some() {
        Some("Your passkey is added: use it to log in, with or without your password.")
    } else if q.passkey_renamed.is_some() {
        Some("The passkey's name was changed.")
    } else if q.passkey_removed.is_some() {
        Some("The passkey was removed: it logs in no more.")
    } else if q.factor_removed.is_some() {
        Some("The authenticator app was removed: it logs in no more.")
    } else {
        None
    };
    render(&state, &browser, &me, notice, &[], StatusCode::OK, None).await
}

fn hex(key: &SessionKey) -> String {
    crate::crypto::hex(&key.0)
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

pub async fn render(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    notice: Option<&str>,
    password_errors: &[String],
    status: StatusCode,
    factor_error: Option<&str>,
) -> Result<Response, AppError> {
    let factors = state.account().factors(me.user.id).await?;
    let passkeys = state.account().passkeys(me.user.id).await?;
    let overview = state.account().overview(me.user.id).await?;
    let rows: Vec<_> = overview
        .sessions
        .iter()
        .map(|(key, session)| SessionRow {
            session,
            id: hex(key),
            current: *key == me.key,
        })
        .collect();
    let history = overview.history;
    let apps = state.account().apps(me.user.id).await?;
    let csrf = browser.csrf_token(state);
    let view = AccountView {
        user: &me.user,
        csrf: &csrf,
        sessions: &rows,
        history: &history,
        apps: &apps,
        policy: state.config.password_policy,
        notice,
        password_errors,
        factors: &factors,
        passkeys: &passkeys,
        passkeys_available: state.passkeys.available(),
        factor_error,
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
    let new = new.filter(|_| errors.is_empty());
    let account = state.account();
    let change = account.change_password(&me.user, me.key, current, new, ip);
    let status = match change.await? {
        PasswordChange::Changed { token, .. } => {
            // The session goes on under a new token (ASVS 7.2.4).
            let jar = CookieJar::new().add(cookies::session(token.to_cookie(), &state, &browser));
            return Ok((jar, Redirect::to("/account?changed=1")).into_response());
        }
        PasswordChange::Busy => return Err(AppError::Busy),
        PasswordChange::TooManyTries { wait } => {
            errors = vec![format!(
                "Too many tries to change the password. Wait {} seconds and try again.",
                retry_after_secs(wait)
            )];
            StatusCode::TOO_MANY_REQUESTS
        }
        PasswordChange::Refused { current } => {
            match current {
                Current::Missing => errors.insert(0, "Enter your current password.".into()),
                Current::Wrong => errors.insert(0, "Your current password is not right.".into()),
                Current::Right => {}
            }
            StatusCode::BAD_REQUEST
        }
    };
    render(&state, &browser, &me, None, &errors, status, None).await
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
    if !state
        .account()
        .end_session(me.user.id, me.key, key, ip)
        .await?
    {
        return Err(AppError::BadRequest(
            "That session is not known. Reload the page and try again.",
        ));
    }
    Ok(Redirect::to("/account?ended=1").into_response())
}

#[derive(Deserialize)]
pub struct RevokeAppForm {
    #[serde(default)]
    client: String,
}

/// `POST /account/apps/revoke`: take back an app's access (OpenID
/// Connect): its consent and its tokens.
pub async fn revoke_app(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(form): Form<RevokeAppForm>,
) -> Result<Response, AppError> {
    if !state
        .account()
        .revoke_app(me.user.id, &form.client, ip)
        .await?
    {
        return Err(AppError::BadRequest(
            "That app has no access to your account. Reload the page and try again.",
        ));
    }
    Ok(Redirect::to("/account?revoked=1").into_response())
}

#[derive(Deserialize)]
pub struct EverywhereForm {}

/// `POST /account/sessions/end-all`: "Log out everywhere", this browser
/// too.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    ClientIp(ip): ClientIp,
    PageUser(me): PageUser,
    Form(EverywhereForm {}): Form<EverywhereForm>,
) -> Result<Response, AppError> {
    state.account().logout_everywhere(me.user.id, ip).await?;
    let jar = CookieJar::new()
        .add(cookies::session_removal(&state, &browser))
        .add(cookies::csrf(random_token::<32>(), &state));
    Ok((jar, Redirect::to("/login?everywhere=1")).into_response())
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
