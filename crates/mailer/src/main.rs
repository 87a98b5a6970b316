//! The `wowchat-mailer` binary: run the worker (default), or only migrate.

use clap::{Parser, Subcommand};
use wowchat_mailer::{Mailer, MailerSettings, db, telemetry};
use wowchat_platform::environment;

#[derive(Parser)]
#[command(
    name = "wowchat-mailer",
    version,
    about = "WowChat mailer worker: sends the emails the WowChat Users service asks for"
)]
struct Cli {
    #[command(flatten)]
    settings: MailerSettings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume mail commands and send emails (the default).
    Run,
    /// Create the database if needed and apply the mailer's migrations, then exit.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    // Before the runtime: no other thread may read the environment meanwhile.
    environment::read_secret_files(environment::SECRETS)?;
    let (cli, warnings) = environment::parse::<Cli>(&[], environment::SECRETS);
    let format = cli.settings.log.log_format.clone();
    wowchat_platform::runtime::multi_thread()?.block_on(telemetry::run_logged(
        &format,
        "wowchat-mailer",
        warnings,
        execute(cli),
    ))
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let mailer = Mailer::build(settings).await?;
            mailer.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            db::SCHEMA
                .create_and_migrate(settings.database.direct_url().expose())
                .await
        }
    }
}

/// Completes on Ctrl-C or SIGTERM; the process then has 30 seconds to finish.
async fn shutdown_signal() {
    wowchat_platform::shutdown::signal().await;
    tracing::info!("shutdown requested: finishing the commands in flight");
    wowchat_platform::shutdown::exit_after(std::time::Duration::from_secs(30));
}
