//! End-to-end tests: the real server on a free port, a fresh Postgres
//! database per test, called through the generated gRPC client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod authentication;
mod caller_cache;
mod flow;
mod health;
mod invitation_policy;
mod invitations;
mod mail;
mod manage;
mod overload;
mod postgres_tls;
mod relay;
mod retention;
mod roles;
mod sign_in;
mod startup;
mod support;
mod validation;
