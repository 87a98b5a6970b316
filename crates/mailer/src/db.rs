//! The mailer's Postgres: the pool and the mailer's migrations, embedded in
//! the binary and run at start under an advisory lock so replicas starting
//! together take turns. The mailer keeps its own migration history table, so
//! it can share a database with the service without either one seeing the
//! other's history. The plumbing is [`wowchat_platform::postgres`].

use deadpool_postgres::Pool;
use wowchat_platform::postgres;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Where the database URL comes from, as errors name it.
const DATABASE_URL: &str = "WOWCHAT_MAILER_DATABASE_URL";

/// Refinery's history table for the mailer's migrations.
pub const MIGRATION_TABLE: &str = "mailer_schema_history";

/// Any constant every replica agrees on: "wowchat-mailer migrations" (not the
/// service's, so the two never wait on each other).
const MIGRATION_LOCK: i64 = 0x6d61_696c_6572_6d67;

pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    postgres::pool(url, max_size, DATABASE_URL)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    postgres::ensure_database(url, DATABASE_URL).await
}

/// Brings the mailer's tables up to date; safe when several replicas start at once.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    postgres::migrate(
        url,
        DATABASE_URL,
        embedded::migrations::runner(),
        MIGRATION_LOCK,
        Some(MIGRATION_TABLE),
    )
    .await
}
