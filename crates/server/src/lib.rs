//! WowChat Users: the gRPC service that invites people to a workspace, lets
//! them accept, and manages them.
//!
//! A request flows `grpc` (transport: authenticate, parse, convert) →
//! `operations` (permission checks and domain rules, one transaction each) →
//! `store` (SQL). `domain` holds the parsed values and the one error type;
//! `auth` the JWTs, callers and password hashing; `wire` turns domain
//! records into protobuf messages; `events` what is written to the outbox. `startup` builds the server, `db` the pool and migrations.
//! The plumbing shared with the mailer (secrets, logging, Postgres, RabbitMQ)
//! is `wowchat_platform`.

pub mod auth;
pub mod config;
pub mod db;
pub mod dns;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod messaging;
pub mod operations;
pub mod retention;
pub mod startup;
pub mod store;
pub mod wire;

/// Logging, shared with the mailer (`without_payloads` included).
pub use wowchat_platform::telemetry;
