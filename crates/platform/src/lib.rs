//! Operational plumbing shared by the WowChat deployables (the Users service
//! and the mailer worker), written once so both behave the same way:
//!
//! - [`secret`] — [`Secret`], a string (a URL with a password) never printed.
//! - [`telemetry`] — the process's log subscriber, and the filter that keeps
//!   the AMQP client from logging message bodies; the log format setting
//!   ([`telemetry::LogArgs`]) and a binary's work run under the subscriber
//!   ([`telemetry::run_logged`]).
//! - [`postgres`] — the connection pool, creating the database when missing,
//!   and running a crate's embedded migrations under an advisory lock
//!   ([`postgres::Schema`]); TLS (rustls) as the URL's `sslmode` asks; the
//!   health probe's `SELECT 1` ([`postgres::reachable`]).
//! - [`statements`] — how every query reaches Postgres: prepared and cached
//!   per connection, or unnamed for a transaction-pooling PgBouncer.
//! - [`amqp`] — connecting to RabbitMQ, declaring the shared exchanges, and
//!   the header and queue-argument values both sides build.
//! - [`backoff`] — [`Backoff`], the exponential delay between reconnects
//!   (and retries).
//! - [`metrics`] — the process's Prometheus recorder, its HTTP endpoint,
//!   and the Postgres pool gauges and checkout timing.
//! - [`runtime`] — the Tokio runtime the binaries run on.
//!
//! What is specific to one deployable (its migrations, its queues, its
//! settings) stays in that deployable; the functions here take it as input,
//! including the name of the variable a URL came from, so their errors can
//! point at the setting without quoting its value.

pub mod amqp;
pub mod backoff;
pub mod environment;
pub mod metrics;
pub mod postgres;
pub mod runtime;
pub mod sealing;
pub mod secret;
pub mod shutdown;
pub mod statements;
pub mod telemetry;

pub use backoff::Backoff;
pub use secret::Secret;
