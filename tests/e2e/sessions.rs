//! Sessions that can end: SignOut ends every session of the caller, and an
//! administrator ends another member's with ManageUser's end_sessions. A
//! token issued before is refused on its very next call, on every replica,
//! though it was verified and its caller cached; signing in again works.

use std::time::Duration;

use tonic::Code;
use wowchat_users_api::v1::{self as proto, manage_user_request::Action};
use wowchat_users_testkit::{
    PASSWORD, TestApp, authed, expect_error, expect_unauthenticated, manage_request,
};

async fn list_users(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.client()
        .await
        .list_users(authed(token, proto::ListUsersRequest::default()))
        .await
        .map(|_| ())
}

async fn sign_in(app: &TestApp, email: &str) -> String {
    app.auth()
        .await
        .sign_in(proto::SignInRequest {
            workspace_id: app.workspace_id.to_string(),
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("signs in")
        .into_inner()
        .access_token
}

#[tokio::test]
async fn sign_out_refuses_every_earlier_token_of_the_caller_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica(|_| {}).await;
    let signed_in = sign_in(&app, "owner@example.com").await;
    // Both tokens verified and their caller cached on both replicas.
    for token in [&signed_in, &app.owner_token] {
        for server in [&app, &replica] {
            list_users(server, token).await.unwrap();
            list_users(server, token).await.unwrap();
        }
    }
    // Tokens count in whole seconds: these were issued a second before.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let ended = app
        .auth()
        .await
        .sign_out(authed(&signed_in, proto::SignOutRequest {}))
        .await
        .expect("signs out")
        .into_inner();
    assert!(ended.sessions_ended_time.is_some());
    for token in [&signed_in, &app.owner_token] {
        for server in [&app, &replica] {
            expect_unauthenticated(list_users(server, token).await, "SESSION_ENDED");
        }
    }
    // Signing in again gives a token that works at once, everywhere.
    let again = sign_in(&app, "owner@example.com").await;
    list_users(&app, &again).await.unwrap();
    list_users(&replica, &again).await.unwrap();
    assert_eq!(app.activity_count("user.signed_out").await, 1);
}

#[tokio::test]
async fn an_administrator_ends_a_members_sessions_and_an_agent_cannot() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("agent@example.com", "agent").await;
    let (supervisor, supervisor_token) = app.member("sup@example.com", "supervisor").await;
    list_users(&app, &supervisor_token).await.unwrap();
    list_users(&app, &supervisor_token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // An agent may not manage users.
    expect_error(
        app.as_(&agent_token)
            .users
            .manage_user(manage_request(
                &supervisor.id,
                Action::EndSessions(Default::default()),
            ))
            .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    list_users(&app, &supervisor_token).await.unwrap();

    app.manage(&supervisor.id, Action::EndSessions(Default::default()))
        .await
        .expect("the owner ends the supervisor's sessions");
    expect_unauthenticated(list_users(&app, &supervisor_token).await, "SESSION_ENDED");
    // Nobody else's.
    list_users(&app, &app.owner_token).await.unwrap();
    let _ = agent;
    assert_eq!(app.activity_count("user.sessions_ended").await, 1);
    let fresh = sign_in(&app, "sup@example.com").await;
    list_users(&app, &fresh).await.unwrap();
}
