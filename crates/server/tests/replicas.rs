//! Replicas of the real binary on one database: a change made through
//! one is seen by the other's very next call, though the other had its
//! caller in its cache (Postgres tells it: NOTIFY caller_changed); the
//! gateway spreads its calls over every replica, and a rolling restart of
//! all of them under load fails no call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use prost::Message;
use tonic::{Code, transport::Channel};
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
    role_service_client::RoleServiceClient,
    user_service_client::UserServiceClient,
};
use wowchat_users_testkit::{
    authed,
    processes::{free_port, printed_value},
};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// A database and a folder (the shared development keys) of this test.
struct Installation {
    database: String,
    dir: std::path::PathBuf,
    servers: Vec<Child>,
}

impl Installation {
    fn new() -> Installation {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("wowchat-replicas-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Installation {
            database: format!("wowchat_test_{id}"),
            dir,
            servers: Vec::new(),
        }
    }

    fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.database)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("WOWCHAT_DATABASE_URL", self.database_url())
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_RETENTION", "false")
            .env("RUST_LOG", "warn")
            .env_remove("WOWCHAT_JWT_PUBLIC_KEYS")
            .env_remove("WOWCHAT_JWT_PRIVATE_KEY");
        command
    }

    fn output(&self, args: &[&str]) -> String {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn token(&self, user_id: &str, workspace_id: &str) -> String {
        self.output(&[
            "token",
            "--user-id",
            user_id,
            "--workspace-id",
            workspace_id,
        ])
        .trim()
        .to_owned()
    }

    /// Starts a replica serving gRPC and metrics; returns its two ports.
    fn serve(&mut self) -> (u16, u16) {
        let (grpc, metrics) = (free_port(), free_port());
        let server = self.spawn_replica(grpc, metrics);
        self.servers.push(server);
        (grpc, metrics)
    }

    fn spawn_replica(&self, grpc: u16, metrics: u16) -> Child {
        self.command(&["serve"])
            .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
            .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            .env("WOWCHAT_GATEWAY_KEY", GATEWAY_KEY)
            // Behind the gateway, which follows each replica's health.
            .env("WOWCHAT_SHUTDOWN_DELAY_SECS", "2")
            .env("WOWCHAT_SHUTDOWN_DRAIN_SECS", "10")
            // The rolling restart's load invites far beyond a person's pace.
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", "1000000")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// SIGTERM to replica `index`, which must exit cleanly, then the same
    /// replica again on the same ports.
    async fn restart(&mut self, index: usize, grpc: u16, metrics: u16) {
        let mut old = self.servers.remove(index);
        Command::new("kill")
            .args(["-TERM", &old.id().to_string()])
            .status()
            .unwrap();
        let status = tokio::task::spawn_blocking(move || old.wait().unwrap())
            .await
            .unwrap();
        assert!(status.success(), "replica {index} exited with {status}");
        let new = self.spawn_replica(grpc, metrics);
        self.servers.insert(index, new);
        channel_when_up(grpc).await;
    }
}

/// The key the gateway and the replicas share.
const GATEWAY_KEY: &str = "replicas test gateway key of 32+ bytes";

impl Drop for Installation {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .output();
    }
}

/// The sum of the series of `name` whose labels contain `label`.
async fn metric_sum(port: u16, name: &str, label: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return 0.0;
    };
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0.0;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway, in this process, in front of `upstreams`.
async fn gateway(upstreams: &[u16]) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut settings = wowchat_gateway::GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_upstream = upstreams
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    settings.gateway_key = Some(GATEWAY_KEY.into());
    settings.gateway_upstream_resolve_secs = 1;
    settings.gateway_shutdown_delay_secs = 0;
    let gateway = wowchat_gateway::Gateway::build(settings).await.unwrap();
    let address = gateway.address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (address, stop)
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

/// A migrated database with an owner: its workspace, owner id and token.
fn bootstrapped(installation: &Installation) -> (String, String, String) {
    installation.output(&["migrate"]);
    let bootstrapped = installation.output(&[
        "bootstrap",
        "--owner-email",
        "owner@acme.test",
        "--owner-password",
        "owner password 1",
    ]);
    let workspace_id = printed_value(&bootstrapped, "workspace_id").to_owned();
    let owner_id = printed_value(&bootstrapped, "user_id").to_owned();
    let owner = installation.token(&owner_id, &workspace_id);
    (workspace_id, owner_id, owner)
}

#[tokio::test]
async fn the_gateway_spreads_calls_over_every_replica_and_finds_a_new_one() {
    let mut installation = Installation::new();
    let (_, owner_id, owner) = bootstrapped(&installation);
    let replicas: Vec<(u16, u16)> = (0..3).map(|_| installation.serve()).collect();
    for (grpc, _) in &replicas {
        channel_when_up(*grpc).await;
    }
    // A fourth is configured but not yet running.
    let (late_grpc, late_metrics) = (free_port(), free_port());
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
    channel_when_up(late_grpc).await;
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
    let mut installation = Installation::new();
    let (_, owner_id, owner) = bootstrapped(&installation);
    let replicas: Vec<(u16, u16)> = (0..3).map(|_| installation.serve()).collect();
    for (grpc, _) in &replicas {
        channel_when_up(*grpc).await;
    }
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

    let (db, connection) =
        tokio_postgres::connect(&installation.database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
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
    let invitation = UserServiceClient::new(channel.clone())
        .invite_user(authed(
            owner,
            proto::InviteUserRequest {
                email: "sue@acme.test".into(),
                role: "supervisor".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let invitation = invitation.into_inner().invitation.expect("an invitation");
    assert_eq!(invitation.email, "sue@acme.test");
    let (db, connection) =
        tokio_postgres::connect(&installation.database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let payload: Vec<u8> = db
        .query_one(
            "SELECT payload FROM outbox WHERE routing_key = 'mail.invitation'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let token = wowchat_users_api::events::v1::SendInvitationEmail::decode(payload.as_slice())
        .unwrap()
        .token;
    UserServiceClient::new(channel.clone())
        .accept_invitation(proto::AcceptInvitationRequest {
            token,
            display_name: "Sue".into(),
            password: "sue's password 1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id
}

async fn channel_when_up(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the metric `name` the replica serves on `port`, if any.
async fn metric(port: u16, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

async fn get_user(
    channel: &Channel,
    token: &str,
    user_id: &str,
) -> Result<proto::User, tonic::Status> {
    UserServiceClient::new(channel.clone())
        .get_user(authed(
            token,
            proto::GetUserRequest {
                user_id: user_id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().user.unwrap())
}

async fn check(
    channel: &Channel,
    token: &str,
    user_id: &str,
    permission: &str,
) -> proto::CheckPermissionResponse {
    RoleServiceClient::new(channel.clone())
        .check_permission(authed(
            token,
            proto::CheckPermissionRequest {
                user_id: user_id.into(),
                permission: permission.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn manage(channel: &Channel, token: &str, user_id: &str, action: Action) {
    UserServiceClient::new(channel.clone())
        .manage_user(authed(
            token,
            proto::ManageUserRequest {
                user_id: user_id.into(),
                action: Some(action),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

fn denied_with(result: Result<proto::User, tonic::Status>, reason: &str) {
    use tonic_types::StatusExt;
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, reason, "{status:?}");
}

#[tokio::test]
async fn a_change_made_through_one_replica_is_seen_by_the_other_s_very_next_call() {
    let mut installation = Installation::new();
    installation.output(&["migrate"]);
    let bootstrapped = installation.output(&[
        "bootstrap",
        "--owner-email",
        "owner@acme.test",
        "--owner-password",
        "owner password 1",
    ]);
    let workspace_id = printed_value(&bootstrapped, "workspace_id").to_owned();
    let owner_id = printed_value(&bootstrapped, "user_id").to_owned();
    let owner = installation.token(&owner_id, &workspace_id);
    let (port_a, _) = installation.serve();
    let (port_b, metrics_b) = installation.serve();
    let (a, b) = (channel_when_up(port_a).await, channel_when_up(port_b).await);

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
    let change_role = Action::ChangeRole(manage::ChangeRole {
        role: "agent".into(),
    });
    manage(&a, &owner, &sue_id, change_role).await;
    denied_with(get_user(&b, &sue, &sue_id).await, "PERMISSION_MISSING");
    let answer = check(&b, &owner, &sue_id, "users.read").await;
    assert!(!answer.allowed);
    assert_eq!(answer.role, "agent");

    // Promoted again and cached again on B, then deactivated through A.
    let change_role = Action::ChangeRole(manage::ChangeRole {
        role: "supervisor".into(),
    });
    manage(&a, &owner, &sue_id, change_role).await;
    get_user(&b, &sue, &sue_id).await.unwrap();
    get_user(&b, &sue, &sue_id).await.unwrap();
    let deactivate = Action::Deactivate(manage::Deactivate {
        reason: "left".into(),
    });
    manage(&a, &owner, &sue_id, deactivate).await;
    denied_with(get_user(&b, &sue, &sue_id).await, "USER_DEACTIVATED");
    assert!(!check(&b, &owner, &sue_id, "users.read").await.allowed);
}

/// A replica whose only database URL goes through a transaction-pooling
/// PgBouncer: its listener's LISTEN and its heartbeats land on server
/// connections shared with others, so no notification comes back. Its
/// caller cache never serves, and a deactivated user is refused on the
/// very next call, as with the cache working.
#[tokio::test]
async fn behind_a_transaction_pooler_the_caller_cache_never_serves() {
    let mut installation = Installation::new();
    let (workspace_id, owner_id, owner) = bootstrapped(&installation);
    let bouncer =
        wowchat_users_testkit::pgbouncer::PgBouncer::start("127.0.0.1", 5432, "postgres", 10);
    let (grpc, metrics) = (free_port(), free_port());
    let server = installation
        .command(&["serve"])
        .env(
            "WOWCHAT_DATABASE_URL",
            bouncer.url("postgres", &installation.database),
        )
        .env("WOWCHAT_DATABASE_STATEMENT_CACHE", "false")
        .env("WOWCHAT_MIGRATE_ON_START", "false")
        .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
        .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    installation.servers.push(server);
    let channel = channel_when_up(grpc).await;

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
    manage(
        &channel,
        &owner,
        &sue_id,
        Action::Deactivate(manage::Deactivate {
            reason: "left".into(),
        }),
    )
    .await;
    denied_with(get_user(&channel, &sue, &sue_id).await, "USER_DEACTIVATED");
    let _ = owner_id;
}
