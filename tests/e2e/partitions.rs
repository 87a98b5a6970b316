//! A partition is not a hang: Postgres or RabbitMQ going silent (the test
//! kit's proxy forwards nothing either way, connections stay open, as when
//! packets are dropped) under a steady trickle of invitations. Every call
//! answers within the request timeout, OK or UNAVAILABLE (retryable), never
//! INTERNAL and never a hang; everything recovers when the path heals, and
//! nothing is lost: every invitation answered OK exists, a retry of one
//! answered UNAVAILABLE makes it at most once, every email arrives.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::Code;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{SmtpServer, TcpProxy, TestApp, authed, without_invitation_limits};

use crate::support::database_through;

/// How long each path stays silent.
const SILENCE: Duration = Duration::from_secs(30);
/// The servers' request timeout in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// What a call may take beyond the timeout: the answer's way back.
const SLACK: Duration = Duration::from_secs(2);

/// One invitation's call: its request id (the idempotency key), the answer's
/// code and how long it took.
struct Call {
    email: String,
    request_id: String,
    code: Code,
    started: Instant,
    took: Duration,
}

fn request(email: &str, request_id: &str) -> proto::InviteUserRequest {
    proto::InviteUserRequest {
        email: email.into(),
        role: "agent".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// Invites new addresses from `workers` loops, one call after another each,
/// until `stop`; every call and its answer.
async fn trickle(app: &TestApp, workers: usize, stop: Arc<AtomicBool>) -> Vec<Call> {
    let loops = (0..workers).map(|worker| {
        let stop = stop.clone();
        async move {
            let mut client = app.client().await;
            let mut calls = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let email = format!("worker{worker}.call{n}@example.com");
                let request_id = uuid::Uuid::new_v4().to_string();
                let started = Instant::now();
                let answer = client
                    .invite_user(authed(&app.owner_token, request(&email, &request_id)))
                    .await;
                let code = answer.map_or_else(|status| status.code(), |_| Code::Ok);
                calls.push(Call {
                    email,
                    request_id,
                    code,
                    started,
                    took: started.elapsed(),
                });
                if code != Code::Ok {
                    // As a client backs off before retrying.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            calls
        }
    });
    futures::future::join_all(loops)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Runs the trickle while `proxy` goes silent for [`SILENCE`] and heals;
/// the calls, and when the path healed.
async fn under_trickle(app: &TestApp, proxy: &TcpProxy) -> (Vec<Call>, Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    let (calls, healed) = tokio::join!(trickle(app, 4, stop), async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.blackhole();
        tokio::time::sleep(SILENCE).await;
        proxy.restore();
        let healed = Instant::now();
        // Calls after the heal, to see them succeed again.
        tokio::time::sleep(Duration::from_secs(12)).await;
        stopper.store(true, Ordering::Relaxed);
        healed
    });
    (calls, healed)
}

/// How many invitations to `email` exist, read straight from Postgres.
async fn invitations_to(direct: &tokio_postgres::Client, email: &str) -> i64 {
    direct
        .query_one(
            "SELECT count(*) FROM invitations WHERE email_normalized = $1",
            &[&email],
        )
        .await
        .unwrap()
        .get(0)
}

fn codes(calls: &[Call]) -> HashMap<Code, usize> {
    let mut codes = HashMap::new();
    for call in calls {
        *codes.entry(call.code).or_default() += 1;
    }
    codes
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

    let (calls, healed) = under_trickle(&app, &proxy).await;

    let seen = codes(&calls);
    assert!(
        seen.keys()
            .all(|code| matches!(code, Code::Ok | Code::Unavailable)),
        "only OK or UNAVAILABLE: {seen:?}"
    );
    assert!(
        seen.get(&Code::Unavailable).copied().unwrap_or(0) > 0,
        "{seen:?}"
    );
    let slowest = calls.iter().map(|call| call.took).max().unwrap();
    assert!(
        slowest <= REQUEST_TIMEOUT + SLACK,
        "a call took {slowest:?}, past the request timeout"
    );
    // Answering again within 10 s of the heal.
    let after_heal: Vec<&Call> = calls
        .iter()
        .filter(|call| call.started > healed + Duration::from_secs(10))
        .collect();
    assert!(!after_heal.is_empty());
    for call in after_heal {
        assert_eq!(call.code, Code::Ok, "{} after the heal", call.email);
    }

    // Nothing acknowledged is lost.
    for call in calls.iter().filter(|call| call.code == Code::Ok) {
        let made = invitations_to(&direct, &call.email).await;
        assert_eq!(made, 1, "{} was answered OK", call.email);
    }
    // A retry of an UNAVAILABLE call, with its request id, makes it once.
    let mut client = app.client().await;
    for call in calls.iter().filter(|call| call.code == Code::Unavailable) {
        client
            .invite_user(authed(
                &app.owner_token,
                request(&call.email, &call.request_id),
            ))
            .await
            .unwrap_or_else(|status| panic!("the retry of {}: {status:?}", call.email));
        let made = invitations_to(&direct, &call.email).await;
        assert_eq!(made, 1, "{}", call.email);
    }
}

#[tokio::test]
async fn rabbitmq_going_silent_fails_no_call_and_every_email_arrives_after() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let port = proxy.port();
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.amqp.url = amqp_url.clone().into();
        settings.request_timeout_secs = REQUEST_TIMEOUT.as_secs();
        without_invitation_limits(settings);
    })
    .await;
    let smtp = SmtpServer::start().await;
    let mut mailer_settings = app.mailer_settings(&smtp.url());
    mailer_settings.amqp.url = amqp_url.clone().into();
    let _mailer = app.start_mailer(mailer_settings).await;

    let (calls, _) = under_trickle(&app, &proxy).await;

    // The service writes to its outbox: a silent broker fails no call.
    let seen = codes(&calls);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&Code::Ok], "{seen:?}");
    let slowest = calls.iter().map(|call| call.took).max().unwrap();
    assert!(slowest <= REQUEST_TIMEOUT, "a call took {slowest:?}");

    // Every email arrives; one sent twice (in flight when the path went
    // silent, published again) has one Message-ID.
    let expected = calls.len();
    smtp.wait_for(expected, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_recipient: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for mail in smtp.messages() {
        for recipient in &mail.recipients {
            per_recipient
                .entry(recipient.clone())
                .or_default()
                .push(mail.header("Message-ID"));
        }
    }
    for call in &calls {
        let ids = per_recipient
            .get(&call.email)
            .unwrap_or_else(|| panic!("no email to {}", call.email));
        assert!(ids[0].is_some(), "a Message-ID");
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "{} got different emails: {ids:?}",
            call.email
        );
    }
}
