//! The store contract: what every backend must do, written once against
//! `&dyn Store` and run on each backend unchanged (`contract_suite!` in
//! the backend's tests, with a function that opens a fresh, empty store).
//! A new backend passes these before anything else uses it.

use crate::clock::Timestamp;
use crate::domain::lockout::{
    AfterFailure, FailedLogin, FailureOutcome, Gate, LockoutPolicy, LockoutState,
};
use crate::domain::session::{Session, SessionKey, SessionPolicy};
use crate::domain::{
    AuditEvent, AuditKind, EmailAddress, Group, GroupName, InviteProblem, LOGIN_HISTORY, LoginId,
    LoginRecord, Mail, Membership, OneTimeToken, Role, TokenProblem, TokenPurpose, User, UserId,
    UserStatus, Username, lockout_keys_of,
};
use crate::store::{
    CompletedLogin, FirstRun, NewInvite, NewUser, Redemption, Store, StoreError, Unique,
};
use std::time::Duration;

mod oidc;
pub use oidc::*;
mod second_factors;
pub use second_factors::*;

/// Generates one `#[tokio::test]` per contract for a backend. `$open` is
/// an async fn returning `(guard, store)`: the guard (a temp dir, a
/// database) lives as long as the test.
#[macro_export]
macro_rules! contract_suite {
    ($open:path) => {
        $crate::contract_suite!(@tests $open;
            users_are_found_by_email_or_username_in_any_case,
            taken_emails_and_usernames_are_conflicts_ignoring_case,
            an_invitation_is_spent_with_its_account_and_never_overspent,
            a_bad_invitation_is_refused_before_names_are_checked,
            the_first_run_invitation_is_replaced_until_an_admin_exists,
            failures_are_counted_and_lock_after_the_threshold,
            the_account_counter_counts_every_name_in_one_write,
            admin_locks_are_set_cleared_and_idle_counters_purged,
            a_login_makes_a_session_and_resets_the_counters,
            sessions_are_read_ended_touched_and_purged,
            the_login_history_keeps_the_newest_tries,
            a_password_change_keeps_only_the_current_session,
            a_login_beyond_the_cap_ends_the_oldest_sessions,
            tokens_replace_older_ones_and_are_spent_once,
            a_reset_lifts_failure_locks_but_not_an_admins,
            a_reset_leaves_a_disabled_account_out,
            the_outbox_delivers_oldest_first_and_retries,
            audit_events_are_filtered_newest_first_and_purged,
            deleting_an_account_removes_what_belongs_to_it,
            changes_to_missing_accounts_say_so,
            groups_are_kept_on_the_account_and_in_the_group,
            invitations_and_new_accounts_join_only_groups_that_exist,
            deleting_a_group_or_an_account_ends_its_memberships,
            hash_prefixes_are_counted_without_the_accounts,
            unconfirmed_accounts_are_found_by_age,
            the_session_check_sees_every_change_at_once,
            oidc_clients_are_unique_by_name_and_removed_with_their_grants_and_tokens,
            codes_and_refresh_tokens_are_spent_once_and_a_reuse_ends_the_family,
            revoking_a_refresh_token_ends_its_family_for_its_own_client_only,
            an_accounts_app_tokens_end_with_its_sessions_and_its_grants_with_it,
            grants_are_remembered_per_user_and_app_and_revoked_with_their_tokens,
            the_first_signing_key_is_made_once,
            second_factors_change_in_one_transaction_and_go_with_the_account,
            half_logins_are_taken_once_expire_and_go_with_the_account,
        );
    };
    (@tests $open:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_guard, store) = $open().await;
            $crate::store::contract::$name(&*store).await;
        }
    )*};
}

const T0: i64 = 1_767_225_600_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn new_user(email: &str, name: &str) -> NewUser {
    NewUser {
        email: EmailAddress::parse(email).unwrap(),
        username: Username::parse(name).unwrap(),
        password_hash: "hash-0".into(),
        role: Role::User,
        status: UserStatus::Active,
        created_at: at(0),
        consent: None,
        groups: Vec::new(),
    }
}

async fn add(store: &dyn Store, email: &str, name: &str) -> User {
    store
        .create_user(new_user(email, name), None)
        .await
        .unwrap()
        .unwrap()
}

fn id(raw: &str) -> LoginId {
    LoginId::parse(raw).unwrap()
}

fn mail(to: &str, subject: &str) -> Mail {
    Mail {
        to: EmailAddress::parse(to).unwrap(),
        subject: subject.into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    }
}

fn invite(hash: u8, max_uses: u32, email: Option<&str>) -> NewInvite {
    NewInvite {
        token_hash: [hash; 32],
        created_at: at(0),
        expires_at: Some(at(3600)),
        max_uses,
        email: email.map(|e| EmailAddress::parse(e).unwrap()),
        role: Role::Admin,
        first_run: false,
        groups: Vec::new(),
    }
}

fn session(user: UserId, seen: i64) -> Session {
    Session {
        user,
        created_at: at(0),
        last_seen: at(seen),
        ip: "192.0.2.1".into(),
        user_agent: "test".into(),
    }
}

fn login(user: &User, key: u8, replaces: Option<SessionKey>) -> CompletedLogin {
    CompletedLogin {
        user: user.id,
        key: SessionKey([key; 32]),
        session: session(user.id, 0),
        replaces,
        session_cap: 100,
        reset_lockouts: lockout_keys_of(user),
        login: LoginRecord {
            at: at(key.into()),
            ip: "192.0.2.1".into(),
        },
        new_password_hash: None,
        audit: AuditEvent::new(at(0), AuditKind::LoginOk, "self").user(user.id),
    }
}

const POLICY: LockoutPolicy = LockoutPolicy {
    threshold: 3,
    duration: Duration::from_secs(600),
    max_duration: Duration::from_secs(24 * 3600),
};

fn failure(user: Option<&User>, typed: &str, secs: i64) -> FailedLogin {
    FailedLogin {
        key: id(typed).lockout_key(),
        account_key: None,
        typed: typed.into(),
        user: user.map(|u| u.id),
        ip: "192.0.2.9".into(),
        at: at(secs),
    }
}

pub async fn users_are_found_by_email_or_username_in_any_case(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "Alice").await;
    let by_mail = store.user_by_login_id(&id("ALICE@example.com")).await;
    let by_name = store.user_by_login_id(&id("alice")).await;
    assert_eq!(by_mail.unwrap().unwrap().id, alice.id);
    assert_eq!(by_name.unwrap().unwrap().id, alice.id);
    assert!(store.user_by_login_id(&id("bob")).await.unwrap().is_none());
    assert_eq!(
        store.user(alice.id).await.unwrap().unwrap().email,
        alice.email
    );
    assert_eq!(store.user_count().await.unwrap(), 1);
    assert_eq!(store.users().await.unwrap().len(), 1);
}

pub async fn taken_emails_and_usernames_are_conflicts_ignoring_case(store: &dyn Store) {
    add(store, "alice@example.com", "alice").await;
    let by_mail = store
        .create_user(new_user("Alice@Example.com", "other"), None)
        .await;
    assert!(matches!(by_mail, Err(StoreError::Conflict(Unique::Email))));
    let by_name = store
        .create_user(new_user("other@example.com", "ALICE"), None)
        .await;
    assert!(matches!(
        by_name,
        Err(StoreError::Conflict(Unique::Username))
    ));
    assert_eq!(store.user_count().await.unwrap(), 1);
}

pub async fn an_invitation_is_spent_with_its_account_and_never_overspent(store: &dyn Store) {
    let made = store.create_invite(invite(7, 1, None)).await.unwrap();
    let redeem = Some(Redemption {
        token_hash: [7; 32],
        at: at(10),
    });
    let first = store
        .create_user(new_user("a@example.com", "aaa"), redeem)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.role, Role::Admin, "the invitation's role wins");
    let second = store
        .create_user(new_user("b@example.com", "bbb"), redeem)
        .await
        .unwrap();
    assert!(matches!(second, Err(InviteProblem::UsedUp)));
    let stored = store.invite_by_token(&[7; 32]).await.unwrap().unwrap();
    assert_eq!(stored.id, made.id);
    assert_eq!(stored.redeemed.len(), 1);
    assert_eq!(stored.redeemed[0].user, first.id);
    assert_eq!(store.user_count().await.unwrap(), 1);
}

pub async fn a_bad_invitation_is_refused_before_names_are_checked(store: &dyn Store) {
    add(store, "taken@example.com", "taken").await;
    store
        .create_invite(invite(8, 5, Some("bound@example.com")))
        .await
        .unwrap();
    let redeem = |hash| {
        Some(Redemption {
            token_hash: [hash; 32],
            at: at(10),
        })
    };
    // A taken email with a wrong invitation learns nothing about the email.
    let wrong = store
        .create_user(new_user("taken@example.com", "new"), redeem(8))
        .await
        .unwrap();
    assert!(matches!(wrong, Err(InviteProblem::WrongEmail)));
    let unknown = store
        .create_user(new_user("taken@example.com", "new"), redeem(9))
        .await
        .unwrap();
    assert!(matches!(unknown, Err(InviteProblem::Unknown)));
    let revoked = store.invites().await.unwrap()[0].id;
    assert!(store.revoke_invite(revoked, at(20)).await.unwrap());
    assert!(!store.revoke_invite(revoked + 100, at(20)).await.unwrap());
    let late = Some(Redemption {
        token_hash: [8; 32],
        at: at(30),
    });
    let after = store
        .create_user(new_user("bound@example.com", "bound"), late)
        .await
        .unwrap();
    assert!(matches!(after, Err(InviteProblem::Revoked)));
}

pub async fn the_first_run_invitation_is_replaced_until_an_admin_exists(store: &dyn Store) {
    let first_run = |hash| NewInvite {
        first_run: true,
        ..invite(hash, 1, None)
    };
    let one = store
        .replace_first_run_invite(first_run(1), None)
        .await
        .unwrap();
    let two = store
        .replace_first_run_invite(first_run(2), None)
        .await
        .unwrap();
    assert!(matches!(one, FirstRun::Made(_)) && matches!(two, FirstRun::Made(_)));
    let old = store.invite_by_token(&[1; 32]).await.unwrap().unwrap();
    assert!(old.revoked_at.is_some(), "the older link stops working");
    let new = store.invite_by_token(&[2; 32]).await.unwrap().unwrap();
    assert!(new.revoked_at.is_none());
    // Another replica starting meanwhile keeps the live one.
    let kept = store
        .replace_first_run_invite(first_run(4), Some(at(-60)))
        .await
        .unwrap();
    assert!(
        matches!(kept, FirstRun::Kept { made_at } if made_at == at(0)),
        "{kept:?}"
    );
    assert!(store.invite_by_token(&[4; 32]).await.unwrap().is_none());
    assert!(
        store
            .invite_by_token(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // Made before the cut-off: replaced.
    let later = store
        .replace_first_run_invite(first_run(5), Some(at(1)))
        .await
        .unwrap();
    assert!(matches!(later, FirstRun::Made(_)));
    let admin = add(store, "root@example.com", "root").await;
    assert!(store.set_role(admin.id, Role::Admin).await.unwrap());
    assert!(matches!(
        store
            .replace_first_run_invite(first_run(3), None)
            .await
            .unwrap(),
        FirstRun::AdminExists
    ));
}

pub async fn failures_are_counted_and_lock_after_the_threshold(store: &dyn Store) {
    let rita = add(store, "rita@example.com", "rita").await;
    let only_id = |id| FailureOutcome { id, account: None };
    for n in 1..=3 {
        let outcome = store
            .record_failure(POLICY, failure(Some(&rita), "rita", n))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            only_id(AfterFailure::Counted { failures: n as u32 })
        );
    }
    let locked = store
        .record_failure(POLICY, failure(Some(&rita), "rita", 4))
        .await
        .unwrap();
    assert_eq!(locked, only_id(AfterFailure::NowLocked { until: at(604) }));
    let again = store
        .record_failure(POLICY, failure(Some(&rita), "rita", 5))
        .await
        .unwrap();
    assert_eq!(again, only_id(AfterFailure::StillLocked { until: at(604) }));
    let state = store.lockout(&id("rita").lockout_key()).await.unwrap();
    assert_eq!(
        POLICY.gate(&state, at(603)),
        Gate::Locked { until: at(604) }
    );
    assert_eq!(
        store
            .lockout(&id("rita@example.com").lockout_key())
            .await
            .unwrap(),
        LockoutState::default(),
        "each spelling has its own counter"
    );
    // Each failure joins the history of the account the ID names.
    let history = store.login_history(rita.id).await.unwrap();
    assert_eq!(history.len(), 5);
    assert!(history.iter().all(|a| !a.ok));
    // An unknown ID is counted the same, with no history and no audit row
    // of its own (its counter is the aggregate).
    let unknown = store
        .record_failure(POLICY, failure(None, "nobody", 1))
        .await
        .unwrap();
    assert_eq!(unknown, only_id(AfterFailure::Counted { failures: 1 }));
    let events = store.audit_events(None, None, 100).await.unwrap();
    let failed = events
        .iter()
        .filter(|e| e.kind == AuditKind::LoginFailed)
        .count();
    assert_eq!(failed, 5);
    let lock = events
        .iter()
        .find(|e| e.kind == AuditKind::LockSet)
        .unwrap();
    assert_eq!(lock.user, Some(rita.id));
    assert_eq!(lock.subject.as_deref(), Some("rita"));
}

pub async fn the_account_counter_counts_every_name_in_one_write(store: &dyn Store) {
    let sam = add(store, "sam@example.com", "sammy").await;
    let account = crate::domain::lockout::account_lockout_key(sam.id);
    let mut last = None;
    for n in 1..=4 {
        let typed = if n % 2 == 0 {
            "sammy"
        } else {
            "sam@example.com"
        };
        let mut f = failure(Some(&sam), typed, n);
        f.account_key = Some(account.clone());
        last = Some(store.record_failure(POLICY, f).await.unwrap());
    }
    // Two tries on each name: neither name is locked, the account is.
    let last = last.unwrap();
    assert_eq!(last.id, AfterFailure::Counted { failures: 2 });
    assert_eq!(
        last.account,
        Some(AfterFailure::NowLocked { until: at(604) })
    );
    assert_eq!(
        POLICY.gate(&store.lockout(&account).await.unwrap(), at(10)),
        Gate::Locked { until: at(604) }
    );
    // A reset (or unlock) of the account clears it with the names.
    store.clear_lockouts(&lockout_keys_of(&sam)).await.unwrap();
    assert_eq!(
        store.lockout(&account).await.unwrap(),
        LockoutState::default()
    );
    let events = store.audit_events(None, Some(sam.id), 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::LockSet
        && e.subject.as_deref() == Some("the account, under any of its names")));
}

pub async fn admin_locks_are_set_cleared_and_idle_counters_purged(store: &dyn Store) {
    let keys = vec!["id:a".to_string(), "id:b".to_string()];
    let admin_lock = LockoutState {
        failures: 0,
        last_failure: Some(at(0)),
        locked_until: Some(at(100)),
        by_admin: true,
        cycles: 0,
    };
    store.set_lockouts(&keys, admin_lock).await.unwrap();
    assert_eq!(store.lockout("id:b").await.unwrap(), admin_lock);
    assert_eq!(store.clear_lockouts(&keys[..1]).await.unwrap(), 1);
    assert_eq!(store.clear_lockouts(&keys[..1]).await.unwrap(), 0);
    // One failure, fresh: not idle; the lock on b: not idle before 100 s.
    store
        .record_failure(POLICY, failure(None, "c", 50))
        .await
        .unwrap();
    assert_eq!(store.purge_lockouts(POLICY, at(60)).await.unwrap(), 0);
    assert_eq!(store.purge_lockouts(POLICY, at(100)).await.unwrap(), 1);
    let a_day = 24 * 3600;
    assert_eq!(
        store.purge_lockouts(POLICY, at(50 + a_day)).await.unwrap(),
        1
    );
    assert_eq!(
        store.lockout("id:c").await.unwrap(),
        LockoutState::default()
    );
}

pub async fn a_login_makes_a_session_and_resets_the_counters(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    store
        .record_failure(POLICY, failure(Some(&alice), "alice", 1))
        .await
        .unwrap();
    store.complete_login(login(&alice, 1, None)).await.unwrap();
    assert_eq!(
        store.lockout(&id("alice").lockout_key()).await.unwrap(),
        LockoutState::default()
    );
    let mut second = login(&alice, 2, Some(SessionKey([1; 32])));
    second.new_password_hash = Some("hash-1".into());
    store.complete_login(second).await.unwrap();
    assert!(store.session(&SessionKey([1; 32])).await.unwrap().is_none());
    let (s, user) = store
        .session_with_user(&SessionKey([2; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.user, alice.id);
    assert_eq!(user.password_hash, "hash-1", "an old hash is replaced");
    assert_eq!(user.last_login.unwrap().at, at(2));
    assert_eq!(user.previous_login.unwrap().at, at(1));
    let history = store.login_history(alice.id).await.unwrap();
    assert_eq!(
        history.iter().map(|a| a.ok).collect::<Vec<_>>(),
        [true, true, false]
    );
    let logins = store
        .audit_events(None, Some(alice.id), 10)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == AuditKind::LoginOk)
        .count();
    assert_eq!(logins, 2);
}

pub async fn sessions_are_read_ended_touched_and_purged(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    let bob = add(store, "bob@example.com", "bob").await;
    for key in 1..=3 {
        store
            .complete_login(login(&alice, key, None))
            .await
            .unwrap();
    }
    store.complete_login(login(&bob, 9, None)).await.unwrap();
    assert_eq!(store.session_count().await.unwrap(), 4);
    assert_eq!(store.sessions_of(alice.id).await.unwrap().len(), 3);
    assert!(store.delete_session(&SessionKey([3; 32])).await.unwrap());
    assert!(!store.delete_session(&SessionKey([3; 32])).await.unwrap());
    store
        .touch_sessions(&[
            (SessionKey([1; 32]), at(500)),
            (SessionKey([3; 32]), at(500)),
        ])
        .await
        .unwrap();
    let touched = store.session(&SessionKey([1; 32])).await.unwrap().unwrap();
    assert_eq!(touched.last_seen, at(500));
    assert!(
        store.session(&SessionKey([3; 32])).await.unwrap().is_none(),
        "a gone session is not brought back"
    );
    let policy = SessionPolicy {
        idle_timeout: Duration::from_secs(400),
        lifetime: Duration::from_secs(10_000),
    };
    // Session 2 and bob's were last seen at 0: idle by 400 s; 1 at 500.
    assert_eq!(store.purge_sessions(policy, at(450)).await.unwrap(), 2);
    assert!(store.session(&SessionKey([1; 32])).await.unwrap().is_some());
    assert_eq!(store.end_sessions(alice.id).await.unwrap(), 1);
    assert_eq!(store.session_count().await.unwrap(), 0);
}

pub async fn the_login_history_keeps_the_newest_tries(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    let many = LOGIN_HISTORY as i64 + 5;
    for n in 0..many {
        store
            .record_failure(
                LockoutPolicy {
                    threshold: 1000,
                    ..POLICY
                },
                failure(Some(&alice), "alice", n),
            )
            .await
            .unwrap();
    }
    let history = store.login_history(alice.id).await.unwrap();
    assert_eq!(history.len(), LOGIN_HISTORY);
    assert_eq!(history[0].at, at(many - 1), "newest first");
    assert_eq!(history[LOGIN_HISTORY - 1].at, at(5));
}

pub async fn a_password_change_keeps_only_the_current_session(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    for key in 1..=3 {
        store
            .complete_login(login(&alice, key, None))
            .await
            .unwrap();
    }
    let before = store.session(&SessionKey([2; 32])).await.unwrap().unwrap();
    let ended = store
        .change_password(
            alice.id,
            "hash-new".into(),
            SessionKey([2; 32]),
            SessionKey([42; 32]),
            mail("alice@example.com", "changed"),
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(ended, 2);
    let left = store.sessions_of(alice.id).await.unwrap();
    assert_eq!(left.len(), 1);
    // The session in use goes on, under its new key only.
    assert_eq!(left[0], (SessionKey([42; 32]), before));
    assert!(store.session(&SessionKey([2; 32])).await.unwrap().is_none());
    let user = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(user.password_hash, "hash-new");
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].mail.subject, "changed");
}

pub async fn a_login_beyond_the_cap_ends_the_oldest_sessions(store: &dyn Store) {
    let bo = add(store, "bob@example.com", "bob").await;
    for key in 1..=5u8 {
        let mut l = login(&bo, key, None);
        l.session.created_at = at(key.into());
        l.session_cap = 3;
        store.complete_login(l).await.unwrap();
    }
    let mut left: Vec<u8> = store
        .sessions_of(bo.id)
        .await
        .unwrap()
        .iter()
        .map(|(k, _)| k.0[0])
        .collect();
    left.sort_unstable();
    assert_eq!(left, [3, 4, 5], "the two oldest ended");
    assert!(store.session(&SessionKey([1; 32])).await.unwrap().is_none());
    assert_eq!(store.session_count().await.unwrap(), 3);
    // Logins in the same millisecond: the one just made always stays.
    for key in (10..=20u8).rev() {
        let mut l = login(&bo, key, None);
        l.session.created_at = at(9);
        l.session_cap = 3;
        store.complete_login(l).await.unwrap();
        assert!(
            store
                .session(&SessionKey([key; 32]))
                .await
                .unwrap()
                .is_some(),
            "the new session {key} survived its own login"
        );
    }
}

pub async fn tokens_replace_older_ones_and_are_spent_once(store: &dyn Store) {
    let mut new = new_user("p@example.com", "pending");
    new.status = UserStatus::PendingVerification;
    let p = store.create_user(new, None).await.unwrap().unwrap();
    let verify = OneTimeToken::new(TokenPurpose::Verify, p.id, at(0), Duration::from_secs(60));
    store
        .issue_token([1; 32], verify.clone(), Some(mail("p@example.com", "v1")))
        .await
        .unwrap();
    store
        .issue_token([2; 32], verify.clone(), Some(mail("p@example.com", "v2")))
        .await
        .unwrap();
    assert!(store.token(&[1; 32]).await.unwrap().is_none(), "replaced");
    assert_eq!(store.token(&[2; 32]).await.unwrap(), Some(verify.clone()));
    assert_eq!(store.outbox().await.unwrap().len(), 2);
    // Another purpose is a separate slot, and is not a verification.
    let reset = OneTimeToken::new(TokenPurpose::Reset, p.id, at(0), Duration::from_secs(60));
    store.issue_token([3; 32], reset, None).await.unwrap();
    assert!(store.token(&[2; 32]).await.unwrap().is_some());
    let wrong = store.consume_verification(&[3; 32], at(1)).await.unwrap();
    assert_eq!(wrong.err(), Some(TokenProblem::Unknown));
    let late = store.consume_verification(&[2; 32], at(60)).await.unwrap();
    assert_eq!(late.err(), Some(TokenProblem::Expired));
    let done = store.consume_verification(&[2; 32], at(59)).await.unwrap();
    assert_eq!(done.unwrap().status, UserStatus::Active);
    let twice = store.consume_verification(&[2; 32], at(59)).await.unwrap();
    assert_eq!(twice.err(), Some(TokenProblem::Unknown));
    assert_eq!(
        store.purge_tokens(at(60)).await.unwrap(),
        1,
        "the reset token"
    );
    assert!(store.token(&[3; 32]).await.unwrap().is_none());
}

pub async fn a_reset_lifts_failure_locks_but_not_an_admins(store: &dyn Store) {
    let mut new = new_user("r@example.com", "rita");
    new.status = UserStatus::PendingVerification;
    let rita = store.create_user(new, None).await.unwrap().unwrap();
    store.complete_login(login(&rita, 1, None)).await.unwrap();
    for n in 0..4 {
        store
            .record_failure(POLICY, failure(Some(&rita), "rita", n))
            .await
            .unwrap();
    }
    let admin_lock = LockoutState {
        locked_until: Some(at(10_000)),
        by_admin: true,
        ..LockoutState::default()
    };
    let email_key = id("r@example.com").lockout_key();
    store
        .set_lockouts(std::slice::from_ref(&email_key), admin_lock)
        .await
        .unwrap();
    let reset = OneTimeToken::new(TokenPurpose::Reset, rita.id, at(0), Duration::from_secs(60));
    store.issue_token([5; 32], reset, None).await.unwrap();
    let done = store
        .consume_reset(
            &[5; 32],
            at(10),
            "hash-reset".into(),
            mail("r@example.com", "changed"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.password_hash, "hash-reset");
    assert_eq!(
        done.status,
        UserStatus::Active,
        "the link proves the address"
    );
    assert_eq!(store.sessions_of(rita.id).await.unwrap().len(), 0);
    assert_eq!(
        store.lockout(&id("rita").lockout_key()).await.unwrap(),
        LockoutState::default(),
        "the failure lock ends"
    );
    assert_eq!(store.lockout(&email_key).await.unwrap(), admin_lock);
    assert_eq!(store.outbox().await.unwrap()[0].mail.subject, "changed");
    let twice = store
        .consume_reset(&[5; 32], at(11), "x".into(), mail("r@example.com", "x"))
        .await
        .unwrap();
    assert_eq!(twice.err(), Some(TokenProblem::Unknown));
}

pub async fn a_reset_leaves_a_disabled_account_out(store: &dyn Store) {
    let dora = add(store, "d@example.com", "dora").await;
    assert!(
        store
            .set_status(dora.id, UserStatus::Disabled)
            .await
            .unwrap()
    );
    let reset = OneTimeToken::new(TokenPurpose::Reset, dora.id, at(0), Duration::from_secs(60));
    store.issue_token([6; 32], reset, None).await.unwrap();
    let refused = store
        .consume_reset(&[6; 32], at(1), "hash-x".into(), mail("d@example.com", "x"))
        .await
        .unwrap();
    assert_eq!(refused.err(), Some(TokenProblem::Unknown));
    let user = store.user(dora.id).await.unwrap().unwrap();
    assert_eq!(user.password_hash, "hash-0");
    assert!(
        store.outbox().await.unwrap().is_empty(),
        "nothing half-written"
    );
}

pub async fn the_outbox_delivers_oldest_first_and_retries(store: &dyn Store) {
    let first = store
        .enqueue_mail(mail("a@example.com", "1"), at(0))
        .await
        .unwrap();
    let second = store
        .enqueue_mail(mail("a@example.com", "2"), at(1))
        .await
        .unwrap();
    let third = store
        .enqueue_mail(mail("a@example.com", "3"), at(5))
        .await
        .unwrap();
    let ids = |due: Vec<crate::domain::OutboxEntry>| due.iter().map(|e| e.id).collect::<Vec<_>>();
    // Taken by a sender until at(61): another sender gets only the rest.
    assert_eq!(
        ids(store.due_mail(at(1), at(61), 16).await.unwrap()),
        [first, second]
    );
    assert_eq!(
        ids(store.due_mail(at(9), at(69), 16).await.unwrap()),
        [third]
    );
    assert!(store.due_mail(at(10), at(70), 16).await.unwrap().is_empty());
    store
        .mail_failed(first, 1, Some(at(30)), "refused".into())
        .await
        .unwrap();
    store.mail_sent(second).await.unwrap();
    let retry = store.due_mail(at(30), at(90), 16).await.unwrap();
    assert_eq!(
        ids(retry.clone()),
        [first],
        "the failed one is due again, unheld"
    );
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].last_error.as_deref(), Some("refused"));
    store
        .mail_failed(first, 30, None, "gave up".into())
        .await
        .unwrap();
    // The sender of the third died: once its hold ends, another sends it.
    assert_eq!(
        ids(store.due_mail(at(10_000), at(10_060), 16).await.unwrap()),
        [third]
    );
    assert_eq!(
        store.outbox().await.unwrap().len(),
        2,
        "a given-up mail is kept"
    );
}

pub async fn audit_events_are_filtered_newest_first_and_purged(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    let events = (0..5)
        .map(|n| {
            let e = AuditEvent::new(at(n * 10), AuditKind::Admin, "cli:root").detail(n.to_string());
            if n % 2 == 0 { e.user(alice.id) } else { e }
        })
        .collect();
    store.audit(events).await.unwrap();
    let all = store.audit_events(None, None, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.at).collect::<Vec<_>>(),
        [at(40), at(30), at(20), at(10), at(0)]
    );
    let hers = store.audit_events(None, Some(alice.id), 100).await.unwrap();
    assert_eq!(hers.len(), 3);
    let recent = store.audit_events(Some(at(20)), None, 100).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert_eq!(store.audit_events(None, None, 2).await.unwrap().len(), 2);
    assert_eq!(store.purge_audit(at(20), 100).await.unwrap(), 2);
    assert_eq!(
        store
            .audit_events(None, Some(alice.id), 100)
            .await
            .unwrap()
            .len(),
        2
    );
    // Besides their age, at most so many are kept: the oldest go.
    assert_eq!(store.purge_audit(at(0), 1).await.unwrap(), 2);
    let left = store.audit_events(None, None, 100).await.unwrap();
    assert_eq!(left.iter().map(|e| e.at).collect::<Vec<_>>(), [at(40)]);
    assert_eq!(
        store
            .audit_events(None, Some(alice.id), 100)
            .await
            .unwrap()
            .len(),
        1,
        "the index follows"
    );
}

pub async fn deleting_an_account_removes_what_belongs_to_it(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    store.complete_login(login(&alice, 1, None)).await.unwrap();
    let reset = OneTimeToken::new(
        TokenPurpose::Reset,
        alice.id,
        at(0),
        Duration::from_secs(60),
    );
    store.issue_token([4; 32], reset, None).await.unwrap();
    store
        .record_failure(POLICY, failure(Some(&alice), "alice", 1))
        .await
        .unwrap();
    assert!(store.delete_user(alice.id).await.unwrap());
    assert!(!store.delete_user(alice.id).await.unwrap());
    assert!(store.user(alice.id).await.unwrap().is_none());
    assert_eq!(store.session_count().await.unwrap(), 0);
    assert!(store.token(&[4; 32]).await.unwrap().is_none());
    assert!(
        store.login_history(alice.id).await.unwrap().is_empty(),
        "its login history goes too"
    );
    assert_eq!(
        store.lockout(&id("alice").lockout_key()).await.unwrap(),
        LockoutState::default()
    );
    // The names are free again.
    add(store, "alice@example.com", "alice").await;
}

pub async fn changes_to_missing_accounts_say_so(store: &dyn Store) {
    let ghost = UserId(999);
    assert!(!store.set_status(ghost, UserStatus::Disabled).await.unwrap());
    assert!(!store.set_role(ghost, Role::Admin).await.unwrap());
    assert!(!store.set_password_hash(ghost, "x".into()).await.unwrap());
    let consent = crate::domain::Consent {
        terms: "t".into(),
        privacy: "p".into(),
        at: at(0),
    };
    assert!(!store.set_consent(ghost, consent.clone()).await.unwrap());
    let alice = add(store, "alice@example.com", "alice").await;
    assert!(store.set_consent(alice.id, consent.clone()).await.unwrap());
    assert_eq!(
        store.user(alice.id).await.unwrap().unwrap().consent,
        Some(consent)
    );
}

fn group(name: &str) -> Group {
    Group {
        name: GroupName::parse(name).unwrap(),
        created_at: at(0),
    }
}

fn gname(name: &str) -> GroupName {
    GroupName::parse(name).unwrap()
}

pub async fn groups_are_kept_on_the_account_and_in_the_group(store: &dyn Store) {
    assert!(store.create_group(group("ops")).await.unwrap());
    assert!(
        !store.create_group(group("ops")).await.unwrap(),
        "a name is taken once"
    );
    assert!(store.create_group(group("admins")).await.unwrap());
    let ann = store
        .create_user(new_user("ann@example.com", "ann"), None)
        .await
        .unwrap()
        .unwrap();
    let ops = gname("ops");
    assert_eq!(
        store.add_member(&ops, ann.id).await.unwrap(),
        Membership::Changed
    );
    assert_eq!(
        store.add_member(&ops, ann.id).await.unwrap(),
        Membership::Unchanged
    );
    assert_eq!(
        store.add_member(&gname("admins"), ann.id).await.unwrap(),
        Membership::Changed
    );
    assert_eq!(
        store.add_member(&gname("nope"), ann.id).await.unwrap(),
        Membership::NoGroup
    );
    assert_eq!(
        store.add_member(&ops, UserId(999)).await.unwrap(),
        Membership::NoUser
    );
    // The account carries its groups, sorted, also when read with a session.
    let read = store.user(ann.id).await.unwrap().unwrap();
    assert_eq!(read.groups, vec![gname("admins"), gname("ops")]);
    assert!(read.in_group(&ops));
    assert_eq!(store.group_members(&ops).await.unwrap(), Some(vec![ann.id]));
    assert_eq!(store.group_members(&gname("nope")).await.unwrap(), None);
    let listed = store.groups().await.unwrap();
    let names: Vec<(&str, usize)> = listed.iter().map(|(g, n)| (g.name.as_str(), *n)).collect();
    assert_eq!(names, vec![("admins", 1), ("ops", 1)]);

    assert_eq!(
        store.remove_member(&ops, ann.id).await.unwrap(),
        Membership::Changed
    );
    assert_eq!(
        store.remove_member(&ops, ann.id).await.unwrap(),
        Membership::Unchanged
    );
    let read = store.user(ann.id).await.unwrap().unwrap();
    assert_eq!(read.groups, vec![gname("admins")]);
    assert_eq!(store.group_members(&ops).await.unwrap(), Some(vec![]));
}

pub async fn invitations_and_new_accounts_join_only_groups_that_exist(store: &dyn Store) {
    store.create_group(group("wiki")).await.unwrap();
    store.create_group(group("files")).await.unwrap();
    let mut new = new_user("bob@example.com", "bob");
    new.groups = vec![gname("wiki"), gname("gone"), gname("wiki")];
    let bo = store.create_user(new, None).await.unwrap().unwrap();
    assert_eq!(
        bo.groups,
        vec![gname("wiki")],
        "missing names left out, no repeats"
    );

    let mut inv = invite(40, 2, None);
    inv.groups = vec![gname("files")];
    let made = store.create_invite(inv).await.unwrap();
    assert_eq!(made.groups, vec![gname("files")]);
    let mut new = new_user("cyd@example.com", "cyd");
    new.groups = vec![gname("wiki")];
    let cy = store
        .create_user(
            new,
            Some(Redemption {
                token_hash: [40; 32],
                at: at(1),
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cy.groups, vec![gname("files"), gname("wiki")]);
    assert_eq!(
        store.group_members(&gname("files")).await.unwrap(),
        Some(vec![cy.id])
    );
    // A group deleted after the invitation was made is skipped.
    store.delete_group(&gname("files")).await.unwrap();
    let dee = store
        .create_user(
            new_user("dee@example.com", "dee"),
            Some(Redemption {
                token_hash: [40; 32],
                at: at(2),
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(dee.groups.is_empty());
}

pub async fn deleting_a_group_or_an_account_ends_its_memberships(store: &dyn Store) {
    store.create_group(group("team")).await.unwrap();
    store.create_group(group("other")).await.unwrap();
    let eli = store
        .create_user(new_user("eli@example.com", "eli"), None)
        .await
        .unwrap()
        .unwrap();
    let fay = store
        .create_user(new_user("fay@example.com", "fay"), None)
        .await
        .unwrap()
        .unwrap();
    for u in [eli.id, fay.id] {
        store.add_member(&gname("team"), u).await.unwrap();
        store.add_member(&gname("other"), u).await.unwrap();
    }
    assert_eq!(store.delete_group(&gname("team")).await.unwrap(), Some(2));
    assert_eq!(store.delete_group(&gname("team")).await.unwrap(), None);
    assert_eq!(
        store.user(eli.id).await.unwrap().unwrap().groups,
        vec![gname("other")]
    );
    // Made again, the group starts empty.
    store.create_group(group("team")).await.unwrap();
    assert_eq!(
        store.group_members(&gname("team")).await.unwrap(),
        Some(vec![])
    );

    store.delete_user(fay.id).await.unwrap();
    assert_eq!(
        store.group_members(&gname("other")).await.unwrap(),
        Some(vec![eli.id])
    );
    let listed = store.groups().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|(g, n)| g.name.as_str() == "other" && *n == 1)
    );
}

pub async fn hash_prefixes_are_counted_without_the_accounts(store: &dyn Store) {
    for (i, hash) in ["$2b$12$aaaa", "$2b$12$bbbb", "$2y$05$cccc", "x"]
        .iter()
        .enumerate()
    {
        let mut new = new_user(&format!("h{i}@example.com"), &format!("hash{i}"));
        new.password_hash = (*hash).to_string();
        store.create_user(new, None).await.unwrap().unwrap();
    }
    let counted = store.count_hash_prefixes(7).await.unwrap();
    assert_eq!(
        counted,
        vec![
            ("$2b$12$".to_string(), 2),
            ("$2y$05$".to_string(), 1),
            ("x".to_string(), 1)
        ]
    );
}

pub async fn unconfirmed_accounts_are_found_by_age(store: &dyn Store) {
    let mut made = Vec::new();
    for (i, (status, secs)) in [
        (UserStatus::PendingVerification, 100),
        (UserStatus::Active, 0),
        (UserStatus::PendingVerification, 10),
        (UserStatus::PendingVerification, 500),
        (UserStatus::Disabled, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut new = new_user(&format!("u{i}@example.com"), &format!("user{i}"));
        new.status = status;
        new.created_at = at(secs);
        made.push(store.create_user(new, None).await.unwrap().unwrap());
    }
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    // Oldest first; the active, the disabled and the too young left out.
    assert_eq!(
        ids(store.unconfirmed_before(at(100)).await.unwrap()),
        vec![made[2].id, made[0].id]
    );
    assert!(store.unconfirmed_before(at(9)).await.unwrap().is_empty());
    // Confirmed accounts leave; a status set back brings one in again.
    assert!(
        store
            .set_status(made[2].id, UserStatus::Active)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_status(made[3].id, UserStatus::Active)
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store.unconfirmed_before(at(1000)).await.unwrap()),
        vec![made[0].id]
    );
    assert!(
        store
            .set_status(made[3].id, UserStatus::PendingVerification)
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store.unconfirmed_before(at(1000)).await.unwrap()),
        vec![made[0].id, made[3].id]
    );
}

/// The check every protected request makes reads each change at once,
/// however a backend speeds it up.
pub async fn the_session_check_sees_every_change_at_once(store: &dyn Store) {
    let kit = add(store, "kit@example.com", "kit").await;
    store.complete_login(login(&kit, 61, None)).await.unwrap();
    let key = SessionKey([61; 32]);
    assert!(read(store, &key).await.is_some());
    assert!(read(store, &key).await.is_some(), "read twice");
    store.create_group(group("night")).await.unwrap();
    store.add_member(&gname("night"), kit.id).await.unwrap();
    assert_eq!(
        read(store, &key).await.unwrap().1.groups,
        vec![gname("night")]
    );
    store.remove_member(&gname("night"), kit.id).await.unwrap();
    assert!(read(store, &key).await.unwrap().1.groups.is_empty());
    store
        .set_status(kit.id, UserStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        read(store, &key).await.unwrap().1.status,
        UserStatus::Disabled
    );
    store.set_status(kit.id, UserStatus::Active).await.unwrap();
    store.set_role(kit.id, Role::Admin).await.unwrap();
    assert_eq!(read(store, &key).await.unwrap().1.role, Role::Admin);
    store.touch_sessions(&[(key, at(500))]).await.unwrap();
    assert_eq!(read(store, &key).await.unwrap().0.last_seen, at(500));
    store.delete_session(&key).await.unwrap();
    assert!(read(store, &key).await.is_none());
    store.complete_login(login(&kit, 61, None)).await.unwrap();
    assert!(read(store, &key).await.is_some());
    assert_eq!(store.end_sessions(kit.id).await.unwrap(), 1);
    assert!(read(store, &key).await.is_none());
    store.complete_login(login(&kit, 61, None)).await.unwrap();
    store.delete_user(kit.id).await.unwrap();
    assert!(read(store, &key).await.is_none());
}

async fn read(store: &dyn Store, key: &SessionKey) -> Option<(Session, User)> {
    store.session_with_user(key).await.unwrap()
}
