//! Requests that may or may not lead to a mail, handled off the request
//! path: "forgot password" and "send the verification link again" for an
//! address that may not have an account, and the notice to the owner of a
//! locked account. The page answers at once, the same way in the same time
//! whatever the address (SPEC §2, §4); the look-up, the token and the
//! mail happen here, afterwards.

use crate::app::AppState;
use crate::auth::ratelimit::KeyedLimiter;
use crate::clock::Timestamp;
use crate::domain::{EmailAddress, LoginId, UserId, UserStatus};
use crate::mail::messages;
use crate::store::{AuditEvent, AuditKind, OneTimeToken, TokenPurpose};
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

/// Handles requests until `stop` changes.
pub async fn run(
    state: AppState,
    mut rx: mpsc::Receiver<MailRequest>,
    mut stop: watch::Receiver<bool>,
) {
    let per_address = &state.mail_address_limiter;
    loop {
        let request = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = stop.changed() => return,
        };
        if let Err(e) = handle(&state, per_address, request).await {
            tracing::warn!(error = format!("{e:#}"), "a mail request failed");
        }
    }
}

async fn handle(
    state: &AppState,
    per_address: &KeyedLimiter<String>,
    request: MailRequest,
) -> anyhow::Result<()> {
    let (purpose, user, mail_for) = match request {
        MailRequest::Reset { email } | MailRequest::Verify { email }
            if per_address.check(email.to_string()).is_err() =>
        {
            tracing::info!("a mail request for an address was dropped: too many for it recently");
            return Ok(());
        }
        MailRequest::Reset { email } => {
            if !state.config.password_reset {
                return Ok(());
            }
            let Some(user) = find(state, &email)? else {
                return Ok(());
            };
            if user.status == UserStatus::Disabled {
                return Ok(());
            }
            (TokenPurpose::Reset, user, Kind::Reset)
        }
        MailRequest::Verify { email } => {
            let Some(user) = find(state, &email)? else {
                return Ok(());
            };
            if user.status != UserStatus::PendingVerification {
                return Ok(());
            }
            (TokenPurpose::Verify, user, Kind::Verify)
        }
        MailRequest::LockNotice { user, ip, until } => {
            let Some(user) = state.store.user(user)? else {
                return Ok(());
            };
            if !state.config.password_reset {
                let mail = messages::lock_notice(
                    &user.email,
                    user.username.as_str(),
                    state.config.lockout.threshold,
                    until,
                    &ip,
                    None,
                );
                let now = state.clock.now();
                state
                    .blocking(move |s| s.enqueue_mail(mail, now))
                    .await
                    .map_err(crate::mail::outbox::anyhow_of)?;
                state.outbox.wake();
                return Ok(());
            }
            (TokenPurpose::Reset, user, Kind::Lock { ip, until })
        }
    };
    let now = state.clock.now();
    let secret = crate::auth::random_token::<32>();
    let hash = crate::auth::sha256(secret.as_bytes());
    let ttl = match purpose {
        TokenPurpose::Reset => state.config.reset_token_ttl,
        TokenPurpose::Verify => state.config.verify_token_ttl,
    };
    let (name, to) = (user.username.as_str(), &user.email);
    let mail = match mail_for {
        Kind::Reset => messages::reset(
            to,
            name,
            &state.link("reset-password", "token", &secret),
            ttl,
        ),
        Kind::Verify => {
            messages::verification(to, name, &state.link("verify-email", "code", &secret), ttl)
        }
        Kind::Lock { ip, until } => messages::lock_notice(
            to,
            name,
            state.config.lockout.threshold,
            until,
            &ip,
            Some(&state.link("reset-password", "token", &secret)),
        ),
    };
    let token = OneTimeToken {
        purpose,
        user: user.id,
        created_at: now,
        expires_at: now.plus(ttl),
    };
    let user_id = user.id;
    state
        .blocking(move |s| s.issue_token(hash, token, Some(mail)))
        .await
        .map_err(crate::mail::outbox::anyhow_of)?;
    state.outbox.wake();
    if purpose == TokenPurpose::Reset {
        state
            .audit(AuditEvent::new(now, AuditKind::ResetRequested, "anonymous").user(user_id))
            .await;
    }
    Ok(())
}

enum Kind {
    Reset,
    Verify,
    Lock { ip: String, until: Timestamp },
}

fn find(state: &AppState, email: &EmailAddress) -> anyhow::Result<Option<crate::domain::User>> {
    let id = LoginId::parse(email.as_str()).map_err(|m| anyhow::anyhow!("{m}"))?;
    state.store.user_by_login_id(&id)
}
