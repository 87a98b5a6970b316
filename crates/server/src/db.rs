//! The service's Postgres: the pool and the migrations, embedded in the
//! binary and run at start under an advisory lock so replicas starting
//! together take turns. The plumbing is [`wowchat_platform::postgres`].

use wowchat_platform::postgres::Schema;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The service's schema, in refinery's default history table: its pool
/// (`SCHEMA.pool`), `ensure_database` and `migrate` (safe when several
/// replicas start at once).
pub const SCHEMA: Schema = Schema {
    variable: "WOWCHAT_DATABASE_URL",
    migrations: embedded::migrations::runner,
    // "wowchat-users migrations".
    lock: 0x7775_6d69_6772_6174,
    history_table: None,
};
