//! Standard services: gRPC health (NOT_SERVING while Postgres is out of
//! reach, back by itself when it returns) and server reflection.

use std::{future::Future, time::Duration};

use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{TcpProxy, TestApp, authed, expect_error};

use crate::support::database_through;

const SERVICE: &str = "wowchat.users.v1.UserService";

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    HealthClient::new(app.channel().await)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Polls `condition` until it holds, for at most 15 seconds.
async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_service() {
    let app = TestApp::spawn().await;
    eventually("SERVING", || async {
        status(&app, "").await == ServingStatus::Serving
    })
    .await;
    assert_eq!(status(&app, SERVICE).await, ServingStatus::Serving);
}

#[tokio::test]
async fn while_postgres_is_unreachable_calls_fail_cleanly_and_the_service_recovers() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let port = proxy.port();
    let app = TestApp::spawn_with(|settings| database_through(settings, port)).await;
    let list = || async {
        app.client()
            .await
            .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
            .await
    };
    eventually("SERVING", || async {
        status(&app, SERVICE).await == ServingStatus::Serving
    })
    .await;
    list().await.unwrap();

    proxy.cut();
    eventually("NOT_SERVING", || async {
        status(&app, SERVICE).await == ServingStatus::NotServing
    })
    .await;
    assert_eq!(status(&app, "").await, ServingStatus::NotServing);
    let status_while_down = expect_error(list().await, Code::Unavailable, "SERVICE_UNAVAILABLE");
    assert!(!status_while_down.message().contains("postgres"));

    proxy.restore();
    eventually("SERVING again", || async {
        status(&app, SERVICE).await == ServingStatus::Serving
    })
    .await;
    eventually("calls succeeding again", || async { list().await.is_ok() }).await;
}

async fn reflected_services(app: &TestApp) -> Result<Vec<String>, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(app.channel().await)
        .server_reflection_info(tokio_stream_once(request))
        .await?
        .into_inner();
    let response = responses.message().await?.expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("unexpected reflection response {other:?}"),
    }
}

fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::iter([item])
}

#[tokio::test]
async fn reflection_lists_the_service_and_can_be_turned_off() {
    let app = TestApp::spawn().await;
    let services = reflected_services(&app).await.unwrap();
    assert!(services.iter().any(|s| s == SERVICE), "{services:?}");
    assert!(
        services.iter().any(|s| s == "grpc.health.v1.Health"),
        "{services:?}"
    );

    let quiet = TestApp::spawn_with(|settings| settings.reflection = false).await;
    let status = reflected_services(&quiet).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

/// What a caller reads when Postgres ends a connection: an administrator's
/// `pg_terminate_backend` (as a restart or failover does, `57P01`) in the
/// middle of a query, and the next query on that connection.
#[tokio::test]
async fn a_connection_the_database_ends_reads_as_unavailable_never_internal() {
    let app = TestApp::spawn().await;
    let victim = app.db().await;
    let admin = app.db().await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let cut = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();
    };
    let (during, ()) = tokio::join!(victim.query_one("SELECT pg_sleep(30)", &[]), cut);
    let during = during.unwrap_err();
    let after = victim.query_one("SELECT 1", &[]).await.unwrap_err();
    for (when, error) in [("during a query", during), ("after it", after)] {
        let status = tonic::Status::from(wowchat_users_server::domain::Error::from(error));
        assert_eq!(status.code(), Code::Unavailable, "{when}: {status:?}");
        assert!(
            !status.message().contains("terminat"),
            "{when}: the database's words stay in the log: {status:?}"
        );
    }
}
