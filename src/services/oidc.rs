//! gatehouse as an OpenID Connect provider (OIDC Core 1.0, the code flow
//! only; RFC 6749 with RFC 7636 PKCE; RFC 7009 revocation; RP-Initiated
//! Logout 1.0). Free of HTTP: the routes hand in the parameters as sent
//! and get back what to answer — a page, a redirect to the app, JSON.
//!
//! The authorization request (`check`, then `decide`): an unknown client
//! or a redirect URI it did not register is answered on a gatehouse page
//! and never redirected (RFC 6749 §4.1.2.1); every other mistake goes
//! back to the registered redirect URI as `error`, with `state` and `iss`
//! (RFC 9207). A session is reused; `prompt=login` or an older login than
//! `max_age` asks for the password again; the client's groups, the
//! Terms, and the user's consent (remembered per app) come next; then a
//! code, single use for `CODE_LIFETIME`, bound to the client, the
//! redirect URI and the PKCE challenge.

use crate::auth::jwt;
use crate::clock::{Clock, Timestamp};
use crate::crypto::{random_token, sha256};
use crate::domain::oidc::{
    CODE_LIFETIME, KeyRing, OidcClient, OidcGrant, OidcPolicy, OidcToken, SCOPES, Scopes,
    SigningKey, TokenKind, is_s256_challenge, new_family, pkce_matches,
};
use crate::domain::{User, UserId, UserStatus};
use crate::store::{Spend, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

/// The parts the provider uses.
pub struct Oidc<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a Clock,
    pub policy: OidcPolicy,
    /// The issuer identifier: the base URL without its trailing slash.
    pub issuer: &'a str,
}

/// The paths of the endpoints, under the issuer.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
pub const TOKEN_PATH: &str = "/oidc/token";
pub const USERINFO_PATH: &str = "/oidc/userinfo";
pub const JWKS_PATH: &str = "/oidc/jwks";
pub const REVOKE_PATH: &str = "/oidc/revoke";
pub const LOGOUT_PATH: &str = "/oidc/logout";

/// The longest `nonce` kept (it is stored with the code).
const MAX_NONCE: usize = 512;

/// An authorization request's parameters as sent (OIDC Core §3.1.2.1);
/// a parameter sent twice is refused before this (RFC 6749 §3.1).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

impl AuthorizeParams {
    /// The query string of this request, without `prompt=login` (the
    /// request to come back to once the password was asked again).
    pub fn query_without_login_prompt(&self) -> String {
        let mut copy = self.clone();
        copy.prompt = copy.prompt.as_deref().and_then(|p| {
            let rest: Vec<&str> = p
                .split(' ')
                .filter(|v| !v.is_empty() && *v != "login")
                .collect();
            (!rest.is_empty()).then(|| rest.join(" "))
        });
        serde_urlencoded::to_string(&copy).unwrap_or_default()
    }
}

/// What `prompt` asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A request that names a client and one of its redirect URIs, with its
/// other parameters checked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub client: OidcClient,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
}

/// A request that cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown on a gatehouse page (the app cannot be trusted with a
    /// redirect): the text says what is wrong and who can fix it.
    Page(String),
    /// Back to the app's registered redirect URI, carrying the error.
    Redirect(Url),
    Store(StoreError),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Who is logged in at gatehouse, as the authorization request sees it.
pub struct Visitor<'u> {
    pub user: &'u User,
    /// When they gave their password (the session's start): `auth_time`.
    pub logged_in_at: Timestamp,
    /// Have they accepted the current Terms and Privacy Policy?
    pub has_terms: bool,
}

/// What the user answered on the consent page, when they did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny,
}

/// The next step of an authorization request.
#[derive(Debug)]
pub enum Step {
    /// Log in (again, with `force`, though a session exists).
    Login { force: bool },
    /// Accept the current Terms first.
    Terms,
    /// The user is outside the client's groups.
    NoAccess { app: String },
    /// Ask the user; `scopes` is what the app asks for.
    Consent { client: OidcClient, scopes: Scopes },
    /// Back to the app: with a code, or an error.
    Redirect(Url),
}

/// A token request's parameters as sent (RFC 6749 §4.1.3, §6).
/// No `Debug`: it carries the client secret, the code, the verifier or
/// the refresh token, which must never reach a log.
#[derive(Clone, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Client credentials from an `Authorization: Basic` header: form-decoded
/// as RFC 6749 §2.3.1 says, and the secret also as sent (many clients
/// do not encode it, and a secret may hold `+`).
pub struct BasicCredentials {
    pub id: String,
    pub secret: String,
    pub raw_secret: String,
}

/// A token endpoint error (RFC 6749 §5.2).
#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(&'static str),
    /// 401 with `WWW-Authenticate`.
    InvalidClient(&'static str),
    InvalidGrant(&'static str),
    UnsupportedGrantType,
    InvalidScope(&'static str),
    Store(StoreError),
    Internal(anyhow::Error),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl TokenError {
    /// The `error` code and its description.
    pub fn code(&self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidRequest(d) => ("invalid_request", d),
            Self::InvalidClient(d) => ("invalid_client", d),
            Self::InvalidGrant(d) => ("invalid_grant", d),
            Self::UnsupportedGrantType => (
                "unsupported_grant_type",
                "gatehouse supports the grant types authorization_code and refresh_token",
            ),
            Self::InvalidScope(d) => ("invalid_scope", d),
            Self::Store(_) | Self::Internal(_) => (
                "server_error",
                "gatehouse could not finish this request; try again shortly",
            ),
        }
    }
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
/// No `Debug`: the tokens in it must never reach a log.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// The claims of an ID token gatehouse signs.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(flatten)]
    pub profile: serde_json::Map<String, Value>,
}

/// What an `id_token_hint` says (only the claims logout reads; `aud`
/// may be one string or a list).
#[derive(Debug, Deserialize)]
struct HintClaims {
    sub: String,
    aud: Audience,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn first(&self) -> Option<&str> {
        match self {
            Self::One(a) => Some(a),
            Self::Many(list) => list.first().map(String::as_str),
        }
    }
}

/// RP-Initiated Logout parameters as sent.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
    pub logout_hint: Option<String>,
    pub ui_locales: Option<String>,
}

/// What a logout request may do.
#[derive(Debug)]
pub struct LogoutPlan {
    /// The account the hint names (a valid hint: no need to ask).
    pub hinted: Option<UserId>,
    /// The app that asked, when it is known.
    pub app: Option<String>,
    /// Where the browser goes after, when the app registered it.
    pub redirect: Option<Url>,
}

/// A problem with a logout request, shown on a page.
#[derive(Debug)]
pub enum LogoutError {
    Invalid(&'static str),
    Store(StoreError),
}

impl From<StoreError> for LogoutError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Oidc<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The provider's metadata (OIDC Discovery 1.0 §3; RFC 8414).
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.url(AUTHORIZE_PATH),
            "token_endpoint": self.url(TOKEN_PATH),
            "userinfo_endpoint": self.url(USERINFO_PATH),
            "jwks_uri": self.url(JWKS_PATH),
            "end_session_endpoint": self.url(LOGOUT_PATH),
            "revocation_endpoint": self.url(REVOKE_PATH),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [jwt::ALG],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                "name", "preferred_username", "email", "email_verified", "groups"
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// The stored signing keys; the first is made now when there is none
    /// (replicas starting together keep one of theirs).
    pub async fn signing_keys(&self) -> anyhow::Result<Vec<SigningKey>> {
        let keys = self.store.signing_keys().await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let now = self.clock.now();
        let key = tokio::task::spawn_blocking(move || jwt::generate_key(now, now)).await??;
        if self.store.add_signing_key(key, true).await? {
            tracing::info!("made the first OpenID Connect signing key");
        }
        Ok(self.store.signing_keys().await?)
    }

    /// The published keys as a JWK Set.
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        let keys = self.signing_keys().await?;
        let ring = KeyRing::new(&keys);
        Ok(jwt::jwks(&ring.published(
            self.clock.now(),
            self.policy.id_token_lifetime,
        )))
    }

    /// Deletes keys no ID token still needs; returns how many.
    pub async fn purge_keys(&self) -> anyhow::Result<usize> {
        let keys = self.store.signing_keys().await?;
        let spent = KeyRing::new(&keys).spent(self.clock.now(), self.policy.id_token_lifetime);
        if spent.is_empty() {
            return Ok(0);
        }
        Ok(self.store.delete_signing_keys(&spent).await?)
    }

    /// Checks an authorization request (OIDC Core §3.1.2.2).
    pub async fn check(&self, p: &AuthorizeParams) -> Result<Checked, AuthorizeError> {
        let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(AuthorizeError::Page(
                "The app that sent you here did not say who it is (client_id is missing). \
                 Tell the app's administrator: its OpenID Connect settings are incomplete."
                    .into(),
            ));
        };
        let Some(client) = self.store.client(client_id).await? else {
            return Err(AuthorizeError::Page(
                "The app that sent you here is not registered with gatehouse (unknown client_id). \
                 Tell the app's administrator; an admin registers apps with `gatehouse oidc client add`."
                    .into(),
            ));
        };
        let Some(redirect_uri) = p.redirect_uri.clone().filter(|r| client.allows_redirect(r))
        else {
            return Err(AuthorizeError::Page(format!(
                "{} asked gatehouse to send you to an address it did not register (redirect_uri), \
                 so gatehouse will not. Tell the app's administrator: the redirect URI must be \
                 registered exactly as the app sends it (`gatehouse oidc client show`).",
                client.name
            )));
        };
        let back = |error: &str, description: &str| {
            AuthorizeError::Redirect(self.error_redirect(
                &redirect_uri,
                error,
                description,
                p.state.as_deref(),
            ))
        };
        if p.request.is_some() {
            return Err(back(
                "request_not_supported",
                "gatehouse does not accept request objects",
            ));
        }
        if p.request_uri.is_some() {
            return Err(back(
                "request_uri_not_supported",
                "gatehouse does not accept request_uri",
            ));
        }
        match p.response_type.as_deref() {
            None | Some("") => return Err(back("invalid_request", "response_type is missing")),
            Some("code") => {}
            Some(_) => {
                return Err(back(
                    "unsupported_response_type",
                    "gatehouse supports the code flow only (response_type=code)",
                ));
            }
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return Err(back(
                "invalid_request",
                "gatehouse answers in the query only (response_mode=query)",
            ));
        }
        let scopes = Scopes::parse(p.scope.as_deref().unwrap_or_default());
        if !scopes.has("openid") {
            return Err(back("invalid_scope", "the scope must contain openid"));
        }
        let prompt = match parse_prompt(p.prompt.as_deref()) {
            Some(prompt) => prompt,
            None => {
                return Err(back(
                    "invalid_request",
                    "prompt=none cannot be combined with other values",
                ));
            }
        };
        let max_age = match p.max_age.as_deref() {
            None => None,
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(back(
                        "invalid_request",
                        "max_age must be a whole number of seconds",
                    ));
                }
            },
        };
        if p.nonce.as_deref().is_some_and(|n| n.len() > MAX_NONCE) {
            return Err(back("invalid_request", "nonce is longer than 512 bytes"));
        }
        let code_challenge = match (
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
        ) {
            (None, None) => None,
            (Some(c), Some("S256")) if is_s256_challenge(c) => Some(c.to_owned()),
            (Some(_), Some("S256")) => {
                return Err(back(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                ));
            }
            (Some(_), None | Some("plain")) | (None, Some("plain")) => {
                return Err(back(
                    "invalid_request",
                    "gatehouse accepts the PKCE method S256 only (code_challenge_method=S256)",
                ));
            }
            (None, Some(_)) => {
                return Err(back("invalid_request", "code_challenge is missing"));
            }
            (Some(_), Some(_)) => {
                return Err(back(
                    "invalid_request",
                    "gatehouse accepts the PKCE method S256 only (code_challenge_method=S256)",
                ));
            }
        };
        if client.is_public() && code_challenge.is_none() {
            return Err(back(
                "invalid_request",
                "a public client must use PKCE (code_challenge with code_challenge_method=S256)",
            ));
        }
        Ok(Checked {
            client,
            redirect_uri,
            scopes,
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge,
            prompt,
            max_age,
            login_hint: p.login_hint.clone(),
        })
    }

    /// `redirect_uri` with an error (RFC 6749 §4.1.2.1), `state` and `iss`.
    fn error_redirect(
        &self,
        redirect_uri: &str,
        error: &str,
        description: &str,
        state: Option<&str>,
    ) -> Url {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.issuer));
        with_query(redirect_uri, &pairs)
    }

    /// The next step for a checked request: who is logged in (if anyone)
    /// and, from the consent page, what they answered.
    pub async fn decide(
        &self,
        req: &Checked,
        visitor: Option<Visitor<'_>>,
        answer: Option<Answer>,
    ) -> Result<Step, AuthorizeError> {
        let back = |error: &str, description: &str| {
            Step::Redirect(self.error_redirect(
                &req.redirect_uri,
                error,
                description,
                req.state.as_deref(),
            ))
        };
        let now = self.clock.now();
        let Some(visitor) = visitor else {
            return Ok(if req.prompt.none {
                back("login_required", "nobody is logged in at gatehouse")
            } else {
                Step::Login { force: false }
            });
        };
        let too_old = req
            .max_age
            .is_some_and(|max| visitor.logged_in_at.until(now).as_secs() > max);
        if (req.prompt.login && answer.is_none()) || too_old {
            return Ok(if req.prompt.none {
                back("login_required", "the login is older than max_age")
            } else {
                Step::Login { force: true }
            });
        }
        if !visitor.has_terms {
            return Ok(if req.prompt.none {
                back(
                    "interaction_required",
                    "the user must accept gatehouse's current terms first",
                )
            } else {
                Step::Terms
            });
        }
        let user = visitor.user;
        if !req.client.admits(user) {
            return Ok(if req.prompt.none {
                back("access_denied", "this account may not use this app")
            } else {
                Step::NoAccess {
                    app: req.client.name.clone(),
                }
            });
        }
        match answer {
            Some(Answer::Deny) => {
                return Ok(back("access_denied", "the user did not allow it"));
            }
            Some(Answer::Allow) => {
                let scopes = match self.store.grant(user.id, &req.client.id).await? {
                    Some(g) => g.scopes.union(&req.scopes),
                    None => req.scopes.clone(),
                };
                self.store
                    .set_grant(OidcGrant {
                        user: user.id,
                        client: req.client.id.clone(),
                        scopes,
                        granted_at: now,
                    })
                    .await?;
            }
            None if req.client.trusted && !req.prompt.consent => {}
            None => {
                let granted = self
                    .store
                    .grant(user.id, &req.client.id)
                    .await?
                    .is_some_and(|g| g.scopes.covers(&req.scopes));
                if !granted || req.prompt.consent {
                    return Ok(if req.prompt.none {
                        back("consent_required", "the user has not allowed this app yet")
                    } else {
                        Step::Consent {
                            client: req.client.clone(),
                            scopes: req.scopes.clone(),
                        }
                    });
                }
            }
        }
        let code = random_token::<32>();
        let token = OidcToken {
            kind: TokenKind::Code,
            client: req.client.id.clone(),
            user: user.id,
            family: new_family(),
            scopes: req.scopes.clone(),
            issued_at: now,
            expires_at: now.plus(CODE_LIFETIME),
            spent_at: None,
            auth_time: visitor.logged_in_at,
            nonce: req.nonce.clone(),
            redirect_uri: Some(req.redirect_uri.clone()),
            code_challenge: req.code_challenge.clone(),
        };
        self.store
            .put_tokens(vec![(sha256(code.as_bytes()), token)])
            .await?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.issuer));
        Ok(Step::Redirect(with_query(&req.redirect_uri, &pairs)))
    }

    /// Authenticates the client of a token or revocation request (RFC
    /// 6749 §2.3): Basic, or the body, or (a public client) its id alone.
    pub async fn client_of(
        &self,
        basic: Option<BasicCredentials>,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<OidcClient, TokenError> {
        if basic.is_some() && client_secret.is_some() {
            return Err(TokenError::InvalidRequest(
                "use one way to authenticate the client: the Authorization header or client_secret, not both",
            ));
        }
        let (id, secrets) = match &basic {
            Some(b) => {
                if client_id.is_some_and(|c| c != b.id) {
                    return Err(TokenError::InvalidRequest(
                        "client_id differs from the client in the Authorization header",
                    ));
                }
                (
                    b.id.as_str(),
                    vec![b.secret.as_str(), b.raw_secret.as_str()],
                )
            }
            None => match client_id {
                Some(id) => (id, client_secret.into_iter().collect()),
                None => {
                    return Err(TokenError::InvalidClient(
                        "authenticate the client: HTTP Basic, client_secret_post, or client_id for a public client",
                    ));
                }
            },
        };
        let client = self.store.client(id).await?;
        match client {
            Some(c) if c.is_public() && secrets.is_empty() => Ok(c),
            // Every form is compared (constant time each): which one
            // matched is not told.
            Some(c)
                if !c.is_public()
                    && secrets.iter().fold(false, |ok, s| c.secret_matches(s) | ok) =>
            {
                Ok(c)
            }
            _ => Err(TokenError::InvalidClient(
                "unknown client, or wrong client credentials",
            )),
        }
    }

    /// The token endpoint (RFC 6749 §4.1.3, §6; OIDC Core §3.1.3).
    pub async fn token(
        &self,
        params: TokenParams,
        basic: Option<BasicCredentials>,
    ) -> Result<TokenResponse, TokenError> {
        let client = self
            .client_of(
                basic,
                params.client_id.as_deref(),
                params.client_secret.as_deref(),
            )
            .await?;
        match params.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, params).await,
            Some("refresh_token") => self.refresh(&client, params).await,
            None | Some("") => Err(TokenError::InvalidRequest("grant_type is missing")),
            Some(_) => Err(TokenError::UnsupportedGrantType),
        }
    }

    async fn exchange_code(
        &self,
        client: &OidcClient,
        params: TokenParams,
    ) -> Result<TokenResponse, TokenError> {
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(TokenError::InvalidRequest("code is missing"))?;
        let hash = sha256(code.as_bytes());
        let now = self.clock.now();
        let stored = self
            .store
            .token_of(&hash, TokenKind::Code, now)
            .await?
            .ok_or(TokenError::InvalidGrant(
                "the code is not valid: unknown, expired or used already",
            ))?;
        if stored.spent_at.is_some() {
            // A second use: whoever holds it, every token made from it ends.
            let ended = self
                .store
                .spend_token(&hash, TokenKind::Code, now, Vec::new())
                .await?;
            tracing::warn!(client = %client.id, user = %stored.user, ?ended, "an authorization code was used twice: its tokens were revoked");
            return Err(TokenError::InvalidGrant(
                "the code is not valid: unknown, expired or used already",
            ));
        }
        if stored.client != client.id {
            return Err(TokenError::InvalidGrant(
                "the code was issued to another client",
            ));
        }
        if params.redirect_uri.as_deref() != stored.redirect_uri.as_deref() {
            return Err(TokenError::InvalidGrant(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        match (&stored.code_challenge, params.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
            (Some(_), Some(_)) => {
                return Err(TokenError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            (Some(_), None) => {
                return Err(TokenError::InvalidGrant("code_verifier is missing"));
            }
            (None, Some(_)) => {
                return Err(TokenError::InvalidGrant(
                    "code_verifier was sent, but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        let user = self.usable_user(client, stored.user).await?;
        let keys = self.signing_keys().await.map_err(TokenError::Internal)?;
        let issued = self.issue(&keys, client, &user, &stored, stored.scopes.clone(), true)?;
        match self
            .store
            .spend_token(&hash, TokenKind::Code, now, issued.records)
            .await?
        {
            Spend::Spent(_) => Ok(issued.response),
            Spend::Reused(_) | Spend::Unknown => Err(TokenError::InvalidGrant(
                "the code is not valid: unknown, expired or used already",
            )),
        }
    }

    async fn refresh(
        &self,
        client: &OidcClient,
        params: TokenParams,
    ) -> Result<TokenResponse, TokenError> {
        let raw = params
            .refresh_token
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(TokenError::InvalidRequest("refresh_token is missing"))?;
        let hash = sha256(raw.as_bytes());
        let now = self.clock.now();
        let invalid = TokenError::InvalidGrant(
            "the refresh token is not valid: unknown, expired, revoked or used already",
        );
        let Some(stored) = self.store.token_of(&hash, TokenKind::Refresh, now).await? else {
            return Err(invalid);
        };
        if stored.client != client.id {
            return Err(invalid);
        }
        if stored.spent_at.is_some() {
            let ended = self
                .store
                .spend_token(&hash, TokenKind::Refresh, now, Vec::new())
                .await?;
            tracing::warn!(client = %client.id, user = %stored.user, ?ended, "a spent refresh token was used again: its family was revoked");
            return Err(invalid);
        }
        let scopes = match params.scope.as_deref() {
            None | Some("") => stored.scopes.clone(),
            Some(raw) => {
                let asked = Scopes::parse(raw);
                if !stored.scopes.covers(&asked) {
                    return Err(TokenError::InvalidScope(
                        "a refresh may narrow the scope, never widen it",
                    ));
                }
                asked
            }
        };
        let user = self.usable_user(client, stored.user).await?;
        let keys = self.signing_keys().await.map_err(TokenError::Internal)?;
        let issued = self.issue(&keys, client, &user, &stored, scopes, false)?;
        match self
            .store
            .spend_token(&hash, TokenKind::Refresh, now, issued.records)
            .await?
        {
            Spend::Spent(_) => Ok(issued.response),
            Spend::Reused(_) | Spend::Unknown => Err(invalid),
        }
    }

    /// The account a grant is for, if it may still use the app.
    async fn usable_user(&self, client: &OidcClient, id: UserId) -> Result<User, TokenError> {
        match self.store.user(id).await? {
            Some(u) if u.status == UserStatus::Active && client.admits(&u) => Ok(u),
            _ => Err(TokenError::InvalidGrant(
                "the account may no longer use this app",
            )),
        }
    }

    /// New access (and refresh, with `offline_access`) tokens and an ID
    /// token, descending from `from` (a code or a refresh token).
    fn issue(
        &self,
        keys: &[SigningKey],
        client: &OidcClient,
        user: &User,
        from: &OidcToken,
        scopes: Scopes,
        with_nonce: bool,
    ) -> Result<Issued, TokenError> {
        let now = self.clock.now();
        let access = random_token::<32>();
        let record = |kind, lifetime| OidcToken {
            kind,
            client: client.id.clone(),
            user: user.id,
            family: from.family,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: now.plus(lifetime),
            spent_at: None,
            auth_time: from.auth_time,
            nonce: None,
            redirect_uri: None,
            code_challenge: None,
        };
        let mut records = vec![(
            sha256(access.as_bytes()),
            record(TokenKind::Access, self.policy.access_token_lifetime),
        )];
        let refresh = scopes.has("offline_access").then(|| {
            let token = random_token::<32>();
            records.push((
                sha256(token.as_bytes()),
                record(TokenKind::Refresh, self.policy.refresh_token_lifetime),
            ));
            token
        });
        let id_token = if scopes.has("openid") {
            Some(self.id_token(keys, client, user, from, &scopes, &access, with_nonce)?)
        } else {
            None
        };
        Ok(Issued {
            response: TokenResponse {
                access_token: access,
                token_type: "Bearer",
                expires_in: self.policy.access_token_lifetime.as_secs(),
                refresh_token: refresh,
                id_token,
                scope: scopes.to_string(),
            },
            records,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn id_token(
        &self,
        keys: &[SigningKey],
        client: &OidcClient,
        user: &User,
        from: &OidcToken,
        scopes: &Scopes,
        access: &str,
        with_nonce: bool,
    ) -> Result<String, TokenError> {
        let now = self.clock.now();
        let ring = KeyRing::new(keys);
        let key = ring
            .signing(now)
            .ok_or_else(|| TokenError::Internal(anyhow::anyhow!("no signing key")))?;
        let claims = IdClaims {
            iss: self.issuer.to_owned(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            exp: now.plus(self.policy.id_token_lifetime).as_millis() / 1000,
            iat: now.as_millis() / 1000,
            auth_time: from.auth_time.as_millis() / 1000,
            nonce: if with_nonce { from.nonce.clone() } else { None },
            at_hash: Some(jwt::at_hash(access)),
            profile: profile_claims(user, scopes),
        };
        jwt::sign(key, &claims).map_err(TokenError::Internal)
    }

    /// The userinfo endpoint (OIDC Core §5.3): the claims of a live
    /// access token's account, by its scopes. None: not a valid token.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<Value>, StoreError> {
        let now = self.clock.now();
        let hash = sha256(access_token.as_bytes());
        let Some((token, user, client)) = self.store.access_of(&hash, now).await? else {
            return Ok(None);
        };
        if user.status != UserStatus::Active || !client.admits(&user) {
            return Ok(None);
        }
        let mut claims = profile_claims(&user, &token.scopes);
        claims.insert("sub".into(), Value::String(user.id.to_string()));
        Ok(Some(Value::Object(claims)))
    }

    /// Token revocation (RFC 7009 §2): the token ends if it is the
    /// client's; the answer is the same either way.
    pub async fn revoke(&self, client: &OidcClient, token: &str) -> Result<(), StoreError> {
        let ended = self
            .store
            .revoke_token(&sha256(token.as_bytes()), &client.id)
            .await?;
        if ended > 0 {
            tracing::info!(client = %client.id, ended, "an app revoked a token");
        }
        Ok(())
    }

    /// What a logout request (RP-Initiated Logout 1.0 §2) may do: a hint
    /// must be an ID token gatehouse signed (expired is fine); the
    /// redirect only to a URI the app registered for it.
    pub async fn logout_plan(&self, p: &LogoutParams) -> Result<LogoutPlan, LogoutError> {
        let mut hinted = None;
        let mut client_id = p.client_id.clone().filter(|c| !c.is_empty());
        if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            let keys = self.store.signing_keys().await?;
            // A hint we cannot check (forged, or signed by a key deleted
            // since) counts as none: the user is asked.
            if let Some(claims) =
                jwt::verify_ignoring_expiry::<HintClaims>(&keys, self.issuer, hint)
            {
                let aud = claims.aud.first().unwrap_or_default().to_owned();
                if client_id.as_deref().is_some_and(|c| c != aud) {
                    return Err(LogoutError::Invalid(
                        "The app's logout request names two different apps (client_id and the ID token). You are still logged in.",
                    ));
                }
                client_id = Some(aud);
                hinted = claims.sub.parse().ok().map(UserId);
            }
        }
        let client = match client_id {
            Some(id) => self.store.client(&id).await?,
            None => None,
        };
        let redirect = match (&client, p.post_logout_redirect_uri.as_deref()) {
            (Some(c), Some(uri)) if c.allows_post_logout_redirect(uri) => {
                let pairs: Vec<(&str, &str)> = p
                    .state
                    .as_deref()
                    .map(|s| ("state", s))
                    .into_iter()
                    .collect();
                Some(with_query(uri, &pairs))
            }
            _ => None,
        };
        Ok(LogoutPlan {
            hinted,
            app: client.map(|c| c.name),
            redirect,
        })
    }
}

struct Issued {
    response: TokenResponse,
    records: Vec<([u8; 32], OidcToken)>,
}

/// The claims of `user` that `scopes` allow (OIDC Core §5.4; `groups`
/// as most apps read it).
fn profile_claims(user: &User, scopes: &Scopes) -> serde_json::Map<String, Value> {
    let mut claims = serde_json::Map::new();
    if scopes.has("profile") {
        claims.insert("name".into(), json!(user.username.as_str()));
        claims.insert("preferred_username".into(), json!(user.username.as_str()));
    }
    if scopes.has("email") {
        claims.insert("email".into(), json!(user.email.as_str()));
        claims.insert(
            "email_verified".into(),
            json!(user.email_verified_at.is_some()),
        );
    }
    if scopes.has("groups") {
        let groups: Vec<&str> = user.groups.iter().map(|g| g.as_str()).collect();
        claims.insert("groups".into(), json!(groups));
    }
    claims
}

/// `prompt` as sent; None when `none` comes with another value.
fn parse_prompt(raw: Option<&str>) -> Option<Prompt> {
    let mut p = Prompt::default();
    let values: Vec<&str> = raw
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    for v in &values {
        match *v {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            // select_account: there is one account per browser.
            _ => {}
        }
    }
    if p.none && values.len() > 1 {
        return None;
    }
    Some(p)
}

/// `base` (a registered URI, which may carry a query of its own) with
/// `pairs` appended.
fn with_query(base: &str, pairs: &[(&str, &str)]) -> Url {
    // Registered URIs were parsed when they were added.
    let mut url = Url::parse(base).unwrap_or_else(|_| Url::parse("about:blank").expect("a URL"));
    if pairs.is_empty() {
        // Not even a `?`: the registered URI as it is.
        return url;
    }
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_none_stands_alone() {
        assert_eq!(parse_prompt(None), Some(Prompt::default()));
        let p = parse_prompt(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(parse_prompt(Some("none login")).is_none());
        assert!(parse_prompt(Some("none")).unwrap().none);
    }

    #[test]
    fn the_request_to_come_back_to_drops_only_prompt_login() {
        let p = AuthorizeParams {
            client_id: Some("c".into()),
            prompt: Some("login consent".into()),
            state: Some("a&b".into()),
            ..Default::default()
        };
        let q = p.query_without_login_prompt();
        assert!(q.contains("prompt=consent") && !q.contains("login"), "{q}");
        assert!(q.contains("state=a%26b"), "{q}");
        let only_login = AuthorizeParams {
            prompt: Some("login".into()),
            ..Default::default()
        };
        assert!(!only_login.query_without_login_prompt().contains("prompt"));
    }

    #[test]
    fn errors_keep_the_registered_query() {
        let url = with_query(
            "https://app.example/cb?tenant=1",
            &[("code", "x"), ("state", "s t")],
        );
        assert_eq!(
            url.as_str(),
            "https://app.example/cb?tenant=1&code=x&state=s+t"
        );
    }
}
