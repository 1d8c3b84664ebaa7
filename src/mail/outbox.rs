//! The outbox worker: delivers stored mail, oldest first, retrying with
//! exponential backoff (30 s doubling to one hour) for about a day before
//! it gives a mail up (kept, marked failed, and logged). It wakes when a
//! mail is stored (`Outbox::wake`) and every few seconds; it reads time
//! from the app's clock, so tests move retries along without sleeping.

use crate::app::AppState;
use crate::clock::Timestamp;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Attempts before a mail is given up.
pub const MAX_ATTEMPTS: u32 = 30;

/// The wait after the `attempts`-th failure.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
    Duration::from_secs(secs.min(3600))
}

#[derive(Default)]
pub struct Outbox {
    notify: Notify,
}

impl Outbox {
    /// Tells the worker that mail is waiting (or that time moved).
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// Runs until `stop` changes.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = deliver_due(&state).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "the outbox could not be read; will retry"
            );
        }
        tokio::select! {
            _ = state.outbox.notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sends every mail that is due now; returns how many went out.
pub async fn deliver_due(state: &AppState) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let now = state.clock.now();
        let due = state
            .blocking(move |s| s.due_mail(now, 16))
            .await
            .map_err(anyhow_of)?;
        if due.is_empty() {
            return Ok(sent);
        }
        for entry in due {
            match state.mailer.send(&entry.mail).await {
                Ok(()) => {
                    state
                        .blocking(move |s| s.mail_sent(entry.id))
                        .await
                        .map_err(anyhow_of)?;
                    tracing::info!(id = entry.id, subject = %entry.mail.subject, "mail sent");
                    state.metrics.mail(true);
                    sent += 1;
                }
                Err(e) => {
                    state.metrics.mail(false);
                    let attempts = entry.attempts + 1;
                    let next: Option<Timestamp> = (attempts < MAX_ATTEMPTS)
                        .then(|| state.clock.now().plus(backoff(attempts)));
                    let reason = e.0.clone();
                    state
                        .blocking(move |s| s.mail_failed(entry.id, attempts, next, reason))
                        .await
                        .map_err(anyhow_of)?;
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

pub(crate) fn anyhow_of(e: crate::error::AppError) -> anyhow::Error {
    match e {
        crate::error::AppError::Internal(e) => e,
        other => anyhow::anyhow!("{other:?}"),
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
