//! The WowChat mailer worker: consumes the mail commands the service puts on
//! RabbitMQ, sends their emails over SMTP (or writes them as `.eml` files
//! when no SMTP server is configured), never sends one command twice, and
//! publishes the delivery result back as an event.
//!
//! - [`config`] — the settings (flags and `WOWCHAT_*` variables) and their
//!   parsed form; secrets that cannot be printed.
//! - [`startup`] — [`Mailer`], its build and its reconnect loop.
//! - [`amqp`] — declaring the mailer's topology, publishing results.
//! - `worker` — one command from delivery to ack, retries included.
//! - [`render`] — what the emails say (minijinja templates).
//! - `headers` — header values that show what was typed (encoded-word look-alikes).
//! - [`transport`] — how they leave (SMTP or files), and which failures are transient.
//! - `store` — the dedupe table that makes redelivery safe.
//! - [`db`] — the Postgres pool and the mailer's migrations.
//! - `metrics` and `health` — its Prometheus series, and the gRPC health
//!   endpoint that turns NOT_SERVING without RabbitMQ or Postgres.
//! - [`telemetry`] — logging.
//!
//! The plumbing shared with the service (secrets, logging, Postgres and
//! RabbitMQ connections, backoff) is [`wowchat_platform`].

pub mod amqp;
pub mod config;
pub mod db;
mod headers;
mod health;
mod metrics;
pub mod render;
pub mod startup;
mod store;
pub mod transport;
mod worker;

pub use config::{MailerSettings, Secret};
pub use startup::Mailer;
/// Logging, shared with the service.
pub use wowchat_platform::telemetry;
