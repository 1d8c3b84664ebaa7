//! `GET /consent`, `POST /consent`: a logged-in user accepts the current
//! Terms and Privacy Policy (first time for CLI-made accounts, again after
//! the admin changed one). `PageUser` sends users here until they do.

use crate::app::AppState;
use crate::http::cookies::Browser;
use crate::http::error::AppError;
use crate::http::extract::{Form, SessionUser};
use crate::http::pages::consent;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    SessionUser(me): SessionUser,
) -> Response {
    if me.has_current_consent(&state) {
        return Redirect::to("/").into_response();
    }
    let csrf = browser.csrf_token(&state);
    consent::page(&csrf, &state.documents, me.user.consent.is_some(), None).into_response()
}

#[derive(Deserialize)]
pub struct ConsentForm {
    agree: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    SessionUser(me): SessionUser,
    Form(form): Form<ConsentForm>,
) -> Result<Response, AppError> {
    if form.agree.is_none() {
        let csrf = browser.csrf_token(&state);
        let msg =
            "Read and accept the Terms of Service and the Privacy Policy to continue, or log out.";
        let page = consent::page(
            &csrf,
            &state.documents,
            me.user.consent.is_some(),
            Some(msg),
        );
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let consent = state.documents.consent(state.clock.now());
    state.store.set_consent(me.user.id, consent).await?;
    Ok(Redirect::to("/").into_response())
}
