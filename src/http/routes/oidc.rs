//! The OpenID Connect provider's endpoints (docs/oidc.md): discovery,
//! JWKS, authorization (with the consent page), token, userinfo,
//! revocation and RP-initiated logout. Each parses what the app or the
//! browser sent, calls `services::oidc`, and answers as the RFCs say:
//! JSON with `Cache-Control: no-store` for apps, pages and redirects for
//! browsers.

use crate::app::AppState;
use crate::http::cookies::Browser;
use crate::http::error::AppError;
use crate::http::extract::{AppForm, Authenticated, Form, MaybeUser, Query};
use crate::http::pages;
use crate::services::oidc::{
    AUTHORIZE_PATH, Answer, AuthorizeError, AuthorizeParams, BasicCredentials, LogoutError,
    LogoutParams, Step, TokenError, TokenParams, Visitor,
};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use serde::Deserialize;
use url::Url;

/// JSON for apps: never cached (RFC 6749 §5.1), readable from any origin
/// (single-page apps; no cookie is read).
fn app_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// `OPTIONS` of the app endpoints: the CORS preflight of a single-page
/// app that sends `Authorization` (userinfo) or JSON-less forms.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(State(state): State<AppState>) -> Response {
    app_json(StatusCode::OK, state.oidc().discovery())
}

/// `GET /oidc/jwks`: the public keys; apps may cache them for minutes.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, AppError> {
    let set = state.oidc().jwks().await?;
    let mut response = app_json(StatusCode::OK, set);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response.headers_mut().remove(header::PRAGMA);
    Ok(response)
}

/// `GET /oidc/authorize`.
pub async fn authorize_get(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    authorize(&state, &browser, me.as_ref(), params).await
}

/// `POST /oidc/authorize`: the same request as a form (OIDC Core
/// §3.1.2.1), answered with a redirect to it as a GET: an app's page
/// posts it cross-site, where the browser leaves out the session cookie
/// (`SameSite=Lax`), and the GET carries it.
pub async fn authorize_post(
    State(state): State<AppState>,
    AppForm(params): AppForm<AuthorizeParams>,
) -> Response {
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    Redirect::to(&format!("{}{AUTHORIZE_PATH}?{query}", state.issuer)).into_response()
}

/// The address of this authorization request (to come back to after the
/// login or the Terms), without `prompt=login` once it has been honoured.
fn request_url(state: &AppState, params: &AuthorizeParams) -> String {
    format!(
        "{}{AUTHORIZE_PATH}?{}",
        state.issuer,
        params.query_without_login_prompt()
    )
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn authorize(
    state: &AppState,
    browser: &Browser,
    me: Option<&Authenticated>,
    params: AuthorizeParams,
) -> Response {
    let oidc = state.oidc();
    let checked = match oidc.check(&params).await {
        Ok(c) => c,
        Err(e) => return authorize_error(e),
    };
    let visitor = me.map(|a| visitor(state, a));
    let step = match oidc.decide(&checked, visitor, None).await {
        Ok(step) => step,
        Err(e) => return authorize_error(e),
    };
    match step {
        Step::Login { force } => {
            let mut to = format!("/login?rd={}", encode(&request_url(state, &params)));
            if force {
                to.push_str("&force=1");
            }
            if let Some(hint) = checked.login_hint.as_deref().filter(|h| h.len() <= 254) {
                to.push_str(&format!("&login_hint={}", encode(hint)));
            }
            Redirect::to(&to).into_response()
        }
        Step::Terms => Redirect::to(&format!(
            "/consent?rd={}",
            encode(&request_url(state, &params))
        ))
        .into_response(),
        Step::NoAccess { app } => no_access(state, browser, &app),
        Step::Consent { client, scopes } => {
            let csrf = browser.csrf_token(state);
            let user = &me.expect("consent is asked of a logged-in user").user;
            let page = pages::oidc::consent(&pages::oidc::ConsentView {
                csrf: &csrf,
                app: &client.name,
                scopes: &scopes,
                user,
                params: &params,
            });
            with_form_target(page.into_response(), Some(&checked.redirect_uri))
        }
        Step::Redirect(url) => Redirect::to(url.as_str()).into_response(),
    }
}

fn visitor<'a>(state: &AppState, a: &'a Authenticated) -> Visitor<'a> {
    Visitor {
        user: &a.user,
        logged_in_at: a.session.created_at,
        has_terms: a.has_current_consent(state),
    }
}

fn authorize_error(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => (
            StatusCode::BAD_REQUEST,
            pages::error::page("This app's login link is not valid", &message, None),
        )
            .into_response(),
        AuthorizeError::Redirect(url) => Redirect::to(url.as_str()).into_response(),
        AuthorizeError::Store(e) => AppError::from(e).into_response(),
    }
}

fn no_access(state: &AppState, browser: &Browser, app: &str) -> Response {
    let csrf = browser.csrf_token(state);
    (StatusCode::FORBIDDEN, pages::oidc::no_access(&csrf, app)).into_response()
}

/// The consent page's answer, with the request it answers.
#[derive(Deserialize)]
pub struct ConsentForm {
    answer: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// `POST /oidc/consent`: Allow or Deny. The request is checked again
/// from the start (the form could have been changed), with the session.
pub async fn consent(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Form(form): Form<ConsentForm>,
) -> Response {
    let answer = match form.answer.as_str() {
        "allow" => Answer::Allow,
        "deny" => Answer::Deny,
        _ => {
            return AppError::BadRequest(
                "The consent form was incomplete. Go back to the app and log in again.",
            )
            .into_response();
        }
    };
    let oidc = state.oidc();
    let checked = match oidc.check(&form.params).await {
        Ok(c) => c,
        Err(e) => return authorize_error(e),
    };
    let Some(me) = me else {
        // The session ended meanwhile: the login comes first again.
        return authorize(&state, &browser, None, form.params).await;
    };
    match oidc
        .decide(&checked, Some(visitor(&state, &me)), Some(answer))
        .await
    {
        Ok(Step::Redirect(url)) => Redirect::to(url.as_str()).into_response(),
        Ok(Step::NoAccess { app }) => no_access(&state, &browser, &app),
        // Terms or a fresh login (max_age) first: the request again.
        Ok(_) => authorize(&state, &browser, Some(&me), form.params).await,
        Err(e) => authorize_error(e),
    }
}

/// The form on a page redirects to `to` (an app) once sent: the CSP must
/// let it.
fn with_form_target(mut response: Response, to: Option<&str>) -> Response {
    if let Some(url) = to.and_then(|t| Url::parse(t).ok()) {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            crate::http::csp_with_form_target(&url),
        );
    }
    response
}

/// The app a return address (`rd`) leads to, when it is one of our
/// authorization requests for a registered client and redirect URI: the
/// login and Terms pages allow that app's origin in their CSP's
/// `form-action` (their form's redirects end there).
pub async fn app_behind(state: &AppState, rd: Option<&Url>) -> Option<Url> {
    let rd = rd?;
    let ours = format!("{}{AUTHORIZE_PATH}", state.issuer);
    let without_query = rd.as_str().split('?').next().unwrap_or_default();
    if without_query != ours {
        return None;
    }
    let params: AuthorizeParams =
        serde_urlencoded::from_str(rd.query().unwrap_or_default()).ok()?;
    let client = state
        .store
        .client(params.client_id.as_deref()?)
        .await
        .ok()??;
    let uri = params.redirect_uri?;
    client
        .allows_redirect(&uri)
        .then(|| Url::parse(&uri).ok())
        .flatten()
}

/// Sets the CSP of a page whose form leads on to `rd` and, behind it, to
/// an app.
pub async fn allow_form_targets(
    state: &AppState,
    mut response: Response,
    rd: Option<&Url>,
) -> Response {
    if let Some(app) = app_behind(state, rd).await {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            crate::http::csp_with_form_targets(&[rd.cloned().unwrap_or(app.clone()), app]),
        );
    }
    response
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: each
/// half form-urlencoded before base64). Err: a malformed header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = TokenError::InvalidClient("the Authorization header is not valid HTTP Basic");
    let text = value.to_str().map_err(|_| {
        TokenError::InvalidClient("the Authorization header is not valid HTTP Basic")
    })?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(TokenError::InvalidClient(
            "the Authorization header is not valid HTTP Basic",
        ))?;
    let Some((id, secret)) = decoded.split_once(':') else {
        return Err(bad);
    };
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some(BasicCredentials {
        id: unescape(id),
        secret: unescape(secret),
        raw_secret: secret.to_owned(),
    }))
}

/// An OAuth error as JSON (RFC 6749 §5.2); `invalid_client` as 401 with
/// a challenge.
fn token_error(e: TokenError) -> Response {
    match &e {
        TokenError::Store(cause) => {
            tracing::error!(error = ?cause, "the token endpoint could not reach the store");
        }
        TokenError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "the token endpoint failed");
        }
        _ => {}
    }
    let (code, description) = e.code();
    let status = match e {
        TokenError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        TokenError::Store(crate::store::StoreError::Unavailable(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        TokenError::Store(_) | TokenError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = app_json(
        status,
        serde_json::json!({"error": code, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gatehouse\""),
        );
    }
    response
}

/// `POST /oidc/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(params): AppForm<TokenParams>,
) -> Response {
    let basic = match basic_credentials(&headers) {
        Ok(b) => b,
        Err(e) => return token_error(e),
    };
    match state.oidc().token(params, basic).await {
        Ok(tokens) => app_json(
            StatusCode::OK,
            serde_json::to_value(tokens).unwrap_or_default(),
        ),
        Err(e) => token_error(e),
    }
}

#[derive(Deserialize, Default)]
pub struct RevokeParams {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /oidc/revoke` (RFC 7009): 200 whether or not the token existed.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(params): AppForm<RevokeParams>,
) -> Response {
    let oidc = state.oidc();
    let basic = match basic_credentials(&headers) {
        Ok(b) => b,
        Err(e) => return token_error(e),
    };
    let client = match oidc
        .client_of(
            basic,
            params.client_id.as_deref(),
            params.client_secret.as_deref(),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return token_error(e),
    };
    let Some(token) = params.token.filter(|t| !t.is_empty()) else {
        return token_error(TokenError::InvalidRequest("token is missing"));
    };
    match oidc.revoke(&client, &token).await {
        Ok(()) => app_json(StatusCode::OK, serde_json::json!({})),
        Err(e) => token_error(TokenError::Store(e)),
    }
}

#[derive(Deserialize, Default)]
pub struct UserinfoForm {
    access_token: Option<String>,
}

/// `GET /oidc/userinfo` (Bearer, RFC 6750 §2.1).
pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, &headers, None).await
}

/// `POST /oidc/userinfo`: Bearer, or `access_token` in the form (RFC
/// 6750 §2.2).
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(form): AppForm<UserinfoForm>,
) -> Response {
    userinfo(&state, &headers, form.access_token).await
}

async fn userinfo(state: &AppState, headers: &HeaderMap, in_body: Option<String>) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_owned())
        });
    let challenge = |status: StatusCode, error: &str, description: &str| {
        let mut response = app_json(
            status,
            serde_json::json!({"error": error, "error_description": description}),
        );
        let value = format!(
            "Bearer realm=\"gatehouse\", error=\"{error}\", error_description=\"{description}\""
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    };
    let token = match (bearer, in_body) {
        (Some(_), Some(_)) => {
            return challenge(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send the access token one way only",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            let mut response = app_json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "invalid_request", "error_description": "send an access token: Authorization: Bearer TOKEN"}),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse\""),
            );
            return response;
        }
    };
    match state.oidc().userinfo(&token).await {
        Ok(Some(claims)) => app_json(StatusCode::OK, claims),
        Ok(None) => challenge(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is not valid: unknown, expired or revoked",
        ),
        Err(e) => AppError::from(e).into_json(),
    }
}

/// `GET /oidc/logout` (RP-Initiated Logout 1.0 §2).
pub async fn logout_get(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Query(params): Query<LogoutParams>,
) -> Response {
    logout(&state, &browser, me, params, false).await
}

/// `POST /oidc/logout`: an app's logout request as a form
/// (RP-Initiated Logout §2), answered with a redirect to it as a GET, for
/// the same reason as the authorization request's.
pub async fn logout_post(
    State(state): State<AppState>,
    AppForm(params): AppForm<LogoutParams>,
) -> Response {
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    Redirect::to(&format!("{}/oidc/logout?{query}", state.issuer)).into_response()
}

#[derive(Deserialize)]
pub struct LogoutConfirm {
    #[serde(default)]
    confirm: Option<String>,
    #[serde(flatten)]
    params: LogoutParams,
}

/// `POST /oidc/logout/confirm`: the "Log out of gatehouse?" page's form
/// (CSRF-checked).
pub async fn logout_confirm(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    MaybeUser(me): MaybeUser,
    Form(form): Form<LogoutConfirm>,
) -> Response {
    let confirmed = form.confirm.is_some();
    logout(&state, &browser, me, form.params, confirmed).await
}

async fn logout(
    state: &AppState,
    browser: &Browser,
    me: Option<Authenticated>,
    params: LogoutParams,
    confirmed: bool,
) -> Response {
    let plan = match state.oidc().logout_plan(&params).await {
        Ok(plan) => plan,
        Err(LogoutError::Invalid(message)) => {
            return (
                StatusCode::BAD_REQUEST,
                pages::error::page("This logout link is not valid", message, None),
            )
                .into_response();
        }
        Err(LogoutError::Store(e)) => return AppError::from(e).into_response(),
    };
    let after = match &plan.redirect {
        Some(url) => Redirect::to(url.as_str()).into_response(),
        None => Redirect::to("/login?logged_out=1").into_response(),
    };
    let Some(me) = me else {
        // Nobody is logged in here: nothing to end.
        return after;
    };
    // The app's own ID token for this very account says it is the user's
    // wish; anything else is asked (a link on another site must not log
    // people out).
    let hinted = plan.hinted == Some(me.user.id);
    if !hinted && !confirmed {
        let csrf = browser.csrf_token(state);
        let page = pages::oidc::logout_confirm(&csrf, plan.app.as_deref(), &params);
        let target = plan.redirect.as_ref().map(|u| u.to_string());
        return with_form_target(page.into_response(), target.as_deref());
    }
    if let Err(e) = state.account().logout(me.key).await {
        return AppError::from(e).into_response();
    }
    let jar = axum_extra::extract::cookie::CookieJar::new()
        .add(crate::http::cookies::session_removal(state, browser))
        .add(crate::http::cookies::csrf(
            crate::crypto::random_token::<32>(),
            state,
        ));
    (jar, after).into_response()
}
