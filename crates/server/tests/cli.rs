//! The `wowchat-users` binary as an operator runs it: migrate, bootstrap,
//! token (development keys), serve with metrics, and a graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use wowchat_users_api::v1::{ListUsersRequest, user_service_client::UserServiceClient};
use wowchat_users_testkit::{
    Services, invitation_request,
    processes::{
        Installation, Process, free_port, free_ports, http_get, mailed_invitation_token,
        printed_value, serving,
    },
};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// A fresh database and a scratch folder, both removed afterwards; the
/// binary's logs in the pretty format at info.
struct Scratch(Installation);

impl Scratch {
    fn new() -> Scratch {
        Scratch(Installation::new("cli", BINARY))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.0.command(args);
        command
            .env("WOWCHAT_LOG_FORMAT", "pretty")
            .env("RUST_LOG", "info");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Migrates, bootstraps a workspace and returns a token of its owner.
    fn owner_token(&self) -> String {
        self.0.bootstrap("owner@acme.test").token
    }
}

impl std::ops::Deref for Scratch {
    type Target = Installation;

    fn deref(&self) -> &Installation {
        &self.0
    }
}

#[tokio::test]
async fn an_operator_migrates_bootstraps_mints_a_token_serves_and_stops_the_server() {
    let scratch = Scratch::new();

    let migrated = scratch.run(&["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let bootstrapped = scratch.run(&[
        "bootstrap",
        "--workspace-name",
        "Acme Support",
        "--owner-email",
        "owner@acme.test",
        "--owner-password",
        "owner password 1",
    ]);
    assert!(bootstrapped.status.success());
    // The first command that needs keys made the development pair, and said so.
    let stderr = String::from_utf8(bootstrapped.stderr).unwrap();
    assert!(stderr.contains("development mode"), "{stderr}");
    let stdout = String::from_utf8(bootstrapped.stdout).unwrap();
    let workspace_id = printed_value(&stdout, "workspace_id").to_owned();
    let user_id = printed_value(&stdout, "user_id").to_owned();
    assert!(
        !stdout.contains("password="),
        "a given password is not printed"
    );

    let minted = scratch.run(&[
        "token",
        "--user-id",
        &user_id,
        "--workspace-id",
        &workspace_id,
    ]);
    assert!(minted.status.success());
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let key = scratch.dir.join(".wowchat/dev-keys/jwt-private.pem");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let [grpc_port, metrics_port] = free_ports();
    let mut serve = scratch.command(&["serve"]);
    serve
        .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"));
    let server = Process::start_logged(&mut serve);

    let mut client = Services::on(serving(grpc_port, "").await, &token).users;
    let deadline = Instant::now() + Duration::from_secs(30);
    let request = ListUsersRequest::default();
    let users = client.list_users(request).await.unwrap().into_inner().users;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, "owner@acme.test");

    let metrics = loop {
        let body = http_get(metrics_port, "/metrics").await.unwrap_or_default();
        if body.contains("wowchat_outbox_backlog") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no outbox backlog metric: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("wowchat_outbox_oldest_age_seconds"));

    // SIGTERM: the server stops accepting, finishes, and exits cleanly. The
    // client stays connected and answers the server's GOAWAY meanwhile.
    let logs = server.stop().await;
    drop(client);
    assert!(logs.contains("server stopped"), "{logs}");
    assert!(!logs.contains(&token), "the token was logged");
}

#[test]
fn bootstrap_refuses_a_bad_email_with_a_clear_message() {
    let scratch = Scratch::new();
    let output = scratch.run(&[
        "bootstrap",
        "--owner-email",
        "not an email",
        "--owner-password",
        "owner password 1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--owner-email"), "{stderr}");
}

#[test]
fn one_off_commands_leave_the_metrics_port_to_the_running_server() {
    let scratch = Scratch::new();
    // The port the server of this pod already serves metrics on.
    let server_metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = server_metrics.local_addr().unwrap().to_string();
    for args in [
        &["migrate"][..],
        &[
            "bootstrap",
            "--owner-email",
            "owner@acme.test",
            "--owner-password",
            "owner password 1",
        ],
    ] {
        let output = scratch
            .command(args)
            .env("WOWCHAT_METRICS_ADDR", &metrics_addr)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn cancelled_accepts_cannot_balloon_the_server_s_memory() {
    use futures::StreamExt;
    use wowchat_users_api::v1 as proto;

    let scratch = Scratch::new();
    let bearer = scratch.owner_token();

    let grpc_port = free_port();
    let mut server = Process::start(
        scratch
            .command(&["serve"])
            .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("WOWCHAT_RELAY", "false")
            // The attempt limits would refuse most of the flood before any
            // hashing; off, the hashing queue alone must hold memory down.
            .env("WOWCHAT_INVITATION_ATTEMPTS_PER_TOKEN_PER_MINUTE", "0")
            .env("WOWCHAT_INVITATION_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "0"),
    );
    let channel = serving(grpc_port, "").await;
    let invite = invitation_request("invitee@example.com", "agent");
    Services::on(channel.clone(), &bearer)
        .users
        .invite_user(invite)
        .await
        .expect("invited");
    let mut client = UserServiceClient::new(channel);
    let token = mailed_invitation_token(&scratch.db().await).await;
    let accept = |password: &str| proto::AcceptInvitationRequest {
        token: token.clone(),
        display_name: "Invitee".into(),
        password: password.into(),
    };

    // Resets the peak (VmHWM) to the current size, so the peak read below
    // is the flood's, not the start's.
    std::fs::write(format!("/proc/{}/clear_refs", server.id()), "5").unwrap();
    let before = server.memory_kib("VmRSS");
    // 400 accepts, each given up by the client after 30 ms, 20 at a time.
    let flood = (0..400).map(|_| {
        let mut client = client.clone();
        let request = accept("a password of sixteen");
        async move {
            let _ =
                tokio::time::timeout(Duration::from_millis(30), client.accept_invitation(request))
                    .await;
        }
    });
    futures::stream::iter(flood)
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    // The queue is first in, first out: once an accept behind the flood is
    // answered, everything the flood queued has run or been skipped.
    loop {
        match client
            .accept_invitation(accept("a password of sixteen"))
            .await
        {
            Ok(accepted) => {
                assert!(accepted.into_inner().user.is_some());
                break;
            }
            // One of the flood's accepts finished before its caller gave up
            // (a fast machine hashes in under 30 ms): answered all the same.
            Err(status)
                if tonic_types::StatusExt::get_details_error_info(&status)
                    .is_some_and(|info| info.reason == "INVITATION_ALREADY_ACCEPTED") =>
            {
                break;
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let peak = server.memory_kib("VmHWM");
    server.kill();
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("peak growth under 400 cancelled accepts: {growth_mib} MiB");
    assert!(
        growth_mib < 150,
        "the server grew by {growth_mib} MiB (from {} MiB)",
        before / 1024
    );
}

#[tokio::test]
async fn a_relay_with_a_backlog_exits_within_two_seconds_of_sigterm() {
    let scratch = Scratch::new();
    assert!(scratch.run(&["migrate"]).status.success());
    let db = scratch.db().await;
    // More than a relay drains in the time this test takes to stop it.
    db.execute(
        "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, created_at) \
         SELECT gen_random_uuid(), gen_random_uuid(), 'invitation.created', \
                'wowchat.users.events.v1.InvitationCreated', decode(repeat('ab', 300), 'hex'), '', now() \
         FROM generate_series(1, 50000)",
        &[],
    )
    .await
    .unwrap();
    let published = || async {
        db.query_one(
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };

    let relay = Process::start_logged(&mut scratch.command(&["relay"]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while published().await == 0 {
        assert!(Instant::now() < deadline, "the relay published nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    relay.send_sigterm();
    let signalled = Instant::now();
    let logs = relay.exits_cleanly().await;
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} to exit: {logs}"
    );
    assert!(logs.contains("relay stopped"), "{logs}");
    assert!(published().await < 50_000, "it stopped with a backlog left");
}

#[tokio::test]
async fn a_relay_on_its_own_serves_its_health_and_metrics_for_probes_and_scrapes() {
    let scratch = Scratch::new();
    let [health_port, metrics_port] = free_ports();
    let mut command = scratch.command(&["relay"]);
    command
        .env(
            "WOWCHAT_RELAY_HEALTH_ADDR",
            format!("127.0.0.1:{health_port}"),
        )
        .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"));
    let relay = Process::start_logged(&mut command);

    // Connected to RabbitMQ with nothing waiting: the relay serves.
    serving(health_port, "wowchat.users.v1.OutboxRelay").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let body = http_get(metrics_port, "/metrics").await.unwrap_or_default();
        if body.contains(r#"wowchat_db_pool_connections{pool="relay"}"#)
            && body.contains("wowchat_outbox_backlog")
        {
            break body;
        }
        assert!(Instant::now() < deadline, "no relay metrics: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("wowchat_relay_connected 1"), "{metrics}");

    relay.stop().await;
}

/// An OTLP/gRPC collector on a free port: the trace export requests it
/// receives, as the real collector's API defines them.
mod collector {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    };

    #[derive(Clone, Default)]
    pub struct Collector {
        pub received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.received.lock().unwrap().push(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// Serves a collector on a free port until the test ends.
    pub async fn start() -> (Collector, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (collector, port)
    }
}

#[tokio::test]
async fn with_an_otlp_endpoint_set_the_server_exports_each_call_s_span_in_the_caller_s_trace() {
    let (collector, collector_port) = collector::start().await;
    let scratch = Scratch::new();
    let token = scratch.owner_token();

    let grpc_port = free_port();
    let mut serve = scratch.command(&["serve"]);
    serve
        .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector_port}"),
        );
    let server = Process::start_logged(&mut serve);
    let mut client = Services::on(serving(grpc_port, "").await, &token).users;

    // The caller's trace, sampled, as a W3C traceparent.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(ListUsersRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    client.list_users(request).await.unwrap();

    // Stopping flushes what the exporter still holds.
    let logs = server.stop().await;

    let received = collector.received.lock().unwrap();
    let service_names: Vec<String> = received
        .iter()
        .flat_map(|export| &export.resource_spans)
        .filter_map(|spans| spans.resource.as_ref())
        .flat_map(|resource| &resource.attributes)
        .filter(|attribute| attribute.key == "service.name")
        .map(|attribute| format!("{:?}", attribute.value))
        .collect();
    assert!(
        service_names
            .iter()
            .all(|name| name.contains("wowchat-users"))
            && !service_names.is_empty(),
        "{service_names:?}"
    );
    let spans: Vec<_> = received
        .iter()
        .flat_map(|export| &export.resource_spans)
        .flat_map(|spans| &spans.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect();
    let call = spans
        .iter()
        .find(|span| span.name == "wowchat.users.v1.UserService/ListUsers")
        .unwrap_or_else(|| panic!("no span of the call among {} spans: {logs}", spans.len()));
    assert_eq!(hex(&call.trace_id), trace_id, "in the caller's trace");
    assert_eq!(
        hex(&call.parent_span_id),
        caller_span,
        "under the caller's span"
    );
    assert!(
        !format!("{spans:?}").contains(&token),
        "the token was exported"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The configuration refuses mistakes by the name of the variable.
#[test]
fn an_invalid_variable_is_named_zero_is_refused_and_a_typo_is_reported() {
    let scratch = Scratch::new();
    let output = scratch
        .command(&["migrate"])
        .env("WOWCHAT_DB_POOL_SIZE", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WOWCHAT_DB_POOL_SIZE"), "{stderr}");
    assert!(stderr.contains("at least 1"), "{stderr}");

    let output = scratch
        .command(&["migrate"])
        .env("WOWCHAT_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!output.status.success(), "an unknown log format is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("WOWCHAT_LOG_FORMAT"));

    // Any case is the same format; a misspelt variable is reported.
    let output = scratch
        .command(&["migrate"])
        .env("WOWCHAT_LOG_FORMAT", "JSON")
        .env("WOWCHAT_DB_POOL_SIZ", "8")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains("WOWCHAT_DB_POOL_SIZ "))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.starts_with('{'), "JSON logs: {warning}");
    assert!(
        warning.contains("did you mean WOWCHAT_DB_POOL_SIZE"),
        "{warning}"
    );
}

#[test]
fn a_secret_is_read_from_its_file_and_not_from_both() {
    let scratch = Scratch::new();
    let file = scratch.dir.join("database-url");
    std::fs::write(&file, format!("{}\n", scratch.database_url())).unwrap();
    let output = scratch
        .command(&["migrate"])
        .env_remove("WOWCHAT_DATABASE_URL")
        .env("WOWCHAT_DATABASE_URL_FILE", &file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let exists = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-tAc"])
        .arg(format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{}'",
            scratch.database
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&exists.stdout).trim(), "1");

    let both = scratch
        .command(&["migrate"])
        .env("WOWCHAT_DATABASE_URL_FILE", &file)
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("keep one"));
}

#[test]
fn production_refuses_developer_defaults() {
    let scratch = Scratch::new();
    let output = scratch
        .command(&["serve"])
        .env("WOWCHAT_ENVIRONMENT", "Production")
        .env("WOWCHAT_LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WOWCHAT_ENVIRONMENT=production refuses"),
        "{stderr}"
    );
    assert!(stderr.contains("WOWCHAT_JWT_PUBLIC_KEYS"), "{stderr}");
}
