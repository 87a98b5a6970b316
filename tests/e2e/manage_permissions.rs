//! Who may manage and read users: roles above the caller are out of reach,
//! agents and supervisors cannot manage, a deactivated or demoted caller
//! loses their rights at once, and another workspace's users are invisible.

use uuid::Uuid;
use wowchat_users_api::v1 as proto;
use wowchat_users_server::store::workspaces::MEMBERSHIP_LOCK;
use wowchat_users_testkit::{
    TestApp, authed, change_role, clear_manager, deactivate, expect_above_caller, expect_denied,
    expect_invalid_argument, expect_not_found, expect_permission_missing, get_user_request, id_set,
    manage_request as on, reactivate, rename, report_to, user_ids,
};

#[tokio::test]
async fn an_admin_cannot_make_anyone_an_owner() {
    let app = TestApp::spawn().await;
    let (_, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    expect_above_caller(
        app.as_(&admin_token)
            .users
            .manage_user(on(&agent.id, change_role("owner")))
            .await,
    );
    assert_eq!(app.user(&agent.id).await.role, "agent");
}

#[tokio::test]
async fn an_admin_cannot_manage_the_owner() {
    let app = TestApp::spawn().await;
    let (_, admin_token) = app.member("adam@example.com", "admin").await;
    let owner = app.owner_id.to_string();
    let before = app.user(&owner).await;

    for action in [
        deactivate("Hostile takeover"),
        change_role("agent"),
        rename("Not the owner"),
        report_to(&owner),
        clear_manager(),
    ] {
        expect_above_caller(
            app.as_(&admin_token)
                .users
                .manage_user(on(&owner, action))
                .await,
        );
    }
    let after = app.user(&owner).await;
    assert_eq!(after.etag, before.etag);
    assert_eq!(after.status(), proto::UserStatus::Active);
}

#[tokio::test]
async fn agents_and_supervisors_cannot_manage_users() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;
    let (supervisor, supervisor_token) = app.member("sue@example.com", "supervisor").await;

    for (token, target) in [
        (&agent_token, &supervisor.id),
        (&agent_token, &agent.id),
        (&supervisor_token, &agent.id),
        (&supervisor_token, &supervisor.id),
    ] {
        expect_permission_missing(
            app.as_(token)
                .users
                .manage_user(on(target, rename("Hacked")))
                .await,
        );
        expect_permission_missing(
            app.as_(token)
                .users
                .manage_user(on(target, deactivate("Hacked")))
                .await,
        );
    }
    assert_eq!(app.user(&agent.id).await.etag, agent.etag);
}

#[tokio::test]
async fn an_agent_cannot_read_the_activity_log_or_the_users() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;

    expect_permission_missing(
        app.as_(&agent_token)
            .users
            .list_activity(proto::ListActivityRequest::default())
            .await,
    );
    expect_permission_missing(
        app.as_(&agent_token)
            .users
            .list_users(proto::ListUsersRequest::default())
            .await,
    );
    expect_permission_missing(
        app.as_(&agent_token)
            .users
            .get_user(get_user_request(&agent.id))
            .await,
    );
}

#[tokio::test]
async fn a_supervisor_can_read_the_users_and_the_activity_log() {
    let app = TestApp::spawn().await;
    let (_, supervisor_token) = app.member("sue@example.com", "supervisor").await;

    let users = app
        .as_(&supervisor_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(users.total_size, 2);
    let log = app
        .as_(&supervisor_token)
        .users
        .list_activity(proto::ListActivityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!log.entries.is_empty());
}

#[tokio::test]
async fn an_admin_can_make_an_agent_a_supervisor() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let promoted = app
        .as_(&admin_token)
        .users
        .manage_user(on(&agent.id, change_role("supervisor")))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(promoted.role, "supervisor");
    let entries = app.activity_about(&agent.id, "user.role_changed").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor_user_id, admin.id);
}

#[tokio::test]
async fn a_deactivated_users_token_is_refused_at_once_and_works_again_after_reactivation() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    app.as_(&admin_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .expect("the admin's token works");

    app.manage(&admin.id, deactivate("Suspended"))
        .await
        .unwrap();

    expect_denied(
        app.as_(&admin_token)
            .users
            .list_users(proto::ListUsersRequest::default())
            .await,
        "USER_DEACTIVATED",
    );
    expect_denied(
        app.as_(&admin_token)
            .users
            .manage_user(on(&agent.id, deactivate("Revenge")))
            .await,
        "USER_DEACTIVATED",
    );
    expect_denied(
        app.as_(&admin_token)
            .users
            .manage_user(on(&admin.id, reactivate()))
            .await,
        "USER_DEACTIVATED",
    );
    assert_eq!(
        app.user(&agent.id).await.status(),
        proto::UserStatus::Active
    );

    app.manage(&admin.id, reactivate()).await.unwrap();
    let listed = app
        .as_(&admin_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .expect("the same token works again")
        .into_inner();
    assert_eq!(listed.total_size, 3);
}

/// The caller's role is checked against the state the change is applied to:
/// a caller demoted while their request waits for the workspace lock must
/// not act with the role they had when the request arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_demoted_while_their_request_waits_cannot_use_the_old_role() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    // The first owner's demotion of the second owner is under way: it holds
    // the workspace's membership lock and has changed the role, uncommitted.
    let mut demotion_db = app.db().await;
    let demotion = demotion_db.transaction().await.unwrap();
    demotion
        .execute(MEMBERSHIP_LOCK, &[&app.workspace_id.to_string()])
        .await
        .unwrap();
    demotion
        .execute(
            "UPDATE users SET role = 'admin', version = version + 1 WHERE workspace_id = $1 AND id = $2",
            &[&app.workspace_id, &second.id.parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();

    // Meanwhile the second owner tries to make the agent an owner.
    let mut client = app.client().await;
    let request = authed(&second_token, on(&agent.id, change_role("owner")));
    let promotion = tokio::spawn(async move { client.manage_user(request).await });

    // Wait until that request is queued behind the lock, then commit the demotion.
    app.wait_for_lock_waiters(1).await;
    demotion.commit().await.unwrap();

    let outcome = promotion.await.unwrap();
    let agent_after = app.user(&agent.id).await;
    assert_eq!(
        agent_after.role, "agent",
        "a demoted caller made someone owner: {outcome:?}"
    );
    expect_above_caller(outcome);
}

#[tokio::test]
async fn users_of_another_workspace_are_invisible_and_untouchable() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let other = app.other_workspace().await;
    let other_token = other.owner_token.clone();
    let other_owner = other.owner_id.to_string();
    let owner = app.owner_id.to_string();

    // This workspace's owner cannot see or touch the other workspace's owner.
    expect_not_found(
        app.as_owner()
            .users
            .get_user(get_user_request(&other_owner))
            .await,
        "USER_NOT_FOUND",
    );
    expect_not_found(
        app.manage(&other_owner, deactivate("Mine now")).await,
        "USER_NOT_FOUND",
    );
    expect_invalid_argument(
        app.manage(&agent.id, report_to(&other_owner)).await,
        "REPORTING_TO_NOT_FOUND",
    );

    // And the other way round.
    for target in [&owner, &agent.id] {
        expect_not_found(
            app.as_(&other_token)
                .users
                .get_user(get_user_request(target))
                .await,
            "USER_NOT_FOUND",
        );
        expect_not_found(
            app.as_(&other_token)
                .users
                .manage_user(on(target, deactivate("Mine now")))
                .await,
            "USER_NOT_FOUND",
        );
        expect_not_found(
            app.as_(&other_token)
                .users
                .manage_user(on(target, rename("Mine now")))
                .await,
            "USER_NOT_FOUND",
        );
    }
    let theirs = app
        .as_(&other_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user_ids(&theirs.users), id_set(&[&other_owner]));
    assert_eq!(theirs.total_size, 1);
    let searched = app
        .as_(&other_token)
        .users
        .list_users(proto::ListUsersRequest {
            query: "example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user_ids(&searched.users), id_set(&[&other_owner]));
    let their_log = app
        .as_(&other_token)
        .users
        .list_activity(proto::ListActivityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        their_log
            .entries
            .iter()
            .all(|e| e.workspace_id == other.workspace_id.to_string()),
        "{their_log:?}"
    );

    // Nothing changed in either workspace.
    let ours = app.list_users(proto::ListUsersRequest::default()).await;
    assert_eq!(user_ids(&ours.users), id_set(&[&owner, &agent.id]));
    assert!(
        ours.users
            .iter()
            .all(|u| u.status() == proto::UserStatus::Active)
    );
    let other_after = app
        .as_(&other_token)
        .users
        .get_user(get_user_request(&other_owner))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(other_after.status(), proto::UserStatus::Active);
    assert_eq!(other_after.display_name, "Other Owner");
}
