//! Groups (SPEC §9): made, filled and emptied with the command line
//! through the running server's socket and on a stopped database, carried
//! by invitations, shown on the Account page and in `user show`, audited.

use crate::support::cli::cli;
use crate::support::cli::gatehouse;
use crate::support::{PASSWORD, spawn_app, spawn_with};
use gatehouse::config::SignupMode;

#[tokio::test]
async fn groups_are_made_filled_and_shown_through_the_running_server() {
    let app = spawn_app().await;
    cli(&app, &["group", "add", "Ops"]).await.ok();
    let again = cli(&app, &["group", "add", "ops"]).await;
    again.code(2);
    assert!(
        again.stderr().contains("exists already"),
        "{}",
        again.report()
    );

    let unknown = cli(&app, &["user", "add", "ann@example.com", "--group", "nope"]).await;
    unknown.code(2);
    assert!(
        unknown.stderr().contains("gatehouse group add nope"),
        "{}",
        unknown.report()
    );
    assert!(
        cli(&app, &["user", "show", "ann"])
            .await
            .code(2)
            .stderr()
            .contains("no account"),
        "nothing was made when a group was wrong"
    );

    let add = cli(&app, &["user", "add", "ann@example.com", "--group", "ops"]).await;
    add.ok();
    assert!(add.stdout().contains(", in ops"), "{}", add.report());
    app.add_user("bea@example.com", "bea", PASSWORD).await;
    let member = cli(&app, &["group", "add-member", "ops", "bea"]).await;
    member.ok();
    assert!(member.stdout().contains("is in the group ops now"));
    assert!(
        cli(&app, &["group", "add-member", "ops", "bea"])
            .await
            .ok()
            .stdout()
            .contains("already")
    );

    let list = cli(&app, &["group", "list", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&list.ok().stdout()).unwrap();
    assert_eq!(rows[0]["name"], "ops");
    assert_eq!(rows[0]["members"], 2);
    let show = cli(&app, &["user", "show", "bea", "--json"]).await;
    let bea: serde_json::Value = serde_json::from_str(&show.ok().stdout()).unwrap();
    assert_eq!(bea["groups"], serde_json::json!(["ops"]));
    assert!(
        cli(&app, &["user", "show", "bea"])
            .await
            .ok()
            .stdout()
            .contains("groups:       ops")
    );

    // The Account page shows them, at once.
    app.login_ok("bea", PASSWORD).await;
    let (_, page) = app.get_text("/account").await;
    assert!(page.contains("<dt>Groups</dt><dd>ops</dd>"), "{page}");
    cli(&app, &["group", "remove-member", "ops", "bea"])
        .await
        .ok();
    let (_, page) = app.get_text("/account").await;
    assert!(page.contains("<dt>Groups</dt><dd>none</dd>"), "{page}");

    let deleted = cli(&app, &["group", "delete", "ops"]).await;
    assert!(deleted.ok().stdout().contains("1 member(s) left it"));
    let ann = cli(&app, &["user", "show", "ann", "--json"]).await;
    let ann: serde_json::Value = serde_json::from_str(&ann.ok().stdout()).unwrap();
    assert_eq!(ann["groups"], serde_json::json!([]));

    // Every change is in the audit log with its actor.
    let audit = cli(&app, &["audit", "--json"]).await;
    let events: serde_json::Value = serde_json::from_str(&audit.ok().stdout()).unwrap();
    let details: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str().map(str::to_owned))
        .collect();
    for what in [
        "group add",
        "group add-member",
        "group remove-member",
        "group delete (1 member(s))",
    ] {
        assert!(details.iter().any(|d| d == what), "{what} in {details:?}");
    }
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "admin" || e["actor"].as_str().unwrap().starts_with("cli:"))
    );
}

#[tokio::test]
async fn an_invitation_carries_its_groups_to_the_new_account() {
    let app = spawn_with(|c| c.signup = SignupMode::Invite).await;
    cli(&app, &["group", "add", "wiki"]).await.ok();
    let made = cli(&app, &["invite", "create", "--group", "wiki", "--json"]).await;
    let invite: serde_json::Value = serde_json::from_str(&made.ok().stdout()).unwrap();
    assert_eq!(invite["groups"], serde_json::json!(["wiki"]));
    let link = invite["link"].as_str().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    app.sign_up("cid@example.com", "cid", token).await;
    let show = cli(&app, &["user", "show", "cid", "--json"]).await;
    let cid: serde_json::Value = serde_json::from_str(&show.ok().stdout()).unwrap();
    assert_eq!(cid["groups"], serde_json::json!(["wiki"]));
    assert!(
        cli(&app, &["invite", "create", "--group", "nope"])
            .await
            .code(2)
            .stderr()
            .contains("there is no group \"nope\"")
    );
}

#[tokio::test]
async fn groups_work_on_a_stopped_server_too() {
    let app = spawn_app().await;
    let (dir, _clock) = app.stop().await;
    gatehouse(dir.path(), &["group", "add", "night-shift"], None).ok();
    gatehouse(
        dir.path(),
        &[
            "user",
            "add",
            "dan@example.com",
            "--group",
            "night-shift",
            "--password-stdin",
        ],
        Some(PASSWORD),
    )
    .ok();
    let shown = gatehouse(dir.path(), &["group", "show", "night-shift"], None);
    assert!(
        shown.ok().stdout().contains("dan <dan@example.com>"),
        "{}",
        shown.report()
    );
    let bad = gatehouse(dir.path(), &["group", "add", "night shift"], None);
    bad.code(2);
    assert!(
        bad.stderr().contains("only letters, digits"),
        "{}",
        bad.report()
    );
}
