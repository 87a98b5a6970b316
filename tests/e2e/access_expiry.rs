//! Access that ends by itself: an invitation or a user carries an access
//! expiry. From that moment the user's calls are refused on every replica
//! (checked at the call, not by a sweep) and CheckPermission answers false;
//! the sweep then deactivates them with an activity entry; extending the
//! expiry brings them back.

use std::time::Duration;

use tonic::Code;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    PASSWORD, TestApp, access_ends_in, access_never_ends, deactivate, expect_denied, expect_error,
    expect_invalid_argument, expect_refused, get_user_request, invitation_request, manage_request,
    permission_check, reactivate, timestamp_in, violated_fields,
};

async fn own_profile(
    app: &TestApp,
    bearer: &str,
    user_id: &str,
) -> Result<proto::User, tonic::Status> {
    let mut users = app.as_(bearer).users;
    let response = users.get_user(get_user_request(user_id)).await?;
    Ok(response.into_inner().user.unwrap())
}

/// Whether CheckPermission on `server`, asked by the holder of `bearer`,
/// allows `user_id` to read users.
async fn reads_users(server: &TestApp, bearer: &str, user_id: &str) -> bool {
    let request = permission_check(user_id, "users.read");
    let answer = server.as_(bearer).roles.check_permission(request).await;
    answer.unwrap().into_inner().allowed
}

#[tokio::test]
async fn access_ends_at_its_expiry_on_every_replica_and_comes_back_when_extended() {
    // The sweep is slow here, so the refusals below come from the call's
    // own check, not from a deactivation.
    let app = TestApp::spawn_with(|s| s.access_expiry_sweep_secs = 3600).await;
    let replica = app
        .spawn_replica(|s| s.access_expiry_sweep_secs = 3600)
        .await;
    let (agent, agent_token) = app.member("seasonal@example.com", "supervisor").await;

    let managed = app.manage(&agent.id, access_ends_in(2.0)).await.unwrap();
    assert!(managed.access_expire_time.is_some());
    // Verified and cached on both replicas before the moment passes.
    for server in [&app, &replica] {
        own_profile(server, &agent_token, &agent.id).await.unwrap();
        own_profile(server, &agent_token, &agent.id).await.unwrap();
        assert!(reads_users(server, &app.owner_token, &agent.id).await);
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;

    for server in [&replica, &app] {
        expect_denied(
            own_profile(server, &agent_token, &agent.id).await,
            "USER_ACCESS_EXPIRED",
        );
        assert!(
            !reads_users(server, &app.owner_token, &agent.id).await,
            "CheckPermission on a lapsed user"
        );
    }
    let signing_in = app
        .auth()
        .await
        .sign_in(proto::SignInRequest {
            workspace_id: app.workspace_id.to_string(),
            email: "seasonal@example.com".into(),
            password: PASSWORD.into(),
        })
        .await;
    expect_denied(signing_in, "USER_ACCESS_EXPIRED");

    // Extended: access is back at once, everywhere.
    let extended = app.manage(&agent.id, access_ends_in(3600.0)).await.unwrap();
    assert_eq!(extended.status, proto::UserStatus::Active as i32);
    for server in [&replica, &app] {
        own_profile(server, &agent_token, &agent.id).await.unwrap();
    }
    assert_eq!(app.activity_count("user.access_expiry_changed").await, 2);
    // Never again: cleared.
    let cleared = app.manage(&agent.id, access_never_ends()).await.unwrap();
    assert!(cleared.access_expire_time.is_none());
}

#[tokio::test]
async fn the_sweep_deactivates_lapsed_users_with_an_entry_and_an_extension_reactivates_them() {
    let app = TestApp::spawn_with(|s| s.access_expiry_sweep_secs = 1).await;
    let (agent, agent_token) = app.member("contractor@example.com", "supervisor").await;
    let (stays, _) = app.member("stays@example.com", "agent").await;
    app.manage(&agent.id, access_ends_in(1.0)).await.unwrap();

    let mut swept = None;
    for _ in 0..100 {
        let user = app.user(&agent.id).await;
        if user.status == proto::UserStatus::Deactivated as i32 {
            swept = Some(user);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let swept = swept.expect("the sweep deactivates the lapsed user within seconds");
    assert_eq!(swept.deactivation_reason, "access expired");
    assert_eq!(
        app.user(&stays.id).await.status,
        proto::UserStatus::Active as i32
    );
    assert_eq!(app.activity_count("user.access_expired").await, 1);
    assert_eq!(app.outbox_count("user.access_expired").await, 1);
    let entries = app.activity_about(&agent.id, "user.access_expired").await;
    let entry = entries.first().expect("an activity entry");
    assert!(
        entry.actor_user_id.is_empty(),
        "the service did it: {entry:?}"
    );

    // Reactivate alone is refused while the expiry is past ...
    expect_refused(
        app.manage(&agent.id, reactivate()).await,
        "USER_ACCESS_EXPIRED",
    );
    // ... extending it reactivates the user, and their token works again.
    let back = app.manage(&agent.id, access_ends_in(3600.0)).await.unwrap();
    assert_eq!(back.status, proto::UserStatus::Active as i32);
    assert_eq!(back.deactivation_reason, "");
    app.as_(&agent_token)
        .users
        .get_user(get_user_request(&agent.id))
        .await
        .unwrap();

    // A deactivation for another reason is not undone by an extension.
    app.manage(&stays.id, deactivate("Left the team"))
        .await
        .unwrap();
    let still = app.manage(&stays.id, access_ends_in(3600.0)).await.unwrap();
    assert_eq!(still.status, proto::UserStatus::Deactivated as i32);
}

#[tokio::test]
async fn an_invitation_carries_the_access_expiry_to_its_user_and_lists_filter_by_it() {
    let app = TestApp::spawn().await;
    let mut request = invitation_request("guest@example.com", "agent");
    let ends = timestamp_in(7200.0);
    request.access_expire_time = Some(ends);
    let invitation = app.try_invite(request).await.unwrap();
    assert_eq!(
        invitation.access_expire_time.map(|t| t.seconds),
        Some(ends.seconds)
    );
    let token = app.invitation_token(&invitation.id).await;
    let guest = app.accept_named(&token, "Guest").await.unwrap();
    assert_eq!(
        guest.access_expire_time.map(|t| t.seconds),
        invitation.access_expire_time.map(|t| t.seconds)
    );
    let (_, _) = app.member("permanent@example.com", "agent").await;

    let listed = app
        .list_users(proto::ListUsersRequest {
            access_expires_before: Some(timestamp_in(3.0 * 3600.0)),
            ..Default::default()
        })
        .await;
    let emails: Vec<_> = listed.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["guest@example.com"]);
    let none = app
        .list_users(proto::ListUsersRequest {
            access_expires_before: Some(timestamp_in(3600.0)),
            ..Default::default()
        })
        .await;
    assert!(none.users.is_empty());

    // An expiry in the past is invalid and creates nothing.
    let mut past = invitation_request("late@example.com", "agent");
    past.access_expire_time = Some(timestamp_in(-60.0));
    let status = expect_invalid_argument(app.try_invite(past).await, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["access_expire_time"]);
    let status = expect_invalid_argument(
        app.manage(&guest.id, access_ends_in(-1.0)).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["set_access_expiry.expire_time"]);
}

#[tokio::test]
async fn the_last_owner_s_access_cannot_be_made_to_end() {
    let app = TestApp::spawn().await;
    let owner_id = app.owner_id.to_string();
    expect_refused(
        app.manage(&owner_id, access_ends_in(3600.0)).await,
        "LAST_OWNER",
    );
    // With a second owner, it can.
    let (_, _) = app.member("second-owner@example.com", "owner").await;
    let owner = app.manage(&owner_id, access_ends_in(3600.0)).await.unwrap();
    assert!(owner.access_expire_time.is_some());
    // And an agent cannot set anyone's.
    let (_, agent_token) = app.member("agent@example.com", "agent").await;
    let result = app
        .as_(&agent_token)
        .users
        .manage_user(manage_request(&owner_id, access_never_ends()))
        .await;
    expect_error(result, Code::PermissionDenied, "PERMISSION_MISSING");
}
