//! The Postgres pool and the mailer's migrations, embedded in the binary and
//! run at start under an advisory lock so replicas starting together take
//! turns. The mailer keeps its own migration history table, so it can share a
//! database with the service without either one seeing the other's history.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, error::SqlState};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Refinery's history table for the mailer's migrations.
pub const MIGRATION_TABLE: &str = "mailer_schema_history";

/// Any constant every replica agrees on: "wowchat-mailer migrations" (not the
/// service's, so the two never wait on each other).
const MIGRATION_LOCK: i64 = 0x6d61_696c_6572_6d67;

fn parse(url: &str) -> anyhow::Result<tokio_postgres::Config> {
    // The parser's message could quote the URL; keep only our own words.
    url.parse()
        .ok()
        .context("WOWCHAT_MAILER_DATABASE_URL is not a Postgres URL")
}

pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    let config = parse(url)?;
    // Verified recycling: a connection Postgres dropped is replaced, not handed out.
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .context("building the Postgres pool")
}

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    Ok(client)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let config = parse(url)?;
    match connect(&config).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            let name = config
                .get_dbname()
                .context("the database URL names no database")?
                .to_owned();
            let mut admin = config.clone();
            admin.dbname("postgres");
            let client = connect(&admin)
                .await
                .context("connecting to create the database")?;
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match client
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await
            {
                Ok(()) => {
                    tracing::info!(database = %name, "created the database");
                    Ok(())
                }
                // Another replica (or the service) created it first.
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
                Err(e) => Err(e).context("creating the database"),
            }
        }
        Err(e) => Err(e).context("connecting to Postgres"),
    }
}

/// Brings the mailer's tables up to date; safe when several replicas start at once.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let config = parse(url)?;
    let mut client = connect(&config)
        .await
        .context("connecting to Postgres to migrate")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(MIGRATION_TABLE);
    let report = runner.run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .context("releasing the migration lock")?;
    let report = report.context("running migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}
