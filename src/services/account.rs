//! A logged-in user's own account: what the Account and Summary pages show
//! (sessions, login history), a new password (the current one first,
//! limited per account), ending one of one's other sessions, logging out.

use super::Links;
use super::record;
use crate::auth::password::Passwords;
use crate::auth::ratelimit::KeyedLimiter;
use crate::auth::session::SessionCache;
use crate::clock::Clock;
use crate::domain::oidc::OidcGrant;
use crate::domain::session::{Session, SessionKey, SessionPolicy, SessionToken};
use crate::domain::{AuditEvent, AuditKind, LoginAttempt, NewPassword, Password, User, UserId};
use crate::mail::messages;
use crate::mail::outbox::Outbox;
use crate::store::{Store, StoreResult};
use std::net::IpAddr;
use std::time::Duration;

pub struct Account<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a Passwords,
    pub clock: &'a Clock,
    pub sessions: &'a SessionCache,
    pub session_policy: SessionPolicy,
    pub outbox: &'a Outbox,
    pub links: &'a Links,
    /// Tries to change the password per account.
    pub password_change_limiter: &'a KeyedLimiter<UserId>,
    pub passkeys: &'a crate::auth::passkeys::Passkeys,
}

/// What the Account and Summary pages show about the account.
pub struct Overview {
    /// Newest first by last use.
    pub sessions: Vec<(SessionKey, Session)>,
    /// Sessions not expired now.
    pub active_sessions: usize,
    /// Newest first.
    pub history: Vec<LoginAttempt>,
    /// Failed tries between the previous login and this one.
    pub failed_since_last_login: usize,
}

/// What was wrong with the current password of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Current {
    Missing,
    Wrong,
    Right,
}

pub enum PasswordChange {
    /// Set; this many other sessions ended, and the one in use goes on
    /// under `token` (the browser's cookie must be replaced).
    Changed {
        ended: usize,
        token: SessionToken,
    },
    /// Not set: the current password (and/or the new one, which the caller
    /// checked) was not right.
    Refused {
        current: Current,
    },
    TooManyTries {
        wait: Duration,
    },
    Busy,
}

impl Account<'_> {
    pub async fn overview(&self, user: UserId) -> StoreResult<Overview> {
        let now = self.clock.now();
        let mut sessions = self.store.sessions_of(user).await?;
        sessions.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
        let active_sessions = sessions
            .iter()
            .filter(|(k, s)| {
                !self
                    .session_policy
                    .is_expired(s, self.sessions.last_seen(k, s), now)
            })
            .count();
        let history = self.store.login_history(user).await?;
        // Newest first: this login's success, then the failures before
        // it, back to the previous success.
        let failed_since_last_login = history
            .iter()
            .skip_while(|a| !a.ok)
            .skip(1)
            .take_while(|a| !a.ok)
            .count();
        Ok(Overview {
            sessions,
            active_sessions,
            history,
            failed_since_last_login,
        })
    }

    /// Changes the password of `me`, logged in with session `keep`, after
    /// checking `current`. `new` is None when the new password broke the
    /// rule (the caller has the messages): the current one is still
    /// checked, so that its answer is complete.
    pub async fn change_password(
        &self,
        me: &User,
        keep: SessionKey,
        current: Option<Password>,
        new: Option<NewPassword>,
        ip: IpAddr,
    ) -> StoreResult<PasswordChange> {
        // A stolen session must not become a way to guess the password.
        if let Err(wait) = self.password_change_limiter.check(me.id) {
            return Ok(PasswordChange::TooManyTries { wait });
        }
        let Some(current) = current else {
            return Ok(PasswordChange::Refused {
                current: Current::Missing,
            });
        };
        let Ok(right) = self
            .passwords
            .verify(&current, Some(me.password_hash.clone()))
            .await
        else {
            return Ok(PasswordChange::Busy);
        };
        let (Some(new), true) = (new, right) else {
            let current = if right {
                Current::Right
            } else {
                Current::Wrong
            };
            return Ok(PasswordChange::Refused { current });
        };
        let Ok(hash) = self.passwords.hash(&new).await else {
            return Ok(PasswordChange::Busy);
        };
        let now = self.clock.now();
        let notice = messages::password_changed(
            &me.email,
            me.username.as_str(),
            now,
            &self.links.login_from_mail(),
        );
        let token = SessionToken::generate();
        let ended = self
            .store
            .change_password(me.id, hash, keep, token.key(), notice, now)
            .await?;
        self.sessions.forget(&keep);
        self.outbox.wake();
        tracing::info!(user = %me.id, %ip, sessions_ended = ended, "password changed");
        record(
            self.store,
            AuditEvent::new(now, AuditKind::PasswordChanged, "self")
                .user(me.id)
                .ip(ip),
        )
        .await;
        Ok(PasswordChange::Changed { ended, token })
    }

    /// Ends another session of `me` (not the one in use: that is Log Out).
    /// False when `key` is not one of the user's other sessions.
    pub async fn end_session(
        &self,
        me: UserId,
        current: SessionKey,
        key: SessionKey,
        ip: IpAddr,
    ) -> StoreResult<bool> {
        let owned = self
            .store
            .session(&key)
            .await?
            .is_some_and(|s| s.user == me);
        if !owned || key == current {
            return Ok(false);
        }
        self.sessions.forget(&key);
        self.store.delete_session(&key).await?;
        record(
            self.store,
            AuditEvent::new(self.clock.now(), AuditKind::SessionRevoked, "self")
                .user(me)
                .ip(ip),
        )
        .await;
        Ok(true)
    }

    /// "Log out everywhere": ends every session of `me`, the one in use
    /// too (ASVS 7.4.5). Returns how many ended.
    pub async fn logout_everywhere(&self, me: UserId, ip: IpAddr) -> StoreResult<usize> {
        for (key, _) in self.store.sessions_of(me).await? {
            self.sessions.forget(&key);
        }
        let ended = self.store.end_sessions(me).await?;
        record(
            self.store,
            AuditEvent::new(self.clock.now(), AuditKind::Logout, "self")
                .user(me)
                .ip(ip)
                .detail(format!("everywhere: {ended} session(s) ended")),
        )
        .await;
        Ok(ended)
    }

    /// Ends the session on the server (SPEC §4), not only in the browser.
    /// The apps the user allowed (OpenID Connect), with their names; an
    /// app removed meanwhile is left out.
    pub async fn apps(&self, me: UserId) -> StoreResult<Vec<(String, OidcGrant)>> {
        let mut apps = Vec::new();
        for grant in self.store.grants_of(me).await? {
            if let Some(client) = self.store.client(&grant.client).await? {
                apps.push((client.name, grant));
            }
        }
        apps.sort_by_key(|a| a.0.to_lowercase());
        Ok(apps)
    }

    /// Takes back what the user allowed an app: the grant and every token
    /// the app holds for them. False when there was none.
    pub async fn revoke_app(&self, me: UserId, client: &str, ip: IpAddr) -> StoreResult<bool> {
        let revoked = self.store.revoke_grant(me, client).await?;
        if revoked {
            record(
                self.store,
                AuditEvent::new(self.clock.now(), AuditKind::SessionRevoked, "self")
                    .user(me)
                    .ip(ip)
                    .subject(format!("oidc client {client}"))
                    .detail("app access revoked on the Account page"),
            )
            .await;
        }
        Ok(revoked)
    }

    pub async fn logout(&self, key: SessionKey) -> StoreResult<()> {
        self.sessions.forget(&key);
        let session = self.store.session(&key).await?;
        self.store.delete_session(&key).await?;
        if let Some(session) = session {
            record(
                self.store,
                AuditEvent::new(self.clock.now(), AuditKind::Logout, "self").user(session.user),
            )
            .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::session::SessionToken;
    use crate::domain::{CommonPasswords, LoginRecord, PasswordPolicy, UserStatus};
    use crate::services::testkit::{Kit, PASSWORD};
    use crate::store::CompletedLogin;
    use std::num::NonZeroU32;

    fn account<'a>(kit: &'a Kit, limiter: &'a KeyedLimiter<UserId>) -> Account<'a> {
        Account {
            store: kit.store.as_ref(),
            passwords: &kit.passwords,
            clock: &kit.clock,
            sessions: &kit.sessions,
            session_policy: SessionPolicy {
                idle_timeout: Duration::from_secs(3600),
                lifetime: Duration::from_secs(7200),
            },
            outbox: &kit.outbox,
            links: &kit.links,
            password_change_limiter: limiter,
            passkeys: &kit.passkeys,
        }
    }

    async fn log_in(kit: &Kit, user: &User) -> SessionKey {
        let key = SessionToken::generate().key();
        let now = kit.clock.now();
        kit.store
            .complete_login(CompletedLogin {
                user: user.id,
                key,
                session: Session {
                    user: user.id,
                    created_at: now,
                    last_seen: now,
                    ip: "192.0.2.1".into(),
                    user_agent: String::new(),
                },
                replaces: None,
                session_cap: 10,
                reset_lockouts: Vec::new(),
                login: LoginRecord {
                    at: now,
                    ip: "192.0.2.1".into(),
                },
                new_password_hash: None,
                audit: AuditEvent::new(now, AuditKind::LoginOk, "self").user(user.id),
            })
            .await
            .unwrap();
        key
    }

    fn new_password(text: &str) -> Option<NewPassword> {
        NewPassword::parse(
            PasswordPolicy::Seed { min_len: 9 },
            &CommonPasswords::embedded(),
            text.into(),
            &[],
        )
        .ok()
    }

    #[tokio::test]
    async fn a_change_needs_the_current_password_and_ends_the_other_sessions() {
        let kit = Kit::new();
        let limiter = KeyedLimiter::new(
            NonZeroU32::new(5).unwrap(),
            Duration::from_secs(900),
            kit.clock.clone(),
        );
        let ivy = kit.user("ivy@example.com", "ivy", UserStatus::Active).await;
        let here = log_in(&kit, &ivy).await;
        log_in(&kit, &ivy).await;
        let ip = "192.0.2.1".parse().unwrap();
        let wrong = Password::parse("Not-it-at-all1".into()).ok();
        let o = account(&kit, &limiter)
            .change_password(&ivy, here, wrong, new_password("N3w-horse-shoe!"), ip)
            .await
            .unwrap();
        assert!(matches!(
            o,
            PasswordChange::Refused {
                current: Current::Wrong
            }
        ));
        let o = account(&kit, &limiter)
            .change_password(&ivy, here, None, new_password("N3w-horse-shoe!"), ip)
            .await
            .unwrap();
        assert!(matches!(
            o,
            PasswordChange::Refused {
                current: Current::Missing
            }
        ));
        let right = Password::parse(PASSWORD.into()).ok();
        let o = account(&kit, &limiter)
            .change_password(&ivy, here, right, new_password("N3w-horse-shoe!"), ip)
            .await
            .unwrap();
        let PasswordChange::Changed { ended: 1, token } = o else {
            panic!("changed, one other session ended");
        };
        // The session in use goes on under a new token only.
        let left = kit.store.sessions_of(ivy.id).await.unwrap();
        assert_eq!(
            left.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [token.key()]
        );
        assert_ne!(token.key(), here);
        assert_eq!(kit.store.outbox().await.unwrap().len(), 1, "the notice");
    }

    #[tokio::test]
    async fn tries_to_change_the_password_are_limited_per_account() {
        let kit = Kit::new();
        let limiter = KeyedLimiter::new(
            NonZeroU32::new(2).unwrap(),
            Duration::from_secs(900),
            kit.clock.clone(),
        );
        let jo = kit.user("jo@example.com", "joe", UserStatus::Active).await;
        let here = log_in(&kit, &jo).await;
        let ip = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            let wrong = Password::parse("Not-it-at-all1".into()).ok();
            account(&kit, &limiter)
                .change_password(&jo, here, wrong, None, ip)
                .await
                .unwrap();
        }
        let right = Password::parse(PASSWORD.into()).ok();
        let o = account(&kit, &limiter)
            .change_password(&jo, here, right, new_password("N3w-horse-shoe!"), ip)
            .await
            .unwrap();
        assert!(matches!(o, PasswordChange::TooManyTries { .. }));
    }

    #[tokio::test]
    async fn only_ones_own_other_sessions_can_be_ended() {
        let kit = Kit::new();
        let limiter = KeyedLimiter::new(
            NonZeroU32::new(5).unwrap(),
            Duration::from_secs(900),
            kit.clock.clone(),
        );
        let kim = kit.user("kim@example.com", "kim", UserStatus::Active).await;
        let lee = kit.user("lee@example.com", "lee", UserStatus::Active).await;
        let (here, there) = (log_in(&kit, &kim).await, log_in(&kit, &kim).await);
        let theirs = log_in(&kit, &lee).await;
        let ip = "192.0.2.1".parse().unwrap();
        let svc = account(&kit, &limiter);
        assert!(
            !svc.end_session(kim.id, here, here, ip).await.unwrap(),
            "not the one in use"
        );
        assert!(
            !svc.end_session(kim.id, here, theirs, ip).await.unwrap(),
            "not another's"
        );
        assert!(svc.end_session(kim.id, here, there, ip).await.unwrap());
        assert_eq!(svc.overview(kim.id).await.unwrap().active_sessions, 1);
    }
}
