//! The service's Postgres: the pool and the migrations, embedded in the
//! binary and run at start under an advisory lock so replicas starting
//! together take turns. The plumbing is [`wowchat_platform::postgres`].

use deadpool_postgres::Pool;
use wowchat_platform::postgres::Schema;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The service's schema, in refinery's default history table.
pub const SCHEMA: Schema = Schema {
    variable: "WOWCHAT_DATABASE_URL",
    migrations: embedded::migrations::runner,
    // "wowchat-users migrations".
    lock: 0x7775_6d69_6772_6174,
    history_table: None,
};

pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    SCHEMA.pool(url, max_size)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    SCHEMA.ensure_database(url).await
}

/// Brings the schema up to date; safe when several replicas start at once.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    SCHEMA.migrate(url).await
}
