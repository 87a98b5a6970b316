//! Rate limits hold across replicas and restarts: two servers on one
//! database admit a limit of N once, not twice, and a server started
//! afterwards remembers what the others took.

use std::time::Duration;

use futures::future::join_all;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use wowchat_users_api::v1 as proto;
use wowchat_users_server::config::Settings;
use wowchat_users_testkit::*;

fn sign_in_request(app: &TestApp, email: &str, password: &str) -> proto::SignInRequest {
    proto::SignInRequest {
        workspace_id: app.workspace_id.to_string(),
        email: email.into(),
        password: password.into(),
    }
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Result<(), Status> {
    app.auth()
        .await
        .sign_in(sign_in_request(app, email, password))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_invitation_limit_of_n_admits_n_across_two_replicas_not_2n() {
    const LIMIT: u32 = 5;
    let limited = |s: &mut Settings| {
        s.invites_per_minute_per_inviter = LIMIT;
        s.invites_per_minute_per_workspace = 0;
    };
    let app = TestApp::spawn_with(limited).await;
    let replica = app.spawn_replica(limited).await;
    // Twelve at once, six through each replica.
    let attempts = (0..12).map(|n| {
        let server = if n % 2 == 0 { &app } else { &replica };
        async move {
            server
                .try_invite(invitation_request(&format!("p{n}@example.com"), "agent"))
                .await
        }
    });
    let results = join_all(attempts).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, LIMIT as usize, "{results:?}");
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert_eq!(reason(&refused), "INVITATION_RATE_LIMITED");
        // A unit comes back every 12 s.
        let delay = retry_delay(&refused);
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(12),
            "{delay:?}"
        );
    }
}

#[tokio::test]
async fn a_restarted_replica_remembers_what_the_limit_has_taken() {
    let limited = |s: &mut Settings| {
        s.invites_per_minute_per_inviter = 0;
        s.invites_per_minute_per_workspace = 2;
        s.invites_per_day_per_recipient = 0;
    };
    let app = TestApp::spawn_with(limited).await;
    let mut replica = app.spawn_replica(limited).await;
    replica
        .try_invite(invitation_request("a@example.com", "agent"))
        .await
        .unwrap();
    app.invite("b@example.com", "agent").await;
    replica.stop().await;
    drop(replica);
    let restarted = app.spawn_replica(limited).await;
    let status = expect_limited(
        restarted
            .try_invite(invitation_request("c@example.com", "agent"))
            .await,
        "INVITATION_RATE_LIMITED",
    );
    assert!(status.get_details_retry_info().is_some());
    // Nothing of it was kept: the limit's table holds digests only.
    let db = app.db().await;
    let names: Vec<String> = db
        .query("SELECT DISTINCT name FROM rate_limits", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, ["invitations.sends_by_workspace"]);
}

#[tokio::test]
async fn a_refused_invitation_gives_back_what_its_transaction_took() {
    let app = TestApp::spawn_with(|s| {
        s.invites_per_minute_per_inviter = 2;
        s.invites_per_minute_per_workspace = 0;
    })
    .await;
    app.invite("taken@example.com", "agent").await;
    // Refused for another reason: the unit it took goes back with its rollback.
    for _ in 0..3 {
        expect_exists(
            app.try_invite(invitation_request("taken@example.com", "agent"))
                .await,
            "INVITATION_PENDING",
        );
    }
    app.invite("second@example.com", "agent").await;
    expect_limited(
        app.try_invite(invitation_request("third@example.com", "agent"))
            .await,
        "INVITATION_RATE_LIMITED",
    );
}

#[tokio::test]
async fn wrong_passwords_are_limited_across_replicas_and_right_ones_never_use_the_limit() {
    let limited = |s: &mut Settings| {
        s.sign_in_per_email_per_minute = 3;
        s.sign_in_per_address_per_minute = 0;
    };
    let app = TestApp::spawn_with(limited).await;
    let replica = app.spawn_replica(limited).await;
    // A right password, many times on both: it never counts.
    for n in 0..6 {
        let server = if n % 2 == 0 { &app } else { &replica };
        sign_in(server, "owner@example.com", PASSWORD)
            .await
            .expect("a right password is never held back");
    }
    // Three wrong guesses spread over both replicas use the limit up.
    for server in [&app, &replica, &app] {
        expect_unauthenticated(
            sign_in(server, "owner@example.com", "not the password").await,
            "INVALID_CREDENTIALS",
        );
    }
    let hashed = replica.state.hasher.verifications();
    let status = expect_limited(
        sign_in(&replica, "owner@example.com", PASSWORD).await,
        "SIGN_IN_RATE_LIMITED",
    );
    assert_eq!(replica.state.hasher.verifications(), hashed, "no hashing");
    let delay = retry_delay(&status);
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(20),
        "a unit comes back every 20 s: {delay:?}"
    );
    expect_limited(
        sign_in(&app, "owner@example.com", "another guess").await,
        "SIGN_IN_RATE_LIMITED",
    );
}

#[tokio::test]
async fn concurrent_guesses_on_two_replicas_get_no_more_than_the_limit() {
    let limited = |s: &mut Settings| {
        s.sign_in_per_email_per_minute = 0;
        s.sign_in_per_address_per_minute = 4;
    };
    let app = TestApp::spawn_with(limited).await;
    let replica = app.spawn_replica(limited).await;
    let guesses = (0..10).map(|n| {
        let server = if n % 2 == 0 { &app } else { &replica };
        async move { sign_in(server, &format!("guess{n}@example.com"), "not the password").await }
    });
    let results = join_all(guesses).await;
    let hashed = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated))
        .count();
    let held = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert_eq!((hashed, held), (4, 6), "{results:?}");
}

#[tokio::test]
async fn token_attempts_are_limited_across_replicas() {
    let limited = |s: &mut Settings| s.invitation_attempts_per_token_per_minute = 3;
    let app = TestApp::spawn_with(limited).await;
    let replica = app.spawn_replica(limited).await;
    let invitation = app.invite("target@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    app.preview(&token).await.unwrap();
    replica.preview(&token).await.unwrap();
    app.preview(&token).await.unwrap();
    let status = expect_limited(replica.accept(&token).await, "INVITATION_ATTEMPTS_EXCEEDED");
    assert!(status.get_details_retry_info().is_some());
}

#[tokio::test]
async fn full_buckets_are_pruned_and_busy_ones_kept() {
    let app = TestApp::spawn_with(|s| {
        s.retention = false;
        s.invites_per_minute_per_inviter = 10;
        s.invites_per_minute_per_workspace = 0;
        s.invites_per_day_per_recipient = 0;
    })
    .await;
    app.invite("a@example.com", "agent").await;
    let db = app.db().await;
    db.execute(
        "INSERT INTO rate_limits (name, key, tat) VALUES ('old', '\\x01', now() - interval '1 second')",
        &[],
    )
    .await
    .unwrap();
    let retention = wowchat_users_server::retention::Retention::new(
        app.state.pool.clone(),
        wowchat_users_server::retention::RetentionSettings {
            interval: Duration::from_secs(60),
            idempotency_keys: None,
            published_outbox: None,
            batch_size: 100,
            activity_months: None,
        },
    );
    let pruned = retention
        .prune_once(&tokio_util::sync::CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pruned.rate_limits, 1);
    let left: Vec<String> = db
        .query("SELECT name FROM rate_limits", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, ["invitations.sends_by_inviter"]);
}
