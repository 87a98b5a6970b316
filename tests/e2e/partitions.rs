//! A partition is not a hang: Postgres or RabbitMQ going silent (the test
//! kit's proxy forwards nothing either way, connections stay open, as when
//! packets are dropped) under a steady trickle of invitations. Every call
//! answers within the request timeout, OK or UNAVAILABLE (retryable), never
//! INTERNAL and never a hang; everything recovers when the path heals, and
//! nothing is lost: every invitation answered OK exists, a retry of one
//! answered UNAVAILABLE makes it at most once, every email arrives.

use std::time::{Duration, Instant};

use tonic::Code;
use wowchat_users_testkit::{SmtpServer, TcpProxy, TestApp, without_invitation_limits};

use crate::support::{database_through, relay_and_mailer_on};
use crate::trickle::{
    Call, assert_answered_within, assert_answering_again, assert_every_email_arrived_once,
    assert_nothing_lost_and_retries_make_it_once, assert_ok_or_unavailable, codes, under_trickle,
};

/// How long each path stays silent.
const SILENCE: Duration = Duration::from_secs(30);
/// The servers' request timeout in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// What a call may take beyond the timeout: the answer's way back.
const SLACK: Duration = Duration::from_secs(2);

/// Runs the trickle while `proxy` goes silent for [`SILENCE`] and heals;
/// the calls, and when the path healed.
async fn under_silence(app: &TestApp, proxy: &TcpProxy) -> (Vec<Call>, Instant) {
    under_trickle(app, async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.blackhole();
        tokio::time::sleep(SILENCE).await;
        proxy.restore();
        Instant::now()
    })
    .await
}

#[tokio::test]
async fn postgres_going_silent_fails_calls_as_unavailable_within_the_deadline_and_loses_nothing() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let port = proxy.port();
    let app = TestApp::spawn_with(|settings| {
        database_through(settings, port);
        settings.request_timeout_secs = REQUEST_TIMEOUT.as_secs();
        without_invitation_limits(settings);
    })
    .await;
    // The test's own reads go straight to Postgres, around the proxy.
    let direct = app.db().await;

    let (calls, healed) = under_silence(&app, &proxy).await;

    assert_ok_or_unavailable(&calls);
    assert_answered_within(&calls, REQUEST_TIMEOUT + SLACK);
    assert_answering_again(&calls, healed, Duration::from_secs(10));
    assert_nothing_lost_and_retries_make_it_once(&app, &direct, &calls).await;
}

#[tokio::test]
async fn rabbitmq_going_silent_fails_no_call_and_every_email_arrives_after() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let port = proxy.port();
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let smtp = SmtpServer::start().await;
    let (app, _mailer) = relay_and_mailer_on(&amqp_url, &smtp, |settings| {
        settings.request_timeout_secs = REQUEST_TIMEOUT.as_secs();
    })
    .await;

    let (calls, _) = under_silence(&app, &proxy).await;

    // The service writes to its outbox: a silent broker fails no call.
    let seen = codes(&calls);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&Code::Ok], "{seen:?}");
    assert_answered_within(&calls, REQUEST_TIMEOUT);
    assert_every_email_arrived_once(&smtp, &calls).await;
}
