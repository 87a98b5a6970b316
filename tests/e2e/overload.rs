//! Overload: a replica at its concurrency limit refuses more calls at once
//! (RESOURCE_EXHAUSTED, SERVER_OVERLOADED, RetryInfo) instead of queueing
//! them, and health neither waits for the request pool nor is refused. Calls
//! are held in flight by a lock the test takes on the users table. (The
//! 5,000-call flood with memory measured is `crates/server/tests/overload.rs`.)

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{TestApp, authed, expect_error};

async fn health(app: &TestApp) -> Option<ServingStatus> {
    let mut client = HealthClient::new(app.channel().await);
    let check = client.check(HealthCheckRequest {
        service: "wowchat.users.v1.UserService".into(),
    });
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(response)) => Some(response.into_inner().status()),
        _ => None,
    }
}

async fn serving(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while health(app).await != Some(ServingStatus::Serving) {
        assert!(tokio::time::Instant::now() < deadline, "not SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes an exclusive lock on `users`, so every call that reads its caller
/// waits; rolled back when the returned client is told to.
async fn lock_users(app: &TestApp) -> tokio_postgres::Client {
    let client = app.db().await;
    client
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    client
}

fn list_users(app: &TestApp) -> tokio::task::JoinHandle<Result<usize, tonic::Status>> {
    let address = app.address.clone();
    let token = app.owner_token.clone();
    tokio::spawn(async move {
        let mut client = proto::user_service_client::UserServiceClient::connect(address)
            .await
            .unwrap();
        client
            .list_users(authed(&token, proto::ListUsersRequest::default()))
            .await
            .map(|r| r.into_inner().users.len())
    })
}

#[tokio::test]
async fn at_its_concurrency_limit_a_replica_refuses_more_calls_at_once_and_health_still_answers() {
    let app = TestApp::spawn_with(|s| s.max_concurrent_requests = 1).await;
    serving(&app).await;
    let lock = lock_users(&app).await;
    let held = list_users(&app);
    app.wait_for_lock_waiters(1).await;

    // The one slot is taken: refused at once, with when to retry.
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        app.client()
            .await
            .preview_invitation(proto::PreviewInvitationRequest {
                token: "whatever".into(),
            }),
    )
    .await
    .expect("a refusal does not wait");
    let status = expect_error(refused, Code::ResourceExhausted, "SERVER_OVERLOADED");
    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    // Health is never counted against the limit.
    assert_eq!(health(&app).await, Some(ServingStatus::Serving));

    lock.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 1);
    // The slot is free again.
    let users = app
        .client()
        .await
        .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
        .await
        .unwrap();
    assert_eq!(users.into_inner().users.len(), 1);
}

#[tokio::test]
async fn health_stays_serving_while_every_pooled_connection_is_busy() {
    let app = TestApp::spawn_with(|s| s.db_pool_size = 2).await;
    serving(&app).await;
    let lock = lock_users(&app).await;
    // Both pooled connections wait on the lock, and a third call waits for one.
    let held: Vec<_> = (0..3).map(|_| list_users(&app)).collect();
    app.wait_for_lock_waiters(2).await;

    // The probe runs every 100 ms and gives up after a second: a probe that
    // waited for the request pool would turn NOT_SERVING here.
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        assert_eq!(health(&app).await, Some(ServingStatus::Serving));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    lock.batch_execute("ROLLBACK").await.unwrap();
    for call in held {
        assert_eq!(call.await.unwrap().unwrap(), 1);
    }
}
