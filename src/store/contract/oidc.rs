//! The contracts of `OidcStore`: clients, keys, grants, codes and tokens.

use super::{add, at, login, mail};
use crate::domain::UserId;
use crate::domain::oidc::{
    OidcClient, OidcGrant, OidcToken, PrivateKey, Scopes, SigningKey, TokenKind,
};
use crate::domain::session::SessionKey;
use crate::store::{Spend, Store};

fn client(id: &str, name: &str) -> OidcClient {
    OidcClient {
        id: id.into(),
        name: name.into(),
        secret_hash: Some(crate::crypto::sha256(b"secret")),
        redirect_uris: vec![format!("https://{id}.example.com/cb")],
        post_logout_redirect_uris: vec![],
        groups: vec![],
        trusted: false,
        created_at: at(0),
        declared: false,
    }
}

fn token(kind: TokenKind, client: &str, user: UserId, family: u64, expires: i64) -> OidcToken {
    OidcToken {
        kind,
        client: client.into(),
        user,
        family,
        scopes: Scopes::parse("openid email"),
        issued_at: at(0),
        expires_at: at(expires),
        spent_at: None,
        auth_time: at(0),
        nonce: Some("n-0".into()),
        redirect_uri: Some("https://a.example.com/cb".into()),
        code_challenge: None,
    }
}

fn key(kid: &str) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg: "RS256".into(),
        private: PrivateKey(vec![7; 16]),
        n: "bg".into(),
        e: "AQAB".into(),
        created_at: at(0),
        signs_from: at(0),
    }
}

async fn live(store: &dyn Store, hash: u8, kind: TokenKind) -> bool {
    store
        .token_of(&[hash; 32], kind, at(1))
        .await
        .unwrap()
        .is_some()
}

pub async fn oidc_clients_are_unique_by_name_and_removed_with_their_grants_and_tokens(
    store: &dyn Store,
) {
    let alice = add(store, "alice@example.com", "alice").await;
    assert!(store.create_client(client("a", "Grafana")).await.unwrap());
    assert!(
        !store.create_client(client("b", " grafana ")).await.unwrap(),
        "names are unique ignoring case"
    );
    assert!(!store.create_client(client("a", "Other")).await.unwrap());
    assert!(store.create_client(client("c", "Alpha")).await.unwrap());
    let names: Vec<String> = store
        .clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Alpha", "Grafana"]);
    let mut changed = client("a", "Grafana");
    changed.secret_hash = Some(crate::crypto::sha256(b"new"));
    assert!(store.update_client(changed.clone()).await.unwrap());
    assert_eq!(store.client("a").await.unwrap(), Some(changed));
    assert!(!store.update_client(client("zz", "Nobody")).await.unwrap());
    assert!(
        !store.update_client(client("c", "GRAFANA")).await.unwrap(),
        "a rename onto another's name is refused"
    );
    assert_eq!(store.client("c").await.unwrap().unwrap().name, "Alpha");
    assert!(store.update_client(client("c", "Beta")).await.unwrap());
    assert!(store.update_client(client("c", "Alpha")).await.unwrap());

    store
        .set_grant(OidcGrant {
            user: alice.id,
            client: "a".into(),
            scopes: Scopes::parse("openid"),
            granted_at: at(0),
        })
        .await
        .unwrap();
    store
        .put_tokens(vec![
            ([1; 32], token(TokenKind::Access, "a", alice.id, 1, 60)),
            ([2; 32], token(TokenKind::Access, "c", alice.id, 2, 60)),
        ])
        .await
        .unwrap();
    assert!(store.delete_client("a").await.unwrap());
    assert!(!store.delete_client("a").await.unwrap());
    assert!(store.client("a").await.unwrap().is_none());
    assert!(store.grant(alice.id, "a").await.unwrap().is_none());
    assert!(!live(store, 1, TokenKind::Access).await, "its tokens end");
    assert!(
        live(store, 2, TokenKind::Access).await,
        "another app's stay"
    );
}

pub async fn codes_and_refresh_tokens_are_spent_once_and_a_reuse_ends_the_family(
    store: &dyn Store,
) {
    let alice = add(store, "alice@example.com", "alice").await;
    store.create_client(client("a", "App")).await.unwrap();
    store
        .put_tokens(vec![(
            [1; 32],
            token(TokenKind::Code, "a", alice.id, 9, 60),
        )])
        .await
        .unwrap();
    assert!(live(store, 1, TokenKind::Code).await);
    assert!(!live(store, 1, TokenKind::Access).await, "kinds differ");
    assert_eq!(
        store
            .spend_token(&[1; 32], TokenKind::Refresh, at(1), vec![])
            .await
            .unwrap(),
        Spend::Unknown,
        "a code is no refresh token"
    );
    let issued = vec![
        ([2; 32], token(TokenKind::Access, "a", alice.id, 9, 3600)),
        ([3; 32], token(TokenKind::Refresh, "a", alice.id, 9, 7200)),
    ];
    let Spend::Spent(code) = store
        .spend_token(&[1; 32], TokenKind::Code, at(1), issued)
        .await
        .unwrap()
    else {
        panic!("the first use spends it")
    };
    assert_eq!(code.nonce.as_deref(), Some("n-0"));
    assert!(live(store, 2, TokenKind::Access).await);
    // The refresh token rotates: spent, a new one in the same family.
    let rotated = vec![([4; 32], token(TokenKind::Refresh, "a", alice.id, 9, 7200))];
    assert!(matches!(
        store
            .spend_token(&[3; 32], TokenKind::Refresh, at(2), rotated)
            .await
            .unwrap(),
        Spend::Spent(_)
    ));
    assert!(live(store, 4, TokenKind::Refresh).await);
    // The spent one presented again: the whole family ends.
    let again = store
        .spend_token(&[3; 32], TokenKind::Refresh, at(3), vec![])
        .await
        .unwrap();
    assert!(matches!(again, Spend::Reused(n) if n >= 3), "{again:?}");
    for h in [2, 4] {
        assert!(
            !live(store, h, TokenKind::Access).await && !live(store, h, TokenKind::Refresh).await
        );
    }
    assert_eq!(
        store
            .spend_token(&[1; 32], TokenKind::Code, at(4), vec![])
            .await
            .unwrap(),
        Spend::Unknown
    );
    // An expired code is unknown, and nothing is issued for it.
    store
        .put_tokens(vec![(
            [5; 32],
            token(TokenKind::Code, "a", alice.id, 5, 60),
        )])
        .await
        .unwrap();
    let late = vec![([6; 32], token(TokenKind::Access, "a", alice.id, 5, 3600))];
    assert_eq!(
        store
            .spend_token(&[5; 32], TokenKind::Code, at(60), late)
            .await
            .unwrap(),
        Spend::Unknown
    );
    assert!(!live(store, 6, TokenKind::Access).await);
    assert_eq!(store.purge_tokens_oidc(at(60)).await.unwrap(), 1);
}

pub async fn revoking_a_refresh_token_ends_its_family_for_its_own_client_only(store: &dyn Store) {
    let alice = add(store, "alice@example.com", "alice").await;
    store.create_client(client("a", "App")).await.unwrap();
    store.create_client(client("b", "Bee")).await.unwrap();
    store
        .put_tokens(vec![
            ([1; 32], token(TokenKind::Access, "a", alice.id, 1, 60)),
            ([2; 32], token(TokenKind::Refresh, "a", alice.id, 1, 60)),
            ([3; 32], token(TokenKind::Access, "a", alice.id, 3, 60)),
        ])
        .await
        .unwrap();
    // Userinfo's read: a live access token with its account and app.
    let (t, u, c) = store.access_of(&[1; 32], at(1)).await.unwrap().unwrap();
    assert_eq!((t.family, u.id, c.id.as_str()), (1, alice.id, "a"));
    assert!(
        store.access_of(&[2; 32], at(1)).await.unwrap().is_none(),
        "a refresh token is not an access token"
    );
    assert!(
        store.access_of(&[1; 32], at(60)).await.unwrap().is_none(),
        "expired"
    );
    assert!(store.access_of(&[9; 32], at(1)).await.unwrap().is_none());
    assert_eq!(store.revoke_token(&[2; 32], "b").await.unwrap(), 0);
    assert!(
        live(store, 2, TokenKind::Refresh).await,
        "not b's to revoke"
    );
    assert_eq!(store.revoke_token(&[2; 32], "a").await.unwrap(), 2);
    assert!(!live(store, 1, TokenKind::Access).await);
    assert_eq!(store.revoke_token(&[3; 32], "a").await.unwrap(), 1);
    assert_eq!(store.revoke_token(&[3; 32], "a").await.unwrap(), 0);
}

pub async fn an_accounts_app_tokens_end_with_its_sessions_and_its_grants_with_it(
    store: &dyn Store,
) {
    let alice = add(store, "alice@example.com", "alice").await;
    let bob = add(store, "bob@example.com", "bob").await;
    store.create_client(client("a", "App")).await.unwrap();
    let put = |h: u8, user: UserId| {
        store.put_tokens(vec![(
            [h; 32],
            token(TokenKind::Access, "a", user, u64::from(h), 60),
        )])
    };
    put(1, alice.id).await.unwrap();
    put(2, bob.id).await.unwrap();
    store.end_sessions(alice.id).await.unwrap();
    assert!(
        !live(store, 1, TokenKind::Access).await,
        "log out everywhere"
    );
    assert!(live(store, 2, TokenKind::Access).await);

    put(3, alice.id).await.unwrap();
    store.complete_login(login(&alice, 1, None)).await.unwrap();
    store
        .change_password(
            alice.id,
            "hash-1".into(),
            SessionKey([1; 32]),
            SessionKey([9; 32]),
            mail("alice@example.com", "changed"),
            at(1),
        )
        .await
        .unwrap();
    assert!(!live(store, 3, TokenKind::Access).await, "a new password");

    put(4, alice.id).await.unwrap();
    let grant = OidcGrant {
        user: alice.id,
        client: "a".into(),
        scopes: Scopes::parse("openid email"),
        granted_at: at(0),
    };
    store.set_grant(grant.clone()).await.unwrap();
    assert_eq!(
        store.grants_of(alice.id).await.unwrap(),
        std::slice::from_ref(&grant)
    );
    assert!(store.delete_user(alice.id).await.unwrap());
    assert!(!live(store, 4, TokenKind::Access).await);
    assert!(store.grants_of(alice.id).await.unwrap().is_empty());
    assert!(live(store, 2, TokenKind::Access).await, "bob's stay");
    assert_eq!(store.revoke_user_tokens(bob.id).await.unwrap(), 1);
}

pub async fn grants_are_remembered_per_user_and_app_and_revoked_with_their_tokens(
    store: &dyn Store,
) {
    let alice = add(store, "alice@example.com", "alice").await;
    store.create_client(client("a", "App")).await.unwrap();
    store.create_client(client("b", "Bee")).await.unwrap();
    for (c, scopes) in [
        ("a", "openid"),
        ("b", "openid email"),
        ("a", "openid profile"),
    ] {
        store
            .set_grant(OidcGrant {
                user: alice.id,
                client: c.into(),
                scopes: Scopes::parse(scopes),
                granted_at: at(0),
            })
            .await
            .unwrap();
    }
    let grants = store.grants_of(alice.id).await.unwrap();
    assert_eq!(grants.len(), 2, "one per app: the later replaced the first");
    assert_eq!(grants[0].scopes.to_string(), "openid profile");
    store
        .put_tokens(vec![
            ([1; 32], token(TokenKind::Refresh, "a", alice.id, 1, 60)),
            ([2; 32], token(TokenKind::Refresh, "b", alice.id, 2, 60)),
        ])
        .await
        .unwrap();
    assert!(store.revoke_grant(alice.id, "a").await.unwrap());
    assert!(!store.revoke_grant(alice.id, "a").await.unwrap());
    assert!(store.grant(alice.id, "a").await.unwrap().is_none());
    assert!(!live(store, 1, TokenKind::Refresh).await);
    assert!(live(store, 2, TokenKind::Refresh).await);
}

pub async fn the_first_signing_key_is_made_once(store: &dyn Store) {
    assert!(store.add_signing_key(key("k1"), true).await.unwrap());
    assert!(!store.add_signing_key(key("k2"), true).await.unwrap());
    assert!(store.add_signing_key(key("k3"), false).await.unwrap());
    let mut kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    kids.sort();
    assert_eq!(kids, ["k1", "k3"]);
    assert_eq!(
        store.signing_keys().await.unwrap()[0].private.0,
        vec![7; 16]
    );
    assert_eq!(
        store
            .delete_signing_keys(&["k1".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
}

/// One record in every table (for the tests that a copy holds them all).
pub async fn fill_every_table(store: &dyn Store) {
    use crate::domain::{AuditEvent, AuditKind, GroupName, OneTimeToken, TokenPurpose};
    let alice = add(store, "alice@example.com", "alice").await;
    let g = GroupName::parse("staff").unwrap();
    store
        .create_group(crate::domain::Group {
            name: g.clone(),
            created_at: at(0),
        })
        .await
        .unwrap();
    store.add_member(&g, alice.id).await.unwrap();
    store.complete_login(login(&alice, 1, None)).await.unwrap();
    store
        .record_failure(super::POLICY, super::failure(Some(&alice), "alice", 1))
        .await
        .unwrap();
    store
        .create_invite(super::invite(3, 1, None))
        .await
        .unwrap();
    let reset = OneTimeToken::new(
        TokenPurpose::Reset,
        alice.id,
        at(0),
        std::time::Duration::from_secs(60),
    );
    store
        .issue_token([4; 32], reset, Some(mail("alice@example.com", "reset")))
        .await
        .unwrap();
    store
        .audit(vec![
            AuditEvent::new(at(0), AuditKind::Admin, "cli:root").user(alice.id),
        ])
        .await
        .unwrap();
    store.create_client(client("a", "App")).await.unwrap();
    store.add_signing_key(key("k1"), true).await.unwrap();
    store
        .set_grant(OidcGrant {
            user: alice.id,
            client: "a".into(),
            scopes: Scopes::parse("openid"),
            granted_at: at(0),
        })
        .await
        .unwrap();
    store
        .put_tokens(vec![(
            [5; 32],
            token(TokenKind::Refresh, "a", alice.id, 5, 60),
        )])
        .await
        .unwrap();
    let (_, kept) = crate::domain::second_factor::generate_recovery_codes();
    store
        .change_second_factors(
            alice.id,
            crate::domain::second_factor::FactorChange::SetRecovery {
                hashes: kept,
                now: at(0),
            },
        )
        .await
        .unwrap();
}
