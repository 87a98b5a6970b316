//! `wowchat-bench`: each scenario measured next to its ceiling in the same
//! run, on a fresh database and RabbitMQ names of its own; one table; a
//! non-zero exit when a target is missed.
//!
//! `cargo run --release -p wowchat-bench -- relay` (or `all`). Measure with
//! release builds only. `--quick` is a smoke run for CI: it checks that every
//! scenario works, and is too short to judge the targets, so it does not
//! enforce them.

#![deny(clippy::unwrap_used)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod email;
mod relay;
mod report;
mod scratch;

#[derive(Parser)]
#[command(
    name = "wowchat-bench",
    about = "Benchmarks of WowChat Users, each next to its ceiling"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Settings every scenario shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// A Postgres URL whose user may create databases; each scenario creates
    /// its own database there and drops it afterwards.
    #[arg(
        long,
        global = true,
        env = "WOWCHAT_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub database_url: String,
    /// RabbitMQ; each scenario uses names under a prefix of its own and
    /// deletes them afterwards.
    #[arg(
        long,
        global = true,
        env = "WOWCHAT_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub amqp_url: String,
    /// A short smoke run: every scenario works, targets are not enforced.
    #[arg(long, global = true)]
    pub quick: bool,
}

#[derive(Subcommand)]
enum Scenario {
    /// The outbox relay draining a backlog, next to a bare lapin publisher.
    Relay(relay::Args),
    /// InviteUser at a fixed rate, each email timed to the SMTP server's 250.
    Email(email::Args),
    /// Every scenario above, with its defaults.
    All,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    wowchat_platform::telemetry::init("pretty");
    let runs: Vec<(&str, anyhow::Result<report::Measurement>)> = match &cli.scenario {
        Scenario::Relay(args) => vec![("relay", relay::run(&cli.common, args).await)],
        Scenario::Email(args) => vec![("email", email::run(&cli.common, args).await)],
        Scenario::All => vec![
            (
                "relay",
                relay::run(&cli.common, &relay::Args::default()).await,
            ),
            (
                "email",
                email::run(&cli.common, &email::Args::default()).await,
            ),
        ],
    };
    let mut measurements = Vec::new();
    let mut broken = false;
    for (scenario, run) in runs {
        match run {
            Ok(measurement) => measurements.push(measurement),
            Err(err) => {
                eprintln!("{scenario}: {err:#}");
                broken = true;
            }
        }
    }
    print!("{}", report::table(&measurements, cli.common.quick));
    let missed = measurements.iter().any(|m| !m.passed());
    if broken || (missed && !cli.common.quick) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
