//! `wowchat-bench`: each scenario measured next to its ceiling in the same
//! run, on a fresh database and RabbitMQ names of its own; one table; a
//! non-zero exit when a target is missed.
//!
//! `cargo run --release -p wowchat-bench -- all` (or one scenario: `relay`,
//! `invite`, `reads`, `list`, `storm`, `email`, `scim`). Measure with release builds only. `--quick` is a smoke run for CI: it checks that every
//! scenario works, and is too short to judge the targets, so it does not
//! enforce them.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

mod activity;
mod email;
mod invite;
mod list;
mod listing;
mod load;
mod pgbench;
mod reads;
mod relay;
mod report;
mod scim;
mod scratch;
mod service;
mod storm;

#[derive(Parser)]
#[command(name = "wowchat-bench", about = "Benchmarks of WowChat Users, each next to its ceiling")]
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
    /// Seconds each measurement of calls lasts; 10 by default, 1 with --quick.
    #[arg(long, global = true)]
    pub seconds: Option<u64>,
    /// The `wowchat-users` binary to start; by default the one of this build
    /// profile, built by cargo first when run under `cargo run`.
    #[arg(long, global = true, env = "WOWCHAT_BENCH_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,
}

impl Common {
    /// How `in_flight` calls are measured in this run.
    pub fn run(&self, in_flight: usize) -> load::Run {
        let default = if self.quick { 1 } else { 10 };
        load::Run {
            in_flight,
            warm_up: Duration::from_millis(if self.quick { 200 } else { 1000 }),
            duration: Duration::from_secs(self.seconds.unwrap_or(default).max(1)),
        }
    }
}

#[derive(Subcommand)]
enum Scenario {
    /// The outbox relay draining a backlog, next to a bare lapin publisher.
    Relay(relay::Args),
    /// InviteUser over 16 workspaces and within one, next to pgbench of the
    /// minimal transaction.
    Invite,
    /// CheckPermission next to a no-op gRPC method, GetUser next to pgbench
    /// of a primary-key select.
    Reads,
    /// ListUsers at 100,000 users in one workspace.
    List(list::Args),
    /// ListActivity at 10,000,000 entries in one workspace.
    Activity(activity::Args),
    /// ListUsers while 50 AcceptInvitation hash passwords, next to idle.
    Storm,
    /// InviteUser at a fixed rate, each email timed to the SMTP server's 250.
    Email(email::Args),
    /// SCIM creates next to InviteUser through the gateway; the userName
    /// lookup at 100,000 members.
    Scim,
    /// Every scenario above, with its defaults.
    All,
    /// The no-op gRPC server the `reads` scenario starts as its ceiling.
    #[command(hide = true)]
    NoopServer {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// Each scenario's rows, or why it could not run.
type Runs = Vec<(&'static str, anyhow::Result<Vec<report::Measurement>>)>;

async fn run(common: &Common, scenario: &Scenario) -> Runs {
    let one = |m: report::Measurement| vec![m];
    match scenario {
        Scenario::Relay(args) => vec![("relay", relay::run(common, args).await.map(one))],
        Scenario::Invite => vec![("invite", invite::run(common).await)],
        Scenario::Reads => vec![("reads", reads::run(common).await)],
        Scenario::List(args) => vec![("list", list::run(common, args).await)],
        Scenario::Activity(args) => vec![("activity", activity::run(common, args).await)],
        Scenario::Storm => vec![("storm", storm::run(common).await)],
        Scenario::Email(args) => vec![("email", email::run(common, args).await.map(one))],
        Scenario::Scim => vec![("scim", scim::run(common).await)],
        Scenario::All => {
            let mut runs = Vec::new();
            for scenario in [
                Scenario::Relay(relay::Args::default()),
                Scenario::Invite,
                Scenario::Reads,
                Scenario::List(list::Args::default()),
                Scenario::Activity(activity::Args::default()),
                Scenario::Storm,
                Scenario::Email(email::Args::default()),
                Scenario::Scim,
            ] {
                runs.extend(Box::pin(run(common, &scenario)).await);
            }
            runs
        }
        Scenario::NoopServer { .. } => Vec::new(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs only: the benchmark's own spans are not worth flushing at exit.
    let _telemetry = wowchat_platform::telemetry::init("pretty", "wowchat-bench");
    if let Scenario::NoopServer { listen } = cli.scenario {
        return match service::serve_noop(listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut measurements = Vec::new();
    let mut broken = false;
    for (scenario, run) in run(&cli.common, &cli.scenario).await {
        match run {
            Ok(rows) => measurements.extend(rows),
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
