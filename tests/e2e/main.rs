//! End-to-end tests: the real server on a free port, a fresh Postgres
//! database per test, called through the generated gRPC client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod accept_page;
mod access_expiry;
mod activity;
mod authentication;
mod caller_cache;
mod domains;
mod edge;
mod email_rendering;
mod failover;
mod flow;
mod grpc_tls;
mod health;
mod invitation_policy;
mod invitations;
mod invite_links;
mod join_requests;
mod list_users;
mod locales;
mod mail;
mod manage_actions;
mod manage_permissions;
mod manage_retries;
mod manage_rules;
mod metrics;
mod overload;
mod partitions;
mod postgres_tls;
mod relay;
mod rest;
mod retention;
mod roles;
mod scim;
mod sessions;
mod shared_limits;
mod sign_in;
mod startup;
mod support;
mod suppression;
mod traces;
mod trickle;
mod validation;
