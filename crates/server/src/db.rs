//! The service's Postgres: the pool and the migrations, embedded in the
//! binary and run at start under an advisory lock so replicas starting
//! together take turns. The plumbing is [`wowchat_platform::postgres`].

use deadpool_postgres::Pool;
use wowchat_platform::postgres;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Where the database URL comes from, as errors name it.
const DATABASE_URL: &str = "WOWCHAT_DATABASE_URL";

/// Any constant both replicas agree on: "wowchat-users migrations".
const MIGRATION_LOCK: i64 = 0x7775_6d69_6772_6174;

pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    postgres::pool(url, max_size, DATABASE_URL)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    postgres::ensure_database(url, DATABASE_URL).await
}

/// Brings the schema up to date; safe when several replicas start at once.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    postgres::migrate(
        url,
        DATABASE_URL,
        embedded::migrations::runner(),
        MIGRATION_LOCK,
        None,
    )
    .await
}
