//! gatehouse as an OpenID Connect provider (issue 14), driven by a real
//! relying party: the `openidconnect` crate checks discovery, the ID
//! token's signature, issuer, audience, expiry and nonce, and PKCE, the
//! way apps do. The browser's part (login, consent) is a cookie-keeping
//! HTTP client; `oidc_browser.rs` does it in Chromium. Every attacker-
//! controlled parameter gets its negative test.

use crate::support::cli::cli;
use crate::support::{PASSWORD, TestApp, new_client, spawn_in};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::clock::Clock;
use gatehouse::domain::GroupName;
use gatehouse::services::oidc_admin::NewClient;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

pub const CALLBACK: &str = "http://app.test/oauth/callback";

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The `groups` claim, which the standard claims leave out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Groups {
    #[serde(default)]
    pub groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

/// An app whose clock is the real one (the relying party checks token
/// times against the system clock), manual so that tests move it.
pub async fn oidc_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    spawn_in(dir, Clock::manual(SystemTime::now()), |_| {}).await
}

/// The relying party's HTTP client: no redirects (as the crate advises).
pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Registers an app through the admin flow the CLI uses.
pub async fn register(
    app: &TestApp,
    name: &str,
    redirect: &str,
    public: bool,
    groups: &[&str],
    trusted: bool,
) -> (String, Option<String>) {
    let r = app
        .state
        .admin("test".into())
        .add_client(NewClient {
            name: name.into(),
            redirect_uris: vec![redirect.into()],
            post_logout_redirect_uris: vec!["http://app.test/bye".into()],
            public,
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g).unwrap())
                .collect(),
            trusted,
        })
        .await
        .unwrap();
    (r.client.id, r.secret)
}

/// The relying party for a registered client, from discovery.
pub async fn relying_party(app: &TestApp, id: &str, secret: Option<&str>, redirect: &str) -> Rp {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).unwrap(),
        &rp_http(),
    )
    .await
    .expect("discovery validates");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
}

/// An authorization request as the relying party makes it.
pub struct Request {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

pub fn request(rp: &Rp, scopes: &[&str]) -> Request {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = rp.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in scopes {
        req = req.add_scope(Scope::new((*s).into()));
    }
    let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
    Request {
        url,
        state,
        nonce,
        verifier,
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The `name`/`value` of each hidden input of a page.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains(r#"type="hidden""#))
        .filter_map(|tag| {
            let attr = |name: &str| {
                let start = tag.find(&format!(r#"{name}=""#))? + name.len() + 2;
                let end = tag[start..].find('"')?;
                Some(unescape(&tag[start..start + end]))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}

/// The browser's part: open `url` with `client` (its cookies); on the
/// consent page, answer `allow`/`deny`. Returns the redirect that leaves
/// gatehouse, or the page where it stopped.
pub async fn browse(
    app: &TestApp,
    client: &reqwest::Client,
    url: &Url,
    answer: &str,
) -> Result<Url, (StatusCode, String)> {
    let r = client.get(url.as_str()).send().await.unwrap();
    let page = match r.status() {
        StatusCode::SEE_OTHER | StatusCode::FOUND => {
            let to = app_url(app, r.headers()["location"].to_str().unwrap());
            return Ok(to);
        }
        status => (status, r.text().await.unwrap()),
    };
    if page.0 != StatusCode::OK || !page.1.contains("oidc-consent-form") {
        return Err(page);
    }
    let mut fields = hidden_fields(&page.1);
    fields.push(("answer".into(), answer.into()));
    let r = client
        .post(app.url("/oidc/consent"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::SEE_OTHER | StatusCode::FOUND => {
            Ok(app_url(app, r.headers()["location"].to_str().unwrap()))
        }
        status => Err((status, r.text().await.unwrap())),
    }
}

fn app_url(app: &TestApp, location: &str) -> Url {
    Url::parse(&app.address).unwrap().join(location).unwrap()
}

pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A logged-in browser of a new account `name` (in `groups`).
pub async fn user_browser(app: &TestApp, name: &str, groups: &[&str]) -> reqwest::Client {
    let user = app
        .add_user(&format!("{name}@example.com"), name, PASSWORD)
        .await;
    for g in groups {
        let group = GroupName::parse(g).unwrap();
        let _ = app
            .state
            .admin("test".into())
            .add_group(group.clone())
            .await;
        app.state
            .admin("test".into())
            .add_member(&group, &user)
            .await
            .unwrap();
    }
    let client = new_client();
    let csrf = crate::support::csrf_from(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let r = client
        .post(app.url("/login"))
        .form(&[("id", name), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{name} logs in");
    client
}

/// An app's whole login: its authorization request, the browser's part
/// (allowing it when asked), the code exchange.
pub async fn sign_in(
    app: &TestApp,
    rp: &Rp,
    browser: &reqwest::Client,
    scopes: &[&str],
) -> openidconnect::core::CoreTokenResponse {
    let req = request(rp, scopes);
    let back = browse(app, browser, &req.url, "allow").await.unwrap();
    let code = param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    rp.exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http())
        .await
        .expect("the code exchange works")
}

/// The Account page's HTML, as the browser sees it.
async fn account_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let r = browser.get(app.url("/account")).send().await.unwrap();
    r.text().await.unwrap()
}

/// Is the browser logged in at gatehouse (the Account page answers)?
async fn logged_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let status = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .status();
    status == StatusCode::OK
}

/// The claims of a JWT, unverified (after the relying party verified it).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A raw POST to the token endpoint.
async fn token_post(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = rp_http().post(app.url("/oidc/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn userinfo_status(app: &TestApp, token: &str) -> StatusCode {
    rp_http()
        .get(app.url("/oidc/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn discovery_has_the_required_fields_and_the_key_set_no_private_part() {
    let app = oidc_app().await;
    let doc: Value = rp_http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // OIDC Discovery 1.0 §3: REQUIRED fields.
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(doc.get(field).is_some(), "discovery lacks {field}: {doc}");
    }
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"]),
        "never none"
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: Value = rp_http()
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one key, made at first need: {jwks}");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            keys[0].get(private).is_none(),
            "the key set shows {private}"
        );
    }
    // Single-page apps may call the JSON endpoints (no cookie is read).
    let pre = rp_http()
        .request(reqwest::Method::OPTIONS, app.url("/oidc/userinfo"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(
        pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    // The library reads and accepts it all.
    let (id, secret) = register(&app, "Wiki", CALLBACK, false, &[], false).await;
    relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
}

#[tokio::test]
async fn a_confidential_app_logs_a_user_in_reads_userinfo_and_rotates_refresh_tokens() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Grafana", CALLBACK, false, &[], false).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let browser = user_browser(&app, "ann", &["ops", "dev"]).await;

    let req = request(&rp, &["profile", "email", "groups", "offline_access"]);
    // The consent page names the app and what it asks for.
    let page = browser.get(req.url.as_str()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Allow Grafana to use your account?"),
        "{html}"
    );
    assert!(html.contains("ann@example.com") && html.contains("groups you are in"));

    let back = browse(&app, &browser, &req.url, "allow").await.unwrap();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(req.state.secret().as_str()),
        "state untouched"
    );
    assert_eq!(param(&back, "iss").as_deref(), Some(app.address.as_str()));
    let code = param(&back, "code").unwrap();

    let http = rp_http();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&http)
        .await
        .expect("the code exchange works");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &req.nonce)
        .expect("signature, issuer, audience, expiry and nonce hold");
    assert_eq!(claims.preferred_username().unwrap().as_str(), "ann");
    assert_eq!(claims.email().unwrap().as_str(), "ann@example.com");
    assert_eq!(
        claims.email_verified(),
        Some(false),
        "no mailed link was followed"
    );
    let raw = id_token.to_string();
    assert_eq!(header(&raw)["alg"], "RS256");
    let body = payload(&raw);
    assert_eq!(body["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(
        body["nonce"],
        req.nonce.secret().as_str(),
        "nonce untouched"
    );
    assert!(body["at_hash"].is_string() && body["auth_time"].is_i64());
    let sub = claims.subject().as_str().to_string();
    assert!(
        sub.parse::<u64>().is_ok(),
        "sub is the account number: {sub}"
    );

    let info = rp
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async::<Groups, _, CoreGenderClaim>(&http)
        .await
        .expect("userinfo answers");
    assert_eq!(info.preferred_username().unwrap().as_str(), "ann");
    assert_eq!(info.additional_claims().groups, vec!["dev", "ops"]);

    // Userinfo by POST with only the header (RFC 6750 §2.1).
    let r = rp_http()
        .post(app.url("/oidc/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Refresh: a new pair each time; the old refresh token is spent.
    let first_refresh = tokens
        .refresh_token()
        .expect("offline_access: a refresh token")
        .clone();
    let renewed = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh works");
    let second_refresh = renewed.refresh_token().unwrap().clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret(), "rotated");
    assert_eq!(
        userinfo_status(&app, renewed.access_token().secret()).await,
        StatusCode::OK
    );
    // Reuse of the spent one ends the whole family.
    let reuse = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(format!("{reuse:?}").contains("invalid_grant"), "{reuse:?}");
    let after = rp
        .exchange_refresh_token(&second_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "the family was revoked: {after:?}");
    assert_eq!(
        userinfo_status(&app, renewed.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );

    // The consent is remembered: the next login goes straight back.
    let again = request(&rp, &["profile", "email"]);
    let r = browser.get(again.url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(CALLBACK)
    );
}

#[tokio::test]
async fn client_secret_post_works_and_wrong_credentials_are_invalid_client() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Outline", CALLBACK, false, &[], true).await;
    let secret = secret.unwrap();
    let rp = relying_party(&app, &id, Some(&secret), CALLBACK)
        .await
        .set_auth_type(AuthType::RequestBody);
    let browser = user_browser(&app, "bob", &[]).await;
    let req = request(&rp, &["email"]);
    let back = browse(&app, &browser, &req.url, "allow").await.unwrap();
    let code = param(&back, "code").expect("trusted: no consent page");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http())
        .await
        .expect("client_secret_post");
    assert!(
        tokens.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );

    let (status, headers, body) = token_post(
        &app,
        Some((&id, "wrong")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(headers["cache-control"], "no-store");
    let (status, _, body) = token_post(
        &app,
        Some((&id, &secret)),
        &[("grant_type", "password"), ("client_secret", &secret)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "two ways to authenticate"
    );
    let (_, _, body) = token_post(&app, Some((&id, &secret)), &[("grant_type", "password")]).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, _, body) = token_post(&app, Some((&id, &secret)), &[]).await;
    assert_eq!(body["error"], "invalid_request");
    let (status, _, body) = token_post(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // A parameter twice (RFC 6749 §3.1).
    let r = rp_http()
        .post(app.url("/oidc/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&grant_type=refresh_token")
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn a_public_app_must_use_pkce_with_s256() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Immich", CALLBACK, true, &[], true).await;
    assert!(secret.is_none(), "a public client has no secret");
    let rp = relying_party(&app, &id, None, CALLBACK).await;
    let browser = user_browser(&app, "cyd", &[]).await;

    // Without PKCE: an error back to the app, with the state.
    let mut plain = Url::parse(&app.url("/oidc/authorize")).unwrap();
    plain
        .query_pairs_mut()
        .append_pair("client_id", &id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s1");
    let back = browse(&app, &browser, &plain, "allow").await.unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    assert!(param(&back, "code").is_none());
    // "plain" is refused.
    let mut with_plain = plain.clone();
    with_plain
        .query_pairs_mut()
        .append_pair("code_challenge", &"a".repeat(43))
        .append_pair("code_challenge_method", "plain");
    let back = browse(&app, &browser, &with_plain, "allow").await.unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));

    // With S256: a code, which needs the right verifier.
    let req = request(&rp, &[]);
    let back = browse(&app, &browser, &req.url, "allow").await.unwrap();
    let code = param(&back, "code").unwrap();
    let form = |verifier: Option<&str>| {
        let mut f = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.clone()),
            ("redirect_uri".into(), CALLBACK.into()),
            ("client_id".into(), id.clone()),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier".into(), v.into()));
        }
        f
    };
    for verifier in [None, Some("x".repeat(43).as_str())] {
        let f = form(verifier);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (status, _, body) = token_post(&app, None, &refs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{verifier:?}"
        );
    }
    // A public client that sends a secret is not authenticated.
    let f = form(Some(req.verifier.secret()));
    let mut refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    refs.push(("client_secret", "guess"));
    let (status, _, _) = token_post(&app, None, &refs).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http())
        .await
        .expect("the right verifier");
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &req.nonce)
        .unwrap();
}

#[tokio::test]
async fn codes_are_single_use_bound_to_their_client_and_redirect_and_short_lived() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Gitea", CALLBACK, false, &[], true).await;
    let (other_id, other_secret) = register(&app, "Other", CALLBACK, false, &[], true).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let other = relying_party(&app, &other_id, other_secret.as_deref(), CALLBACK).await;
    let browser = user_browser(&app, "dee", &[]).await;
    let http = rp_http();

    // Used twice: the second fails, and what the first gave is revoked.
    let req = request(&rp, &["offline_access"]);
    let code = param(
        &browse(&app, &browser, &req.url, "allow").await.unwrap(),
        "code",
    )
    .unwrap();
    let verifier = req.verifier.secret().clone();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let twice = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await;
    assert!(format!("{twice:?}").contains("invalid_grant"), "{twice:?}");
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await;
    assert!(refresh.is_err(), "the refresh token went with the family");

    // Another client's code.
    let req = request(&rp, &[]);
    let code = param(
        &browse(&app, &browser, &req.url, "allow").await.unwrap(),
        "code",
    )
    .unwrap();
    let stolen = other
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(req.verifier.secret().clone()))
        .request_async(&http)
        .await;
    assert!(
        format!("{stolen:?}").contains("invalid_grant"),
        "{stolen:?}"
    );
    // Another redirect URI than the request's.
    let (_, _, body) = token_post(
        &app,
        Some((&id, secret.as_deref().unwrap())),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/other"),
            ("code_verifier", req.verifier.secret()),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    // Still good for its own client (a failed try does not spend it)…
    // …but not after its 60 seconds.
    app.clock.advance(Duration::from_secs(61));
    let late = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(req.verifier)
        .request_async(&http)
        .await;
    assert!(format!("{late:?}").contains("invalid_grant"), "{late:?}");
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirects_get_a_page_never_a_redirect() {
    let app = oidc_app().await;
    let (id, _) = register(&app, "Portainer", CALLBACK, false, &[], true).await;
    let browser = user_browser(&app, "eve", &[]).await;
    let authorize = |pairs: &[(&str, &str)]| {
        let mut url = Url::parse(&app.url("/oidc/authorize")).unwrap();
        for (k, v) in pairs {
            url.query_pairs_mut().append_pair(k, v);
        }
        url
    };
    let base = [
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
    ];
    for redirect in [
        "http://evil.test/oauth/callback",
        "http://app.test/oauth/callback/",
        "http://app.test/oauth/callback?x=1",
        "http://app.test/oauth/callbac",
        "HTTP://APP.TEST/oauth/callback",
    ] {
        let mut pairs = vec![("client_id", id.as_str()), ("redirect_uri", redirect)];
        pairs.extend(base);
        let r = browser
            .get(authorize(&pairs).as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{redirect}");
        assert!(
            r.headers().get("location").is_none(),
            "{redirect}: never redirected"
        );
        assert!(r.text().await.unwrap().contains("did not register"));
    }
    let mut unknown = vec![("client_id", "nope"), ("redirect_uri", CALLBACK)];
    unknown.extend(base);
    let r = browser
        .get(authorize(&unknown).as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("not registered"));
    // Sent twice: refused before anything (RFC 6749 §3.1).
    let twice = format!(
        "{}?client_id={id}&redirect_uri={CALLBACK}&redirect_uri=http://evil.test/&response_type=code&scope=openid",
        app.url("/oidc/authorize")
    );
    let r = browser.get(&twice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // A POSTed request becomes the same request as a GET.
    let r = rp_http()
        .post(app.url("/oidc/authorize"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("client_id", id.as_str()),
            ("redirect_uri", CALLBACK),
            ("state", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/oidc/authorize");
    assert_eq!(param(&to, "state").as_deref(), Some("p"));

    // With a registered redirect, mistakes go back there as errors.
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("response_type", "token"), ("scope", "openid")],
            "unsupported_response_type",
        ),
        (
            &[("response_type", "code"), ("scope", "profile")],
            "invalid_scope",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none login"),
            ],
            "invalid_request",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", "eyJ"),
            ],
            "request_not_supported",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("max_age", "soon"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut pairs = vec![
            ("client_id", id.as_str()),
            ("redirect_uri", CALLBACK),
            ("state", "a b&c"),
        ];
        pairs.extend_from_slice(extra);
        let back = browse(&app, &browser, &authorize(&pairs), "allow")
            .await
            .unwrap();
        assert!(back.as_str().starts_with(CALLBACK));
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(param(&back, "state").as_deref(), Some("a b&c"));
        assert_eq!(param(&back, "iss").as_deref(), Some(app.address.as_str()));
    }
}

#[tokio::test]
async fn prompt_max_age_and_login_hint_send_the_browser_where_they_say() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Nextcloud", CALLBACK, false, &[], true).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let stranger = new_client();

    // No session: the login page, carrying the request and the hint.
    let req = request(&rp, &[]);
    let mut hinted = req.url.clone();
    hinted
        .query_pairs_mut()
        .append_pair("login_hint", "fay@example.com");
    let r = stranger.get(hinted.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = app_url(&app, r.headers()["location"].to_str().unwrap());
    assert_eq!(to.path(), "/login");
    let rd = param(&to, "rd").unwrap();
    assert!(rd.starts_with(&app.url("/oidc/authorize?")), "{rd}");
    let login = stranger
        .get(to.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains(r#"value="fay@example.com""#),
        "the hint fills the ID field"
    );
    // prompt=none without a session: login_required, to the app.
    let mut silent = req.url.clone();
    silent.query_pairs_mut().append_pair("prompt", "none");
    let back = browse(&app, &stranger, &silent, "allow").await.unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));

    // The login with rd returns to the request, which now gives a code.
    app.add_user("fay@example.com", "fay", PASSWORD).await;
    let csrf = crate::support::csrf_from(&login);
    let r = stranger
        .post(app.url("/login"))
        .form(&[
            ("id", "fay"),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("rd", &rd),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self'") && csp.contains("http://app.test"),
        "{csp}"
    );
    let rd_url = app_url(&app, r.headers()["location"].to_str().unwrap());
    assert!(
        rd_url.as_str().starts_with(&app.url("/oidc/authorize?")),
        "{rd_url}"
    );
    let back = browse(&app, &stranger, &rd_url, "allow").await.unwrap();
    assert!(param(&back, "code").is_some(), "{back}");

    // prompt=login asks again though the session is fresh; so does an
    // older login than max_age.
    let mut again = req.url.clone();
    again.query_pairs_mut().append_pair("prompt", "login");
    let r = stranger.get(again.as_str()).send().await.unwrap();
    let to = app_url(&app, r.headers()["location"].to_str().unwrap());
    assert_eq!(
        (to.path(), param(&to, "force").as_deref()),
        ("/login", Some("1"))
    );
    assert!(
        !param(&to, "rd").unwrap().contains("prompt=login"),
        "no loop"
    );
    let page = stranger.get(to.as_str()).send().await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the form, although logged in"
    );
    app.clock.advance(Duration::from_secs(120));
    let mut aged = req.url.clone();
    aged.query_pairs_mut().append_pair("max_age", "60");
    let r = stranger.get(aged.as_str()).send().await.unwrap();
    let to = app_url(&app, r.headers()["location"].to_str().unwrap());
    assert_eq!(param(&to, "force").as_deref(), Some("1"));
    let mut fresh_enough = req.url.clone();
    fresh_enough.query_pairs_mut().append_pair("max_age", "600");
    let back = browse(&app, &stranger, &fresh_enough, "allow")
        .await
        .unwrap();
    assert!(param(&back, "code").is_some());
}

#[tokio::test]
async fn consent_can_be_denied_is_remembered_and_can_be_revoked_on_the_account_page() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Vikunja", CALLBACK, false, &[], false).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let browser = user_browser(&app, "gus", &[]).await;

    let req = request(&rp, &["email"]);
    let back = browse(&app, &browser, &req.url, "deny").await.unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(req.state.secret().as_str())
    );
    // prompt=none before any consent: consent_required.
    let mut silent = req.url.clone();
    silent.query_pairs_mut().append_pair("prompt", "none");
    let back = browse(&app, &browser, &silent, "allow").await.unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("consent_required"));

    let tokens = sign_in(&app, &rp, &browser, &["email", "offline_access"]).await;
    // More scopes than allowed: asked again; prompt=consent too.
    let wider = request(&rp, &["email", "groups"]);
    assert_eq!(
        browser
            .get(wider.url.as_str())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let mut asked = request(&rp, &["email"]).url;
    asked.query_pairs_mut().append_pair("prompt", "consent");
    assert_eq!(
        browser.get(asked.as_str()).send().await.unwrap().status(),
        StatusCode::OK
    );

    // The Account page lists the app; Revoke ends its tokens.
    let account = account_page(&app, &browser).await;
    assert!(account.contains("Vikunja"), "{account}");
    let csrf = crate::support::csrf_from(&account);
    let r = browser
        .post(app.url("/account/apps/revoke"))
        .form(&[("client", id.as_str()), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account?revoked=1");
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&rp_http())
        .await;
    assert!(refresh.is_err());
    let page = browser
        .get(request(&rp, &["email"]).url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "asked again after the revocation"
    );
}

#[tokio::test]
async fn users_outside_the_apps_groups_get_a_page_and_no_code() {
    let app = oidc_app().await;
    let outsider = user_browser(&app, "hal", &["users"]).await;
    let insider = user_browser(&app, "ida", &["admins"]).await;
    let (id, secret) = register(&app, "Proxmox", CALLBACK, false, &["admins"], true).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let req = request(&rp, &[]);
    let (status, html) = browse(&app, &outsider, &req.url, "allow")
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("You do not have access to Proxmox"), "{html}");
    let back = browse(&app, &insider, &req.url, "allow").await.unwrap();
    assert!(param(&back, "code").is_some());
}

#[tokio::test]
async fn tokens_end_with_logout_everywhere_and_with_rfc7009_revocation() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Immich", CALLBACK, false, &[], true).await;
    let secret = secret.unwrap();
    let rp = relying_party(&app, &id, Some(&secret), CALLBACK).await;
    let browser = user_browser(&app, "joe", &[]).await;
    let login = async || sign_in(&app, &rp, &browser, &["offline_access"]).await;
    // RFC 7009: revoking the refresh token ends its family; unknown
    // tokens get the same 200.
    let tokens = login().await;
    for token in [
        tokens.refresh_token().unwrap().secret().as_str(),
        "no-such-token",
    ] {
        let r = rp_http()
            .post(app.url("/oidc/revoke"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let r = rp_http()
        .post(app.url("/oidc/revoke"))
        .form(&[("token", "x"), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the client must authenticate"
    );

    // Log out everywhere ends the app's tokens too.
    let tokens = login().await;
    let account = account_page(&app, &browser).await;
    let csrf = crate::support::csrf_from(&account);
    browser
        .post(app.url("/account/sessions/end-all"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = RefreshToken::new(tokens.refresh_token().unwrap().secret().clone());
    assert!(
        rp.exchange_refresh_token(&refresh)
            .unwrap()
            .request_async(&rp_http())
            .await
            .is_err()
    );
    // A bad bearer token is invalid_token with a challenge.
    let r = rp_http()
        .get(app.url("/oidc/userinfo"))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn rp_initiated_logout_needs_our_id_token_and_a_registered_address() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Outline", CALLBACK, false, &[], true).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let browser = user_browser(&app, "kim", &[]).await;
    let tokens = sign_in(&app, &rp, &browser, &[]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let logout = |pairs: &[(&str, &str)]| {
        let mut url = Url::parse(&app.url("/oidc/logout")).unwrap();
        for (k, v) in pairs {
            url.query_pairs_mut().append_pair(k, v);
        }
        url
    };

    // alg=none with our claims: not a hint at all: the user is asked.
    let body = hint.split('.').nth(1).unwrap();
    let unsigned = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
    let r = browser
        .get(
            logout(&[
                ("id_token_hint", &unsigned),
                ("post_logout_redirect_uri", "http://app.test/bye"),
            ])
            .as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Log out of gatehouse?"));
    assert!(logged_in(&app, &browser).await);
    // Without a hint: asked first.
    let r = browser.get(logout(&[]).as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Log out of gatehouse?"));
    assert!(logged_in(&app, &browser).await);
    // An address the app did not register is ignored.
    let r = browser
        .get(
            logout(&[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "http://evil.test/"),
                ("state", "z"),
            ])
            .as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?logged_out=1");
    assert!(!logged_in(&app, &browser).await, "logged out");

    // With its hint and its registered address: out and back, with state.
    let browser = user_browser(&app, "lee", &[]).await;
    let r = browser
        .get(
            logout(&[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "http://app.test/bye"),
                ("state", "z"),
            ])
            .as_str(),
        )
        .send()
        .await
        .unwrap();
    // The hint names kim, not lee: lee is asked.
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let mut fields = hidden_fields(&html);
    fields.push(("confirm".into(), "1".into()));
    let r = browser
        .post(app.url("/oidc/logout/confirm"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "http://app.test/bye?state=z");
    assert!(!logged_in(&app, &browser).await);
}

#[tokio::test]
async fn clients_and_keys_are_managed_with_the_command_line() {
    let app = oidc_app().await;
    let add = cli(
        &app,
        &[
            "oidc",
            "client",
            "add",
            "Grafana",
            "--redirect-uri",
            "https://grafana.example.com/login/generic_oauth",
        ],
    )
    .await;
    add.ok();
    let out = add.stdout().to_string();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (id, secret) = (field("client id:"), field("client secret:"));
    assert!(!id.is_empty() && secret.len() >= 43);
    let list = cli(&app, &["oidc", "client", "list", "--json"]).await;
    list.ok();
    assert!(
        !list.stdout().contains(&secret),
        "the secret is shown once only"
    );
    let rows: Value = serde_json::from_str(&list.stdout()).unwrap();
    assert_eq!(rows[0]["client_id"], id.as_str());
    cli(
        &app,
        &[
            "oidc",
            "client",
            "add",
            "grafana",
            "--redirect-uri",
            "https://x.example/cb",
        ],
    )
    .await
    .code(2);
    let bad = cli(
        &app,
        &["oidc", "client", "add", "X", "--redirect-uri", "/relative"],
    )
    .await;
    bad.code(2);
    assert!(
        bad.stderr().contains("not an absolute URL"),
        "{}",
        bad.report()
    );
    let nogroup = cli(
        &app,
        &[
            "oidc",
            "client",
            "add",
            "Y",
            "--redirect-uri",
            CALLBACK,
            "--groups",
            "ops",
        ],
    )
    .await;
    nogroup.code(2);
    assert!(
        nogroup.stderr().contains("gatehouse group add ops"),
        "{}",
        nogroup.report()
    );

    let show = cli(&app, &["oidc", "client", "show", "grafana"]).await;
    show.ok();
    assert!(show.stdout().contains("confidential") && show.stdout().contains("generic_oauth"));
    let rotated = cli(&app, &["oidc", "client", "rotate-secret", &id]).await;
    rotated.ok();
    assert!(!rotated.stdout().contains(&secret));
    let client = app.state.store.client(&id).await.unwrap().unwrap();
    assert!(
        !client.secret_matches(&secret),
        "the old secret stopped working"
    );

    // Keys: one made at first need; a rotation publishes the next first.
    app.state.oidc().signing_keys().await.unwrap();
    cli(&app, &["oidc", "rotate-key"]).await.ok();
    let jwks = |app: &TestApp| {
        let url = app.url("/oidc/jwks");
        async move {
            let v: Value = rp_http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        jwks(&app).await.len(),
        2,
        "the next key is published before it signs"
    );
    let keys = cli(&app, &["oidc", "keys", "--json"]).await;
    keys.ok();
    let rows: Value = serde_json::from_str(&keys.stdout()).unwrap();
    let signing: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["signing"] == true)
        .collect();
    assert_eq!(signing.len(), 1);
    cli(&app, &["oidc", "rotate-key", "--now"]).await.ok();
    assert_eq!(jwks(&app).await.len(), 1, "--now keeps only the new key");

    // A secret for the config file, without touching the database.
    let fresh = cli(&app, &["oidc", "new-secret"]).await;
    fresh.ok();
    let text = fresh.stdout().to_string();
    let made = text
        .lines()
        .find_map(|l| l.strip_prefix("client secret: "))
        .unwrap();
    let hash = gatehouse::crypto::hex(&gatehouse::crypto::sha256(made.as_bytes()));
    assert!(
        text.contains(&format!("secret_sha256 = \"{hash}\"")),
        "{text}"
    );

    let remove = cli(&app, &["oidc", "client", "remove", "Grafana"]).await;
    remove.ok();
    assert!(app.state.store.client(&id).await.unwrap().is_none());
    let audit = cli(&app, &["audit", "--json"]).await;
    assert!(
        audit.ok().stdout().contains("oidc client add"),
        "{}",
        audit.report()
    );
}

#[tokio::test]
async fn a_rotated_key_signs_after_an_hour_and_the_old_one_goes_when_its_tokens_expired() {
    let app = oidc_app().await;
    let (id, secret) = register(&app, "Wiki", CALLBACK, false, &[], true).await;
    let rp = relying_party(&app, &id, secret.as_deref(), CALLBACK).await;
    let browser = user_browser(&app, "max", &[]).await;
    let sign = async || {
        let tokens = sign_in(&app, &rp, &browser, &[]).await;
        header(&tokens.id_token().unwrap().to_string())["kid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = sign().await;
    let rotated = app
        .state
        .admin("test".into())
        .rotate_key(false)
        .await
        .unwrap();
    assert_eq!(sign().await, first, "the new key does not sign yet");
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(sign().await, rotated.kid, "an hour on, the new key signs");
    let kids = |v: Value| v["keys"].as_array().unwrap().len();
    assert_eq!(
        kids(app.state.oidc().jwks().await.unwrap()),
        2,
        "the old key stays for its tokens"
    );
    app.clock.advance(Duration::from_secs(3601));
    gatehouse::app::purge_expired(&app.state).await.unwrap();
    assert_eq!(kids(app.state.oidc().jwks().await.unwrap()), 1);
    assert_eq!(
        app.state.store.signing_keys().await.unwrap().len(),
        1,
        "deleted"
    );
}

#[tokio::test]
async fn apps_declared_in_the_config_file_log_in_and_follow_the_file() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    // `+` and `/`: a client that does not form-encode Basic still works.
    let secret = "declared+secret/0123456789-abcdefghijklmnop";
    std::fs::write(dir.path().join("grafana.secret"), format!("{secret}\n")).unwrap();
    let config = dir.path().join("gatehouse.toml");
    let write = |text: &str| std::fs::write(&config, text).unwrap();
    write(&format!(
        "[[oidc_client]]\nid = \"grafana\"\nname = \"Grafana\"\nsecret_file = \"grafana.secret\"\n\
         redirect_uris = [\"{CALLBACK}\"]\ntrusted = true\n"
    ));
    let file = config.clone();
    let app = spawn_in(dir.clone(), Clock::manual(SystemTime::now()), move |c| {
        c.oidc_clients = gatehouse::config::load_oidc_clients(Some(&file)).unwrap();
        c.file = Some(file);
    })
    .await;
    let rp = relying_party(&app, "grafana", Some(secret), CALLBACK).await;
    let browser = user_browser(&app, "ola", &[]).await;
    // Trusted: no consent page; the declared id and secret work.
    let tokens = sign_in(&app, &rp, &browser, &["offline_access"]).await;

    for basic in [
        secret.to_string(),
        secret.replace('+', "%2B").replace('/', "%2F"),
    ] {
        let (status, _, body) = token_post(
            &app,
            Some(("grafana", &basic)),
            &[
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{basic}"
        );
    }

    // The file is its source: the CLI leaves it alone.
    let remove = cli(&app, &["oidc", "client", "remove", "grafana"]).await;
    remove.code(2);
    assert!(
        remove.stderr().contains("declared in the config file"),
        "{}",
        remove.report()
    );
    assert!(
        cli(&app, &["oidc", "client", "show", "grafana"])
            .await
            .ok()
            .stdout()
            .contains("config")
    );

    // A changed file, reloaded: renamed, one more, then both gone.
    write(&format!(
        "[[oidc_client]]\nid = \"grafana\"\nname = \"Dashboards\"\nsecret_file = \"grafana.secret\"\n\
         redirect_uris = [\"{CALLBACK}\"]\ntrusted = true\n\
         [[oidc_client]]\nid = \"wiki-spa\"\nname = \"Wiki\"\npublic = true\nredirect_uris = [\"{CALLBACK}\"]\n"
    ));
    let synced = app.state.reload_declared_clients().await.unwrap();
    assert_eq!((synced.added, synced.updated, synced.removed), (1, 1, 0));
    assert_eq!(
        app.state
            .store
            .client("grafana")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Dashboards"
    );
    assert!(
        app.state
            .store
            .client("wiki-spa")
            .await
            .unwrap()
            .unwrap()
            .is_public()
    );
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::OK,
        "a rename keeps the tokens"
    );
    // A name the CLI registered is not taken over.
    cli(
        &app,
        &["oidc", "client", "add", "Notes", "--redirect-uri", CALLBACK],
    )
    .await
    .ok();
    write(&format!(
        "[[oidc_client]]\nid = \"notes\"\nname = \"notes\"\npublic = true\nredirect_uris = [\"{CALLBACK}\"]\n"
    ));
    let clash = app.state.reload_declared_clients().await.unwrap_err();
    assert!(
        format!("{clash:#}").contains("gatehouse oidc client add"),
        "{clash:#}"
    );
    assert!(
        app.state.store.client("grafana").await.unwrap().is_some(),
        "nothing changed on a refusal"
    );
    write("");
    let synced = app.state.reload_declared_clients().await.unwrap();
    assert_eq!(synced.removed, 2);
    assert_eq!(
        userinfo_status(&app, tokens.access_token().secret()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.state.store.clients().await.unwrap().len(),
        1,
        "the CLI's app stays"
    );
}
