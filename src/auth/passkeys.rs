//! WebAuthn ceremonies through webauthn-rs (issue 15): the relying party
//! is the base URL's host, the only origin the base URL. User verification
//! is required (a passkey is two factors in one: the device and its PIN or
//! biometric), so a passkey alone may log in.
//!
//! A user handle is the account's ID and a random half kept with its
//! factors (`SecondFactors::webauthn_user`): the handle a passkey returns
//! names the account without a search, and a new account that gets an old
//! ID does not match an old passkey.

use crate::domain::UserId;
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication,
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder,
};

/// Why a ceremony failed, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(
        "Passkeys need a base URL with a host name (such as https://login.example.com), not an IP address."
    )]
    Unavailable,
    #[error("The passkey's answer could not be read. Try again.")]
    Malformed,
    #[error(
        "The passkey's answer did not check out (a wrong device, or the request timed out). Try again."
    )]
    Refused,
}

pub struct Passkeys {
    webauthn: Option<Webauthn>,
}

/// A challenge for the browser (JSON for `navigator.credentials`), and the
/// state to keep on the server until the answer comes.
pub struct Challenge {
    pub options: serde_json::Value,
    pub state: String,
}

impl Passkeys {
    /// Passkeys for `base_url`; unavailable (with the reason logged once)
    /// when its host is an IP address, which WebAuthn does not allow.
    pub fn new(base_url: &Url) -> Self {
        let webauthn = base_url.domain().and_then(|host| {
            WebauthnBuilder::new(host, base_url)
                .and_then(|b| b.rp_name("gatehouse").build())
                .map_err(|e| tracing::warn!(error = %e, "passkeys are off: the base URL is no WebAuthn origin"))
                .ok()
        });
        if webauthn.is_none() {
            tracing::info!(
                base_url = %base_url,
                "passkeys are off: WebAuthn needs a base URL with a host name, not an IP address"
            );
        }
        Self { webauthn }
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().ok_or(PasskeyError::Unavailable)
    }

    /// Registration of a new passkey for an account (its others excluded,
    /// so that one device is not added twice). A discoverable credential is
    /// asked for (preferred), so that it can log in without an ID.
    pub fn start_registration(
        &self,
        user: UserId,
        handle_half: u64,
        name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<Challenge, PasskeyError> {
        let (ccr, state) = self
            .webauthn()?
            .start_passkey_registration(
                Uuid::from_u64_pair(user.0, handle_half),
                name,
                name,
                Some(exclude),
            )
            .map_err(|_| PasskeyError::Refused)?;
        let mut options = to_json(&ccr)?;
        // webauthn-rs asks for a credential that is not discoverable; the
        // browser may make one that is (and a software key may not).
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), "preferred".into());
        }
        Ok(Challenge {
            options,
            state: to_text(&state)?,
        })
    }

    pub fn finish_registration(&self, answer: &str, state: &str) -> Result<Passkey, PasskeyError> {
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| PasskeyError::Malformed)?;
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(|_| PasskeyError::Malformed)?;
        self.webauthn()?
            .finish_passkey_registration(&answer, &state)
            .map_err(|_| PasskeyError::Refused)
    }

    /// A second step: one of the account's passkeys.
    pub fn start_authentication(&self, keys: &[Passkey]) -> Result<Challenge, PasskeyError> {
        let (rcr, state) = self
            .webauthn()?
            .start_passkey_authentication(keys)
            .map_err(|_| PasskeyError::Refused)?;
        Ok(Challenge {
            options: to_json(&rcr)?,
            state: to_text(&state)?,
        })
    }

    pub fn finish_authentication(
        &self,
        answer: &str,
        state: &str,
    ) -> Result<AuthenticationResult, PasskeyError> {
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| PasskeyError::Malformed)?;
        let state: PasskeyAuthentication =
            serde_json::from_str(state).map_err(|_| PasskeyError::Malformed)?;
        self.webauthn()?
            .finish_passkey_authentication(&answer, &state)
            .map_err(|_| PasskeyError::Refused)
    }

    /// A login without an ID: any passkey of this site. `autofill`: the
    /// browser offers it in the ID field's suggestions (conditional
    /// mediation) instead of a dialog.
    pub fn start_discoverable(&self, autofill: bool) -> Result<Challenge, PasskeyError> {
        let (mut rcr, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .map_err(|_| PasskeyError::Refused)?;
        if !autofill {
            rcr.mediation = None;
        }
        Ok(Challenge {
            options: to_json(&rcr)?,
            state: to_text(&state)?,
        })
    }

    /// The account a passkey's answer names, and its handle's random half.
    pub fn identify(
        &self,
        answer: &str,
    ) -> Result<(PublicKeyCredential, UserId, u64), PasskeyError> {
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| PasskeyError::Malformed)?;
        let (handle, _) = self
            .webauthn()?
            .identify_discoverable_authentication(&answer)
            .map_err(|_| PasskeyError::Refused)?;
        let (user, half) = handle.as_u64_pair();
        Ok((answer, UserId(user), half))
    }

    pub fn finish_discoverable(
        &self,
        answer: &PublicKeyCredential,
        state: &str,
        key: &Passkey,
    ) -> Result<AuthenticationResult, PasskeyError> {
        let state: DiscoverableAuthentication =
            serde_json::from_str(state).map_err(|_| PasskeyError::Malformed)?;
        self.webauthn()?
            .finish_discoverable_authentication_v2(answer, state, key)
            .map_err(|_| PasskeyError::Refused)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, PasskeyError> {
    serde_json::to_value(v).map_err(|_| PasskeyError::Malformed)
}

fn to_text<T: serde::Serialize>(v: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|_| PasskeyError::Malformed)
}

/// The options types, for tests that answer them with a software passkey.
pub type RegistrationOptions = CreationChallengeResponse;
pub type LoginOptions = RequestChallengeResponse;
