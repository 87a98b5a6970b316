//! The mailer's Postgres: the pool and the mailer's migrations, embedded in
//! the binary and run at start under an advisory lock so replicas starting
//! together take turns. The mailer keeps its own migration history table, so
//! it can share a database with the service without either one seeing the
//! other's history. The plumbing is [`wowchat_platform::postgres`].

use wowchat_platform::postgres::Schema;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Refinery's history table for the mailer's migrations.
pub const MIGRATION_TABLE: &str = "mailer_schema_history";

/// The mailer's schema: its own lock ("wowchat-mailer migrations", not the
/// service's, so the two never wait on each other) and history table.
pub const SCHEMA: Schema = Schema {
    variable: "WOWCHAT_MAILER_DATABASE_URL",
    migrations: embedded::migrations::runner,
    lock: 0x6d61_696c_6572_6d67,
    history_table: Some(MIGRATION_TABLE),
};
