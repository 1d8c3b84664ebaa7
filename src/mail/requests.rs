//! The queue of requests that may or may not lead to a mail, handled off
//! the request path: "forgot password" and "send the verification link
//! again" for an address that may not have an account, and the notice to
//! the owner of a locked account. The page answers at once, the same way
//! in the same time whatever the address (SPEC §2, §4); the look-up, the
//! token and the mail happen afterwards (`services::mail_requests`).

use crate::clock::Timestamp;
use crate::domain::{EmailAddress, UserId};
use tokio::sync::mpsc;

pub enum MailRequest {
    /// A forgotten password, for an address that may have no account.
    Reset { email: EmailAddress },
    /// A new verification link, for an address that may have no account.
    Verify { email: EmailAddress },
    /// A real account was just locked.
    LockNotice {
        user: UserId,
        ip: String,
        until: Timestamp,
    },
}

/// The sending side, held in `AppState`.
pub struct MailRequests {
    tx: mpsc::Sender<MailRequest>,
}

/// Requests waiting beyond this are dropped (a flood): their pages have
/// answered already, and the real owner can ask again.
const QUEUE: usize = 1024;

impl MailRequests {
    pub fn new() -> (Self, mpsc::Receiver<MailRequest>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, rx)
    }

    pub fn submit(&self, request: MailRequest) {
        if self.tx.try_send(request).is_err() {
            tracing::warn!("too many mail requests at once; one was dropped");
        }
    }
}
