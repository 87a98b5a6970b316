//! The two sign-in failures a guesser can tell apart only by time: an unknown
//! email and a wrong password. Both go through the real server (gRPC, Postgres,
//! argon2id) of the test kit, with the attempt limits off. Criterion measures
//! each; then both are sampled interleaved in the same run and the ratio of
//! their medians is printed, and must stay within 20%.
//!
//! `cargo bench -p wowchat-users-server --bench sign_in` (needs the local
//! Postgres, like the tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use tonic::{Code, transport::Channel};
use wowchat_users_api::v1::{self as proto, auth_service_client::AuthServiceClient};
use wowchat_users_testkit::{PASSWORD, TestApp};

const MEMBER: &str = "owner@example.com";
const STRANGER: &str = "nobody@example.com";
const WRONG: &str = "not the right password";
/// Interleaved pairs sampled for the medians.
const PAIRS: usize = 60;
/// The most the slower median may exceed the faster one by.
const TOLERANCE: f64 = 1.20;

async fn fail(client: &mut AuthServiceClient<Channel>, workspace_id: &str, email: &str) {
    let status = client
        .sign_in(proto::SignInRequest {
            workspace_id: workspace_id.to_owned(),
            email: email.to_owned(),
            password: WRONG.to_owned(),
        })
        .await
        .expect_err("a wrong credential fails");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let app = runtime.block_on(TestApp::spawn_with(|settings| {
        settings.sign_in_per_email_per_minute = 0;
        settings.sign_in_per_address_per_minute = 0;
    }));
    let workspace_id = app.workspace_id.to_string();
    let mut client = runtime.block_on(async { AuthServiceClient::new(app.channel().await) });
    // The member exists and their password is what the test kit set.
    runtime
        .block_on(client.sign_in(proto::SignInRequest {
            workspace_id: workspace_id.clone(),
            email: MEMBER.into(),
            password: PASSWORD.into(),
        }))
        .expect("the member signs in");

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let mut group = criterion.benchmark_group("sign_in_failure");
    group.bench_function("unknown_email", |b| {
        b.iter(|| runtime.block_on(fail(&mut client, &workspace_id, STRANGER)))
    });
    group.bench_function("wrong_password", |b| {
        b.iter(|| runtime.block_on(fail(&mut client, &workspace_id, MEMBER)))
    });
    group.finish();
    criterion.final_summary();

    // Both in the same run, interleaved (alternating which goes first), so
    // drift of the machine affects both alike.
    let mut unknown = Vec::with_capacity(PAIRS);
    let mut wrong = Vec::with_capacity(PAIRS);
    for pair in 0..PAIRS {
        let order = if pair % 2 == 0 {
            [STRANGER, MEMBER]
        } else {
            [MEMBER, STRANGER]
        };
        for email in order {
            let start = Instant::now();
            runtime.block_on(fail(&mut client, &workspace_id, email));
            let took = start.elapsed();
            if email == STRANGER {
                unknown.push(took);
            } else {
                wrong.push(took);
            }
        }
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    let spread = ratio.max(1.0 / ratio);
    println!(
        "sign-in failure medians over {PAIRS} interleaved pairs: unknown email {unknown:?}, \
         wrong password {wrong:?}; ratio unknown/wrong = {ratio:.3} (limit {TOLERANCE:.2})"
    );
    drop(client);
    drop(app);
    assert!(
        spread <= TOLERANCE,
        "the medians differ by more than 20%: ratio {ratio:.3}"
    );
}
