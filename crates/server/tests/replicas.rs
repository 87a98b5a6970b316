//! Replicas of the real binary on one database: a change made through
//! one is seen by the other's very next call, though the other had its
//! caller in its cache (Postgres tells it: NOTIFY caller_changed); the
//! gateway spreads its calls over every replica, and a rolling restart of
//! all of them under load fails no call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio_util::sync::DropGuard;
use tonic::transport::Channel;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    Services, change_role, deactivate, expect_denied, invitation_request, manage_request,
    permission_check,
    processes::{
        Installation, Owner, Process, accept_invitation, free_ports, http_get,
        mailed_invitation_token, serving,
    },
    run_until_dropped,
};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// The replicas of one installation; they stop before it is dropped.
struct Replicas {
    servers: Vec<Process>,
    installation: Installation,
}

impl Replicas {
    fn new() -> Replicas {
        Replicas {
            servers: Vec::new(),
            installation: Installation::new("replicas", BINARY),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.installation.command(args);
        command
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_RETENTION", "false")
            .env("RUST_LOG", "warn");
        command
    }

    /// Starts a replica serving gRPC and metrics; returns its two ports.
    fn serve(&mut self) -> (u16, u16) {
        let [grpc, metrics] = free_ports();
        let server = self.spawn_replica(grpc, metrics);
        self.servers.push(server);
        (grpc, metrics)
    }

    fn spawn_replica(&self, grpc: u16, metrics: u16) -> Process {
        let mut command = self.command(&["serve"]);
        command
            .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
            .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            .env("WOWCHAT_GATEWAY_KEY", GATEWAY_KEY)
            // Behind the gateway, which follows each replica's health.
            .env("WOWCHAT_SHUTDOWN_DELAY_SECS", "2")
            .env("WOWCHAT_SHUTDOWN_DRAIN_SECS", "10")
            // The rolling restart's load invites far beyond a person's pace.
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", "1000000")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", "1000000");
        Process::start(&mut command)
    }

    /// A bootstrapped installation with `n` replicas serving: its owner
    /// and the replicas' ports.
    async fn started(n: usize) -> (Replicas, Owner, Vec<(u16, u16)>) {
        let mut replicas = Replicas::new();
        let owner = replicas.bootstrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| replicas.serve()).collect();
        for (grpc, _) in &ports {
            serving(*grpc, "").await;
        }
        (replicas, owner, ports)
    }

    /// SIGTERM to replica `index`, which must exit cleanly, then the same
    /// replica again on the same ports.
    async fn restart(&mut self, index: usize, grpc: u16, metrics: u16) {
        self.servers.remove(index).stop().await;
        let new = self.spawn_replica(grpc, metrics);
        self.servers.insert(index, new);
        serving(grpc, "").await;
    }

    /// Migrates and bootstraps: the owner of the workspace.
    fn bootstrap(&self) -> Owner {
        self.installation.bootstrap("owner@acme.test")
    }
}

impl std::ops::Deref for Replicas {
    type Target = Installation;

    fn deref(&self) -> &Installation {
        &self.installation
    }
}

/// The key the gateway and the replicas share.
const GATEWAY_KEY: &str = "replicas test gateway key of 32+ bytes";

/// What the replica serves on its metrics `port` (nothing when it does not answer).
async fn metrics(port: u16) -> String {
    http_get(port, "/metrics").await.unwrap_or_default()
}

/// The sum of the series of `name` whose labels contain `label`.
async fn metric_sum(port: u16, name: &str, label: &str) -> f64 {
    metrics(port)
        .await
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway, in this process, in front of `upstreams`, until the guard
/// is dropped.
async fn gateway(upstreams: &[u16]) -> (std::net::SocketAddr, DropGuard) {
    let mut settings = wowchat_gateway::GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_upstream = upstreams
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    settings.gateway_key = Some(GATEWAY_KEY.into());
    settings.gateway_upstream_resolve_secs = 1;
    settings.gateway_shutdown.delay_secs = 0;
    let gateway = wowchat_gateway::Gateway::build(settings).await.unwrap();
    let address = gateway.address();
    (
        address,
        run_until_dropped(|stop| gateway.run_until_stopped(stop)),
    )
}

type Http = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

fn http() -> Http {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

/// One REST call: its status and body.
async fn rest(
    client: &Http,
    gateway: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    use http_body_util::BodyExt;
    let request = tonic::codegen::http::Request::builder()
        .method(method)
        .uri(format!("http://{gateway}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            let text = body
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("body lost: {e}"));
            (status, text)
        }
        Err(error) => (0, format!("no answer: {error}")),
    }
}

#[tokio::test]
async fn the_gateway_spreads_calls_over_every_replica_and_finds_a_new_one() {
    let (mut installation, owner, replicas) = Replicas::started(3).await;
    let (owner_id, owner) = (owner.user_id, owner.token);
    // A fourth is configured but not yet running.
    let [late_grpc, late_metrics] = free_ports();
    let mut upstreams: Vec<u16> = replicas.iter().map(|(grpc, _)| *grpc).collect();
    upstreams.push(late_grpc);
    let (gateway, _stop) = gateway(&upstreams).await;

    let client = http();
    let path = format!("/v1/users/{owner_id}");
    let handled = |metrics: u16| async move {
        metric_sum(
            metrics,
            "grpc_server_handled_total",
            "grpc_method=\"GetUser\"",
        )
        .await
    };
    // The gateway sends calls to the replicas whose health it has heard say
    // SERVING: on a loaded machine the first word can take a moment.
    let started = Instant::now();
    loop {
        for _ in 0..10 {
            let (status, body) = rest(&client, gateway, "GET", &path, &owner, None).await;
            assert_eq!(status, 200, "{body}");
        }
        let mut all = true;
        for (_, metrics) in &replicas {
            all &= handled(*metrics).await > 0.0;
        }
        if all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a replica never took a call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut before = Vec::new();
    for (_, metrics) in &replicas {
        before.push(handled(*metrics).await);
    }
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::atomic::AtomicUsize::new(0);
    futures::future::join_all((0..16).map(|_| async {
        while calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3000 {
            let (status, body) = rest(&client, gateway, "GET", &path, &owner, None).await;
            if status != 200 {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("{status}: {body}");
            }
        }
    }))
    .await;
    assert_eq!(failures.into_inner(), 0, "failed calls");
    let mut shares = Vec::new();
    for ((_, metrics), before) in replicas.iter().zip(&before) {
        shares.push((handled(*metrics).await - before) / 3000.0);
    }
    eprintln!("shares of 3,000 calls: {shares:?}");
    for share in &shares {
        assert!(
            *share >= 0.20,
            "a replica took {share} of the calls: {shares:?}"
        );
    }

    // The fourth starts: within 30 s it takes calls too.
    let late = installation.spawn_replica(late_grpc, late_metrics);
    installation.servers.push(late);
    serving(late_grpc, "").await;
    let started = Instant::now();
    loop {
        for _ in 0..20 {
            let (status, body) = rest(&client, gateway, "GET", &path, &owner, None).await;
            assert_eq!(status, 200, "{body}");
        }
        let handled = metric_sum(
            late_metrics,
            "grpc_server_handled_total",
            "grpc_method=\"GetUser\"",
        )
        .await;
        if handled > 0.0 {
            eprintln!(
                "the new replica took calls {:?} after it started",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new replica got no call in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_rolling_restart_of_every_replica_under_load_fails_no_call() {
    let (mut installation, owner, replicas) = Replicas::started(3).await;
    let (owner_id, owner) = (owner.user_id, owner.token);
    let upstreams: Vec<u16> = replicas.iter().map(|(grpc, _)| *grpc).collect();
    let (gateway, _stop) = gateway(&upstreams).await;

    let client = http();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let path = format!("/v1/users/{owner_id}");
    let load = futures::future::join_all((0..16).map(|worker| {
        let (client, path, owner, stop) = (&client, &path, &owner, &stop);
        async move {
            let mut failures = Vec::new();
            let mut invited = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (status, body) = if n % 4 == 0 {
                    let email = format!("w{worker}-{n}@acme.test");
                    let body = serde_json::json!({
                        "email": email,
                        "role": "agent",
                        "requestId": uuid::Uuid::new_v4().to_string(),
                    });
                    let answer = rest(
                        client,
                        gateway,
                        "POST",
                        "/v1/invitations",
                        owner,
                        Some(body),
                    )
                    .await;
                    if answer.0 == 200 {
                        invited.push(email);
                    }
                    answer
                } else {
                    rest(client, gateway, "GET", path, owner, None).await
                };
                if status != 200 {
                    failures.push(format!("{status}: {body}"));
                }
            }
            (n, failures, invited)
        }
    }));
    let restarts = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (index, (grpc, metrics)) in replicas.iter().enumerate() {
            installation.restart(index, *grpc, *metrics).await;
            // The gateway sees it serving again before the next one goes.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let (results, ()) = tokio::join!(load, restarts);
    let calls: usize = results.iter().map(|(n, _, _)| n).sum();
    let failures: Vec<&String> = results.iter().flat_map(|(_, f, _)| f).collect();
    let invited: Vec<&String> = results.iter().flat_map(|(_, _, i)| i).collect();
    eprintln!(
        "{calls} calls through 3 restarts, {} failed, {} invitations",
        failures.len(),
        invited.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );
    assert!(
        invited.len() > 10,
        "the load invited too little: {}",
        invited.len()
    );

    let db = installation.db().await;
    for email in invited {
        let count: i64 = db
            .query_one(
                "SELECT count(*) FROM invitations WHERE email = $1",
                &[email],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1, "{email} was invited {count} times");
    }
}

/// Sue, invited by the owner as a supervisor and accepting with the token
/// of her mail command (the replicas run without mail token keys, so it is
/// in the clear): her user id.
async fn join(installation: &Installation, channel: &Channel, owner: &str) -> String {
    let request = invitation_request("sue@acme.test", "supervisor");
    let invitation = Services::on(channel.clone(), owner)
        .users
        .invite_user(request)
        .await
        .unwrap();
    let invitation = invitation.into_inner().invitation.expect("an invitation");
    assert_eq!(invitation.email, "sue@acme.test");
    let token = mailed_invitation_token(&installation.db().await).await;
    accept_invitation(channel.clone(), token, "Sue", "sue's password 1")
        .await
        .id
}

/// The value of the metric `name` the replica serves on `port`, if any.
async fn metric(port: u16, name: &str) -> Option<f64> {
    metrics(port)
        .await
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

async fn get_user(
    channel: &Channel,
    token: &str,
    user_id: &str,
) -> Result<tonic::Response<proto::GetUserResponse>, tonic::Status> {
    let request = proto::GetUserRequest {
        user_id: user_id.into(),
    };
    Services::on(channel.clone(), token)
        .users
        .get_user(request)
        .await
}

async fn check(
    channel: &Channel,
    token: &str,
    user_id: &str,
    permission: &str,
) -> proto::CheckPermissionResponse {
    Services::on(channel.clone(), token)
        .roles
        .check_permission(permission_check(user_id, permission))
        .await
        .unwrap()
        .into_inner()
}

async fn manage(
    channel: &Channel,
    token: &str,
    user_id: &str,
    action: proto::manage_user_request::Action,
) {
    Services::on(channel.clone(), token)
        .users
        .manage_user(manage_request(user_id, action))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_change_made_through_one_replica_is_seen_by_the_other_s_very_next_call() {
    let mut installation = Replicas::new();
    let Owner {
        workspace_id,
        token: owner,
        ..
    } = installation.bootstrap();
    let (port_a, _) = installation.serve();
    let (port_b, metrics_b) = installation.serve();
    let (a, b) = (serving(port_a, "").await, serving(port_b, "").await);

    // Sue joins through A.
    let sue_id = join(&installation, &a, &owner).await;
    let sue = installation.token(&sue_id, &workspace_id);

    // B listens, and serves Sue (and what it knows of her) from memory.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(metrics_b, "wowchat_caller_cache_listening").await != Some(1.0) {
        assert!(Instant::now() < deadline, "B's cache never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        get_user(&b, &sue, &sue_id).await.unwrap();
        assert!(check(&b, &owner, &sue_id, "users.read").await.allowed);
    }
    let hits = metric(metrics_b, "wowchat_caller_cache_hits_total")
        .await
        .unwrap_or(0.0);
    assert!(hits >= 4.0, "B served callers from memory: {hits}");

    // Demoted through A: B's very next call knows.
    manage(&a, &owner, &sue_id, change_role("agent")).await;
    expect_denied(get_user(&b, &sue, &sue_id).await, "PERMISSION_MISSING");
    let answer = check(&b, &owner, &sue_id, "users.read").await;
    assert!(!answer.allowed);
    assert_eq!(answer.role, "agent");

    // Promoted again and cached again on B, then deactivated through A.
    manage(&a, &owner, &sue_id, change_role("supervisor")).await;
    get_user(&b, &sue, &sue_id).await.unwrap();
    get_user(&b, &sue, &sue_id).await.unwrap();
    manage(&a, &owner, &sue_id, deactivate("left")).await;
    expect_denied(get_user(&b, &sue, &sue_id).await, "USER_DEACTIVATED");
    assert!(!check(&b, &owner, &sue_id, "users.read").await.allowed);
}

/// A replica whose only database URL goes through a transaction-pooling
/// PgBouncer: its listener's LISTEN and its heartbeats land on server
/// connections shared with others, so no notification comes back. Its
/// caller cache never serves, and a deactivated user is refused on the
/// very next call, as with the cache working.
#[tokio::test]
async fn behind_a_transaction_pooler_the_caller_cache_never_serves() {
    let mut installation = Replicas::new();
    let Owner {
        workspace_id,
        token: owner,
        ..
    } = installation.bootstrap();
    let bouncer =
        wowchat_users_testkit::pgbouncer::PgBouncer::start("127.0.0.1", 5432, "postgres", 10);
    let [grpc, metrics] = free_ports();
    let mut command = installation.command(&["serve"]);
    command
        .env(
            "WOWCHAT_DATABASE_URL",
            bouncer.url("postgres", &installation.database),
        )
        .env("WOWCHAT_DATABASE_STATEMENT_CACHE", "false")
        .env("WOWCHAT_MIGRATE_ON_START", "false")
        .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
        .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics}"));
    installation.servers.push(Process::start(&mut command));
    let channel = serving(grpc, "").await;

    // A member, and calls as them for longer than a heartbeat's lease.
    let sue_id = join(&installation, &channel, &owner).await;
    let sue = installation.token(&sue_id, &workspace_id);
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        get_user(&channel, &sue, &sue_id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(
        metric(metrics, "wowchat_caller_cache_listening").await,
        Some(1.0),
        "the listener vouched though no notification can reach it"
    );
    assert_eq!(
        metric(metrics, "wowchat_caller_cache_hits_total")
            .await
            .unwrap_or(0.0),
        0.0,
        "a caller was served from memory"
    );

    // Deactivated (straight in Postgres): refused on the very next call.
    manage(&channel, &owner, &sue_id, deactivate("left")).await;
    expect_denied(get_user(&channel, &sue, &sue_id).await, "USER_DEACTIVATED");
}
