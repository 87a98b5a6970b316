//! Abuse and authorization holes, each tried as an attacker would: resends
//! as a mail cannon, invitations for roles above the caller, seats regained
//! by reactivation, invitations outliving their inviter's authority, token
//! guessing, input that once panicked, error trailers blown up by input, and
//! races between mutations.

use futures::{StreamExt, stream};
use tonic::Code;
use tonic_types::StatusExt;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, change_role, deactivate, expect_above_caller, expect_invalid_argument, expect_limited,
    expect_not_found, expect_permission_missing, expect_refused, invitation_request, new_role,
    reactivate, resend_request, revoke_request, role_update, wowchat_users_server,
};

#[tokio::test]
async fn resends_count_towards_the_inviters_rate_limit() {
    let app = TestApp::spawn_with(|s| {
        s.resend_cooldown_secs = 0;
        s.invites_per_minute_per_inviter = 3;
    })
    .await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("target@example.com", "agent").await;
    owner
        .resend_invitation(resend_request(&invitation.id))
        .await
        .expect("second send");
    owner
        .resend_invitation(resend_request(&invitation.id))
        .await
        .expect("third send");

    let status = expect_limited(
        owner
            .resend_invitation(resend_request(&invitation.id))
            .await,
        "INVITATION_RATE_LIMITED",
    );
    assert!(status.get_details_retry_info().is_some());
    assert_eq!(app.invitation(&invitation.id).await.resend_count, 2);
}

#[tokio::test]
async fn an_invitation_is_sent_at_most_the_configured_number_of_times() {
    let app = TestApp::spawn_with(|s| {
        s.resend_cooldown_secs = 0;
        s.max_sends_per_invitation = 3;
    })
    .await;
    let mut owner = app.as_owner().users;
    let invitation = app.invite("target@example.com", "agent").await;
    for _ in 0..2 {
        owner
            .resend_invitation(resend_request(&invitation.id))
            .await
            .expect("within the cap");
    }
    expect_refused(
        owner
            .resend_invitation(resend_request(&invitation.id))
            .await,
        "INVITATION_SEND_LIMIT",
    );
    assert_eq!(app.invitation(&invitation.id).await.resend_count, 2);
}

#[tokio::test]
async fn revoking_or_resending_an_invitation_for_a_role_above_the_caller_is_denied() {
    let app = TestApp::spawn_with(|s| s.resend_cooldown_secs = 0).await;
    let mut owner = app.as_owner();
    owner
        .roles
        .create_role(new_role("inviter", &["users.invite"]))
        .await
        .expect("role created");
    let (_, inviter) = app.member("inviter@example.com", "inviter").await;
    let for_admin = app.invite("admin@example.com", "admin").await;

    expect_above_caller(
        app.as_(&inviter)
            .users
            .revoke_invitation(revoke_request(&for_admin.id))
            .await,
    );
    expect_above_caller(
        app.as_(&inviter)
            .users
            .resend_invitation(resend_request(&for_admin.id))
            .await,
    );
    let unchanged = app.invitation(&for_admin.id).await;
    assert_eq!(unchanged.status(), proto::InvitationStatus::Pending);
    assert_eq!(unchanged.resend_count, 0);

    // An invitation for the inviter's own role is theirs to manage.
    let for_peer = app
        .as_(&inviter)
        .users
        .invite_user(invitation_request("peer@example.com", "inviter"))
        .await;
    let for_peer = for_peer.expect("invites a peer").into_inner();
    let for_peer = for_peer.invitation.unwrap();
    app.as_(&inviter)
        .users
        .resend_invitation(resend_request(&for_peer.id))
        .await
        .expect("resends it");
    app.as_(&inviter)
        .users
        .revoke_invitation(revoke_request(&for_peer.id))
        .await
        .expect("revokes it");
}

#[tokio::test]
async fn reactivating_a_user_when_the_seats_are_full_is_refused() {
    let app = TestApp::spawn().await;
    let (user, _) = app.member("u@example.com", "agent").await;
    // The owner and U take both seats.
    app.set_seat_limit(2).await;
    app.manage(&user.id, deactivate("leave"))
        .await
        .expect("deactivated");
    app.invite("v@example.com", "agent").await;

    expect_refused(
        app.manage(&user.id, reactivate()).await,
        "SEAT_LIMIT_REACHED",
    );
}

#[tokio::test]
async fn an_invitation_stops_working_while_its_inviter_is_deactivated() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("admin@example.com", "admin").await;
    let accomplice = app
        .as_(&admin_token)
        .users
        .invite_user(invitation_request("accomplice@example.com", "admin"))
        .await
        .expect("the admin invites")
        .into_inner()
        .invitation
        .unwrap();
    let token = app.invitation_token(&accomplice.id).await;
    app.manage(&admin.id, deactivate("left"))
        .await
        .expect("deactivated");

    expect_refused(app.preview(&token).await, "INVITER_NOT_AUTHORIZED");
    expect_refused(app.accept(&token).await, "INVITER_NOT_AUTHORIZED");

    // Demoted below the invited role, the inviter's invitation stays closed.
    app.manage(&admin.id, reactivate())
        .await
        .expect("reactivated");
    app.manage(&admin.id, change_role("agent"))
        .await
        .expect("demoted");
    expect_refused(app.accept(&token).await, "INVITER_NOT_AUTHORIZED");

    // Restored, the invitation works again.
    app.manage(&admin.id, change_role("admin"))
        .await
        .expect("promoted back");
    app.accept(&token).await.expect("accepted");
}

#[tokio::test]
async fn token_attempts_are_limited_per_token_with_retry_info() {
    let app = TestApp::spawn_with(|s| s.invitation_attempts_per_token_per_minute = 3).await;
    let invitation = app.invite("target@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    for _ in 0..3 {
        app.preview(&token).await.expect("within the limit");
    }
    let status = expect_limited(app.accept(&token).await, "INVITATION_ATTEMPTS_EXCEEDED");
    assert!(status.get_details_retry_info().is_some());
    assert_eq!(
        app.invitation(&invitation.id).await.status(),
        proto::InvitationStatus::Pending
    );
}

#[tokio::test]
async fn token_attempts_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| s.invitation_attempts_per_address_per_minute = 5).await;
    // Guesses: each a well-formed token nobody holds.
    for n in 0..5u8 {
        let guess = base64_token(n);
        expect_not_found(app.preview(&guess).await, "INVITATION_NOT_FOUND");
    }
    expect_limited(
        app.preview(&base64_token(99)).await,
        "INVITATION_ATTEMPTS_EXCEEDED",
    );
}

fn base64_token(n: u8) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode([n; 32])
}

#[tokio::test]
async fn a_duration_that_would_overflow_is_invalid_not_a_crash() {
    let app = TestApp::spawn().await;
    let overflowing = prost_types::Duration {
        seconds: i64::MAX,
        nanos: 1_000_000_000,
    };
    let status = expect_invalid_argument(
        app.try_invite(proto::InviteUserRequest {
            expires_in: Some(overflowing),
            ..invitation_request("target@example.com", "agent")
        })
        .await,
        "INVALID_ARGUMENT",
    );
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["expires_in"]);
    // The server is still serving.
    app.invite("after@example.com", "agent").await;
}

#[tokio::test]
async fn role_changes_check_the_permission_before_the_input_and_cap_the_violations() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    let (_, agent) = app.member("agent@example.com", "agent").await;
    let junk: Vec<String> = (0..10_000)
        .map(|n| format!("bogus.permission.{n}"))
        .collect();
    let junk: Vec<&str> = junk.iter().map(String::as_str).collect();

    // Someone who may not manage roles learns nothing about the input.
    expect_permission_missing(
        app.as_(&agent)
            .roles
            .create_role(new_role("junk", &junk))
            .await,
    );
    expect_permission_missing(
        app.as_(&agent)
            .roles
            .update_role(role_update("junk", &junk))
            .await,
    );

    // Someone who may gets a bounded answer.
    let status = expect_invalid_argument(
        owner.roles.create_role(new_role("junk", &junk)).await,
        "INVALID_ARGUMENT",
    );
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert!(
        (1..=wowchat_users_server::domain::Violations::MAX).contains(&violations.len()),
        "{} violations",
        violations.len()
    );
}

#[tokio::test]
async fn a_deadlock_reads_as_a_concurrency_conflict_never_internal() {
    use wowchat_users_server::domain::Error;
    let app = TestApp::spawn().await;
    let (one, two) = (app.db().await, app.db().await);
    one.batch_execute("CREATE TABLE deadlock_probe (id int PRIMARY KEY); INSERT INTO deadlock_probe VALUES (1), (2)")
        .await
        .unwrap();
    one.batch_execute("BEGIN; UPDATE deadlock_probe SET id = id WHERE id = 1")
        .await
        .unwrap();
    two.batch_execute("BEGIN; UPDATE deadlock_probe SET id = id WHERE id = 2")
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        one.batch_execute("UPDATE deadlock_probe SET id = id WHERE id = 2"),
        two.batch_execute("UPDATE deadlock_probe SET id = id WHERE id = 1"),
    );
    let deadlocked = first
        .err()
        .or(second.err())
        .expect("Postgres saw a deadlock");
    let error = Error::from(deadlocked);
    assert!(error.is_concurrency_conflict(), "{error:?}");
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(wowchat_users_testkit::reason(&status), "CONCURRENT_CHANGE");
}

#[tokio::test]
async fn role_updates_racing_user_management_never_fail_as_internal() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    owner
        .roles
        .create_role(new_role("helper", &["users.read"]))
        .await
        .expect("role created");
    let (user, _) = app.member("u@example.com", "helper").await;
    let rounds = (0..20).map(|n| {
        let app = &app;
        let user_id = user.id.clone();
        async move {
            let permissions: &[&str] = if n % 2 == 0 {
                &["users.read", "activity.read"]
            } else {
                &["users.read"]
            };
            let mut roles = app.as_owner().roles;
            let role_change = roles.update_role(role_update("helper", permissions));
            let role = if n % 2 == 0 { "agent" } else { "helper" };
            let user_change = app.manage(&user_id, change_role(role));
            let (a, b) = tokio::join!(role_change, user_change);
            [a.err(), b.err()]
        }
    });
    // Three pairs at a time: within the test server's pool of eight.
    let outcomes: Vec<_> = stream::iter(rounds).buffer_unordered(3).collect().await;
    for status in outcomes.into_iter().flatten().flatten() {
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
    }
}
