//! The product brief's whole flow: invite, accept, listed, managed.

use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    InvitationAnswer, PASSWORD, TestApp, authed, change_role, expect_refused,
    invitation_reporting_to,
};

#[tokio::test]
async fn an_invited_person_accepts_and_appears_in_the_users_list() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;

    let manager_id = app.owner_id.to_string();
    let invitation = app
        .try_invite(proto::InviteUserRequest {
            message: "Welcome aboard!".into(),
            ..invitation_reporting_to("Alice@Example.com", "agent", &manager_id)
        })
        .await
        .unwrap();
    assert_eq!(invitation.email, "Alice@Example.com");
    assert_eq!(invitation.role, "agent");
    assert_eq!(invitation.status(), proto::InvitationStatus::Pending);
    assert_eq!(invitation.inviter_user_id, app.owner_id.to_string());
    assert_eq!(
        invitation.reporting_to_user_id,
        Some(app.owner_id.to_string())
    );
    let week = invitation.expire_time.unwrap().seconds - invitation.create_time.unwrap().seconds;
    assert!(
        (7 * 86_400 - 5..=7 * 86_400 + 5).contains(&week),
        "default expiry is 7 days, got {week}s"
    );

    let token = app.invitation_token(&invitation.id).await;
    let user = app.accept_named(&token, "Alice Agent").await.unwrap();
    assert_eq!(user.status(), proto::UserStatus::Active);
    // Stored as an argon2id hash with OWASP's parameters, never as typed.
    let stored: String = app
        .db()
        .await
        .query_one(
            "SELECT password_hash FROM users WHERE email = 'Alice@Example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains(PASSWORD));
    assert_eq!(user.role, "agent");
    assert_eq!(user.reporting_to_user_id, Some(app.owner_id.to_string()));

    let listed = client
        .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 2);
    assert!(
        listed
            .users
            .iter()
            .any(|u| u.id == user.id && u.email == "Alice@Example.com")
    );

    let accepted = client
        .get_invitation(authed(
            &app.owner_token,
            proto::GetInvitationRequest {
                invitation_id: invitation.id.clone(),
            },
        ))
        .await
        .invitation();
    assert_eq!(accepted.status(), proto::InvitationStatus::Accepted);
    assert_eq!(accepted.accepted_user_id, user.id);

    // The token worked once.
    expect_refused(
        client
            .accept_invitation(proto::AcceptInvitationRequest {
                token,
                display_name: "Alice Again".into(),
                password: PASSWORD.into(),
            })
            .await,
        "INVITATION_ALREADY_ACCEPTED",
    );

    let managed = app
        .manage(&user.id, change_role("supervisor"))
        .await
        .unwrap();
    assert_eq!(managed.role, "supervisor");
    assert_ne!(managed.etag, user.etag);
}
