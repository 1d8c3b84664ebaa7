//! The outbox worker: delivers stored mail, oldest first, retrying with
//! exponential backoff (30 s doubling to one hour) for about a day before
//! it gives a mail up (kept, marked failed, and logged). It wakes when a
//! mail is stored (`Outbox::wake`) and every few seconds; it reads time
//! from the app's clock, so tests move retries along without sleeping.

use super::Mailer;
use crate::clock::{Clock, Timestamp};
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Attempts before a mail is given up.
pub const MAX_ATTEMPTS: u32 = 30;

/// The wait after the `attempts`-th failure.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
    Duration::from_secs(secs.min(3600))
}

/// The worker's doorbell, and a count of its rounds so that others can
/// wait for one (`flushed`) instead of polling.
pub struct Outbox {
    notify: Notify,
    started: AtomicU64,
    done: watch::Sender<u64>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            started: AtomicU64::new(0),
            done: watch::Sender::new(0),
        }
    }
}

impl Outbox {
    /// Tells the worker that mail is waiting (or that time moved).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Wakes the worker and resolves once a delivery round that began
    /// after this call has finished: everything due now has been tried.
    pub async fn flushed(&self) {
        let target = self.started.load(Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        self.wake();
        // The sender lives in `self`: the wait cannot end in an error.
        let _ = done.wait_for(|n| *n >= target).await;
    }
}

/// Mails one sender takes at a time.
pub const BATCH: usize = 4;

/// How long a sender holds the mails it takes: each may use two SMTP
/// timeouts (connecting, then the answer), and some slack.
pub fn hold_for(smtp_timeout: Duration) -> Duration {
    smtp_timeout * 2 * u32::try_from(BATCH).unwrap_or(u32::MAX) + Duration::from_secs(30)
}

/// What the worker needs: the store, the mailer, the clock, the counters.
#[derive(Clone)]
pub struct OutboxWorker {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<Mailer>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub outbox: Arc<Outbox>,
    /// How long this sender holds the mails it takes (`due_mail`): longer
    /// than sending them can take, so that no other replica sends one
    /// meanwhile.
    pub hold: Duration,
}

impl OutboxWorker {
    /// Runs until `stop` changes.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.outbox.started.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the outbox could not be read; will retry"
                );
            }
            self.outbox.done.send_modify(|n| *n += 1);
            tokio::select! {
                _ = self.outbox.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Sends every mail that is due now; returns how many went out.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let due = self.store.due_mail(now, now.plus(self.hold), BATCH).await?;
            if due.is_empty() {
                return Ok(sent);
            }
            for entry in due {
                match self.mailer.send(&entry.mail).await {
                    Ok(()) => {
                        self.store.mail_sent(entry.id).await?;
                        tracing::info!(id = entry.id, subject = %entry.mail.subject, "mail sent");
                        sent += 1;
                    }
                    Err(e) => {
                        self.metrics.mail_failed();
                        let attempts = entry.attempts + 1;
                        let next: Option<Timestamp> = (attempts < MAX_ATTEMPTS)
                            .then(|| self.clock.now().plus(backoff(attempts)));
                        self.store
                            .mail_failed(entry.id, attempts, next, e.0.clone())
                            .await?;
                        match next {
                            Some(at) => {
                                tracing::warn!(id = entry.id, attempts, retry_at = %at, reason = %e, "mail not sent; will retry")
                            }
                            None => {
                                tracing::error!(id = entry.id, attempts, reason = %e, "mail given up after repeated failures")
                            }
                        }
                    }
                }
            }
            // Failed mails are not due again at once, so this loop ends.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(9), Duration::from_secs(3600));
        assert_eq!(backoff(40), Duration::from_secs(3600));
    }
}
