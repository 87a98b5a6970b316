//! The `wowchat-gateway` binary: serve (default) the REST gateway in front
//! of the gRPC service, or print the OpenAPI document (`openapi`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use wowchat_gateway::{Gateway, GatewaySettings, openapi, routes::Routes};
use wowchat_platform::environment;
use wowchat_platform::telemetry;

#[derive(Parser)]
#[command(name = "wowchat-gateway", version, about = "WowChat Users REST gateway")]
struct Cli {
    #[command(flatten)]
    settings: GatewaySettings,
    /// `pretty` or `json`; the level from `RUST_LOG` (default `info`).
    #[arg(long, env = "WOWCHAT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"], ignore_case = true)]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve REST and forward each call to the gRPC service (the default).
    Serve,
    /// Print the OpenAPI 3.1 document of the routes (what `docs/openapi.json` holds).
    Openapi,
}

fn main() -> anyhow::Result<()> {
    // Before the runtime: no other thread may read the environment meanwhile.
    environment::read_secret_files(environment::SECRETS)?;
    let (cli, warnings) = environment::parse::<Cli>(&[], environment::SECRETS);
    wowchat_platform::runtime::multi_thread()?.block_on(run(cli, warnings))
}

async fn run(cli: Cli, warnings: Vec<String>) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = telemetry::init(&cli.log_format, "wowchat-gateway");
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            let deadline = cli.settings.gateway_shutdown.deadline();
            let served = match Gateway::build(cli.settings).await {
                Ok(gateway) => gateway.run_until_stopped(shutdown_signal(deadline)).await,
                Err(error) => Err(error),
            };
            telemetry.shutdown().await;
            served
        }
        Command::Openapi => {
            let pool =
                prost_reflect::DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET)
                    .context("decoding the descriptor set")?;
            let routes = Routes::from_pool(&pool)?;
            let document = openapi::document_json(&pool, &routes)?;
            use std::io::Write;
            std::io::stdout().write_all(&document)?;
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM; past the shutdown delay, the drain
/// and a margin, the process exits whatever is still open.
async fn shutdown_signal(deadline: std::time::Duration) {
    wowchat_platform::shutdown::signal().await;
    tracing::info!("shutdown requested");
    wowchat_platform::shutdown::exit_after(deadline);
}
