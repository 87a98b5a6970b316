//! Postgres: the connection pool, creating the database when it does not
//! exist, and bringing a schema up to date with a crate's embedded refinery
//! migrations under an advisory lock, so replicas starting together take
//! turns.
//!
//! The URL holds a password: errors name the variable it came from
//! (`variable`, e.g. `WOWCHAT_DATABASE_URL`), never the URL itself.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use refinery::Runner;
use tokio_postgres::{NoTls, error::SqlState};

/// Longest wait for a pooled connection: to get one, open one, or recycle one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

fn parse(url: &str, variable: &str) -> anyhow::Result<tokio_postgres::Config> {
    // The parser's message could quote the URL; keep only our own words.
    url.parse()
        .ok()
        .with_context(|| format!("{variable} is not a Postgres URL"))
}

/// A pool of at most `max_size` connections to `url` (read from `variable`).
pub fn pool(url: &str, max_size: usize, variable: &str) -> anyhow::Result<Pool> {
    let config = parse(url, variable)?;
    // Fast recycling: a connection whose socket closed (Postgres restarted or
    // dropped it) is replaced, and a healthy one costs no verification query
    // per checkout; a query on a connection that died silently fails as
    // UNAVAILABLE and closes it, so the next checkout replaces it.
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()
        .context("building the Postgres pool")
}

/// One connection outside the pool, driven on its own task.
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

/// Creates the database named in `url` (read from `variable`) when it does
/// not exist yet; one created meanwhile by someone else is fine.
pub async fn ensure_database(url: &str, variable: &str) -> anyhow::Result<()> {
    let config = parse(url, variable)?;
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
                // Another replica (or the other deployable) created it first;
                // a racing create can also surface as a catalog unique violation.
                Err(e)
                    if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                        || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                {
                    Ok(())
                }
                Err(e) => Err(e).context("creating the database"),
            }
        }
        Err(e) => Err(e).context("connecting to Postgres"),
    }
}

/// Runs `runner` (a crate's `refinery::embed_migrations!` runner) against
/// `url` (read from `variable`) while holding the advisory lock `lock_key`,
/// so replicas starting at once take turns. Deployables sharing a database
/// each pass their own `lock_key` and `history_table` (refinery's default
/// table when `None`), so neither waits on nor sees the other's history.
pub async fn migrate(
    url: &str,
    variable: &str,
    mut runner: Runner,
    lock_key: i64,
    history_table: Option<&str>,
) -> anyhow::Result<()> {
    let config = parse(url, variable)?;
    let mut client = connect(&config)
        .await
        .context("connecting to Postgres to migrate")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await
        .context("taking the migration lock")?;
    if let Some(table) = history_table {
        runner.set_migration_table_name(table);
    }
    let report = runner.run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await
        .context("releasing the migration lock")?;
    let report = report.context("running migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_url_is_reported_by_its_variable_without_its_text() {
        let error =
            pool("nonsense://user:hunter2@", 1, "WOWCHAT_DATABASE_URL").expect_err("rejected");
        let error = format!("{error:#}");
        assert!(error.contains("WOWCHAT_DATABASE_URL"));
        assert!(!error.contains("hunter2"));
    }
}
