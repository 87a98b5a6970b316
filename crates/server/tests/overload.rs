//! A flood of unauthenticated calls against the `wowchat-users` binary, run
//! as a process of its own so that its memory (`/proc/<pid>/status`) is the
//! server's alone, not the flooding client's. Its own test binary, so the
//! flood does not slow the other tests down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;
use wowchat_users_api::v1::{PreviewInvitationRequest, user_service_client::UserServiceClient};
use wowchat_users_testkit::processes::{Installation, Process, free_port, serving};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");
const CONNECTIONS: usize = 10;
const CALLS_PER_CONNECTION: usize = 500;
/// Each call carries this much: a server that took in every call of the
/// flood at once would hold 5,000 of them (over 300 MiB).
const TOKEN_BYTES: usize = 64 * 1024;

/// The server process with its own database, both gone afterwards.
struct Server {
    process: Process,
    port: u16,
    _installation: Installation,
}

impl Server {
    fn start() -> Server {
        let installation = Installation::new("overload", BINARY);
        let port = free_port();
        let mut command = installation.command(&["serve"]);
        command
            .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_HEALTH_INTERVAL_MS", "100")
            .env("WOWCHAT_LOG_FORMAT", "pretty")
            // A line per refused call would measure the logger, not the server.
            .env("RUST_LOG", "warn")
            .env_remove("WOWCHAT_MAX_CONCURRENT_REQUESTS")
            .env_remove("WOWCHAT_MAX_CONCURRENT_STREAMS")
            .env_remove("WOWCHAT_DB_POOL_SIZE");
        Server {
            process: Process::start_logged(&mut command),
            port,
            _installation: installation,
        }
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.address())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

async fn health(channel: Channel) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(response)) => Some(response.into_inner().status()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_unauthenticated_calls_leave_health_serving_and_memory_bounded() {
    let mut server = Server::start();
    serving(server.port, "").await;

    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(server.channel().await);
    }
    let call = |channel: Channel, n: usize| async move {
        let mut token = format!("not-a-token-{n}-");
        token.extend(std::iter::repeat_n('x', TOKEN_BYTES));
        UserServiceClient::new(channel)
            .preview_invitation(PreviewInvitationRequest { token })
            .await
    };
    // Warm up every connection, so the baseline holds what serving needs.
    for (n, channel) in channels.iter().enumerate() {
        let _ = call(channel.clone(), n).await;
    }
    let baseline = server.process.memory_kib("VmHWM");

    // The health probe keeps asking while the flood runs, as a kubelet would:
    // on a connection and a thread of its own, so the flooding client's busy
    // runtime does not delay it.
    let flooding = Arc::new(AtomicBool::new(true));
    let watcher = std::thread::spawn({
        let flooding = flooding.clone();
        let address = server.address();
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let probe = Channel::from_shared(address)
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut seen = Vec::new();
                while flooding.load(Ordering::Relaxed) {
                    seen.push(health(probe.clone()).await);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                seen
            })
        }
    });

    let started = Instant::now();
    let calls = channels.iter().flat_map(|channel| {
        (0..CALLS_PER_CONNECTION).map(move |n| tokio::spawn(call(channel.clone(), n)))
    });
    let results = futures::future::join_all(calls.collect::<Vec<_>>()).await;
    let flood_time = started.elapsed();
    // Health a little after, too: a replica must not stay dark.
    tokio::time::sleep(Duration::from_millis(500)).await;
    flooding.store(false, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let peak = server.process.memory_kib("VmHWM");

    let mut shed = 0;
    let mut answered = 0;
    for result in results {
        match result.unwrap() {
            Ok(_) => answered += 1,
            Err(status) => match status.code() {
                // Unknown tokens, or refused at once.
                Code::NotFound | Code::InvalidArgument | Code::FailedPrecondition => answered += 1,
                Code::ResourceExhausted => {
                    assert!(
                        status.get_details_retry_info().is_some(),
                        "a refusal says when to retry: {status:?}"
                    );
                    shed += 1;
                }
                _ => panic!("a flooded call must be answered or refused at once, got {status:?}"),
            },
        }
    }
    server.process.kill();
    let logs = server.process.logs();
    eprintln!(
        "{} calls in {flood_time:?}: {answered} answered, {shed} refused; peak RSS {} MiB -> {} MiB",
        CONNECTIONS * CALLS_PER_CONNECTION,
        baseline / 1024,
        peak / 1024
    );

    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| *s == Some(ServingStatus::Serving)),
        "health left SERVING during the flood: {seen:?}\n{logs}"
    );
    // Taking in the whole flood at once grows a server by 50 MiB and more.
    assert!(
        peak.saturating_sub(baseline) < 32 * 1024,
        "the flood grew the server by {} MiB (from {} MiB)",
        peak.saturating_sub(baseline) / 1024,
        baseline / 1024
    );
    assert!(
        shed > 0,
        "the flood exceeded the concurrency limit, so some calls were refused"
    );
}
