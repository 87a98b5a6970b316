//! The activity log (ListActivity) and the outbox rows written with each
//! change: actor, target, changes and request id, filters, and pages that
//! walk every entry once, newest first.

use prost::Message;
use uuid::Uuid;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, authed, change_role, clear_manager, deactivate, field_change, manage_request as on,
    reactivate, rename, report_to, with_request_id,
};

#[tokio::test]
async fn a_change_is_logged_and_published_with_actor_target_changes_and_request_id() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let mut client = app.client().await;

    let promoted = client
        .manage_user(with_request_id(
            authed(&app.owner_token, on(&agent.id, change_role("supervisor"))),
            "req-promote-ann",
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();

    let entries = app.activity_about(&agent.id, "user.role_changed").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.workspace_id, app.workspace_id.to_string());
    assert_eq!(entry.actor_user_id, app.owner_id.to_string());
    assert_eq!(entry.target_user_id, agent.id);
    assert_eq!(entry.target_invitation_id, "");
    assert_eq!(entry.action, "user.role_changed");
    assert_eq!(entry.changes, [field_change("role", "agent", "supervisor")]);
    assert_eq!(entry.request_id, "req-promote-ann");
    assert!(entry.create_time.is_some());

    let outbox = app.outbox().await;
    let rows: Vec<_> = outbox
        .iter()
        .filter(|row| row.request_id == "req-promote-ann")
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].routing_key, "user.role_changed");
    assert_eq!(rows[0].message_type, "wowchat.users.events.v1.UserChanged");
    let event =
        wowchat_users_api::events::v1::UserChanged::decode(rows[0].payload.as_slice()).unwrap();
    assert_eq!(event.user.as_ref(), Some(&promoted));
    assert_eq!(event.actor_user_id, app.owner_id.to_string());
    assert_eq!(event.changes, [field_change("role", "agent", "supervisor")]);
}

#[tokio::test]
async fn every_action_writes_its_entry_and_an_outbox_row_routed_by_the_action() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let owner = app.owner_id.to_string();
    let mut client = app.client().await;
    let steps = [
        ("act-1", rename("Ann Lee"), "user.updated"),
        ("act-2", change_role("supervisor"), "user.role_changed"),
        ("act-3", report_to(&owner), "user.reporting_to_changed"),
        ("act-4", clear_manager(), "user.reporting_to_changed"),
        ("act-5", deactivate("On leave"), "user.deactivated"),
        ("act-6", reactivate(), "user.reactivated"),
    ];
    for (request_id, action, _) in &steps {
        client
            .manage_user(with_request_id(
                authed(&app.owner_token, on(&agent.id, action.clone())),
                request_id,
            ))
            .await
            .unwrap();
    }

    let mut published: Vec<(String, String)> = app
        .outbox()
        .await
        .into_iter()
        .filter(|row| row.request_id.starts_with("act-"))
        .map(|row| (row.request_id, row.routing_key))
        .collect();
    published.sort();
    let expected: Vec<(String, String)> = steps
        .iter()
        .map(|(id, _, action)| ((*id).to_owned(), (*action).to_owned()))
        .collect();
    assert_eq!(published, expected);

    let entries = app
        .activity(proto::ListActivityRequest {
            target_user_id: agent.id.clone(),
            actor_user_id: owner.clone(),
            ..Default::default()
        })
        .await;
    let logged: Vec<(&str, &str, &[proto::FieldChange])> = entries
        .iter()
        .map(|e| {
            (
                e.request_id.as_str(),
                e.action.as_str(),
                e.changes.as_slice(),
            )
        })
        .collect();
    let name_change = [field_change("display_name", &agent.display_name, "Ann Lee")];
    let role_change = [field_change("role", "agent", "supervisor")];
    let manager_set = [field_change("reporting_to", "", &owner)];
    let manager_cleared = [field_change("reporting_to", &owner, "")];
    let deactivation = [
        field_change("status", "ACTIVE", "DEACTIVATED"),
        field_change("deactivation_reason", "", "On leave"),
    ];
    let reactivation = [field_change("status", "DEACTIVATED", "ACTIVE")];
    assert_eq!(
        logged,
        vec![
            ("act-6", "user.reactivated", &reactivation[..]),
            ("act-5", "user.deactivated", &deactivation[..]),
            ("act-4", "user.reporting_to_changed", &manager_cleared[..]),
            ("act-3", "user.reporting_to_changed", &manager_set[..]),
            ("act-2", "user.role_changed", &role_change[..]),
            ("act-1", "user.updated", &name_change[..]),
        ],
        "newest first"
    );
}

#[tokio::test]
async fn the_activity_log_filters_by_actor_target_action_and_time() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let owner = app.owner_id.to_string();

    app.as_(&admin_token)
        .users
        .manage_user(on(&ann.id, rename("Ann by Admin")))
        .await
        .unwrap();
    app.manage(&bob.id, deactivate("Left")).await.unwrap();
    app.manage(&ann.id, change_role("supervisor"))
        .await
        .unwrap();
    app.manage(&ann.id, rename("Ann by Owner")).await.unwrap();

    // By actor.
    let by_admin = app
        .activity(proto::ListActivityRequest {
            actor_user_id: admin.id.clone(),
            ..Default::default()
        })
        .await;
    assert!(by_admin.iter().all(|e| e.actor_user_id == admin.id));
    assert!(
        by_admin
            .iter()
            .any(|e| e.action == "user.updated" && e.target_user_id == ann.id)
    );
    let by_owner = app
        .activity(proto::ListActivityRequest {
            actor_user_id: owner.clone(),
            action: "user.updated".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(by_owner.len(), 1);
    assert_eq!(by_owner[0].changes[0].new_value, "Ann by Owner");

    // By target.
    let about_bob = app
        .activity(proto::ListActivityRequest {
            target_user_id: bob.id.clone(),
            ..Default::default()
        })
        .await;
    assert!(!about_bob.is_empty());
    assert!(about_bob.iter().all(|e| e.target_user_id == bob.id));
    assert!(about_bob.iter().any(|e| e.action == "user.deactivated"));

    // By action.
    let deactivations = app
        .activity(proto::ListActivityRequest {
            action: "user.deactivated".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(deactivations.len(), 1);
    assert_eq!(deactivations[0].target_user_id, bob.id);
    assert_eq!(deactivations[0].actor_user_id, owner);

    // By time: start_time is inclusive, end_time exclusive.
    let about_ann = app
        .activity(proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            actor_user_id: owner.clone(),
            ..Default::default()
        })
        .await;
    let ann_actions: Vec<&str> = about_ann.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(ann_actions, ["user.updated", "user.role_changed"]);
    let role_changed_at = about_ann[1].create_time;
    let from_role_change = app
        .activity(proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            start_time: role_changed_at,
            ..Default::default()
        })
        .await;
    let ids_from: Vec<&str> = from_role_change.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids_from,
        [about_ann[0].id.as_str(), about_ann[1].id.as_str()]
    );
    let before_role_change = app
        .activity(proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            end_time: role_changed_at,
            ..Default::default()
        })
        .await;
    let actions_before: Vec<&str> = before_role_change
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions_before, ["user.updated", "invitation.accepted"]);
    assert_eq!(before_role_change[0].actor_user_id, admin.id);
    let exactly_the_role_change = app
        .activity(proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            start_time: role_changed_at,
            end_time: about_ann[0].create_time,
            ..Default::default()
        })
        .await;
    assert_eq!(exactly_the_role_change.len(), 1);
    assert_eq!(exactly_the_role_change[0].id, about_ann[1].id);
}

#[tokio::test]
async fn the_invitee_accepting_is_logged_as_their_own_act() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.member("ann@example.com", "agent").await;

    let accepted = app
        .activity(proto::ListActivityRequest {
            action: "invitation.accepted".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].target_user_id, ann.id);
    assert_eq!(
        accepted[0].actor_user_id, ann.id,
        "the contract: for AcceptInvitation the actor is the new user"
    );
}

#[tokio::test]
async fn activity_pages_walk_every_entry_once_newest_first() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    for name in ["Ann 1", "Ann 2", "Ann 3"] {
        app.manage(&ann.id, rename(name)).await.unwrap();
    }
    app.manage(&bob.id, deactivate("Left")).await.unwrap();

    let mut walked: Vec<proto::ActivityEntry> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = owner
            .list_activity(proto::ListActivityRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 3);
        walked.extend(page.entries);
        pages += 1;
        assert!(pages < 50, "pagination does not end");
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    let rows = app
        .db()
        .await
        .query(
            "SELECT id FROM activity WHERE workspace_id = $1 ORDER BY occurred_at DESC, id DESC",
            &[&app.workspace_id],
        )
        .await
        .unwrap();
    let stored: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, Uuid>(0).to_string())
        .collect();
    // 2 invitations created, 2 accepted, 4 changes.
    assert_eq!(stored.len(), 8);
    let walked_ids: Vec<String> = walked.iter().map(|e| e.id.clone()).collect();
    assert_eq!(walked_ids, stored, "every entry once, newest first");
    assert_eq!(pages, 3);
    for pair in walked.windows(2) {
        let (newer, older) = (pair[0].create_time.unwrap(), pair[1].create_time.unwrap());
        assert!(
            (newer.seconds, newer.nanos) >= (older.seconds, older.nanos),
            "newest first"
        );
    }
}
