//! The OpenID Connect journey in Chromium (issue 14): a tiny app on port
//! 0, built on the `openidconnect` crate as real apps are, sends the
//! browser to gatehouse; the user logs in, allows the app on the consent
//! page, and the app shows the verified `preferred_username` and
//! `groups`. It proves what an HTTP client cannot: the pages' Content
//! Security Policy lets each form's redirects reach the app.

use crate::browser::Browser;
use crate::oidc::{Groups, Rp, oidc_app, register, relying_party, request, rp_http};
use crate::support::PASSWORD;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use fantoccini::Locator;
use gatehouse::domain::GroupName;
use openidconnect::{
    AuthorizationCode, Nonce, OAuth2TokenResponse, PkceCodeVerifier, TokenResponse,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The app: `/start` sends the browser to gatehouse, `/callback` takes
/// the code back and shows who logged in.
struct TinyApp {
    rp: Rp,
    /// PKCE verifier and nonce by `state`, as a real app keeps them.
    pending: Mutex<HashMap<String, (PkceCodeVerifier, Nonce)>>,
}

async fn start(State(app): State<Arc<TinyApp>>) -> Redirect {
    let req = request(&app.rp, &["profile", "email", "groups"]);
    app.pending
        .lock()
        .unwrap()
        .insert(req.state.secret().clone(), (req.verifier, req.nonce));
    Redirect::to(req.url.as_str())
}

async fn callback(
    State(app): State<Arc<TinyApp>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = q
        .get("state")
        .and_then(|s| app.pending.lock().unwrap().remove(s));
    let (Some((verifier, nonce)), Some(code)) = (pending, q.get("code")) else {
        return Html(format!("<p id=\"error\">{q:?}</p>")).into_response();
    };
    let tokens = match app
        .rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
    {
        Ok(t) => t,
        Err(e) => return Html(format!("<p id=\"error\">{e:?}</p>")).into_response(),
    };
    let id_token = tokens.id_token().unwrap();
    let claims = match id_token.claims(&app.rp.id_token_verifier(), &nonce) {
        Ok(c) => c,
        Err(e) => return Html(format!("<p id=\"error\">{e:?}</p>")).into_response(),
    };
    let who = claims.preferred_username().unwrap().as_str().to_string();
    // The groups as the app reads them: from userinfo, with the token.
    let info = app
        .rp
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async::<Groups, _, openidconnect::core::CoreGenderClaim>(&rp_http())
        .await
        .unwrap();
    Html(format!(
        "<p id=\"who\">{who}</p><p id=\"groups\">{}</p>",
        info.additional_claims().groups.join(",")
    ))
    .into_response()
}

#[tokio::test]
async fn an_app_sends_the_browser_to_log_in_and_consent_and_gets_the_verified_user() {
    let gate = oidc_app().await;
    let user = gate.add_user("nia@example.com", "nia", PASSWORD).await;
    let admin = gate.state.admin("test".into());
    for g in ["devs", "ops"] {
        let group = GroupName::parse(g).unwrap();
        admin.add_group(group.clone()).await.unwrap();
        admin.add_member(&group, &user).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let redirect = format!("{base}/callback");
    let (id, secret) = register(&gate, "Tiny", &redirect, false, &[], false).await;
    let app = Arc::new(TinyApp {
        rp: relying_party(&gate, &id, secret.as_deref(), &redirect).await,
        pending: Mutex::new(HashMap::new()),
    });
    let router = axum::Router::new()
        .route("/start", get(start))
        .route("/callback", get(callback))
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/start")).await;
    // At gatehouse's login page, which returns to the request after.
    let at = browser.client.current_url().await.unwrap();
    assert_eq!(at.path(), "/login", "{at}");
    browser.fill("#login-id", "nia").await;
    browser.fill("#login-password", PASSWORD).await;
    browser.submit("#login-form button[type=submit]").await;
    // The consent page names the app.
    assert!(
        browser.text("h1").await.contains("Allow Tiny"),
        "{}",
        browser.path().await
    );
    browser
        .submit("#oidc-consent-form button[value=allow]")
        .await;
    let who = browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#who, #error"))
        .await
        .expect("the app's page");
    assert_eq!(
        who.text().await.unwrap(),
        "nia",
        "{}",
        browser.js("return document.body.innerText").await
    );
    assert_eq!(browser.text("#groups").await, "devs,ops");

    // Back again later: the session and the consent are reused.
    browser.goto(&format!("{base}/start")).await;
    let who = browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#who, #error"))
        .await
        .unwrap();
    assert_eq!(who.text().await.unwrap(), "nia");
    browser.close().await;
}
