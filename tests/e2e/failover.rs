//! Postgres fails over: a primary and its synchronous standby (the test
//! kit's [`ReplicatedPostgres`]), the service, a replica and the mailer all
//! on one multi-host URL with `target_session_attrs=read-write`. Under a
//! steady trickle of invitations the primary is killed as a machine dies
//! and, two seconds later, the standby promoted. Every invitation answered
//! OK exists on the new primary (the standby had flushed it before the
//! answer), the service answers again within seconds of the promotion,
//! every email arrives, and the replica's caller cache listens again: a
//! deactivation made after the failover is refused on its very next call.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::Code;
use wowchat_users_testkit::{
    SmtpServer, TestApp, deactivate, expect_error, get_user_request,
    replicated_postgres::ReplicatedPostgres, without_invitation_limits,
};

use crate::support::eventually;
use crate::trickle::{
    assert_answered_within, assert_answering_again, assert_every_email_arrived_once,
    assert_nothing_lost_and_retries_make_it_once, assert_ok_or_unavailable, codes, under_trickle,
};

/// The servers' request timeout in this test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// What a call may take beyond the timeout: the answer's way back.
const SLACK: Duration = Duration::from_secs(2);
/// How long the cluster has no primary: from the kill to the promotion.
const LEADERLESS: Duration = Duration::from_secs(2);

/// Kills the primary and, [`LEADERLESS`] later, promotes the standby;
/// when the promotion finished.
async fn fail_over(pair: Arc<ReplicatedPostgres>) -> Instant {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killer = pair.clone();
    tokio::task::spawn_blocking(move || killer.kill_primary())
        .await
        .unwrap();
    tokio::time::sleep(LEADERLESS).await;
    tokio::task::spawn_blocking(move || pair.promote_standby())
        .await
        .unwrap();
    Instant::now()
}

#[tokio::test]
async fn the_primary_dying_loses_no_acknowledged_invitation_and_the_promoted_standby_serves() {
    let pair = tokio::task::spawn_blocking(ReplicatedPostgres::start)
        .await
        .unwrap();
    let pair = Arc::new(pair);
    let database = format!("wowchat_failover_{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_on(&database, pair.url(&database), |settings| {
        settings.relay = true;
        settings.request_timeout_secs = REQUEST_TIMEOUT.as_secs();
        without_invitation_limits(settings);
    })
    .await;
    let replica = app.spawn_replica(|_| {}).await;
    let smtp = SmtpServer::start().await;
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    let (member, member_token) = app.member("sue@example.com", "supervisor").await;

    let (calls, promoted) = under_trickle(&app, fail_over(pair.clone())).await;

    assert_ok_or_unavailable(&calls);
    assert_answered_within(&calls, REQUEST_TIMEOUT + SLACK);
    let back = assert_answering_again(&calls, promoted, Duration::from_secs(10));
    println!(
        "{:?}; the first OK after the promotion started {back:?} after it",
        codes(&calls)
    );
    // The test's own reads go to whichever host is primary now.
    let direct = app.db().await;
    assert_nothing_lost_and_retries_make_it_once(&app, &direct, &calls).await;
    assert_every_email_arrived_once(&smtp, &calls).await;

    // The replica's caller cache listens on the new primary again: it
    // serves callers from memory, and a deactivation made through the
    // other server reaches it before that call is answered.
    eventually("the replica's caller cache serves again", || async {
        replica.state.callers.is_serving()
    })
    .await;
    let mut as_member = replica.as_(&member_token).users;
    as_member
        .get_user(get_user_request(&member.id))
        .await
        .unwrap();
    let hits = replica.state.callers.hits();
    as_member
        .get_user(get_user_request(&member.id))
        .await
        .unwrap();
    assert!(replica.state.callers.hits() > hits, "served from memory");
    app.manage(&member.id, deactivate("left")).await.unwrap();
    expect_error(
        as_member.get_user(get_user_request(&member.id)).await,
        Code::PermissionDenied,
        "USER_DEACTIVATED",
    );
    drop(replica);
    drop(app);
}
