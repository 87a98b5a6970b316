//! ManageUser, action by action: each action is applied, returned and moves
//! the etag (an action that changes nothing keeps it), and malformed
//! requests are refused field by field.

use uuid::Uuid;
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
};
use wowchat_users_testkit::{
    TestApp, change_role, clear_manager, deactivate, expect_invalid_argument, expect_not_found,
    reactivate, rename, report_to, violated_fields,
};

#[tokio::test]
async fn updating_the_display_name_returns_the_renamed_user_with_a_new_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let renamed = app.manage(&agent.id, rename("Ann Lee")).await.unwrap();
    assert_eq!(renamed.id, agent.id);
    assert_eq!(renamed.display_name, "Ann Lee");
    assert_eq!(renamed.role, "agent");
    assert_eq!(renamed.status(), proto::UserStatus::Active);
    assert_ne!(renamed.etag, agent.etag);

    let read = app.user(&agent.id).await;
    assert_eq!(read.display_name, "Ann Lee");
    assert_eq!(read.etag, renamed.etag);
}

#[tokio::test]
async fn changing_the_role_returns_the_user_with_the_new_role_and_a_new_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let promoted = app.manage(&agent.id, change_role("admin")).await.unwrap();
    assert_eq!(promoted.role, "admin");
    assert_ne!(promoted.etag, agent.etag);

    let read = app.user(&agent.id).await;
    assert_eq!(read.role, "admin");
    assert_eq!(read.etag, promoted.etag);
}

#[tokio::test]
async fn setting_and_clearing_the_manager_are_returned_with_a_new_etag_each_time() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (supervisor, _) = app.member("sue@example.com", "supervisor").await;
    assert_eq!(agent.reporting_to_user_id, None);

    let managed = app
        .manage(&agent.id, report_to(&supervisor.id))
        .await
        .unwrap();
    assert_eq!(managed.reporting_to_user_id, Some(supervisor.id.clone()));
    assert_ne!(managed.etag, agent.etag);

    let cleared = app.manage(&agent.id, clear_manager()).await.unwrap();
    assert_eq!(cleared.reporting_to_user_id, None);
    assert_ne!(cleared.etag, managed.etag);
    assert_ne!(cleared.etag, agent.etag);

    let read = app.user(&agent.id).await;
    assert_eq!(read.reporting_to_user_id, None);
    assert_eq!(read.etag, cleared.etag);
}

#[tokio::test]
async fn deactivating_with_a_reason_and_reactivating_are_returned_with_a_new_etag_each_time() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    assert_eq!(agent.deactivation_reason, "");

    let deactivated = app
        .manage(&agent.id, deactivate("Left the company"))
        .await
        .unwrap();
    assert_eq!(deactivated.status(), proto::UserStatus::Deactivated);
    assert_eq!(deactivated.deactivation_reason, "Left the company");
    assert_ne!(deactivated.etag, agent.etag);
    let read = app.user(&agent.id).await;
    assert_eq!(read.status(), proto::UserStatus::Deactivated);
    assert_eq!(read.deactivation_reason, "Left the company");

    let reactivated = app.manage(&agent.id, reactivate()).await.unwrap();
    assert_eq!(reactivated.status(), proto::UserStatus::Active);
    assert_eq!(reactivated.deactivation_reason, "", "empty while active");
    assert_ne!(reactivated.etag, deactivated.etag);
    assert_ne!(reactivated.etag, agent.etag);
}

#[tokio::test]
async fn an_action_that_changes_nothing_succeeds_keeps_the_etag_and_logs_nothing() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let deactivated = app.manage(&agent.id, deactivate("Gone")).await.unwrap();
    let logged_before = app.count("SELECT count(*) FROM activity", &[]).await;
    let published_before = app.count("SELECT count(*) FROM outbox", &[]).await;

    for action in [
        deactivate("Gone again"),
        change_role("agent"),
        clear_manager(),
        rename(&agent.display_name),
        Action::UpdateProfile(manage::UpdateProfile { display_name: None }),
    ] {
        let same = app
            .manage(&agent.id, action.clone())
            .await
            .unwrap_or_else(|e| panic!("{action:?} should succeed: {e:?}"));
        assert_eq!(same.etag, deactivated.etag, "{action:?} changed the etag");
        assert_eq!(same.status(), proto::UserStatus::Deactivated);
        assert_eq!(same.deactivation_reason, "Gone", "{action:?}");
    }

    let reactivated = app.manage(&agent.id, reactivate()).await.unwrap();
    let again = app.manage(&agent.id, reactivate()).await.unwrap();
    assert_eq!(again.etag, reactivated.etag);
    assert_eq!(again.status(), proto::UserStatus::Active);

    // Only the one real change (the reactivation) was logged and published.
    assert_eq!(
        app.count("SELECT count(*) FROM activity", &[]).await,
        logged_before + 1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox", &[]).await,
        published_before + 1
    );
}

#[tokio::test]
async fn a_manage_request_without_an_action_is_invalid_on_action() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_invalid_argument(
        app.try_manage(proto::ManageUserRequest {
            user_id: agent.id.clone(),
            ..Default::default()
        })
        .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["action"]);
    let read = app.user(&agent.id).await;
    assert_eq!(read.etag, agent.etag);
}

#[tokio::test]
async fn a_manage_request_with_a_malformed_user_id_is_invalid_on_user_id() {
    let app = TestApp::spawn().await;

    for bad in ["", "not-a-uuid", "12345"] {
        let status =
            expect_invalid_argument(app.manage(bad, rename("Nobody")).await, "INVALID_ARGUMENT");
        assert_eq!(violated_fields(&status), ["user_id"], "user_id {bad:?}");
    }
}

#[tokio::test]
async fn managing_an_unknown_user_is_not_found() {
    let app = TestApp::spawn().await;

    expect_not_found(
        app.manage(&Uuid::now_v7().to_string(), rename("Nobody"))
            .await,
        "USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn changing_to_an_unknown_role_is_invalid_on_the_role() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_invalid_argument(
        app.manage(&agent.id, change_role("root")).await,
        "ROLE_NOT_FOUND",
    );
    assert_eq!(violated_fields(&status), ["change_role.role"]);
}

#[tokio::test]
async fn a_deactivation_reason_over_500_characters_is_invalid() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_invalid_argument(
        app.manage(&agent.id, deactivate(&"x".repeat(501))).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["deactivate.reason"]);
    let read = app.user(&agent.id).await;
    assert_eq!(read.status(), proto::UserStatus::Active);
}
