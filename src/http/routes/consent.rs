//! `GET /consent`, `POST /consent`: a logged-in user accepts the current
//! Terms and Privacy Policy (first time for CLI-made accounts, again after
//! the admin changed one). `PageUser` sends users here until they do.

use crate::app::AppState;
use crate::http::cookies::Browser;
use crate::http::error::AppError;
use crate::http::extract::{Form, Query, SessionUser};
use crate::http::pages::consent;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ConsentQuery {
    rd: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    SessionUser(me): SessionUser,
    Query(q): Query<ConsentQuery>,
) -> Response {
    let rd = q.rd.as_deref().and_then(|r| state.return_to(r));
    if me.has_current_consent(&state) {
        return Redirect::to(rd.as_ref().map_or("/", |u| u.as_str())).into_response();
    }
    let csrf = browser.csrf_token(&state);
    let target = rd.clone();
    let rd = rd.map(String::from);
    let response = consent::page(
        &csrf,
        &state.documents,
        me.user.consent.is_some(),
        None,
        rd.as_deref(),
    )
    .into_response();
    let response = with_form_target(response, target.as_ref());
    crate::http::routes::oidc::allow_form_targets(&state, response, target.as_ref()).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    agree: Option<String>,
    #[serde(default)]
    rd: String,
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
        let rd = state.return_to(&form.rd);
        let page = consent::page(
            &csrf,
            &state.documents,
            me.user.consent.is_some(),
            Some(msg),
            rd.as_ref().map(|u| u.as_str()),
        );
        let response =
            with_form_target((StatusCode::BAD_REQUEST, page).into_response(), rd.as_ref());
        return Ok(
            crate::http::routes::oidc::allow_form_targets(&state, response, rd.as_ref()).await,
        );
    }
    let consent = state.documents.consent(state.clock.now());
    state.store.set_consent(me.user.id, consent).await?;
    let rd = state.return_to(&form.rd);
    Ok(Redirect::to(rd.as_ref().map_or("/", |u| u.as_str())).into_response())
}

/// The page's form redirects to `rd` once sent: the CSP must let it.
fn with_form_target(mut response: Response, rd: Option<&url::Url>) -> Response {
    if let Some(to) = rd {
        response.headers_mut().insert(
            axum::http::header::CONTENT_SECURITY_POLICY,
            crate::http::csp_with_form_target(to),
        );
    }
    response
}
