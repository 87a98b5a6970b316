//! Invitations end to end: who may be invited, the token and its one use,
//! expiry, resend, revoke, listing, the outbox, and who may do what.

use std::{collections::HashSet, time::Duration};

use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    InvitationAnswer, PASSWORD, TestApp, authed, deactivate, expect_above_caller, expect_error,
    expect_exists, expect_invalid_argument, expect_limited, expect_not_found,
    expect_permission_missing, expect_refused, expires_in, get_invitation_request,
    invitation_reporting_to, invitation_request, resend_request, revoke_request, violated_fields,
};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

// ---- helpers ----

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn lifetime(invitation: &proto::Invitation, from: &Option<prost_types::Timestamp>) -> i64 {
    invitation.expire_time.as_ref().unwrap().seconds - from.as_ref().unwrap().seconds
}

// ---- who may be invited ----

#[tokio::test]
async fn inviting_another_spelling_of_a_pending_email_fails_and_the_email_stays_as_typed() {
    let app = TestApp::spawn().await;

    let first = app.invite("Alice@Example.com", "agent").await;
    assert_eq!(first.email, "Alice@Example.com");

    expect_exists(
        app.try_invite(invitation_request(" alice@example.com", "agent"))
            .await,
        "INVITATION_PENDING",
    );

    let read = app.invitation(&first.id).await;
    assert_eq!(read.email, "Alice@Example.com");
    assert_eq!(read.status(), proto::InvitationStatus::Pending);
    let count: i64 = app.count("SELECT count(*) FROM invitations", &[]).await;
    assert_eq!(count, 1, "the refused invitation was not stored");
}

#[tokio::test]
async fn inviting_a_current_member_fails_with_user_already_member() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;

    expect_exists(
        app.try_invite(invitation_request("OWNER@example.com", "agent"))
            .await,
        "USER_ALREADY_MEMBER",
    );

    app.member("bob@example.com", "agent").await;
    expect_exists(
        app.try_invite(invitation_request(" Bob@Example.COM ", "supervisor"))
            .await,
        "USER_ALREADY_MEMBER",
    );

    let pending = owner
        .list_invitations(proto::ListInvitationsRequest {
            status: proto::InvitationStatus::Pending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.total_size, 0, "{pending:?}");
}

#[tokio::test]
async fn inviting_with_an_unknown_role_fails_with_role_not_found() {
    let app = TestApp::spawn().await;

    let status = expect_invalid_argument(
        app.try_invite(invitation_request("carol@example.com", "wizard"))
            .await,
        "ROLE_NOT_FOUND",
    );
    assert_eq!(violated_fields(&status), ["role"]);
}

/// Inviting Carol to report to `manager_id` is refused: no such member here.
async fn expect_unknown_manager(app: &TestApp, manager_id: &str) {
    let request = invitation_reporting_to("carol@example.com", "agent", manager_id);
    let status = expect_invalid_argument(app.try_invite(request).await, "REPORTING_TO_NOT_FOUND");
    assert_eq!(violated_fields(&status), ["reporting_to_user_id"]);
}

#[tokio::test]
async fn inviting_with_an_unknown_manager_fails_with_reporting_to_not_found() {
    let app = TestApp::spawn().await;
    expect_unknown_manager(&app, &Uuid::new_v4().to_string()).await;
}

#[tokio::test]
async fn a_manager_from_another_workspace_reads_as_unknown() {
    let app = TestApp::spawn().await;
    let other_owner_id = app.other_workspace().await.owner_id;
    expect_unknown_manager(&app, &other_owner_id.to_string()).await;
}

#[tokio::test]
async fn inviting_with_a_deactivated_manager_fails_with_reporting_to_inactive() {
    let app = TestApp::spawn().await;
    let (manager, _) = app.member("sam@example.com", "supervisor").await;
    app.manage(&manager.id, deactivate("left the team"))
        .await
        .expect("deactivate succeeds");

    expect_refused(
        app.try_invite(invitation_reporting_to(
            "carol@example.com",
            "agent",
            &manager.id,
        ))
        .await,
        "REPORTING_TO_INACTIVE",
    );
}

#[tokio::test]
async fn concurrent_invitations_of_one_email_leave_exactly_one_pending() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let spellings = [
        "dana@example.com",
        "Dana@example.com",
        "DANA@EXAMPLE.COM",
        " dana@Example.com",
        "dAna@example.com",
        "daNa@example.com",
        "danA@example.com",
        "Dana@Example.com ",
        "DANA@example.com",
        "dana@EXAMPLE.com",
    ];
    let tasks: Vec<_> = spellings
        .iter()
        .map(|email| {
            let mut client = client.clone();
            let bearer = app.owner_token.clone();
            let request = invitation_request(email, "agent");
            tokio::spawn(async move { client.invite_user(authed(&bearer, request)).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
                assert_eq!(
                    wowchat_users_testkit::reason(&status),
                    "INVITATION_PENDING",
                    "{status:?}"
                );
            }
        }
    }
    assert_eq!(created, 1, "exactly one invitation is created");
    let stored: i64 = app.count("SELECT count(*) FROM invitations", &[]).await;
    assert_eq!(stored, 1);
    assert_eq!(app.outbox_count("invitation.created").await, 1);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);
}

#[tokio::test]
async fn retrying_an_invitation_with_its_request_id_returns_the_first_one() {
    let app = TestApp::spawn().await;
    let request = proto::InviteUserRequest {
        request_id: "invite-alice-1".into(),
        ..invitation_request("alice@example.com", "agent")
    };

    let first = app.try_invite(request.clone()).await.unwrap();
    let retried = app.try_invite(request).await.expect("a retry succeeds");
    assert_eq!(retried.id, first.id);
    assert_eq!(app.outbox_count("invitation.created").await, 1);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);
}

#[tokio::test]
async fn an_expired_invitation_does_not_block_a_new_one_to_the_same_email() {
    let app = TestApp::spawn_with(|s| s.resend_cooldown_secs = 0).await;
    let mut owner = app.as_owner().users;
    let old = app.invite("alice@example.com", "agent").await;
    let old_token = app.invitation_token(&old.id).await;
    app.expire_invitation(&old.id).await;

    let new = app
        .try_invite(invitation_request("Alice@example.com", "agent"))
        .await
        .expect("an expired invitation frees the email");
    assert_eq!(new.status(), proto::InvitationStatus::Pending);
    let read = app.invitation(&old.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Expired);

    // The old one cannot come back while the new one is pending.
    expect_exists(
        owner.resend_invitation(resend_request(&old.id)).await,
        "INVITATION_PENDING",
    );
    expect_refused(app.accept(&old_token).await, "INVITATION_EXPIRED");
    let new_token = app.invitation_token(&new.id).await;
    app.accept(&new_token).await.unwrap();
}

// ---- expiry ----

#[tokio::test]
async fn an_invitation_is_valid_for_seven_days_unless_told_otherwise() {
    let app = TestApp::spawn().await;

    let default = app.invite("a@example.com", "agent").await;
    let days = lifetime(&default, &default.create_time);
    assert!(
        (7 * DAY - 5..=7 * DAY + 5).contains(&days),
        "default expiry is 7 days, got {days}s"
    );

    for (email, seconds) in [
        ("b@example.com", HOUR),
        ("c@example.com", 2 * DAY),
        ("d@example.com", 30 * DAY),
    ] {
        let invitation = app
            .try_invite(proto::InviteUserRequest {
                expires_in: expires_in(seconds),
                ..invitation_request(email, "agent")
            })
            .await
            .unwrap_or_else(|status| panic!("{seconds}s is a valid expiry: {status:?}"));
        let got = lifetime(&invitation, &invitation.create_time);
        assert!(
            (seconds - 5..=seconds + 5).contains(&got),
            "asked for {seconds}s, got {got}s"
        );
    }
}

#[tokio::test]
async fn an_expiry_below_an_hour_or_above_thirty_days_is_refused() {
    let app = TestApp::spawn().await;

    for seconds in [5 * 60, 31 * DAY] {
        let status = expect_invalid_argument(
            app.try_invite(proto::InviteUserRequest {
                expires_in: expires_in(seconds),
                ..invitation_request("a@example.com", "agent")
            })
            .await,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["expires_in"], "{seconds}s");
    }
}

// ---- the token ----

#[tokio::test]
async fn the_token_is_256_url_safe_bits_and_only_its_sha256_is_stored() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;

    assert_eq!(token.len(), 43, "{token:?}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "URL-safe base64 without padding: {token:?}"
    );
    let other = app.invite("bob@example.com", "agent").await;
    assert_ne!(app.invitation_token(&other.id).await, token);

    let db = app.db().await;
    let id: Uuid = invitation.id.parse().unwrap();
    let row = db
        .query_one(
            "SELECT octet_length(token_hash), token_hash = sha256(convert_to($1, 'UTF8')) \
             FROM invitations WHERE id = $2",
            &[&token, &id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 32, "token_hash is a SHA-256");
    assert!(row.get::<_, bool>(1), "token_hash is the token's SHA-256");

    let leaking_invitations: i64 = db
        .query_one(
            "SELECT count(*) FROM invitations i WHERE position($1 in i::text) > 0",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        leaking_invitations, 0,
        "no invitation column holds the token"
    );
    let leaking_activity: i64 = db
        .query_one(
            "SELECT count(*) FROM activity a WHERE position($1 in a::text) > 0",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        leaking_activity, 0,
        "the activity log never holds the token"
    );
    let carriers: Vec<String> = db
        .query(
            "SELECT routing_key FROM outbox WHERE position(convert_to($1, 'UTF8') in payload) > 0",
            &[&token],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Not even the mail command: it carries the token sealed for the mailer.
    assert!(
        carriers.is_empty(),
        "an outbox row carries the token: {carriers:?}"
    );
}

#[tokio::test]
async fn a_token_works_only_once() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;

    app.accept(&token).await.unwrap();
    expect_refused(app.accept(&token).await, "INVITATION_ALREADY_ACCEPTED");
}

#[tokio::test]
async fn an_unknown_or_malformed_token_is_not_found() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    // Another well-formed token: the real one with its first character changed.
    let first = if token.starts_with('A') { "B" } else { "A" };
    let altered = format!("{first}{}", &token[1..]);

    for unknown in ["A".repeat(43), altered] {
        assert_eq!(unknown.len(), 43);
        expect_not_found(app.accept(&unknown).await, "INVITATION_NOT_FOUND");
    }
    for malformed in [
        "not-a-token".to_owned(),
        "A".repeat(44),
        "A".repeat(42),
        format!("{}+", &token[..42]),
        format!("{token}="),
    ] {
        expect_not_found(app.accept(&malformed).await, "INVITATION_NOT_FOUND");
    }
    // None of that touched the real invitation.
    app.accept(&token).await.unwrap();
}

#[tokio::test]
async fn accepting_an_expired_invitation_fails_and_it_reads_expired() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    app.expire_invitation(&invitation.id).await;

    expect_refused(app.accept(&token).await, "INVITATION_EXPIRED");
    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Expired);
    assert!(read.accepted_user_id.is_empty());
}

#[tokio::test]
async fn accepting_a_revoked_invitation_fails_with_invitation_revoked() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    app.revoke(&invitation.id).await;

    expect_refused(app.accept(&token).await, "INVITATION_REVOKED");
}

#[tokio::test]
async fn twenty_concurrent_accepts_of_one_token_create_exactly_one_user() {
    // The race, not the attempt limit per token, is under test.
    let app = TestApp::spawn_with(|s| s.invitation_attempts_per_token_per_minute = 0).await;
    let invitation = app.invite("racer@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    let client = app.client().await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let mut client = client.clone();
            let token = token.clone();
            let request = proto::AcceptInvitationRequest {
                token,
                display_name: format!("Racer {i}"),
                password: PASSWORD.into(),
            };
            tokio::spawn(async move {
                let accepted = client.accept_invitation(request).await;
                accepted.map(|r| r.into_inner().user.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => winners.push(user),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(
                    wowchat_users_testkit::reason(&status),
                    "INVITATION_ALREADY_ACCEPTED",
                    "{status:?}"
                );
                losers += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one accept wins: {winners:?}");
    assert_eq!(losers, 19);

    let db = app.db().await;
    let users: i64 = db
        .query_one(
            "SELECT count(*) FROM users WHERE email_normalized = 'racer@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
    let accepted_events = app.outbox_count("invitation.accepted").await;
    assert_eq!(accepted_events, 1);

    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Accepted);
    assert_eq!(read.accepted_user_id, winners[0].id);
}

// ---- after acceptance ----

#[tokio::test]
async fn an_accepted_invitee_is_listed_active_with_the_invited_role_and_manager() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let (manager, _) = app.member("sam@example.com", "supervisor").await;

    let invitation = app
        .try_invite(invitation_reporting_to(
            "Ivy@Example.com",
            "agent",
            &manager.id,
        ))
        .await
        .unwrap();
    let token = app.invitation_token(&invitation.id).await;
    let user = app.accept_named(&token, "Ivy Invitee").await.unwrap();

    let listed = client
        .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 3);
    let ivy = listed
        .users
        .iter()
        .find(|u| u.id == user.id)
        .expect("the new user is listed");
    assert_eq!(ivy.status(), proto::UserStatus::Active);
    assert_eq!(ivy.role, "agent");
    assert_eq!(ivy.reporting_to_user_id, Some(manager.id.clone()));
    assert_eq!(ivy.email, "Ivy@Example.com");
    assert_eq!(ivy.display_name, "Ivy Invitee");
    assert_eq!(ivy.workspace_id, app.workspace_id.to_string());

    let reports = client
        .list_users(authed(
            &app.owner_token,
            proto::ListUsersRequest {
                reporting_to_user_id: manager.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reports.users.iter().map(|u| &u.id).collect::<Vec<_>>(),
        [&user.id]
    );

    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Accepted);
    assert_eq!(read.accepted_user_id, user.id);
}

// ---- resend ----

#[tokio::test]
async fn resending_rotates_the_token_renews_the_expiry_and_counts() {
    let app = TestApp::spawn_with(|s| s.resend_cooldown_secs = 0).await;
    let mut owner = app.as_owner().users;
    let mut client = app.client().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let first_token = app.invitation_token(&invitation.id).await;
    app.expire_invitation(&invitation.id).await;

    let resent = owner
        .resend_invitation(resend_request(&invitation.id))
        .await
        .invitation();
    assert_eq!(resent.status(), proto::InvitationStatus::Pending);
    assert_eq!(resent.resend_count, 1);
    let renewed = lifetime(&resent, &resent.update_time);
    assert!(
        (7 * DAY - 5..=7 * DAY + 5).contains(&renewed),
        "renewed for 7 days from now, got {renewed}s"
    );
    let second_token = app.invitation_token(&invitation.id).await;
    assert_ne!(second_token, first_token);

    let again = client
        .resend_invitation(authed(
            &app.owner_token,
            proto::ResendInvitationRequest {
                invitation_id: invitation.id.clone(),
                expires_in: expires_in(2 * HOUR),
                etag: String::new(),
            },
        ))
        .await
        .invitation();
    assert_eq!(again.resend_count, 2);
    let renewed = lifetime(&again, &again.update_time);
    assert!(
        (2 * HOUR - 5..=2 * HOUR + 5).contains(&renewed),
        "renewed for 2 hours, got {renewed}s"
    );
    let third_token = app.invitation_token(&invitation.id).await;
    assert_ne!(third_token, second_token);
    assert_ne!(third_token, first_token);
    assert_eq!(app.outbox_count("mail.invitation").await, 3);
    assert_eq!(app.outbox_count("invitation.resent").await, 2);

    for stale in [&first_token, &second_token] {
        expect_not_found(app.accept(stale).await, "INVITATION_NOT_FOUND");
    }
    let user = app.accept(&third_token).await.unwrap();
    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Accepted);
    assert_eq!(read.accepted_user_id, user.id);
    assert_eq!(read.resend_count, 2);
}

#[tokio::test]
async fn resending_within_the_cooldown_is_refused_with_retry_info() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;

    let status = expect_limited(
        owner
            .resend_invitation(resend_request(&invitation.id))
            .await,
        "RESEND_COOLDOWN",
    );
    let retry = status
        .get_details_retry_info()
        .expect("RetryInfo is attached");
    let delay = retry.retry_delay.expect("RetryInfo has a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(60),
        "retry within the 60s cooldown, got {delay:?}"
    );

    // Nothing changed: same count, no new mail, the token still works.
    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.resend_count, 0);
    assert_eq!(read.expire_time, invitation.expire_time);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);
    assert_eq!(app.outbox_count("invitation.resent").await, 0);
    app.accept(&token).await.unwrap();
}

#[tokio::test]
async fn resending_an_accepted_or_revoked_invitation_fails() {
    let app = TestApp::spawn_with(|s| s.resend_cooldown_secs = 0).await;
    let mut owner = app.as_owner().users;

    let accepted = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&accepted.id).await;
    app.accept(&token).await.unwrap();
    expect_refused(
        owner.resend_invitation(resend_request(&accepted.id)).await,
        "INVITATION_ALREADY_ACCEPTED",
    );

    let revoked = app.invite("bob@example.com", "agent").await;
    app.revoke(&revoked.id).await;
    expect_refused(
        owner.resend_invitation(resend_request(&revoked.id)).await,
        "INVITATION_REVOKED",
    );

    assert_eq!(app.outbox_count("invitation.resent").await, 0);
    assert_eq!(app.outbox_count("mail.invitation").await, 2);
}

// ---- revoke ----

#[tokio::test]
async fn revoking_a_pending_invitation_revokes_it_and_revoking_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("alice@example.com", "agent").await;

    let revoked = owner
        .revoke_invitation(revoke_request(&invitation.id))
        .await
        .invitation();
    assert_eq!(revoked.status(), proto::InvitationStatus::Revoked);
    assert_eq!(revoked.id, invitation.id);

    let again = owner
        .revoke_invitation(revoke_request(&invitation.id))
        .await
        .invitation();
    assert_eq!(again, revoked, "revoking again returns it unchanged");
    assert_eq!(app.outbox_count("invitation.revoked").await, 1);

    let read = app.invitation(&invitation.id).await;
    assert_eq!(read, revoked);
}

#[tokio::test]
async fn revoking_an_accepted_invitation_fails() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    let user = app.accept(&token).await.unwrap();

    expect_refused(
        owner
            .revoke_invitation(revoke_request(&invitation.id))
            .await,
        "INVITATION_ALREADY_ACCEPTED",
    );
    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Accepted);
    assert_eq!(read.accepted_user_id, user.id);
    assert_eq!(app.outbox_count("invitation.revoked").await, 0);
}

#[tokio::test]
async fn a_revoked_invitation_frees_its_email_for_a_new_one() {
    let app = TestApp::spawn().await;
    let old = app.invite("alice@example.com", "agent").await;
    let old_token = app.invitation_token(&old.id).await;
    app.revoke(&old.id).await;

    let new = app.invite("Alice@Example.com", "supervisor").await;
    assert_ne!(new.id, old.id);
    assert_eq!(new.status(), proto::InvitationStatus::Pending);
    let new_token = app.invitation_token(&new.id).await;
    assert_ne!(new_token, old_token);

    expect_refused(app.accept(&old_token).await, "INVITATION_REVOKED");
    let user = app.accept(&new_token).await.unwrap();
    assert_eq!(user.role, "supervisor");
    assert_eq!(user.email, "Alice@Example.com");
}

// ---- listing ----

#[tokio::test]
async fn invitations_are_filtered_by_status_and_by_email_ignoring_case() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let pending = app.invite("Pat@Example.com", "agent").await;
    let revoked = app.invite("rex@example.com", "agent").await;
    app.revoke(&revoked.id).await;
    let accepted = app.invite("ace@example.com", "agent").await;
    let token = app.invitation_token(&accepted.id).await;
    app.accept(&token).await.unwrap();
    let expired = app.invite("exa@example.com", "agent").await;
    app.expire_invitation(&expired.id).await;

    let mut ids = async |status: proto::InvitationStatus, email: &str| {
        let page = owner
            .list_invitations(proto::ListInvitationsRequest {
                status: status as i32,
                email: email.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            usize::try_from(page.total_size).unwrap(),
            page.invitations.len(),
            "{page:?}"
        );
        page.invitations
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };

    use proto::InvitationStatus as S;
    let (pending, revoked) = (pending.id.as_str(), revoked.id.as_str());
    let (accepted, expired) = (accepted.id.as_str(), expired.id.as_str());
    assert_eq!(ids(S::Pending, "").await, [pending]);
    assert_eq!(ids(S::Revoked, "").await, [revoked]);
    assert_eq!(ids(S::Accepted, "").await, [accepted]);
    assert_eq!(ids(S::Expired, "").await, [expired]);
    assert_eq!(
        ids(S::Unspecified, "").await,
        [expired, accepted, revoked, pending],
        "all of them, newest first"
    );
    assert_eq!(ids(S::Unspecified, "pat@EXAMPLE.com").await, [pending]);
    assert_eq!(ids(S::Unspecified, " REX@example.com").await, [revoked]);
    assert_eq!(ids(S::Pending, "pat@example.com").await, [pending]);
    assert!(ids(S::Revoked, "pat@example.com").await.is_empty());
    assert!(ids(S::Unspecified, "nobody@example.com").await.is_empty());
}

#[tokio::test]
async fn listing_two_at_a_time_walks_every_invitation_exactly_once() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.invite(&format!("p{i}@example.com"), "agent").await.id);
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = owner
            .list_invitations(proto::ListInvitationsRequest {
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.invitations.len() <= 2, "{page:?}");
        assert_eq!(page.total_size, 5);
        seen.extend(page.invitations.into_iter().map(|i| i.id));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "each once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);
}

#[tokio::test]
async fn a_page_token_used_with_other_filters_is_refused() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    for i in 0..3 {
        app.invite(&format!("p{i}@example.com"), "agent").await;
    }
    let first = owner
        .list_invitations(proto::ListInvitationsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());

    for request in [
        proto::ListInvitationsRequest {
            status: proto::InvitationStatus::Pending as i32,
            ..Default::default()
        },
        proto::ListInvitationsRequest {
            email: "p1@example.com".into(),
            ..Default::default()
        },
    ] {
        let status = expect_invalid_argument(
            owner
                .list_invitations(proto::ListInvitationsRequest {
                    page_size: 1,
                    page_token: first.next_page_token.clone(),
                    ..request
                })
                .await,
            "INVALID_PAGE_TOKEN",
        );
        assert_eq!(violated_fields(&status), ["page_token"]);
    }

    let status = expect_invalid_argument(
        owner
            .list_invitations(proto::ListInvitationsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            })
            .await,
        "INVALID_PAGE_TOKEN",
    );
    assert_eq!(violated_fields(&status), ["page_token"]);

    // The same filters still continue.
    let second = owner
        .list_invitations(proto::ListInvitationsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.invitations.len(), 1);
    assert_ne!(second.invitations[0].id, first.invitations[0].id);
}

// ---- the outbox ----

#[tokio::test]
async fn inviting_writes_a_created_event_without_the_token_and_a_mail_command_with_it() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;

    assert_eq!(app.count("SELECT count(*) FROM outbox", &[]).await, 2);
    let created = app.outbox_payloads("invitation.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(app.outbox_count("mail.invitation").await, 1);

    assert!(
        !contains(&created[0], &token),
        "the broadcast event never carries the token"
    );
    let event =
        wowchat_users_api::events::v1::InvitationCreated::decode(created[0].as_slice()).unwrap();
    let announced = event.invitation.expect("the event carries the invitation");
    assert_eq!(announced.id, invitation.id);
    assert_eq!(announced.email, "alice@example.com");
    assert_eq!(announced.status(), proto::InvitationStatus::Pending);

    let row = app
        .db()
        .await
        .query_one(
            "SELECT message_type, workspace_id FROM outbox WHERE routing_key = 'invitation.created'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "wowchat.users.events.v1.InvitationCreated"
    );
    assert_eq!(row.get::<_, Uuid>(1), app.workspace_id);
}

#[tokio::test]
async fn revoking_and_accepting_write_their_events() {
    let app = TestApp::spawn().await;
    let to_revoke = app.invite("rex@example.com", "agent").await;
    let revoked_token = app.invitation_token(&to_revoke.id).await;
    let to_accept = app.invite("ace@example.com", "agent").await;
    let accepted_token = app.invitation_token(&to_accept.id).await;
    assert_eq!(app.count("SELECT count(*) FROM outbox", &[]).await, 4);

    app.revoke(&to_revoke.id).await;
    assert_eq!(app.count("SELECT count(*) FROM outbox", &[]).await, 5);
    let revoked = app.outbox_payloads("invitation.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert!(!contains(&revoked[0], &revoked_token));
    let event =
        wowchat_users_api::events::v1::InvitationRevoked::decode(revoked[0].as_slice()).unwrap();
    assert_eq!(event.invitation.as_ref().unwrap().id, to_revoke.id);
    assert_eq!(
        event.invitation.as_ref().unwrap().status(),
        proto::InvitationStatus::Revoked
    );
    assert_eq!(event.actor_user_id, app.owner_id.to_string());

    let user = app.accept(&accepted_token).await.unwrap();
    // The event, and the command that tells the inviter.
    assert_eq!(app.count("SELECT count(*) FROM outbox", &[]).await, 7);
    let notices = app.outbox_payloads("mail.invitation_accepted").await;
    assert_eq!(notices.len(), 1);
    assert!(!contains(&notices[0], &accepted_token));
    let notice =
        wowchat_users_api::events::v1::SendInvitationAcceptedEmail::decode(notices[0].as_slice())
            .unwrap();
    assert_eq!(notice.inviter_email, "owner@example.com");
    assert_eq!(notice.user.unwrap().id, user.id);
    let accepted = app.outbox_payloads("invitation.accepted").await;
    assert_eq!(accepted.len(), 1);
    assert!(!contains(&accepted[0], &accepted_token));
    let event =
        wowchat_users_api::events::v1::InvitationAccepted::decode(accepted[0].as_slice()).unwrap();
    let invitation = event.invitation.unwrap();
    assert_eq!(invitation.id, to_accept.id);
    assert_eq!(invitation.status(), proto::InvitationStatus::Accepted);
    assert_eq!(invitation.accepted_user_id, user.id);
    assert_eq!(event.user.unwrap().id, user.id);
}

#[tokio::test]
async fn a_refused_invitation_change_writes_no_event() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("alice@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    let before = app.count("SELECT count(*) FROM outbox", &[]).await;

    expect_exists(
        app.try_invite(invitation_request("ALICE@example.com", "agent"))
            .await,
        "INVITATION_PENDING",
    );
    expect_limited(
        owner
            .resend_invitation(resend_request(&invitation.id))
            .await,
        "RESEND_COOLDOWN",
    );
    app.accept(&token).await.unwrap();
    let after_accept = app.count("SELECT count(*) FROM outbox", &[]).await;
    assert_eq!(
        after_accept,
        before + 2,
        "accepting wrote one event and one notice for the inviter"
    );
    expect_refused(app.accept(&token).await, "INVITATION_ALREADY_ACCEPTED");
    expect_refused(
        owner
            .revoke_invitation(revoke_request(&invitation.id))
            .await,
        "INVITATION_ALREADY_ACCEPTED",
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox", &[]).await,
        after_accept
    );
}

// ---- permissions ----

#[tokio::test]
async fn an_agent_cannot_invite_or_see_invitations() {
    let app = TestApp::spawn().await;
    let invitation = app.invite("alice@example.com", "agent").await;
    let (_, agent) = app.member("a@example.com", "agent").await;

    let mut users = app.as_(&agent).users;
    let id = &invitation.id;
    let invite = invitation_request("x@example.com", "agent");
    expect_permission_missing(users.invite_user(invite).await);
    expect_permission_missing(users.get_invitation(get_invitation_request(id)).await);
    let list = proto::ListInvitationsRequest::default();
    expect_permission_missing(users.list_invitations(list).await);
    expect_permission_missing(users.resend_invitation(resend_request(id)).await);
    expect_permission_missing(users.revoke_invitation(revoke_request(id)).await);
    let read = app.invitation(&invitation.id).await;
    assert_eq!(read.status(), proto::InvitationStatus::Pending);
}

#[tokio::test]
async fn an_admin_cannot_invite_an_owner() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.member("adam@example.com", "admin").await;

    expect_above_caller(
        app.as_(&admin)
            .users
            .invite_user(invitation_request("x@example.com", "owner"))
            .await,
    );
    let peer = app
        .as_(&admin)
        .users
        .invite_user(invitation_request("y@example.com", "admin"))
        .await
        .expect("an admin may invite an admin")
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(peer.role, "admin");
}

#[tokio::test]
async fn an_invitation_of_another_workspace_is_not_found() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let other_owner = app.other_workspace().await.owner_token;
    let foreign = app
        .as_(&other_owner)
        .users
        .invite_user(invitation_request("alice@example.com", "agent"))
        .await
        .invitation();

    expect_not_found(
        owner
            .get_invitation(get_invitation_request(&foreign.id))
            .await,
        "INVITATION_NOT_FOUND",
    );
    expect_not_found(
        owner.resend_invitation(resend_request(&foreign.id)).await,
        "INVITATION_NOT_FOUND",
    );
    expect_not_found(
        owner.revoke_invitation(revoke_request(&foreign.id)).await,
        "INVITATION_NOT_FOUND",
    );
    let listed = owner
        .list_invitations(proto::ListInvitationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0, "{listed:?}");

    // Untouched in its own workspace.
    let read = app
        .as_(&other_owner)
        .users
        .get_invitation(get_invitation_request(&foreign.id))
        .await
        .invitation();
    assert_eq!(read.status(), proto::InvitationStatus::Pending);
    assert_eq!(read.resend_count, 0);
}

#[tokio::test]
async fn an_invitation_and_the_settings_refuse_a_change_made_on_a_stale_etag() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("etag@example.com", "agent").await;
    assert_eq!(invitation.etag, "W/\"1\"");
    let update = |etag: &str, role: &str| proto::UpdateInvitationRequest {
        invitation_id: invitation.id.clone(),
        role: Some(role.into()),
        etag: etag.into(),
        ..Default::default()
    };
    // Two administrators read version 1; the first change wins ...
    let changed = owner
        .update_invitation(update(&invitation.etag, "supervisor"))
        .await
        .invitation();
    assert_eq!(changed.etag, "W/\"2\"");
    // ... and the second, made on what it read, is refused and changes nothing.
    let stale = owner
        .update_invitation(update(&invitation.etag, "admin"))
        .await;
    expect_error(stale, Code::Aborted, "ETAG_MISMATCH");
    let revoking = |etag: &str| proto::RevokeInvitationRequest {
        invitation_id: invitation.id.clone(),
        etag: etag.into(),
    };
    let stale = app
        .client()
        .await
        .revoke_invitation(authed(&app.owner_token, revoking(&invitation.etag)))
        .await;
    expect_error(stale, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(app.invitation(&invitation.id).await.role, "supervisor");
    let revoked = app
        .client()
        .await
        .revoke_invitation(authed(&app.owner_token, revoking(&changed.etag)))
        .await
        .invitation();
    assert_eq!(revoked.status, proto::InvitationStatus::Revoked as i32);
    let malformed = owner.update_invitation(update("7", "agent")).await;
    assert_eq!(
        violated_fields(&expect_invalid_argument(malformed, "INVALID_ARGUMENT")),
        ["etag"]
    );

    // The settings: read, changed by someone else, then a change on what
    // was read is refused; without an etag it goes through.
    let read = app.workspace_settings().await;
    let put = |etag: &str, seat_limit: i32| proto::UpdateWorkspaceSettingsRequest {
        settings: Some(proto::WorkspaceSettings {
            seat_limit,
            etag: etag.into(),
            ..Default::default()
        }),
    };
    let first = app
        .client()
        .await
        .update_workspace_settings(authed(&app.owner_token, put(&read.etag, 50)))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_ne!(first.etag, read.etag);
    let second = app
        .client()
        .await
        .update_workspace_settings(authed(&app.owner_token, put(&read.etag, 5)))
        .await;
    expect_error(second, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(app.workspace_settings().await.seat_limit, 50);
    app.client()
        .await
        .update_workspace_settings(authed(&app.owner_token, put("", 5)))
        .await
        .unwrap();
}
