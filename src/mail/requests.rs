//! The queue of requests that may or may not lead to a mail, handled off
//! the request path: "forgot password" and "send the verification link
//! again" for an address that may not have an account, and the notice to
//! the owner of a locked account. The page answers at once, the same way
//! in the same time whatever the address (SPEC §2, §4); the look-up, the
//! token and the mail happen afterwards (`services::mail_requests`).

use crate::clock::Timestamp;
use crate::domain::{EmailAddress, UserId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

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
    /// Something happened to an account's second factors: its owner is
    /// told (a recovery code used, factors reset by an admin, added or
    /// removed), so that a change that was not theirs does not go unseen.
    FactorNotice { user: UserId, notice: FactorNotice },
}

/// What `MailRequest::FactorNotice` tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactorNotice {
    RecoveryCodeUsed { remaining: usize, ip: String },
    ResetByAdmin,
    Added { what: &'static str },
    Removed { what: &'static str },
}

/// The sending side, held in `AppState`.
pub struct MailRequests {
    tx: mpsc::Sender<MailRequest>,
    submitted: AtomicU64,
    handled: Arc<watch::Sender<u64>>,
}

/// The receiving side, held by the task that handles requests.
pub struct MailQueue {
    rx: mpsc::Receiver<MailRequest>,
    handled: Arc<watch::Sender<u64>>,
}

/// Requests waiting beyond this are dropped (a flood): their pages have
/// answered already, and the real owner can ask again.
const QUEUE: usize = 1024;

impl MailRequests {
    pub fn new() -> (Self, MailQueue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handled = Arc::new(watch::Sender::new(0));
        let queue = MailQueue {
            rx,
            handled: Arc::clone(&handled),
        };
        let requests = Self {
            tx,
            submitted: AtomicU64::new(0),
            handled,
        };
        (requests, queue)
    }

    pub fn submit(&self, request: MailRequest) {
        if self.tx.try_send(request).is_err() {
            tracing::warn!("too many mail requests at once; one was dropped");
        } else {
            self.submitted.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Resolves once every request submitted before the call has been
    /// handled (its mail, if any, is in the outbox): for shutdown and
    /// tests, instead of polling.
    pub async fn settled(&self) {
        let target = self.submitted.load(Ordering::SeqCst);
        let mut handled = self.handled.subscribe();
        // The sender lives in `self`: the wait cannot end in an error.
        let _ = handled.wait_for(|n| *n >= target).await;
    }
}

impl MailQueue {
    pub async fn next(&mut self) -> Option<MailRequest> {
        self.rx.recv().await
    }

    /// A waiting request, if there is one (without waiting).
    pub fn try_next(&mut self) -> Option<MailRequest> {
        self.rx.try_recv().ok()
    }

    /// Marks the request `next` returned as handled.
    pub fn done(&self) {
        self.handled.send_modify(|n| *n += 1);
    }
}
