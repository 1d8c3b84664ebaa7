//! One error type for the HTTP layer. What a person sees is fixed text
//! chosen here; the cause chain of an internal failure goes to the log
//! only, with a reference the admin can search for (STYLE habit 3).

use crate::http::pages;
use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

#[derive(Debug)]
pub enum AppError {
    /// The request is malformed; the text says how to fix it.
    BadRequest(&'static str),
    /// The body is larger than any form of ours.
    TooLarge,
    /// Refused (CSRF, cross-origin, closed feature); the text says why.
    Forbidden(&'static str),
    NotFound,
    /// The request named a host that is not ours (DNS rebinding, a
    /// misconfigured proxy): 421, with the address to use.
    WrongHost {
        ours: String,
    },
    /// Too many signups from everyone together: signing up pauses.
    SignupsPaused {
        retry_after: Duration,
    },
    /// Too many tries from this client.
    TooManyRequests {
        retry_after: Duration,
    },
    /// Password hashing is saturated; come back shortly.
    Busy,
    /// The database does not answer (disk, network): logged, 503.
    Unavailable(anyhow::Error),
    /// Our fault: the cause is logged, never shown.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

/// The one place a store failure becomes what a person sees.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            // Flows turn conflicts into their own answers; one that gets
            // here is a bug.
            other @ StoreError::Conflict(_) => Self::Internal(other.into()),
            StoreError::Other(cause) => Self::Internal(cause),
        }
    }
}

/// Whole seconds to wait, at least one, for a Retry-After header.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::WrongHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            Self::TooManyRequests { .. } | Self::SignupsPaused { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// (title, message) for people.
    pub fn text(&self) -> (&'static str, String) {
        match self {
            Self::BadRequest(msg) => ("That did not work", (*msg).to_string()),
            Self::TooLarge => (
                "Too much data",
                "The form was larger than gatehouse accepts. Shorten what you typed and try again."
                    .into(),
            ),
            Self::Forbidden(msg) => ("Not allowed", (*msg).to_string()),
            Self::NotFound => (
                "Page not found",
                "There is no page at this address. Check the link, or go to the start page.".into(),
            ),
            Self::WrongHost { ours } => (
                "Wrong address",
                format!(
                    "This gatehouse answers at {ours}. Open that address. \
                     (An administrator can add other names with --allowed-hosts.)"
                ),
            ),
            Self::SignupsPaused { retry_after } => (
                "Signing up is paused",
                format!(
                    "Many accounts were made in a short time, so signing up is paused. Wait {} minutes and try again; accounts that exist are not affected.",
                    retry_after_secs(*retry_after).div_ceil(60)
                ),
            ),
            Self::TooManyRequests { retry_after } => (
                "Too many attempts",
                format!(
                    "Too many attempts came from your network. Wait {} seconds and try again.",
                    retry_after_secs(*retry_after)
                ),
            ),
            Self::Busy => (
                "Busy",
                "gatehouse is busy checking other logins. Wait a few seconds and try again.".into(),
            ),
            Self::Unavailable(_) => (
                "Try again shortly",
                "gatehouse cannot reach its database right now. Try again in a minute; if it lasts, tell your administrator.".into(),
            ),
            Self::Internal(_) => ("Something went wrong", String::new()),
        }
    }

    /// Logs internal causes and returns the reference shown to the user.
    fn log(&self) -> Option<String> {
        let cause = match self {
            Self::Internal(cause) => cause,
            Self::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "the database does not answer");
                return None;
            }
            _ => return None,
        };
        let reference = crate::crypto::random_token::<6>();
        tracing::error!(reference = %reference, error = format!("{cause:#}"), "request failed");
        Some(reference)
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after } | Self::SignupsPaused { retry_after } => {
                Some(retry_after_secs(*retry_after))
            }
            Self::Busy => Some(2),
            Self::Unavailable(_) => Some(30),
            _ => None,
        }
    }

    /// The JSON form, for `/api/` routes.
    pub fn into_json(self) -> Response {
        let reference = self.log();
        let (title, mut message) = self.text();
        if let Some(r) = &reference {
            message =
                format!("An internal error occurred; the log has the details under reference {r}.");
        }
        let code = match &self {
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge => "too_large",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::WrongHost { .. } => "wrong_host",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::SignupsPaused { .. } => "signups_paused",
            Self::Busy => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        };
        let body = serde_json::json!({ "error": code, "title": title, "message": message });
        self.with_headers((self.status(), axum::Json(body)).into_response())
    }

    fn with_headers(&self, mut response: Response) -> Response {
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let reference = self.log();
        let (title, message) = self.text();
        let body = pages::error::page(title, &message, reference.as_deref());
        self.with_headers((self.status(), body).into_response())
    }
}

/// The JSON error of the API: `401 {"error":"not_logged_in"}` and friends.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self(AppError::Internal(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_json()
    }
}
