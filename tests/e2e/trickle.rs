//! A steady trickle of invitations while something fails (a path goes
//! silent, a node dies), and what must hold of it afterwards: which codes
//! the calls got, how long they took, that every invitation answered OK
//! exists, that a retry of one answered UNAVAILABLE makes it exactly once,
//! and that every email arrives once.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::{Code, transport::Channel};
use wowchat_users_api::v1::{self as proto, user_service_client::UserServiceClient};
use wowchat_users_testkit::{SmtpServer, TestApp, authed};

/// How long the trickle goes on after the failure has passed, to see calls
/// succeed again.
const AFTER: Duration = Duration::from_secs(12);

/// One invitation's call: its request id (the idempotency key), the answer's
/// code and how long it took.
pub struct Call {
    pub email: String,
    request_id: String,
    pub code: Code,
    pub started: Instant,
    pub took: Duration,
}

fn request(email: &str, request_id: &str) -> proto::InviteUserRequest {
    proto::InviteUserRequest {
        email: email.into(),
        role: "agent".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// Invites new addresses from 4 loops, one call after another each, while
/// `failure` runs and [`AFTER`] longer; every call, and the instant
/// `failure` returned (when the path healed, the standby was promoted).
pub async fn under_trickle(
    app: &TestApp,
    failure: impl Future<Output = Instant>,
) -> (Vec<Call>, Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    tokio::join!(trickle(app, 4, stop), async move {
        let passed = failure.await;
        tokio::time::sleep(AFTER).await;
        stopper.store(true, Ordering::Relaxed);
        passed
    })
}

async fn trickle(app: &TestApp, workers: usize, stop: Arc<AtomicBool>) -> Vec<Call> {
    in_loops(app, workers, &stop, |worker| {
        (0..).map(move |n| format!("worker{worker}.call{n}"))
    })
    .await
}

/// `count` invitations of new addresses from `workers` loops at once, each
/// loop one call after another; every call.
pub async fn invitations(app: &TestApp, count: usize, workers: usize) -> Vec<Call> {
    in_loops(app, workers, &AtomicBool::new(false), |worker| {
        (worker..count)
            .step_by(workers)
            .map(|n| format!("invitee{n}"))
    })
    .await
}

/// Runs `workers` loops at once, each inviting the names `names(worker)`
/// gives, one call after another, until they run out or `stop` is set;
/// every call.
async fn in_loops<I: Iterator<Item = String>>(
    app: &TestApp,
    workers: usize,
    stop: &AtomicBool,
    names: impl Fn(usize) -> I,
) -> Vec<Call> {
    let loops = (0..workers).map(|worker| {
        let names = names(worker);
        async move {
            let mut client = app.client().await;
            let mut calls = Vec::new();
            for name in names {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                calls.push(invite(app, &mut client, &name).await);
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

/// One InviteUser of `<name>@example.com` by the owner, with a request id.
async fn invite(app: &TestApp, client: &mut UserServiceClient<Channel>, name: &str) -> Call {
    let email = format!("{name}@example.com");
    let request_id = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let answer = client
        .invite_user(authed(&app.owner_token, request(&email, &request_id)))
        .await;
    let code = answer.map_or_else(|status| status.code(), |_| Code::Ok);
    let took = started.elapsed();
    if code != Code::Ok {
        // As a client backs off before retrying.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Call {
        email,
        request_id,
        code,
        started,
        took,
    }
}

/// How many calls got each code.
pub fn codes(calls: &[Call]) -> HashMap<Code, usize> {
    let mut codes = HashMap::new();
    for call in calls {
        *codes.entry(call.code).or_default() += 1;
    }
    codes
}

/// Only OK or UNAVAILABLE (retryable), and some of each: the failure was
/// felt, and never as INTERNAL or another code.
pub fn assert_ok_or_unavailable(calls: &[Call]) {
    let seen = codes(calls);
    assert!(
        seen.keys()
            .all(|code| matches!(code, Code::Ok | Code::Unavailable)),
        "only OK or UNAVAILABLE: {seen:?}"
    );
    assert!(seen.contains_key(&Code::Unavailable), "{seen:?}");
}

/// No call took longer than `limit`.
pub fn assert_answered_within(calls: &[Call], limit: Duration) {
    let slowest = calls.iter().map(|call| call.took).max().unwrap();
    assert!(slowest <= limit, "a call took {slowest:?}, past {limit:?}");
}

/// Every call started more than `within` after `passed` answered OK; how
/// long after `passed` the first call that then succeeded started.
pub fn assert_answering_again(calls: &[Call], passed: Instant, within: Duration) -> Duration {
    let after: Vec<&Call> = calls
        .iter()
        .filter(|call| call.started > passed + within)
        .collect();
    assert!(!after.is_empty(), "no call after the failure passed");
    for call in after {
        assert_eq!(call.code, Code::Ok, "{} after the failure", call.email);
    }
    calls
        .iter()
        .filter(|call| call.code == Code::Ok && call.started > passed)
        .map(|call| call.started - passed)
        .min()
        .unwrap_or_default()
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

/// Nothing acknowledged is lost: every call answered OK made its
/// invitation (read through `direct`). Then every call answered
/// UNAVAILABLE, retried with its request id, makes its invitation once.
pub async fn assert_nothing_lost_and_retries_make_it_once(
    app: &TestApp,
    direct: &tokio_postgres::Client,
    calls: &[Call],
) {
    for call in calls.iter().filter(|call| call.code == Code::Ok) {
        let made = invitations_to(direct, &call.email).await;
        assert_eq!(made, 1, "{} was answered OK", call.email);
    }
    let mut client = app.client().await;
    for call in calls.iter().filter(|call| call.code == Code::Unavailable) {
        client
            .invite_user(authed(
                &app.owner_token,
                request(&call.email, &call.request_id),
            ))
            .await
            .unwrap_or_else(|status| panic!("the retry of {}: {status:?}", call.email));
        let made = invitations_to(direct, &call.email).await;
        assert_eq!(made, 1, "{}", call.email);
    }
}

/// Every call's address received its invitation; one sent twice (in
/// flight at the failure, published again) has one Message-ID.
pub async fn assert_every_email_arrived_once(smtp: &SmtpServer, calls: &[Call]) {
    let per_recipient = || {
        let mut per_recipient: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for mail in smtp.messages() {
            for recipient in &mail.recipients {
                per_recipient
                    .entry(recipient.clone())
                    .or_default()
                    .push(mail.header("Message-ID"));
            }
        }
        per_recipient
    };
    let all_arrived = || {
        let arrived = per_recipient();
        calls.iter().all(|call| arrived.contains_key(&call.email))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_arrived() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A duplicate would come right after its first copy.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let arrived = per_recipient();
    for call in calls {
        let ids = arrived
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
