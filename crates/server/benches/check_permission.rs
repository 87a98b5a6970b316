//! How fast `CheckPermission` answers, next to a baseline in the same run.
//!
//! Both calls go through a real gRPC client to a real server on the local
//! Postgres (the test kit's; `TEST_DATABASE_URL` to point elsewhere). The
//! baseline is `GetUser` by the same caller: the same authentication plus
//! one primary-key read. `CheckPermission` reads the subject's standing
//! (status + role joined with the custom role's permissions) from the
//! replica's caller cache once it is warm, so it should cost no more than
//! `GetUser` (ratio ≤ 1). The run also measures both under load (64 calls
//! in flight) and prints the ratios at the end.
//!
//! Run: `cargo bench -p wowchat-users-server --bench check_permission`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use futures::future::join_all;
use tonic::transport::Channel;
use wowchat_users_api::v1::{
    self as proto, role_service_client::RoleServiceClient, user_service_client::UserServiceClient,
};
use wowchat_users_testkit::{TestApp, authed};

/// Calls in flight at once in the "under load" measurements.
const IN_FLIGHT: usize = 64;

struct Fixture {
    app: TestApp,
    channel: Channel,
    /// A service user whose custom role grants `users.read`.
    service_token: String,
    /// The user asked about: a holder of a custom role.
    subject_id: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let channel = app.channel().await;
    let mut roles = RoleServiceClient::new(channel.clone());
    for (name, permissions) in [
        ("permission-checker", vec!["users.read"]),
        ("reviewer", vec!["reports.read", "conversations.read"]),
    ] {
        roles
            .create_role(authed(
                &app.owner_token,
                proto::CreateRoleRequest {
                    name: name.into(),
                    permissions: permissions.into_iter().map(Into::into).collect(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("creates the role");
    }
    let (_, service_token) = app
        .member("checker@example.com", "permission-checker")
        .await;
    let (subject, _) = app.member("reviewer@example.com", "reviewer").await;
    Fixture {
        app,
        channel,
        service_token,
        subject_id: subject.id,
    }
}

async fn check_permission(f: &Fixture) {
    let allowed = RoleServiceClient::new(f.channel.clone())
        .check_permission(authed(
            &f.service_token,
            proto::CheckPermissionRequest {
                user_id: f.subject_id.clone(),
                permission: "reports.read".into(),
            },
        ))
        .await
        .expect("CheckPermission succeeds")
        .into_inner()
        .allowed;
    assert!(allowed);
}

async fn get_user(f: &Fixture) {
    UserServiceClient::new(f.channel.clone())
        .get_user(authed(
            &f.service_token,
            proto::GetUserRequest {
                user_id: f.subject_id.clone(),
            },
        ))
        .await
        .expect("GetUser succeeds");
}

/// Runs `call` `times` times, `in_flight` at once; the total time.
async fn run<'a, F, Fut>(times: u64, in_flight: usize, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let start = Instant::now();
    let mut left = times;
    while left > 0 {
        let batch = left.min(in_flight as u64);
        join_all((0..batch).map(|_| call())).await;
        left -= batch;
    }
    start.elapsed()
}

/// Median time per call of `rounds` rounds of `per_round` calls each.
async fn median_per_call<'a, F, Fut>(in_flight: usize, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let (rounds, per_round) = (15, 256u64);
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        samples.push(run(per_round, in_flight, &call).await / per_round as u32);
    }
    samples.sort();
    samples[rounds / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut fixture = runtime.block_on(fixture());
    // Warm the connection pool's statement caches.
    runtime.block_on(async {
        run(500, IN_FLIGHT, || check_permission(&fixture)).await;
        run(500, IN_FLIGHT, || get_user(&fixture)).await;
    });

    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    {
        let f = &fixture;
        let mut group = criterion.benchmark_group("permission");
        group.bench_function("CheckPermission", |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, 1, || check_permission(f))))
        });
        group.bench_function("GetUser (baseline)", |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, 1, || get_user(f))))
        });
        group.bench_function(format!("CheckPermission x{IN_FLIGHT} in flight"), |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, IN_FLIGHT, || check_permission(f))))
        });
        group.bench_function(format!("GetUser (baseline) x{IN_FLIGHT} in flight"), |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, IN_FLIGHT, || get_user(f))))
        });
        group.finish();
    }
    criterion.final_summary();

    // The ratios, measured again side by side so they can be printed.
    let f = &fixture;
    runtime.block_on(async {
        for in_flight in [1, IN_FLIGHT] {
            let check = median_per_call(in_flight, || check_permission(f)).await;
            let baseline = median_per_call(in_flight, || get_user(f)).await;
            println!(
                "{in_flight:>3} in flight: CheckPermission {check:?}/call, GetUser {baseline:?}/call, \
                 ratio {:.2}",
                check.as_secs_f64() / baseline.as_secs_f64()
            );
        }
    });
    runtime.block_on(fixture.app.stop());
}
