//! `POST /logout`: ends the session on the server, not only in the browser
//! (SPEC §4), and gives the browser a fresh CSRF secret.

use crate::app::AppState;
use crate::crypto::random_token;
use crate::domain::session::SessionToken;
use crate::http::cookies::{self, Browser};
use crate::http::error::AppError;
use crate::http::extract::Form;
use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LogoutForm {}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    jar: CookieJar,
    Form(LogoutForm {}): Form<LogoutForm>,
) -> Result<Response, AppError> {
    if let Some(token) = jar
        .get(cookies::session_name(&state))
        .and_then(|c| SessionToken::from_cookie(c.value()))
    {
        state.account().logout(token.key()).await?;
    }
    let jar = jar
        .add(cookies::session_removal(&state, &browser))
        .add(cookies::csrf(random_token::<32>(), &state));
    Ok((jar, Redirect::to("/login?logged_out=1")).into_response())
}
