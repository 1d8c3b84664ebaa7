//! A mail as the outbox keeps it: the message (to, subject, text, HTML)
//! and its delivery state.

use super::EmailAddress;
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// One message: a text and an HTML part, to one address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A mail waiting in (or given up by) the outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub mail: Mail,
    pub created_at: Timestamp,
    pub attempts: u32,
    /// None: given up after too many failures (kept for the admin).
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// A sender holds it until then (`MailStore::due_mail`).
    #[serde(default)]
    pub held_until: Option<Timestamp>,
}
