//! Invitation policy: batch invitations with a result per row, updating a
//! pending invitation, the token preview, the workspace's seat limit and
//! allowed email domains, and the invitation rate limits.

use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;
use wowchat_users_api::v1::{self as proto, batch_invite_result::Outcome};
use wowchat_users_testkit::{
    InvitationAnswer, SmtpServer, TestApp, authed, expect_above_caller, expect_invalid_argument,
    expect_limited, expect_not_found, expect_permission_missing, expect_refused,
    invitation_request, resend_request, retry_delay, violated_fields,
};

/// Each row's outcome of a BatchInviteUsers answer.
fn outcomes(response: tonic::Response<proto::BatchInviteUsersResponse>) -> Vec<Outcome> {
    let results = response.into_inner().results.into_iter();
    results
        .map(|result| result.outcome.expect("an outcome"))
        .collect()
}

/// Asserts a batch row was refused with `code` and `reason`.
#[track_caller]
fn assert_refused_with(outcome: &Outcome, code: Code, reason: &str) {
    let refusal = match outcome {
        Outcome::Refusal(r) => (Code::from_i32(r.code), r.reason.as_str()),
        Outcome::Invitation(i) => panic!("expected a refusal, got {i:?}"),
    };
    assert_eq!(refusal, (code, reason));
}

fn created(outcome: &Outcome) -> &proto::Invitation {
    match outcome {
        Outcome::Invitation(i) => i,
        Outcome::Refusal(r) => panic!("expected an invitation, got {r:?}"),
    }
}

// ---- BatchInviteUsers ----

#[tokio::test]
async fn a_batch_refuses_rows_for_their_own_reasons_and_creates_the_good_ones() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.member("admin@example.com", "admin").await;
    app.member("member@example.com", "agent").await;
    app.invite("pending@example.com", "agent").await;
    // Taken: owner, admin, member, one pending: 4 of 6.
    app.update_settings(6, &["Example.com"]).await.unwrap();

    let mut client = app.client().await;
    let results = app
        .as_(&admin)
        .users
        .batch_invite_users(proto::BatchInviteUsersRequest {
            requests: vec![
                invitation_request("new1@example.com", "agent"),
                invitation_request("MEMBER@example.com", "agent"),
                invitation_request("pending@example.com", "agent"),
                invitation_request("not an email", "agent"),
                invitation_request("x@example.com", "no-such-role"),
                invitation_request("y@example.com", "owner"),
                invitation_request("z@other.org", "agent"),
                invitation_request("new2@EXAMPLE.COM", "agent"),
                invitation_request("new3@example.com", "agent"),
            ],
        })
        .await
        .map(outcomes)
        .unwrap();

    assert_eq!(results.len(), 9);
    assert_eq!(created(&results[0]).email, "new1@example.com");
    assert_refused_with(&results[1], Code::AlreadyExists, "USER_ALREADY_MEMBER");
    assert_refused_with(&results[2], Code::AlreadyExists, "INVITATION_PENDING");
    assert_refused_with(&results[3], Code::InvalidArgument, "INVALID_ARGUMENT");
    let Outcome::Refusal(bad_email) = &results[3] else {
        unreachable!()
    };
    assert_eq!(bad_email.invalid_fields, ["email"]);
    assert_refused_with(&results[4], Code::InvalidArgument, "ROLE_NOT_FOUND");
    assert_refused_with(&results[5], Code::PermissionDenied, "ROLE_ABOVE_CALLER");
    assert_refused_with(
        &results[6],
        Code::FailedPrecondition,
        "EMAIL_DOMAIN_NOT_ALLOWED",
    );
    assert_eq!(created(&results[7]).email, "new2@EXAMPLE.COM");
    assert_refused_with(&results[8], Code::FailedPrecondition, "SEAT_LIMIT_REACHED");

    let pending = client
        .list_invitations(authed(
            &app.owner_token,
            proto::ListInvitationsRequest {
                status: proto::InvitationStatus::Pending as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut emails: Vec<_> = pending
        .invitations
        .iter()
        .map(|i| i.email.clone())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "new1@example.com",
            "new2@EXAMPLE.COM",
            "pending@example.com"
        ]
    );
    for invitation in [created(&results[0]), created(&results[7])] {
        assert!(!app.invitation_token(&invitation.id).await.is_empty());
    }
}

#[tokio::test]
async fn a_batch_holds_one_to_a_hundred_rows_and_needs_the_invite_permission() {
    // A hundred rows are a hundred invitations: over the default per-inviter rate.
    let app = TestApp::spawn_with(|s| s.invites_per_minute_per_inviter = 0).await;
    let mut owner = app.as_owner().users;
    let too_many = (0..101)
        .map(|i| invitation_request(&format!("p{i}@example.com"), "agent"))
        .collect();
    let status = expect_invalid_argument(
        owner
            .batch_invite_users(proto::BatchInviteUsersRequest { requests: too_many })
            .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["requests"]);
    expect_invalid_argument(
        owner
            .batch_invite_users(proto::BatchInviteUsersRequest { requests: vec![] })
            .await,
        "INVALID_ARGUMENT",
    );
    let hundred = (0..100)
        .map(|i| invitation_request(&format!("p{i}@example.com"), "agent"))
        .collect();
    let results = owner
        .batch_invite_users(proto::BatchInviteUsersRequest { requests: hundred })
        .await
        .map(outcomes)
        .unwrap();
    assert_eq!(results.len(), 100);
    assert!(results.iter().all(|r| matches!(r, Outcome::Invitation(_))));

    let (_, agent) = app.member("agent@example.com", "agent").await;
    expect_permission_missing(
        app.as_(&agent)
            .users
            .batch_invite_users(proto::BatchInviteUsersRequest {
                requests: vec![invitation_request("q@example.com", "agent")],
            })
            .await,
    );
}

// ---- UpdateInvitation ----

#[tokio::test]
async fn a_pending_invitation_changes_role_manager_and_expiry_with_activity_and_event() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let (manager, _) = app.member("manager@example.com", "agent").await;
    let invitation = app.invite("ann@example.com", "agent").await;

    let updated = owner
        .update_invitation(proto::UpdateInvitationRequest {
            invitation_id: invitation.id.clone(),
            role: Some("admin".into()),
            reporting_to_user_id: Some(manager.id.clone()),
            expires_in: Some(prost_types::Duration {
                seconds: 2 * 3600,
                nanos: 0,
            }),
            etag: String::new(),
            locale: None,
        })
        .await
        .invitation();
    assert_eq!(updated.role, "admin");
    assert_eq!(
        updated.reporting_to_user_id.as_deref(),
        Some(manager.id.as_str())
    );
    let expire = updated.expire_time.unwrap().seconds;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (expire - (now + 7200)).abs() < 60,
        "expires in about 2 hours"
    );

    // Only the manager, cleared: the rest stays.
    let cleared = owner
        .update_invitation(proto::UpdateInvitationRequest {
            invitation_id: invitation.id.clone(),
            reporting_to_user_id: Some(String::new()),
            ..Default::default()
        })
        .await
        .invitation();
    assert_eq!(cleared.reporting_to_user_id, None);
    assert_eq!(cleared.role, "admin");
    assert_eq!(cleared.expire_time, updated.expire_time);

    let entries = app.activity(proto::ListActivityRequest::default()).await;
    let updates: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "invitation.updated")
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[1].target_invitation_id, invitation.id);
    let fields: Vec<_> = updates[1]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["role", "reporting_to", "expire_time"]);
    assert_eq!(updates[1].changes[0].old_value, "agent");
    assert_eq!(updates[1].changes[0].new_value, "admin");

    let events = app.outbox_payloads("invitation.updated").await;
    assert_eq!(events.len(), 2);
    let event =
        wowchat_users_api::events::v1::InvitationUpdated::decode(events[1].as_slice()).unwrap();
    assert_eq!(event.invitation.unwrap().reporting_to_user_id, None);
    assert_eq!(event.changes.len(), 1);
}

#[tokio::test]
async fn updating_an_invitation_applies_the_invite_checks() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.member("admin@example.com", "admin").await;
    let (_, agent) = app.member("agent@example.com", "agent").await;
    let invitation = app.invite("ann@example.com", "agent").await;
    let change = |role: Option<&str>| proto::UpdateInvitationRequest {
        invitation_id: invitation.id.clone(),
        role: role.map(Into::into),
        ..Default::default()
    };

    expect_above_caller(
        app.as_(&admin)
            .users
            .update_invitation(change(Some("owner")))
            .await,
    );
    expect_invalid_argument(
        app.as_(&admin)
            .users
            .update_invitation(change(Some("no-such-role")))
            .await,
        "ROLE_NOT_FOUND",
    );
    expect_permission_missing(
        app.as_(&agent)
            .users
            .update_invitation(change(Some("agent")))
            .await,
    );
    let status = expect_invalid_argument(
        app.as_(&admin).users.update_invitation(change(None)).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["role"]);
    let status = expect_invalid_argument(
        app.as_(&admin)
            .users
            .update_invitation(proto::UpdateInvitationRequest {
                invitation_id: invitation.id.clone(),
                expires_in: Some(prost_types::Duration {
                    seconds: 31 * 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["expires_in"]);
    expect_invalid_argument(
        app.as_(&admin)
            .users
            .update_invitation(proto::UpdateInvitationRequest {
                invitation_id: invitation.id.clone(),
                reporting_to_user_id: Some(uuid::Uuid::new_v4().to_string()),
                ..Default::default()
            })
            .await,
        "REPORTING_TO_NOT_FOUND",
    );
    expect_not_found(
        app.as_(&admin)
            .users
            .update_invitation(proto::UpdateInvitationRequest {
                invitation_id: uuid::Uuid::new_v4().to_string(),
                role: Some("agent".into()),
                ..Default::default()
            })
            .await,
        "INVITATION_NOT_FOUND",
    );

    // An owner's invitation is out of an admin's reach.
    let owners = app.invite("boss@example.com", "owner").await;
    expect_above_caller(
        app.as_(&admin)
            .users
            .update_invitation(proto::UpdateInvitationRequest {
                invitation_id: owners.id.clone(),
                role: Some("agent".into()),
                ..Default::default()
            })
            .await,
    );

    app.client()
        .await
        .revoke_invitation(authed(
            &app.owner_token,
            proto::RevokeInvitationRequest {
                invitation_id: invitation.id.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    expect_refused(
        app.as_(&admin)
            .users
            .update_invitation(change(Some("agent")))
            .await,
        "INVITATION_REVOKED",
    );
    let (accepted, _) = app.member("joined@example.com", "agent").await;
    let accepted_invitation: String = app
        .db()
        .await
        .query_one(
            "SELECT id::text FROM invitations WHERE accepted_user_id::text = $1",
            &[&accepted.id],
        )
        .await
        .unwrap()
        .get(0);
    expect_refused(
        app.as_(&admin)
            .users
            .update_invitation(proto::UpdateInvitationRequest {
                invitation_id: accepted_invitation,
                role: Some("agent".into()),
                ..Default::default()
            })
            .await,
        "INVITATION_ALREADY_ACCEPTED",
    );
    assert!(
        app.activity(proto::ListActivityRequest::default())
            .await
            .iter()
            .all(|e| e.action != "invitation.updated")
    );
}

// ---- PreviewInvitation ----

#[tokio::test]
async fn a_token_previews_its_invitation_without_a_bearer_token() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("ann@example.com", "admin").await;
    let token = app.invitation_token(&invitation.id).await;

    let shown = app.preview(&token).await.unwrap();
    assert_eq!(shown.workspace_name, "Acme Support");
    assert!(!shown.inviter_display_name.is_empty());
    assert_eq!(shown.role, "admin");
    assert_eq!(shown.email, "ann@example.com");
    assert_eq!(shown.expire_time, invitation.expire_time);
}

#[tokio::test]
async fn a_bad_token_previews_nothing_and_a_closed_invitation_says_why() {
    let app = TestApp::spawn().await;
    for bad in ["", "abc", &"a".repeat(43)] {
        let status = expect_not_found(app.preview(bad).await, "INVITATION_NOT_FOUND");
        assert!(status.get_details_bad_request().is_none());
    }

    let revoked = app.invite("revoked@example.com", "agent").await;
    let revoked_token = app.invitation_token(&revoked.id).await;
    app.client()
        .await
        .revoke_invitation(authed(
            &app.owner_token,
            proto::RevokeInvitationRequest {
                invitation_id: revoked.id.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    expect_refused(app.preview(&revoked_token).await, "INVITATION_REVOKED");

    let expired = app.invite("expired@example.com", "agent").await;
    let expired_token = app.invitation_token(&expired.id).await;
    app.expire_invitation(&expired.id).await;
    expect_refused(app.preview(&expired_token).await, "INVITATION_EXPIRED");

    let accepted = app.invite("accepted@example.com", "agent").await;
    let accepted_token = app.invitation_token(&accepted.id).await;
    app.client()
        .await
        .accept_invitation(proto::AcceptInvitationRequest {
            token: accepted_token.clone(),
            display_name: "Accepted".into(),
            password: wowchat_users_testkit::PASSWORD.into(),
        })
        .await
        .unwrap();
    expect_refused(
        app.preview(&accepted_token).await,
        "INVITATION_ALREADY_ACCEPTED",
    );
}

// ---- Workspace settings ----

#[tokio::test]
async fn owners_read_and_change_the_settings_with_activity_and_event() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let initial = app.workspace_settings().await;
    assert_eq!(
        initial,
        proto::WorkspaceSettings {
            directory_default_role: "agent".into(),
            etag: "W/\"1\"".into(),
            default_locale: "en".into(),
            ..Default::default()
        }
    );

    let set = app
        .update_settings(10, &["Example.COM", "example.com", "acme.io"])
        .await
        .unwrap();
    assert_eq!(set.seat_limit, 10);
    assert_eq!(set.allowed_email_domains, ["acme.io", "example.com"]);
    let read = app.workspace_settings().await;
    assert_eq!(read, set);
    // The same settings again change nothing.
    app.update_settings(10, &["acme.io", "example.com"])
        .await
        .unwrap();

    let entries: Vec<_> = app
        .activity(proto::ListActivityRequest::default())
        .await
        .into_iter()
        .filter(|e| e.action == "workspace.settings_updated")
        .collect();
    assert_eq!(entries.len(), 1);
    let fields: Vec<_> = entries[0]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["seat_limit", "allowed_email_domains"]);
    let events = app.outbox_payloads("workspace.settings_updated").await;
    assert_eq!(events.len(), 1);
    let event =
        wowchat_users_api::events::v1::WorkspaceSettingsUpdated::decode(events[0].as_slice())
            .unwrap();
    assert_eq!(event.settings.unwrap(), set);

    let status = expect_invalid_argument(
        app.update_settings(-1, &["@example.com"]).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["settings.seat_limit", "settings.allowed_email_domains"]
    );

    let (_, admin) = app.member("admin@example.com", "admin").await;
    expect_permission_missing(
        app.as_(&admin)
            .users
            .get_workspace_settings(proto::GetWorkspaceSettingsRequest {})
            .await,
    );
    expect_permission_missing(
        client
            .update_workspace_settings(authed(
                &admin,
                proto::UpdateWorkspaceSettingsRequest {
                    settings: Some(proto::WorkspaceSettings::default()),
                },
            ))
            .await,
    );
}

#[tokio::test]
async fn invitations_outside_the_allowed_domains_are_refused_ignoring_case() {
    let app = TestApp::spawn().await;
    app.update_settings(0, &["example.com"]).await.unwrap();
    app.invite("Ann@EXAMPLE.com", "agent").await;
    expect_refused(
        app.try_invite(invitation_request("bob@example.org", "agent"))
            .await,
        "EMAIL_DOMAIN_NOT_ALLOWED",
    );
    expect_refused(
        app.try_invite(invitation_request("bob@sub.example.com", "agent"))
            .await,
        "EMAIL_DOMAIN_NOT_ALLOWED",
    );
    app.update_settings(0, &[]).await.unwrap();
    app.invite("bob@example.org", "agent").await;
}

#[tokio::test]
async fn the_seat_limit_counts_active_users_and_pending_invitations_and_covers_resends() {
    let app = TestApp::spawn_with(|s| s.resend_cooldown_secs = 0).await;
    let first = app.invite("first@example.com", "agent").await;
    // The owner and one pending invitation: 2 of 2.
    app.update_settings(2, &[]).await.unwrap();
    expect_refused(
        app.try_invite(invitation_request("second@example.com", "agent"))
            .await,
        "SEAT_LIMIT_REACHED",
    );

    // Expired, the first invitation frees its seat; sent again, it would take one.
    app.expire_invitation(&first.id).await;
    let second = app.invite("second@example.com", "agent").await;
    let mut client = app.client().await;
    let resend = proto::ResendInvitationRequest {
        invitation_id: first.id.clone(),
        expires_in: None,
        etag: String::new(),
    };
    expect_refused(
        client
            .resend_invitation(authed(&app.owner_token, resend.clone()))
            .await,
        "SEAT_LIMIT_REACHED",
    );
    // A pending invitation is resent within its own seat.
    client
        .resend_invitation(authed(
            &app.owner_token,
            proto::ResendInvitationRequest {
                invitation_id: second.id.clone(),
                expires_in: None,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    // A raised limit lets the expired one go again.
    app.update_settings(3, &[]).await.unwrap();
    client
        .resend_invitation(authed(&app.owner_token, resend))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_invitations_do_not_overshoot_the_seat_limit() {
    let app = TestApp::spawn().await;
    // The owner plus three.
    app.update_settings(4, &[]).await.unwrap();
    let attempts = (0..12).map(|i| {
        let app = &app;
        let request = invitation_request(&format!("p{i}@example.com"), "agent");
        async move { app.try_invite(request).await }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 3, "{results:?}");
    for refused in results.into_iter().filter(Result::is_err) {
        expect_refused(refused, "SEAT_LIMIT_REACHED");
    }
}

// ---- Rate limits ----

#[tokio::test]
async fn invitations_are_limited_per_inviter_and_per_workspace_with_retry_info() {
    let app = TestApp::spawn_with(|s| {
        s.invites_per_minute_per_inviter = 3;
        s.invites_per_minute_per_workspace = 4;
    })
    .await;
    // Inviter budget of the owner: 1 of 3; workspace: 1 of 4.
    let (_, admin) = app.member("admin@example.com", "admin").await;
    app.invite("a@example.com", "agent").await;
    app.invite("b@example.com", "agent").await;
    let status = expect_limited(
        app.try_invite(invitation_request("c@example.com", "agent"))
            .await,
        "INVITATION_RATE_LIMITED",
    );
    assert!(retry_delay(&status) > std::time::Duration::ZERO);

    // Another inviter has their own budget, within the workspace's.
    app.as_(&admin)
        .users
        .invite_user(invitation_request("d@example.com", "agent"))
        .await
        .unwrap();
    let status = expect_limited(
        app.as_(&admin)
            .users
            .invite_user(invitation_request("e@example.com", "agent"))
            .await,
        "INVITATION_RATE_LIMITED",
    );
    assert!(retry_delay(&status) > std::time::Duration::ZERO);
}

#[tokio::test]
async fn each_batch_row_counts_as_one_invitation_against_the_rate_limits() {
    let app = TestApp::spawn_with(|s| {
        s.invites_per_minute_per_inviter = 2;
        s.invites_per_minute_per_workspace = 0;
    })
    .await;
    let mut owner = app.as_owner().users;
    let results = owner
        .batch_invite_users(proto::BatchInviteUsersRequest {
            requests: vec![
                invitation_request("a@example.com", "agent"),
                invitation_request("b@example.com", "agent"),
                invitation_request("c@example.com", "agent"),
            ],
        })
        .await
        .map(outcomes)
        .unwrap();
    created(&results[0]);
    created(&results[1]);
    assert_refused_with(
        &results[2],
        Code::ResourceExhausted,
        "INVITATION_RATE_LIMITED",
    );
    let Outcome::Refusal(limited) = &results[2] else {
        unreachable!()
    };
    let delay = limited.retry_delay.expect("a retry delay");
    assert!(delay.seconds > 0 || delay.nanos > 0);
}

// ---- Per recipient ----

/// No address gets more than its invitation emails a day, whoever sends
/// them: one owner inviting and revoking an address again and again, and
/// another workspace inviting it, share its limit; past it InviteUser and
/// ResendInvitation are refused with a reason the inviter sees, and nothing
/// is sent or written: the mailbox, behind the real relay, mailer and SMTP
/// server, receives exactly the emails the limit allows.
#[tokio::test]
async fn an_address_gets_at_most_its_daily_invitation_emails_from_every_workspace_together() {
    let app = TestApp::spawn_with(|s| {
        s.invites_per_day_per_recipient = 3;
        s.resend_cooldown_secs = 0;
        s.relay = true;
    })
    .await;
    let smtp = SmtpServer::start().await;
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    let mut owner = app.as_owner().users;
    let other = app.other_workspace().await;
    let mut other_owner = app.as_(&other.owner_token).users;

    for email in ["pat@example.com", "PAT@Example.com"] {
        let invitation = app.invite(email, "agent").await;
        app.revoke(&invitation.id).await;
    }
    let elsewhere = other_owner
        .invite_user(invitation_request("pat@example.com", "agent"))
        .await
        .invitation();
    assert_eq!(app.outbox_count("mail.invitation").await, 3);

    let refused = expect_limited(
        app.try_invite(invitation_request("pat@example.com", "agent"))
            .await,
        "RECIPIENT_RATE_LIMITED",
    );
    assert!(!retry_delay(&refused).is_zero(), "{refused:?}");
    assert!(refused.message().contains("any workspace"), "{refused:?}");
    expect_limited(
        other_owner
            .resend_invitation(resend_request(&elsewhere.id))
            .await,
        "RECIPIENT_RATE_LIMITED",
    );
    assert_eq!(app.outbox_count("mail.invitation").await, 3);
    let pending_here = owner
        .list_invitations(proto::ListInvitationsRequest {
            status: proto::InvitationStatus::Pending.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert!(pending_here.is_empty(), "{pending_here:?}");

    // Another address has its own limit.
    app.invite("quinn@example.com", "agent").await;

    // What reached the mailbox: three emails to the address, then no more.
    smtp.wait_for(4, std::time::Duration::from_secs(30)).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(smtp.messages_to("pat@example.com").len(), 3);
    assert_eq!(smtp.messages_to("quinn@example.com").len(), 1);
}
