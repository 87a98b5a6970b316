//! Metrics as Prometheus scrapes them: the real endpoints over HTTP after
//! real calls. The recorder is one per process, so the test binary's other
//! servers count into it too: every assertion is about labels this test's
//! calls produce, and counts only ever grow, so "at least what this test
//! did" holds whatever runs beside it.

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use wowchat_gateway::{Gateway, GatewaySettings};
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    SmtpServer, TcpProxy, TestApp, expect_limited, invitation_request,
    metrics::{Scrape, scrape},
};

use crate::support::eventually;

const USER_SERVICE: &str = "wowchat.users.v1.UserService";

async fn with_metrics(adjust: impl FnOnce(&mut wowchat_users_server::config::Settings)) -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.metrics.addr = Some("127.0.0.1:0".parse().unwrap());
        adjust(settings);
    })
    .await
}

async fn scrape_app(app: &TestApp) -> Scrape {
    scrape(app.metrics_address.expect("metrics are served")).await
}

fn handled<'a>(method: &'a str, code: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grpc_service", USER_SERVICE),
        ("grpc_method", method),
        ("grpc_code", code),
        ("grpc_type", "unary"),
    ]
}

#[tokio::test]
async fn every_grpc_call_is_counted_and_timed_by_method_and_code() {
    let app = with_metrics(|_| {}).await;
    let (_agent, agent_token) = app.member("agent@example.com", "agent").await;
    let before = scrape_app(&app).await;
    let denied_before = before.value_or_zero(
        "grpc_server_handled_total",
        &handled("InviteUser", "PermissionDenied"),
    );
    let listed_before =
        before.value_or_zero("grpc_server_handled_total", &handled("ListUsers", "OK"));

    for n in 0..2 {
        let refused = app
            .as_(&agent_token)
            .users
            .invite_user(invitation_request(&format!("x{n}@example.com"), "agent"))
            .await;
        assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);
    }
    app.list_users(proto::ListUsersRequest::default()).await;
    let health = HealthClient::new(app.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status(), ServingStatus::Serving);

    let after = scrape_app(&app).await;
    assert!(
        after.expect(
            "grpc_server_handled_total",
            &handled("InviteUser", "PermissionDenied")
        ) >= denied_before + 2.0
    );
    assert!(
        after.expect("grpc_server_handled_total", &handled("ListUsers", "OK"))
            >= listed_before + 1.0
    );
    let invite = [
        ("grpc_service", USER_SERVICE),
        ("grpc_method", "InviteUser"),
    ];
    assert!(after.expect("grpc_server_started_total", &invite) >= 2.0);
    assert!(after.expect("grpc_server_handling_seconds_count", &invite) >= 2.0);
    // Every call lands in a bucket; the largest bucket holds them all.
    let mut inf = invite.to_vec();
    inf.push(("le", "+Inf"));
    assert!(after.expect("grpc_server_handling_seconds_bucket", &inf) >= 2.0);
    after.expect("grpc_server_in_flight_requests", &invite);
    // The health service is counted like any other, under its own name.
    after.expect(
        "grpc_server_started_total",
        &[
            ("grpc_service", "grpc.health.v1.Health"),
            ("grpc_method", "Check"),
        ],
    );
}

#[tokio::test]
async fn a_path_of_no_method_is_counted_under_unknown_not_under_its_own_name() {
    let app = with_metrics(|_| {}).await;
    let mut grpc = tonic::client::Grpc::new(app.channel().await);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/made.up.Service/Anything");
    let answer: Result<tonic::Response<()>, _> = grpc
        .unary(
            tonic::Request::new(()),
            path,
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    assert_eq!(answer.unwrap_err().code(), Code::Unimplemented);
    let scraped = scrape_app(&app).await;
    scraped.expect(
        "grpc_server_handled_total",
        &[
            ("grpc_service", "unknown"),
            ("grpc_method", "unknown"),
            ("grpc_code", "Unimplemented"),
        ],
    );
    assert!(!scraped.text.contains("made.up.Service"));
}

#[tokio::test]
async fn pools_hashing_rate_limits_and_the_relay_have_their_metrics() {
    let app = with_metrics(|settings| {
        settings.relay = true;
        settings.invites_per_minute_per_inviter = 1;
    })
    .await;
    let before = scrape_app(&app).await;
    let limited = [("limit", "INVITATION_RATE_LIMITED")];
    let refusals_before = before.value_or_zero("wowchat_rate_limit_refusals_total", &limited);

    app.invite("first@example.com", "agent").await;
    expect_limited(
        app.try_invite(invitation_request("second@example.com", "agent"))
            .await,
        "INVITATION_RATE_LIMITED",
    );

    let after = scrape_app(&app).await;
    assert!(after.expect("wowchat_rate_limit_refusals_total", &limited) >= refusals_before + 1.0);
    let requests = [("pool", "requests")];
    assert!(after.expect("wowchat_db_pool_checkout_seconds_count", &requests) >= 1.0);
    assert!(after.expect("wowchat_db_pool_max_connections", &requests) >= 1.0);
    after.expect("wowchat_db_pool_connections", &requests);
    after.expect("wowchat_db_pool_idle_connections", &requests);
    after.expect("wowchat_db_pool_waiting", &requests);
    after.expect("wowchat_password_hash_queue_depth", &[]);
    after.expect("wowchat_password_hash_queue_capacity", &[]);

    // The invitation's two outbox rows go out in a batch, confirmed.
    let address = app.metrics_address.unwrap();
    eventually("the relay's batch is confirmed", || async move {
        let scraped = scrape(address).await;
        scraped.value_or_zero("wowchat_relay_batch_size_count", &[]) >= 1.0
            && scraped.value_or_zero("wowchat_relay_confirm_seconds_count", &[]) >= 1.0
            && scraped.value("wowchat_outbox_backlog", &[]).is_some()
    })
    .await;
}

#[tokio::test]
async fn every_rest_route_is_counted_by_template_method_and_status() {
    let app = with_metrics(|_| {}).await;
    let mut settings = GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_metrics.addr = Some("127.0.0.1:0".parse().unwrap());
    settings.gateway_upstream = app.address.clone();
    let gateway = Gateway::build(settings).await.unwrap();
    let base = gateway.address();
    let metrics = gateway
        .metrics_address()
        .expect("the gateway serves metrics");
    let stop = wowchat_users_testkit::run_until_dropped(|stop| gateway.run_until_stopped(stop));

    let get = |path: String, token: Option<String>| async move {
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(token) = token {
            request.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(base).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let user = get(
        format!("/v1/users/{}", app.owner_id),
        Some(app.owner_token.clone()),
    )
    .await;
    assert!(user.starts_with("HTTP/1.1 200"), "{user}");
    let unauthenticated = get(format!("/v1/users/{}", app.owner_id), None).await;
    assert!(
        unauthenticated.starts_with("HTTP/1.1 401"),
        "{unauthenticated}"
    );
    let nowhere = get("/v1/nowhere/at/all".into(), None).await;
    assert!(nowhere.starts_with("HTTP/1.1 404"), "{nowhere}");

    let scraped = scrape(metrics).await;
    let route = [("route", "/v1/users/{user_id}"), ("method", "GET")];
    let with_code = |code| {
        let mut labels = route.to_vec();
        labels.push(("code", code));
        labels
    };
    assert!(scraped.expect("http_server_requests_total", &with_code("200")) >= 1.0);
    assert!(scraped.expect("http_server_requests_total", &with_code("401")) >= 1.0);
    assert!(scraped.expect("http_server_request_duration_seconds_count", &route) >= 2.0);
    scraped.expect("http_server_requests_in_flight", &route);
    scraped.expect(
        "http_server_requests_total",
        &[("route", "unmatched"), ("code", "404")],
    );
    assert!(
        !scraped.text.contains(&app.owner_id.to_string()),
        "no ids in labels"
    );
    // Behind it, the same calls as gRPC methods.
    let grpc = scrape_app(&app).await;
    grpc.expect(
        "grpc_server_handled_total",
        &handled("GetUser", "Unauthenticated"),
    );
    drop(stop);
}

#[tokio::test]
async fn the_mailer_counts_what_it_sends_on_its_own_endpoint() {
    let app = with_metrics(|settings| settings.relay = true).await;
    let smtp = SmtpServer::start().await;
    let mut settings = app.mailer_settings(&smtp.url());
    settings.metrics.addr = Some("127.0.0.1:0".parse().unwrap());
    let mailer = app.start_mailer(settings).await;
    let address = mailer.metrics_address.expect("the mailer serves metrics");
    let sent_before = scrape(address)
        .await
        .value_or_zero("wowchat_mailer_emails_sent_total", &[]);

    app.invite("alice@example.com", "agent").await;
    smtp.wait_for(1, Duration::from_secs(30)).await;

    eventually("the mailer counted the email", || async move {
        scrape(address)
            .await
            .value_or_zero("wowchat_mailer_emails_sent_total", &[])
            >= sent_before + 1.0
    })
    .await;
    let scraped = scrape(address).await;
    assert!(scraped.expect("wowchat_mailer_smtp_seconds_count", &[]) >= 1.0);
    for series in [
        "wowchat_mailer_emails_failed_total",
        "wowchat_mailer_emails_deduplicated_total",
        "wowchat_mailer_retries_total",
        "wowchat_mailer_dead_lettered_total",
        "wowchat_mailer_consuming",
    ] {
        scraped.expect(series, &[]);
    }
    mailer.stop().await;
}

async fn mailer_health(address: std::net::SocketAddr) -> ServingStatus {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
    else {
        return ServingStatus::Unknown;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

#[tokio::test]
async fn mailer_health_is_not_serving_while_rabbitmq_or_postgres_is_unreachable() {
    let app = TestApp::spawn().await;
    let smtp = SmtpServer::start().await;
    let rabbitmq = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let postgres = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut settings = app.mailer_settings(&smtp.url());
    settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", rabbitmq.port()).into();
    settings.database.url = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        postgres.port(),
        app.database_name
    )
    .into();
    settings.health_addr = Some("127.0.0.1:0".parse().unwrap());
    let mailer = app.start_mailer(settings).await;
    let health = mailer.health_address.expect("the mailer serves health");
    let is = |status: ServingStatus| async move { mailer_health(health).await == status };

    eventually("the mailer serves", || is(ServingStatus::Serving)).await;
    rabbitmq.cut();
    eventually("without RabbitMQ it is not serving", || {
        is(ServingStatus::NotServing)
    })
    .await;
    rabbitmq.restore();
    eventually("with RabbitMQ back it serves", || {
        is(ServingStatus::Serving)
    })
    .await;
    postgres.cut();
    eventually("without Postgres it is not serving", || {
        is(ServingStatus::NotServing)
    })
    .await;
    postgres.restore();
    eventually("with Postgres back it serves", || {
        is(ServingStatus::Serving)
    })
    .await;
    mailer.stop().await;
}
