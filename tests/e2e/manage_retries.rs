//! Safe retries: etags guard ManageUser against lost updates, and a request
//! id makes a retried ManageUser or InviteUser return its first result and
//! change nothing twice, even when the retries race.

use std::collections::HashSet;

use futures::future::join_all;
use tonic::Code;
use uuid::Uuid;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    InvitationAnswer, TestApp, authed, change_role, deactivate, expect_error,
    expect_invalid_argument, manage_request as on, rename, violated_fields,
};

#[tokio::test]
async fn a_manage_request_with_the_current_etag_succeeds() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let renamed = app
        .try_manage(proto::ManageUserRequest {
            etag: agent.etag.clone(),
            ..on(&agent.id, rename("Ann Lee"))
        })
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Ann Lee");
    let promoted = app
        .try_manage(proto::ManageUserRequest {
            etag: renamed.etag.clone(),
            ..on(&agent.id, change_role("supervisor"))
        })
        .await
        .unwrap();
    assert_eq!(promoted.role, "supervisor");
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let renamed = app.manage(&agent.id, rename("Ann Lee")).await.unwrap();

    for action in [change_role("admin"), deactivate("Stale"), rename("Stale")] {
        expect_error(
            app.try_manage(proto::ManageUserRequest {
                etag: agent.etag.clone(),
                ..on(&agent.id, action)
            })
            .await,
            Code::Aborted,
            "ETAG_MISMATCH",
        );
    }
    let read = app.user(&agent.id).await;
    assert_eq!(read, renamed);
}

#[tokio::test]
async fn a_malformed_etag_is_invalid_on_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    for bad in ["garbage", "W/\"x\"", "\"1\""] {
        let status = expect_invalid_argument(
            app.try_manage(proto::ManageUserRequest {
                etag: bad.into(),
                ..on(&agent.id, rename("Ann Lee"))
            })
            .await,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["etag"], "etag {bad:?}");
    }
    let read = app.user(&agent.id).await;
    assert_eq!(read.etag, agent.etag);
}

#[tokio::test]
async fn a_retried_manage_request_returns_the_first_result_and_records_once() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let retried = proto::ManageUserRequest {
        request_id: "promote-ann-1".into(),
        ..on(&agent.id, change_role("supervisor"))
    };

    let first = app.try_manage(retried.clone()).await.unwrap();
    let second = app.try_manage(retried.clone()).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(second.role, "supervisor");

    // Even after another change, the retry still answers with the first result.
    app.manage(&agent.id, rename("Ann Lee")).await.unwrap();
    let third = app.try_manage(retried).await.unwrap();
    assert_eq!(third.etag, first.etag);

    let target = agent.id.parse::<Uuid>().unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM activity WHERE target_user_id = $1 AND action = 'user.role_changed'", &[&target])
        .await,
        1
    );
    assert_eq!(app.outbox_count("user.role_changed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_a_manage_request_apply_it_once() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let client = app.client().await;
    let request = proto::ManageUserRequest {
        request_id: "deactivate-ann".into(),
        ..on(&agent.id, deactivate("Left"))
    };

    let calls = (0..6).map(|_| {
        let mut client = client.clone();
        let request = authed(&app.owner_token, request.clone());
        tokio::spawn(async move { client.manage_user(request).await })
    });
    let users: Vec<proto::User> = join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .expect("every retry succeeds")
                .into_inner()
                .user
                .unwrap()
        })
        .collect();
    assert!(users.iter().all(|u| u == &users[0]), "{users:?}");
    assert_eq!(users[0].status(), proto::UserStatus::Deactivated);
    assert_eq!(app.activity_count("user.deactivated").await, 1);
    assert_eq!(app.outbox_count("user.deactivated").await, 1);
}

#[tokio::test]
async fn a_retried_invitation_returns_the_first_invitation_and_creates_one() {
    let app = TestApp::spawn().await;
    let request = proto::InviteUserRequest {
        email: "ann@example.com".into(),
        role: "agent".into(),
        request_id: "invite-ann-1".into(),
        ..Default::default()
    };
    let mut client = app.client().await;

    let first = client
        .invite_user(authed(&app.owner_token, request.clone()))
        .await
        .invitation();
    let second = client
        .invite_user(authed(&app.owner_token, request))
        .await
        .expect("the retry succeeds, not INVITATION_PENDING")
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second, first);

    assert_eq!(app.count("SELECT count(*) FROM invitations", &[]).await, 1);
    assert_eq!(app.activity_count("invitation.created").await, 1);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);
}

#[tokio::test]
async fn reusing_a_request_id_for_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (other, _) = app.member("bob@example.com", "agent").await;

    app.try_manage(proto::ManageUserRequest {
        request_id: "shared-id".into(),
        ..on(&agent.id, change_role("supervisor"))
    })
    .await
    .unwrap();
    for different in [
        on(&agent.id, change_role("admin")),
        on(&agent.id, rename("Someone else")),
        on(&other.id, change_role("supervisor")),
        proto::ManageUserRequest {
            etag: agent.etag.clone(),
            ..on(&agent.id, change_role("supervisor"))
        },
    ] {
        let status = expect_invalid_argument(
            app.try_manage(proto::ManageUserRequest {
                request_id: "shared-id".into(),
                ..different
            })
            .await,
            "REQUEST_ID_REUSED",
        );
        assert_eq!(violated_fields(&status), ["request_id"]);
    }
    assert_eq!(app.user(&agent.id).await.role, "supervisor");
    assert_eq!(app.user(&other.id).await.role, "agent");

    let mut client = app.client().await;
    client
        .invite_user(authed(
            &app.owner_token,
            proto::InviteUserRequest {
                email: "carl@example.com".into(),
                role: "agent".into(),
                request_id: "invite-once".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let status = expect_invalid_argument(
        client
            .invite_user(authed(
                &app.owner_token,
                proto::InviteUserRequest {
                    email: "dora@example.com".into(),
                    role: "agent".into(),
                    request_id: "invite-once".into(),
                    ..Default::default()
                },
            ))
            .await,
        "REQUEST_ID_REUSED",
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
    let dora = "dora@example.com";
    assert_eq!(
        app.count(
            "SELECT count(*) FROM invitations WHERE email_normalized = $1",
            &[&dora]
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_invitations_with_one_request_id_create_one_invitation() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let request = proto::InviteUserRequest {
        email: "ann@example.com".into(),
        role: "agent".into(),
        request_id: "invite-ann-concurrently".into(),
        ..Default::default()
    };

    let calls = (0..10).map(|_| {
        let mut client = client.clone();
        let request = authed(&app.owner_token, request.clone());
        tokio::spawn(async move { client.invite_user(request).await })
    });
    let invitations: Vec<proto::Invitation> = join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .expect("every call succeeds")
                .into_inner()
                .invitation
                .unwrap()
        })
        .collect();
    let distinct: HashSet<&str> = invitations.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");

    assert_eq!(app.count("SELECT count(*) FROM invitations", &[]).await, 1);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);
}
