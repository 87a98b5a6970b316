//! Join requests: made without authentication, confirmed through the
//! requester's email before an administrator sees them, approved (an
//! ordinary invitation) or denied; the answers are the same whatever
//! exists.

use tonic::Status;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, authed, expect_above_caller, expect_exists, expect_invalid_argument, expect_not_found,
    expect_refused, violated_fields,
};

async fn open_requests(app: &TestApp) {
    let settings = proto::WorkspaceSettings {
        accept_join_requests: true,
        ..Default::default()
    };
    app.client()
        .await
        .update_workspace_settings(authed(
            &app.owner_token,
            proto::UpdateWorkspaceSettingsRequest {
                settings: Some(settings),
            },
        ))
        .await
        .expect("settings");
}

async fn ask(app: &TestApp, workspace_id: &str, email: &str) -> Result<(), Status> {
    app.joining()
        .await
        .create_join_request(proto::CreateJoinRequestRequest {
            workspace_id: workspace_id.into(),
            email: email.into(),
            display_name: "Requester".into(),
            message: "I run the night shift.".into(),
        })
        .await
        .map(|_| ())
}

async fn approve(
    app: &TestApp,
    bearer: &str,
    id: &str,
    role: &str,
) -> Result<proto::ApproveJoinRequestResponse, Status> {
    approve_once(app, bearer, id, role, "").await
}

/// ApproveJoinRequest with a request id (retries answer the first result).
async fn approve_once(
    app: &TestApp,
    bearer: &str,
    id: &str,
    role: &str,
    request_id: &str,
) -> Result<proto::ApproveJoinRequestResponse, Status> {
    Ok(app
        .joining()
        .await
        .approve_join_request(authed(
            bearer,
            proto::ApproveJoinRequestRequest {
                join_request_id: id.into(),
                role: role.into(),
                reporting_to_user_id: None,
                request_id: request_id.into(),
            },
        ))
        .await?
        .into_inner())
}

async fn deny(app: &TestApp, id: &str, reason: &str) -> Result<proto::JoinRequest, Status> {
    Ok(app
        .joining()
        .await
        .deny_join_request(authed(
            &app.owner_token,
            proto::DenyJoinRequestRequest {
                join_request_id: id.into(),
                reason: reason.into(),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner()
        .join_request
        .expect("the request"))
}

#[tokio::test]
async fn a_request_is_seen_once_confirmed_and_its_approval_sends_an_ordinary_invitation() {
    let app = TestApp::spawn().await;
    open_requests(&app).await;
    let workspace = app.workspace_id.to_string();
    ask(&app, &workspace, "bob@example.com").await.unwrap();
    assert!(
        app.join_requests(&app.owner_token).await.is_empty(),
        "unconfirmed: unseen"
    );
    let tokens = app.join_confirmation_tokens("bob@example.com").await;
    assert_eq!(tokens.len(), 1, "one confirmation email");

    assert_eq!(
        app.confirm_join_request(&tokens[0]).await.unwrap(),
        "Acme Support"
    );
    // A second click answers the same and records nothing more.
    assert_eq!(
        app.confirm_join_request(&tokens[0]).await.unwrap(),
        "Acme Support"
    );
    expect_not_found(
        app.confirm_join_request("not-a-token").await,
        "JOIN_REQUEST_NOT_FOUND",
    );
    let listed = app.join_requests(&app.owner_token).await;
    assert_eq!(listed.len(), 1);
    let request = &listed[0];
    assert_eq!(request.state, proto::JoinRequestState::Pending as i32);
    assert_eq!(
        (
            request.email.as_str(),
            request.display_name.as_str(),
            request.message.as_str()
        ),
        ("bob@example.com", "Requester", "I run the night shift.")
    );
    assert_eq!(app.activity_count("join_request.received").await, 1);

    // No role proposed: the approver must give one.
    let status = expect_invalid_argument(
        approve(&app, &app.owner_token, &request.id, "").await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["role"]);
    let approved = approve_once(&app, &app.owner_token, &request.id, "agent", "approve-bob")
        .await
        .unwrap();
    // A retry with the same request id answers the first result.
    let retried = approve_once(&app, &app.owner_token, &request.id, "agent", "approve-bob")
        .await
        .unwrap();
    assert_eq!(retried.invitation, approved.invitation);
    let decided = approved.join_request.unwrap();
    let invitation = approved.invitation.unwrap();
    assert_eq!(decided.state, proto::JoinRequestState::Approved as i32);
    assert_eq!(decided.invitation_id, invitation.id);
    assert_eq!(decided.decided_by_user_id, app.owner_id.to_string());
    assert_eq!(invitation.role, "agent");
    assert_eq!(app.invitation_mails_to("bob@example.com").await.len(), 1);
    let token = app.invitation_token(&invitation.id).await;
    let bob = app.accept_named(&token, "Bob").await.unwrap();
    assert_eq!(bob.email, "bob@example.com");
    assert_eq!(app.activity_count("join_request.approved").await, 1);
    // Decided once.
    expect_refused(
        approve(&app, &app.owner_token, &request.id, "agent").await,
        "JOIN_REQUEST_CLOSED",
    );
}

#[tokio::test]
async fn a_stranger_gets_the_same_answer_whether_or_not_the_workspace_or_the_address_exists() {
    let app = TestApp::spawn().await;
    let workspace = app.workspace_id.to_string();
    // The workspace takes no requests: OK, and nothing happens.
    ask(&app, &workspace, "closed@example.com").await.unwrap();
    // No such workspace: the same.
    ask(
        &app,
        &uuid::Uuid::now_v7().to_string(),
        "nowhere@example.com",
    )
    .await
    .unwrap();
    open_requests(&app).await;
    // A member, and someone invited: the same, and no email.
    ask(&app, &workspace, "owner@example.com").await.unwrap();
    app.invite("invited@example.com", "agent").await;
    ask(&app, &workspace, "invited@example.com").await.unwrap();
    for email in [
        "closed@example.com",
        "nowhere@example.com",
        "owner@example.com",
        "invited@example.com",
    ] {
        assert!(
            app.join_confirmation_tokens(email).await.is_empty(),
            "no email to {email}"
        );
    }
    // Malformed input is still refused as such.
    let status = expect_invalid_argument(ask(&app, "nope", "bad").await, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["workspace_id", "email"]);
}

#[tokio::test]
async fn one_open_request_per_address_and_a_denial_holds_through_its_cool_down() {
    let app = TestApp::spawn().await;
    open_requests(&app).await;
    let workspace = app.workspace_id.to_string();
    ask(&app, &workspace, "carol@example.com").await.unwrap();
    ask(&app, &workspace, "carol@example.com").await.unwrap();
    let tokens = app.join_confirmation_tokens("carol@example.com").await;
    assert_eq!(tokens.len(), 1, "one open request, one email");
    app.confirm_join_request(&tokens[0]).await.unwrap();
    let request = app.join_requests(&app.owner_token).await.remove(0);

    // Nobody approves above their own role.
    let (_, admin_token) = app.member("admin@example.com", "admin").await;
    expect_above_caller(approve(&app, &admin_token, &request.id, "owner").await);

    let denied = deny(&app, &request.id, "Not hiring").await.unwrap();
    assert_eq!(denied.state, proto::JoinRequestState::Denied as i32);
    assert_eq!(denied.denial_reason, "Not hiring");
    expect_refused(
        deny(&app, &request.id, "again").await,
        "JOIN_REQUEST_CLOSED",
    );
    // Asking again during the cool-down: OK, and nothing.
    ask(&app, &workspace, "carol@example.com").await.unwrap();
    assert_eq!(
        app.join_confirmation_tokens("carol@example.com")
            .await
            .len(),
        1
    );
    assert_eq!(app.activity_count("join_request.denied").await, 1);

    // An approved request whose address joined meanwhile cannot invite twice.
    ask(&app, &workspace, "dave@example.com").await.unwrap();
    let token = app
        .join_confirmation_tokens("dave@example.com")
        .await
        .remove(0);
    app.confirm_join_request(&token).await.unwrap();
    let dave = app
        .join_requests(&app.owner_token)
        .await
        .into_iter()
        .find(|r| r.email == "dave@example.com")
        .unwrap();
    app.member("dave@example.com", "agent").await;
    expect_exists(
        approve(&app, &app.owner_token, &dave.id, "agent").await,
        "USER_ALREADY_MEMBER",
    );
}

#[tokio::test]
async fn a_link_that_requires_approval_makes_requests_with_its_role() {
    let app = TestApp::spawn().await;
    let created = app
        .joining()
        .await
        .create_invite_link(authed(
            &app.owner_token,
            proto::CreateInviteLinkRequest {
                role: "supervisor".into(),
                max_uses: 5,
                requires_approval: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let link = created.link.unwrap();
    let redeemed = app
        .joining()
        .await
        .redeem_invite_link(proto::RedeemInviteLinkRequest {
            secret: created.secret.clone(),
            email: "erin@example.com".into(),
            display_name: "Erin".into(),
            message: "From the Berlin office".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(redeemed.requires_approval);
    assert!(app.invitation_mails_to("erin@example.com").await.is_empty());
    let token = app
        .join_confirmation_tokens("erin@example.com")
        .await
        .remove(0);
    app.confirm_join_request(&token).await.unwrap();
    let request = app.join_requests(&app.owner_token).await.remove(0);
    assert_eq!(request.invite_link_id, link.id);
    assert_eq!(request.proposed_role, "supervisor");
    assert_eq!(request.display_name, "Erin");
    // The proposed role, unless the approver says otherwise.
    let approved = approve(&app, &app.owner_token, &request.id, "")
        .await
        .unwrap();
    assert_eq!(approved.invitation.unwrap().role, "supervisor");
    let used = app
        .joining()
        .await
        .get_invite_link(authed(
            &app.owner_token,
            proto::GetInviteLinkRequest { link_id: link.id },
        ))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(
        used.use_count, 1,
        "the request took one use, its approval none"
    );
}

#[tokio::test]
async fn an_approval_reuses_a_pending_invitation_and_requests_expire_and_stay_in_their_workspace() {
    let app = TestApp::spawn_with(|s| s.max_open_join_requests = 2).await;
    open_requests(&app).await;
    let workspace = app.workspace_id.to_string();
    ask(&app, &workspace, "gil@example.com").await.unwrap();
    let token = app
        .join_confirmation_tokens("gil@example.com")
        .await
        .remove(0);
    app.confirm_join_request(&token).await.unwrap();
    let request = app.join_requests(&app.owner_token).await.remove(0);
    // Invited directly meanwhile: the approval keeps that invitation.
    let invited = app.invite("gil@example.com", "supervisor").await;
    let approved = approve(&app, &app.owner_token, &request.id, "agent")
        .await
        .unwrap();
    assert_eq!(approved.invitation.unwrap().id, invited.id);
    assert_eq!(app.invitation_mails_to("gil@example.com").await.len(), 1);

    // Another workspace's owner sees nothing of it.
    let other = app.other_workspace().await;
    let status = app
        .joining()
        .await
        .get_join_request(authed(
            &other.owner_token,
            proto::GetJoinRequestRequest {
                join_request_id: request.id.clone(),
            },
        ))
        .await;
    expect_not_found(status, "JOIN_REQUEST_NOT_FOUND");
    expect_not_found(
        approve(&app, &other.owner_token, &request.id, "agent").await,
        "JOIN_REQUEST_NOT_FOUND",
    );

    // At most two open requests: the third address is dropped unseen.
    ask(&app, &workspace, "h1@example.com").await.unwrap();
    ask(&app, &workspace, "h2@example.com").await.unwrap();
    ask(&app, &workspace, "h3@example.com").await.unwrap();
    assert_eq!(
        app.join_confirmation_tokens("h1@example.com").await.len(),
        1
    );
    assert_eq!(
        app.join_confirmation_tokens("h2@example.com").await.len(),
        1
    );
    assert!(
        app.join_confirmation_tokens("h3@example.com")
            .await
            .is_empty()
    );

    // A confirmed request nobody decided in time expires.
    let token = app
        .join_confirmation_tokens("h1@example.com")
        .await
        .remove(0);
    app.confirm_join_request(&token).await.unwrap();
    let db = app.db().await;
    db.execute(
        "UPDATE join_requests SET expires_at = now() - interval '1 second' WHERE email = 'h1@example.com'",
        &[],
    )
    .await
    .unwrap();
    let h1 = app
        .join_requests(&app.owner_token)
        .await
        .into_iter()
        .find(|r| r.email == "h1@example.com")
        .unwrap();
    assert_eq!(h1.state, proto::JoinRequestState::Expired as i32);
    expect_refused(
        approve(&app, &app.owner_token, &h1.id, "agent").await,
        "JOIN_REQUEST_CLOSED",
    );
    // Its confirmation token no longer works either.
    expect_not_found(
        app.confirm_join_request(&token).await,
        "JOIN_REQUEST_NOT_FOUND",
    );
}
