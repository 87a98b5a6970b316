//! Invite links: created by someone who may invite, shown once, redeemed by
//! anyone holding the secret for an ordinary invitation in the creator's
//! name, within its expiry and uses; every way a link does not work
//! answers an outsider alike.

use std::collections::HashSet;

use tonic::{Code, Status};
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, authed, change_role, deactivate, expect_above_caller, expect_invalid_argument,
    expect_limited, expect_not_found, expect_permission_missing, expect_refused, expires_in,
    violated_fields, without_invitation_limits,
};

/// A link request for `role`, `max_uses` uses (0: the default).
fn link_request(role: &str, max_uses: i32) -> proto::CreateInviteLinkRequest {
    proto::CreateInviteLinkRequest {
        role: role.into(),
        max_uses,
        ..Default::default()
    }
}

async fn create_link(
    app: &TestApp,
    bearer: &str,
    request: proto::CreateInviteLinkRequest,
) -> Result<proto::CreateInviteLinkResponse, Status> {
    let response = app
        .joining()
        .await
        .create_invite_link(authed(bearer, request))
        .await?;
    Ok(response.into_inner())
}

async fn redeem(app: &TestApp, secret: &str, email: &str) -> Result<bool, Status> {
    let response = app
        .joining()
        .await
        .redeem_invite_link(proto::RedeemInviteLinkRequest {
            secret: secret.into(),
            email: email.into(),
            ..Default::default()
        })
        .await?;
    Ok(response.into_inner().requires_approval)
}

async fn preview(app: &TestApp, secret: &str) -> Result<proto::PreviewInviteLinkResponse, Status> {
    let response = app
        .joining()
        .await
        .preview_invite_link(proto::PreviewInviteLinkRequest {
            secret: secret.into(),
        })
        .await?;
    Ok(response.into_inner())
}

async fn get_link(app: &TestApp, link_id: &str) -> proto::InviteLink {
    app.joining()
        .await
        .get_invite_link(authed(
            &app.owner_token,
            proto::GetInviteLinkRequest {
                link_id: link_id.into(),
            },
        ))
        .await
        .expect("get")
        .into_inner()
        .link
        .expect("a link")
}

/// The status an outsider sees for a link that does not work.
#[track_caller]
fn dead<T: std::fmt::Debug>(result: Result<T, Status>) -> String {
    expect_not_found(result, "INVITE_LINK_NOT_FOUND")
        .message()
        .to_owned()
}

#[tokio::test]
async fn a_link_mints_ordinary_invitations_in_its_creators_name_and_its_secret_is_shown_once() {
    let app = TestApp::spawn().await;
    let created = create_link(&app, &app.owner_token, link_request("agent", 3))
        .await
        .unwrap();
    let link = created.link.expect("the link");
    assert!(created.secret.starts_with("wclink_"), "{}", created.secret);
    assert_eq!(
        (link.max_uses, link.use_count, link.state),
        (3, 0, proto::InviteLinkState::Active as i32)
    );
    // Stored as its SHA-256 only.
    let stored = app
        .count(
            "SELECT count(*) FROM invite_links WHERE secret_hash = sha256(convert_to($1, 'UTF8'))",
            &[&created.secret],
        )
        .await;
    assert_eq!(stored, 1);
    let anywhere = app
        .count(
            "SELECT count(*) FROM outbox WHERE position($1::bytea IN payload) > 0",
            &[&created.secret.as_bytes()],
        )
        .await;
    assert_eq!(anywhere, 0, "the secret is in no event");

    // The join page: no bearer token, and never the creator's email.
    let shown = preview(&app, &created.secret).await.unwrap();
    assert_eq!(shown.workspace_name, "Acme Support");
    assert_eq!(shown.role, "agent");
    assert_eq!(shown.creator_display_name, "Olive Owner");
    assert!(!shown.requires_approval);
    assert!(!format!("{shown:?}").contains("owner@example.com"));

    assert!(
        !redeem(&app, &created.secret, "alice@example.com")
            .await
            .unwrap()
    );
    let mails = app.invitation_mails_to("alice@example.com").await;
    assert_eq!(mails.len(), 1, "one invitation email");
    let invitation = mails[0].invitation.clone().expect("the invitation");
    assert_eq!(invitation.role, "agent");
    assert_eq!(invitation.inviter_user_id, app.owner_id.to_string());
    assert_eq!(mails[0].inviter_display_name, "Olive Owner");
    let token = app.invitation_token(&invitation.id).await;
    let alice = app.accept_named(&token, "Alice").await.unwrap();
    assert_eq!(alice.role, "agent");

    // Again for a member, and for someone already invited: the same answer,
    // no email, no use taken.
    assert!(
        !redeem(&app, &created.secret, "alice@example.com")
            .await
            .unwrap()
    );
    app.invite("bob@example.com", "agent").await;
    assert!(
        !redeem(&app, &created.secret, "bob@example.com")
            .await
            .unwrap()
    );
    assert_eq!(app.invitation_mails_to("alice@example.com").await.len(), 1);
    assert_eq!(app.invitation_mails_to("bob@example.com").await.len(), 1);
    assert_eq!(get_link(&app, &link.id).await.use_count, 1);

    let entries = app.activity(proto::ListActivityRequest::default()).await;
    let created_entry = entries
        .iter()
        .find(|e| e.action == "invitation.created" && e.target_invitation_id == invitation.id)
        .expect("the invitation's entry");
    assert!(
        created_entry
            .changes
            .iter()
            .any(|c| c.field == "invite_link_id" && c.new_value == link.id),
        "{created_entry:?}"
    );
    assert_eq!(app.activity_count("invite_link.created").await, 1);
    assert_eq!(app.outbox_count("invite_link.created").await, 1);

    // Listed, never with a secret.
    let listed = app
        .joining()
        .await
        .list_invite_links(authed(
            &app.owner_token,
            proto::ListInviteLinksRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.links.len(), 1);
    assert_eq!(listed.total_size, 1);
    assert!(!format!("{listed:?}").contains(&created.secret[7..]));
}

#[tokio::test]
async fn unknown_exhausted_revoked_rotated_expired_and_orphaned_links_answer_alike() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("admin@example.com", "admin").await;
    let mut answers = HashSet::new();

    answers.insert(dead(
        redeem(
            &app,
            "wclink_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "a@example.com",
        )
        .await,
    ));
    answers.insert(dead(redeem(&app, "not a secret", "a@example.com").await));
    answers.insert(dead(preview(&app, "").await));

    // Exhausted.
    let one = create_link(&app, &app.owner_token, link_request("agent", 1))
        .await
        .unwrap();
    redeem(&app, &one.secret, "first@example.com")
        .await
        .unwrap();
    answers.insert(dead(redeem(&app, &one.secret, "second@example.com").await));
    answers.insert(dead(preview(&app, &one.secret).await));
    let exhausted = get_link(&app, &one.link.unwrap().id).await;
    assert_eq!(exhausted.state, proto::InviteLinkState::Exhausted as i32);

    // Revoked.
    let revoked = create_link(&app, &app.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    let revoked_link = revoked.link.unwrap();
    app.joining()
        .await
        .revoke_invite_link(authed(
            &app.owner_token,
            proto::RevokeInviteLinkRequest {
                link_id: revoked_link.id.clone(),
            },
        ))
        .await
        .unwrap();
    answers.insert(dead(redeem(&app, &revoked.secret, "r@example.com").await));
    // A revoked link cannot be rotated back to life.
    let rotating = app
        .joining()
        .await
        .rotate_invite_link(authed(
            &app.owner_token,
            proto::RotateInviteLinkRequest {
                link_id: revoked_link.id.clone(),
            },
        ))
        .await;
    expect_refused(rotating, "INVITE_LINK_REVOKED");

    // Rotated: the old secret is like a random one, the new one works.
    let rotated = create_link(&app, &app.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    let fresh = app
        .joining()
        .await
        .rotate_invite_link(authed(
            &app.owner_token,
            proto::RotateInviteLinkRequest {
                link_id: rotated.link.unwrap().id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(fresh.secret, rotated.secret);
    answers.insert(dead(redeem(&app, &rotated.secret, "old@example.com").await));
    redeem(&app, &fresh.secret, "new@example.com")
        .await
        .unwrap();

    // Expired.
    let expiring = create_link(&app, &app.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    let db = app.db().await;
    let id: uuid::Uuid = expiring.link.unwrap().id.parse().unwrap();
    db.execute(
        "UPDATE invite_links SET expires_at = now() - interval '1 second' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    answers.insert(dead(
        redeem(&app, &expiring.secret, "late@example.com").await,
    ));

    // Orphaned: its creator demoted below the right to invite, then
    // deactivated; each time the link is dead.
    let admins = create_link(&app, &admin_token, link_request("agent", 0))
        .await
        .unwrap();
    preview(&app, &admins.secret).await.unwrap();
    app.manage(&admin.id, change_role("supervisor"))
        .await
        .unwrap();
    answers.insert(dead(redeem(&app, &admins.secret, "o1@example.com").await));
    app.manage(&admin.id, change_role("admin")).await.unwrap();
    preview(&app, &admins.secret).await.unwrap();
    app.manage(&admin.id, deactivate("Left")).await.unwrap();
    answers.insert(dead(redeem(&app, &admins.secret, "o2@example.com").await));
    answers.insert(dead(preview(&app, &admins.secret).await));

    assert_eq!(
        answers.len(),
        1,
        "one answer for every dead link: {answers:?}"
    );
    for email in [
        "second@example.com",
        "r@example.com",
        "old@example.com",
        "late@example.com",
        "o1@example.com",
        "o2@example.com",
    ] {
        assert!(app.invitation_mails_to(email).await.is_empty(), "{email}");
    }
}

#[tokio::test]
async fn fifty_concurrent_redemptions_make_exactly_max_uses_invitations() {
    let app = TestApp::spawn_with(|s| {
        s.joining_attempts_per_address_per_minute = 0;
        s.invite_link_redemptions_per_minute = 0;
        without_invitation_limits(s);
    })
    .await;
    let created = create_link(&app, &app.owner_token, link_request("agent", 10))
        .await
        .unwrap();
    let link_id = created.link.unwrap().id;
    let redemptions = (0..50).map(|i| {
        let app = &app;
        let secret = created.secret.clone();
        async move { redeem(app, &secret, &format!("rush{i}@example.com")).await }
    });
    let results = futures::future::join_all(redemptions).await;
    let answered_ok = results.iter().filter(|r| r.is_ok()).count();
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    let id: uuid::Uuid = link_id.parse().unwrap();
    let invitations = app
        .count(
            "SELECT count(*) FROM invitations WHERE invite_link_id = $1",
            &[&id],
        )
        .await;
    assert_eq!(invitations, 10, "exactly max_uses invitations");
    assert_eq!(answered_ok, 10);
    let link = get_link(&app, &link_id).await;
    assert_eq!(link.use_count, 10);
    assert_eq!(link.state, proto::InviteLinkState::Exhausted as i32);
}

#[tokio::test]
async fn a_link_never_grants_above_its_creator_and_a_workspace_holds_few() {
    let app = TestApp::spawn_with(|s| s.max_invite_links = 2).await;
    let (_, admin_token) = app.member("admin@example.com", "admin").await;
    let (_, agent_token) = app.member("agent@example.com", "agent").await;
    expect_above_caller(create_link(&app, &admin_token, link_request("owner", 0)).await);
    expect_permission_missing(create_link(&app, &agent_token, link_request("agent", 0)).await);
    let status = expect_invalid_argument(
        create_link(&app, &app.owner_token, link_request("agent", 1001)).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["max_uses"]);
    let mut short = link_request("agent", 0);
    short.expires_in = expires_in(600);
    let status = expect_invalid_argument(
        create_link(&app, &app.owner_token, short).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["expires_in"]);

    let first = create_link(&app, &app.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    let link = first.link.unwrap();
    assert_eq!(link.max_uses, 25, "the default");
    create_link(&app, &admin_token, link_request("supervisor", 5))
        .await
        .unwrap();
    expect_refused(
        create_link(&app, &app.owner_token, link_request("agent", 0)).await,
        "INVITE_LINK_LIMIT_REACHED",
    );
    // A revoked link frees its place.
    let owners = app
        .joining()
        .await
        .revoke_invite_link(authed(
            &app.owner_token,
            proto::RevokeInviteLinkRequest { link_id: link.id },
        ))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(owners.state, proto::InviteLinkState::Revoked as i32);
    create_link(&app, &app.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    assert_eq!(app.activity_count("invite_link.revoked").await, 1);
}

#[tokio::test]
async fn redemptions_are_limited_per_address_and_per_link() {
    let app = TestApp::spawn_with(|s| s.joining_attempts_per_address_per_minute = 3).await;
    for _ in 0..3 {
        dead(preview(&app, "wclink_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await);
    }
    expect_limited(
        preview(&app, "wclink_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await,
        "JOINING_RATE_LIMITED",
    );

    let per_link = TestApp::spawn_with(|s| {
        s.joining_attempts_per_address_per_minute = 0;
        s.invite_link_redemptions_per_minute = 2;
    })
    .await;
    let created = create_link(&per_link, &per_link.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    redeem(&per_link, &created.secret, "x1@example.com")
        .await
        .unwrap();
    redeem(&per_link, &created.secret, "x2@example.com")
        .await
        .unwrap();
    expect_limited(
        redeem(&per_link, &created.secret, "x3@example.com").await,
        "JOINING_RATE_LIMITED",
    );
    // Another link is counted on its own.
    let other = create_link(&per_link, &per_link.owner_token, link_request("agent", 0))
        .await
        .unwrap();
    redeem(&per_link, &other.secret, "x4@example.com")
        .await
        .unwrap();
}
