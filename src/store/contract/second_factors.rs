//! The store contract for second factors (issue 15).

use super::{add, at};
use crate::domain::UserId;
use crate::domain::second_factor::{
    FactorChange, FactorOutcome, RecoveryUse, TotpCheck, TotpFactor, TotpSecret,
    generate_recovery_codes,
};
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
