//! Losing a node. Postgres fails over: a primary and its synchronous
//! standby (the test kit's [`ReplicatedPostgres`]), the service, a replica
//! and the mailer all on one multi-host URL with
//! `target_session_attrs=read-write`. Under a steady trickle of invitations
//! the primary is killed as a machine dies and, two seconds later, the
//! standby promoted. Every invitation answered OK exists on the new primary
//! (the standby had flushed it before the answer), the service answers
//! again within seconds of the promotion, every email arrives, and the
//! replica's caller cache listens again: a deactivation made after the
//! failover is refused on its very next call.
//!
//! A RabbitMQ node dies: a 3-node cluster (the test kit's
//! [`RabbitmqCluster`]), every queue a quorum queue, the relay and the
//! mailer given every node's address. The node leading the mail queue is
//! killed in the middle of 1,000 invitations and started again 15 s later:
//! every call answers OK, every email arrives (a copy sent twice keeps its
//! Message-ID), and the emails pause less than 10 s.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::Code;
use wowchat_users_testkit::{
    SmtpServer, TestApp, deactivate, expect_error, get_user_request,
    rabbitmq_cluster::RabbitmqCluster, replicated_postgres::ReplicatedPostgres,
    without_invitation_limits,
};

use crate::support::{eventually, relay_and_mailer_on};
use crate::trickle::{
    assert_answered_within, assert_answering_again, assert_every_email_arrived_once,
    assert_nothing_lost_and_retries_make_it_once, assert_ok_or_unavailable, codes, invitations,
    under_trickle,
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

/// A supervisor invited by the owner who accepts with the token of the
/// email they received (with the relay on, the outbox keeps no token once
/// the command is published), and their bearer token.
async fn member_by_email(
    app: &TestApp,
    smtp: &SmtpServer,
    email: &str,
) -> (wowchat_users_api::v1::User, String) {
    app.invite(email, "supervisor").await;
    eventually("the invitation email arrived", || async {
        !smtp.messages_to(email).is_empty()
    })
    .await;
    let token = smtp.messages_to(email)[0].token().expect("an accept link");
    let user = app
        .accept_named(&token, "Sue Supervisor")
        .await
        .expect("accept succeeds");
    let bearer = app.token_for(user.id.parse().unwrap());
    (user, bearer)
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
    let (member, member_token) = member_by_email(&app, &smtp, "sue@example.com").await;

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

/// How many invitations the RabbitMQ test makes.
const INVITATIONS: usize = 1_000;
/// How long the killed RabbitMQ node stays down.
const NODE_DOWN: Duration = Duration::from_secs(15);
/// The longest pause in emails after the kill: the relay and the mailer
/// resume on another node within it, though the killed one is still down.
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// How many addresses have received an email so far.
fn recipients(smtp: &SmtpServer) -> usize {
    let messages = smtp.messages();
    let recipients: HashSet<&String> = messages.iter().flat_map(|mail| &mail.recipients).collect();
    recipients.len()
}

/// From `from` until every address has its email (or two minutes): the
/// longest time no new address received one.
async fn longest_pause(smtp: &SmtpServer, from: Instant) -> Duration {
    let (mut longest, mut last_change, mut seen) = (Duration::ZERO, from, recipients(smtp));
    while seen < INVITATIONS && from.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = recipients(smtp);
        if now > seen {
            longest = longest.max(last_change.elapsed());
            (last_change, seen) = (Instant::now(), now);
        }
    }
    if seen < INVITATIONS {
        // The emails never came back: the pause lasts still.
        longest = longest.max(last_change.elapsed());
    }
    longest
}

#[tokio::test]
async fn a_rabbitmq_node_dying_loses_no_email_and_the_relay_and_mailer_move_on() {
    let cluster = tokio::task::spawn_blocking(|| RabbitmqCluster::start(3))
        .await
        .unwrap();
    let cluster = Arc::new(cluster);
    let smtp = SmtpServer::start().await;
    let (app, _mailer) = relay_and_mailer_on(&cluster.url(), &smtp, |_| {}).await;
    let queue = app.topology.mailer_queue();
    let asked = cluster.clone();
    let leader = tokio::task::spawn_blocking(move || asked.leader_of(&queue, 0))
        .await
        .unwrap();

    let node_loss = async {
        eventually("a tenth of the emails arrived", || async {
            recipients(&smtp) >= INVITATIONS / 10
        })
        .await;
        let killer = cluster.clone();
        tokio::task::spawn_blocking(move || killer.kill(leader))
            .await
            .unwrap();
        let killed = Instant::now();
        let restart = async {
            tokio::time::sleep(NODE_DOWN).await;
            let restarter = cluster.clone();
            tokio::task::spawn_blocking(move || restarter.restart(leader))
                .await
                .unwrap();
        };
        let (pause, ()) = tokio::join!(longest_pause(&smtp, killed), restart);
        pause
    };
    let (calls, pause) = tokio::join!(invitations(&app, INVITATIONS, 8), node_loss);

    // The service writes to its outbox: a broker's node failing fails no call.
    let seen = codes(&calls);
    assert_eq!(seen.get(&Code::Ok), Some(&INVITATIONS), "{seen:?}");
    assert_every_email_arrived_once(&smtp, &calls).await;
    let duplicates = smtp.messages().len() - INVITATIONS;
    println!(
        "node {leader} of 3 (the mail queue's leader) killed; the longest pause in emails \
         after the kill: {pause:?}; {duplicates} emails sent twice"
    );
    assert!(
        pause < LONGEST_PAUSE,
        "the emails stopped for {pause:?}:\n{}",
        cluster.logs()
    );
}
