//! The HTTP surface: `router(state)` with its layers in a commented order,
//! the routes (one file per page under `routes/`), the maud views
//! (`pages/`) and the extractors that turn requests into domain values.

pub mod assets;
pub mod client;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod pages;
pub mod routes;
pub mod server;

use crate::app::AppState;
use crate::http::error::AppError;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Content Security Policy: our own scripts and styles only, no inline
/// script, never framed (clickjacking), forms post only to us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
                   form-action 'self'";

/// How a CSP names where `to` is: its origin for http(s); for an app's
/// own scheme (`app.immich:///oauth-callback`, whose origin is opaque)
/// the scheme (`app.immich:`).
fn csp_source(to: &url::Url) -> String {
    match to.scheme() {
        "http" | "https" => to.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    }
}

/// The Content Security Policy of a page whose form, once sent, redirects
/// to `to` (the login form returning to a protected app): browsers apply
/// `form-action` to the redirect's target too.
pub fn csp_with_form_target(to: &url::Url) -> HeaderValue {
    csp_with_form_targets(std::slice::from_ref(to))
}

/// The same for a form whose redirects lead through several origins
/// (the login page, then an app that sent the browser there).
pub fn csp_with_form_targets(to: &[url::Url]) -> HeaderValue {
    let mut sources: Vec<String> = to.iter().map(csp_source).collect();
    sources.dedup();
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", sources.join(" ")),
    );
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(CSP))
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(routes::summary::page))
        .route(
            "/login",
            get(routes::login::page).post(routes::login::submit),
        )
        .route("/logout", post(routes::logout::submit))
        .route(
            "/login/second-factor",
            get(routes::second_factor::verify_page).post(routes::second_factor::verify_submit),
        )
        .route(
            "/login/enrol",
            get(routes::second_factor::enrol_page).post(routes::second_factor::enrol_submit),
        )
        .route("/login/cancel", post(routes::second_factor::cancel))
        .route(
            "/login/second-factor/passkey",
            post(routes::second_factor::passkey_options),
        )
        .route("/login/passkey/start", post(routes::passkeys::start))
        .route("/login/passkey", post(routes::passkeys::submit))
        .route(
            "/account/passkeys/start",
            post(routes::factors::passkey_options),
        )
        .route("/account/passkeys/add", post(routes::factors::add_passkey))
        .route(
            "/account/passkeys/rename",
            post(routes::factors::rename_passkey),
        )
        .route(
            "/account/passkeys/remove",
            post(routes::factors::remove_passkey),
        )
        .route(
            "/signup",
            get(routes::signup::page).post(routes::signup::submit),
        )
        .route(
            "/consent",
            get(routes::consent::page).post(routes::consent::submit),
        )
        .route(
            "/forgot-password",
            get(routes::recovery::forgot_page).post(routes::recovery::forgot_submit),
        )
        .route(
            "/reset-password",
            get(routes::recovery::reset_page).post(routes::recovery::reset_submit),
        )
        .route(
            "/verify-email",
            get(routes::verify::page).post(routes::verify::submit),
        )
        .route("/verify-email/resend", post(routes::verify::resend))
        .route("/terms", get(routes::documents::terms))
        .route("/privacy", get(routes::documents::privacy))
        .route("/account", get(routes::account::page))
        .route("/account/password", post(routes::account::change_password))
        .route(
            "/account/sessions/revoke",
            post(routes::account::revoke_session),
        )
        .route(
            "/account/sessions/end-all",
            post(routes::account::logout_everywhere),
        )
        .route("/account/apps/revoke", post(routes::account::revoke_app))
        .route(
            "/account/2fa/app",
            get(routes::factors::app_page).post(routes::factors::start_app),
        )
        .route(
            "/account/2fa/app/confirm",
            post(routes::factors::confirm_app),
        )
        .route(
            "/account/2fa/recovery",
            post(routes::factors::new_recovery_codes),
        )
        .route("/account/2fa/remove", post(routes::factors::remove_app))
        // OpenID Connect (docs/oidc.md).
        .route(
            "/.well-known/openid-configuration",
            get(routes::oidc::discovery),
        )
        .route("/oidc/jwks", get(routes::oidc::jwks))
        .route(
            "/oidc/authorize",
            get(routes::oidc::authorize_get).post(routes::oidc::authorize_post),
        )
        .route("/oidc/consent", post(routes::oidc::consent))
        .route(
            "/oidc/token",
            post(routes::oidc::token).options(routes::oidc::preflight),
        )
        .route(
            "/oidc/userinfo",
            get(routes::oidc::userinfo_get)
                .post(routes::oidc::userinfo_post)
                .options(routes::oidc::preflight),
        )
        .route(
            "/oidc/revoke",
            post(routes::oidc::revoke).options(routes::oidc::preflight),
        )
        .route(
            "/oidc/logout",
            get(routes::oidc::logout_get).post(routes::oidc::logout_post),
        )
        .route("/oidc/logout/confirm", post(routes::oidc::logout_confirm))
        .route("/api/v1/summary", get(routes::summary::api))
        .route("/api/v1/session", get(routes::session::get))
        // Forward auth (any method: nginx's subrequest keeps the
        // original one).
        .route("/api/authz/auth-request", any(routes::authz::auth_request))
        .route("/api/authz/forward-auth", any(routes::authz::forward_auth))
        .route("/healthz", get(routes::health::healthz))
        .route("/assets/{*path}", get(crate::http::assets::serve))
        .fallback(not_found);

    // Layers run top to bottom on the way in (ServiceBuilder order):
    let layers = ServiceBuilder::new()
        // 2. The edge, in one middleware (each layer costs time on every
        //    request): latency by route for /metrics, refusal of
        //    cross-site state changes, the browser's cookies, security
        //    headers on every response (errors included).
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        // 3. A request that takes too long is cut off with 408.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ));

    let routes = routes.layer(layers);
    // 1. (outermost) Trace every request at DEBUG, when the log shows DEBUG
    //    (GATEHOUSE_LOG=debug): method and path (never the query, which
    //    carries reset and invitation tokens), status, latency. Left out
    //    otherwise: it costs ~10% of a session check (docs/performance.md).
    let routes = if tracing::enabled!(Level::DEBUG) {
        routes.layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG).latency_unit(LatencyUnit::Micros)),
        )
    } else {
        routes
    };
    routes.with_state(state)
}

/// The metrics listener's (`--metrics-listen`): `/metrics` alone, with the
/// same security headers.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::health::metrics))
        .fallback(not_found)
        .layer(middleware::map_response(
            |mut response: Response| async move {
                for (name, value) in security_headers(false) {
                    response.headers_mut().entry(name).or_insert(value);
                }
                response
            },
        ))
        .with_state(state)
}

/// Headers every response carries, unless the handler set its own.
fn security_headers(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut list = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Reset and invitation tokens travel in URLs: never send them to
        // another site. (Not "no-referrer": under it browsers send
        // `Origin: null` on our own form posts.)
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
        ),
        // Pages hold personal data: not for shared caches (assets set their own).
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    if https {
        // Browsers are to use nothing else for a year, on subdomains too
        // (RFC 6797; ASVS 3.4.1).
        list.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    list
}

async fn edge(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Clones of an Arc and of a standard method: no allocation per request.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let method = request.method().clone();
    let started = std::time::Instant::now();
    // A proxy's verify request carries the app's Host, Origin and
    // method: it is judged by its peer instead (routes::authz).
    let verify = request.uri().path().starts_with("/api/authz/");
    let refused = if verify {
        None
    } else {
        wrong_host(&state, &request).or_else(|| cross_origin_refusal(&state, &request))
    };
    let mut response = match refused {
        Some(refused) => refused,
        // A verify request reads only the session cookie (routes::authz):
        // no CSRF secret, no page.
        None if verify => next.run(request).await,
        None => cookies::with_browser(&state, request, next).await,
    };
    // A proxy reads a verify answer's status and Remote-* headers; only
    // its 403 page reaches a browser and needs the page headers.
    if !verify || response.status() == axum::http::StatusCode::FORBIDDEN {
        let headers = response.headers_mut();
        for (name, value) in security_headers(state.base_url.scheme() == "https") {
            if !headers.contains_key(&name) {
                headers.insert(name, value);
            }
        }
    } else {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    state
        .metrics
        .request(method.as_str(), route, started.elapsed());
    response
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Refuses a request for a host that is not ours with 421 (DNS rebinding:
/// a page of attacker.example whose name now resolves to an intranet
/// gatehouse sends `Host: attacker.example`). `/healthz` answers any host:
/// load balancers and container checks ask by address.
fn wrong_host(state: &AppState, request: &Request) -> Option<Response> {
    if request.uri().path() == "/healthz" {
        return None;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if state.allowed_hosts.allows(host) {
        return None;
    }
    Some(
        AppError::WrongHost {
            ours: state.base_url.origin().ascii_serialization(),
        }
        .into_response(),
    )
}

/// What apps post from their own origin (OpenID Connect): they
/// authenticate themselves (token, revocation), carry a bearer token
/// (userinfo), or are answered with a redirect to the same request as a
/// GET (authorization, logout); none acts on the browser's session
/// cookie alone.
const APP_POSTS: [&str; 4] = [
    "/oidc/token",
    "/oidc/revoke",
    "/oidc/userinfo",
    "/oidc/authorize",
];

/// Refuses a state-changing request whose Origin is not ours, or that the
/// browser marks as cross-site (OWASP CSRF Cheat Sheet, "Verifying origin
/// with standard headers"). Our origin is the base URL's, or the Host the
/// request came to (someone opening http://localhost:8080 when the base URL
/// says 127.0.0.1 is not an attacker).
fn cross_origin_refusal(state: &AppState, request: &Request) -> Option<Response> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || APP_POSTS.contains(&request.uri().path())
    {
        return None;
    }
    let headers = request.headers();
    // Browsers set Sec-Fetch-Site themselves; no page can forge it.
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"same-origin") => return None,
        Some(b"cross-site" | b"same-site") => return Some(cross_origin()),
        _ => {}
    }
    let origin = headers.get(header::ORIGIN)?;
    let ours = state.base_url.origin().ascii_serialization();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let same = origin.to_str().is_ok_and(|o| {
        o == ours
            || (!host.is_empty()
                && (o.strip_prefix("http://") == Some(host)
                    || o.strip_prefix("https://") == Some(host)))
    });
    (!same).then(cross_origin)
}

fn cross_origin() -> Response {
    AppError::Forbidden(
        "This form was sent from another site, so gatehouse refused it. Open gatehouse's own page and try again.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_name_origins_and_app_schemes() {
        let csp = csp_with_form_targets(&[
            url::Url::parse("https://login.example.com/oidc/authorize?x=1").unwrap(),
            url::Url::parse("app.immich:///oauth-callback").unwrap(),
        ]);
        let csp = csp.to_str().unwrap();
        assert!(
            csp.ends_with("form-action 'self' https://login.example.com app.immich:"),
            "{csp}"
        );
        assert!(!csp.contains("null"));
    }
}
