//! The store contract for second factors (issue 15).

use super::{add, at};
use crate::domain::UserId;
use crate::domain::pending::{PasskeyCeremony, Pending, PendingCounter, PendingLogin, PendingStep};
use crate::domain::second_factor::{
    FactorChange, FactorOutcome, RecoveryUse, TotpCheck, TotpFactor, TotpSecret,
    generate_recovery_codes,
};
use crate::domain::session::SessionToken;
use crate::store::Store;

pub async fn second_factors_change_in_one_transaction_and_go_with_the_account(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    assert!(!store.second_factors(alice.id).await.unwrap().is_enrolled());
    let secret = TotpSecret::generate();
    let factor = TotpFactor {
        secret: secret.clone(),
        added_at: at(0),
        confirmed_at: None,
        last_step: None,
    };
    let change = |c| store.change_second_factors(alice.id, c);
    assert_eq!(
        change(FactorChange::AddTotp(factor.clone())).await.unwrap(),
        Some(FactorOutcome::Done)
    );
    let now = at(30);
    let code = secret.code_at(now);
    assert!(matches!(
        change(FactorChange::ConfirmTotp {
            typed: code.clone(),
            now
        })
        .await
        .unwrap(),
        Some(FactorOutcome::Totp(TotpCheck::Accepted { .. }))
    ));
    assert!(store.second_factors(alice.id).await.unwrap().is_enrolled());
    // The step is remembered in the store: the same code fails next time.
    assert_eq!(
        change(FactorChange::AcceptTotp { typed: code, now })
            .await
            .unwrap(),
        Some(FactorOutcome::Totp(TotpCheck::Replayed))
    );
    assert_eq!(
        change(FactorChange::AddTotp(factor)).await.unwrap(),
        Some(FactorOutcome::AlreadyEnrolled)
    );
    let (shown, kept) = generate_recovery_codes();
    change(FactorChange::SetRecovery { hashes: kept, now })
        .await
        .unwrap();
    assert_eq!(
        change(FactorChange::UseRecovery {
            typed: shown[2].clone()
        })
        .await
        .unwrap(),
        Some(FactorOutcome::Recovery(RecoveryUse::Used { remaining: 9 }))
    );
    assert_eq!(
        change(FactorChange::UseRecovery {
            typed: shown[2].clone()
        })
        .await
        .unwrap(),
        Some(FactorOutcome::Recovery(RecoveryUse::Wrong)),
        "used up in the store"
    );
    assert_eq!(
        store
            .change_second_factors(UserId(999), FactorChange::Clear)
            .await
            .unwrap(),
        None,
        "no such account"
    );
    // Cleared, nothing is left; deleted, the factors go with the account.
    change(FactorChange::Clear).await.unwrap();
    assert_eq!(
        store.second_factors(alice.id).await.unwrap(),
        Default::default()
    );
    let bob = add(store, "bob@example.com", "bob").await;
    let (_, kept) = generate_recovery_codes();
    store
        .change_second_factors(bob.id, FactorChange::SetRecovery { hashes: kept, now })
        .await
        .unwrap();
    assert!(store.delete_user(bob.id).await.unwrap());
    assert_eq!(
        store.second_factors(bob.id).await.unwrap(),
        Default::default()
    );
}

fn half_login(user: UserId, expires: i64) -> Pending {
    Pending::Login(PendingLogin {
        user,
        step: PendingStep::Verify,
        created_at: at(0),
        expires_at: at(expires),
        password_fingerprint: [7; 32],
        counter: PendingCounter {
            key: "id:bo".into(),
            account_key: Some("account:1".into()),
            typed: "bo".into(),
        },
        reset_lockouts: vec!["id:bo".into()],
        new_password_hash: None,
        rd: Some("https://app.example.com/".into()),
        tries: 0,
        passkey_state: None,
    })
}

pub async fn half_logins_are_taken_once_expire_and_go_with_the_account(store: &dyn Store) {
    let bo = add(store, "bo@example.com", "bobo").await;
    let cy = add(store, "cy@example.com", "cyril").await;
    let key = SessionToken::generate().key();
    let mut p = half_login(bo.id, 300);
    store.put_pending(&key, &p).await.unwrap();
    assert_eq!(store.pending(&key).await.unwrap(), Some(p.clone()));
    // A wrong try is kept by replacing the record.
    let Pending::Login(login) = &mut p else {
        unreachable!()
    };
    assert!(login.count_try());
    store.put_pending(&key, &p).await.unwrap();
    assert_eq!(store.pending(&key).await.unwrap(), Some(p.clone()));
    // Taken once: a second request racing finds nothing.
    assert_eq!(store.take_pending(&key).await.unwrap(), Some(p));
    assert_eq!(store.take_pending(&key).await.unwrap(), None);
    assert_eq!(store.pending(&key).await.unwrap(), None);
    // Expired ones are purged; live ones stay.
    let (old, live) = (
        SessionToken::generate().key(),
        SessionToken::generate().key(),
    );
    store
        .put_pending(&old, &half_login(cy.id, 60))
        .await
        .unwrap();
    store
        .put_pending(&live, &half_login(cy.id, 600))
        .await
        .unwrap();
    assert_eq!(store.purge_pending(at(120)).await.unwrap(), 1);
    assert!(store.pending(&old).await.unwrap().is_none());
    assert!(store.pending(&live).await.unwrap().is_some());
    // A passkey login's challenge has no account yet.
    let ceremony = Pending::Passkey(PasskeyCeremony {
        user: None,
        expires_at: at(600),
        state: "{}".into(),
        rd: None,
    });
    let anonymous = SessionToken::generate().key();
    store.put_pending(&anonymous, &ceremony).await.unwrap();
    assert_eq!(store.pending(&anonymous).await.unwrap(), Some(ceremony));
    // Gone with the account; nothing kept for an account that is gone.
    assert!(store.delete_user(cy.id).await.unwrap());
    assert!(store.pending(&live).await.unwrap().is_none());
    store
        .put_pending(&old, &half_login(cy.id, 600))
        .await
        .unwrap();
    assert!(store.pending(&old).await.unwrap().is_none());
    assert!(store.pending(&anonymous).await.unwrap().is_some());
}
