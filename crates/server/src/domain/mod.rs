//! The domain: parsed values that cannot hold invalid data, the rules between
//! them, and the one error type every operation returns. Nothing here knows
//! about gRPC or SQL.

pub mod activity;
pub mod email;
pub mod error;
pub mod idempotency;
pub mod invitation;
pub mod pagination;
pub mod permission;
pub mod text;
pub mod user;
pub mod workspace;

pub use email::EmailAddress;
pub use error::{Error, FieldViolation, Reason, Violations};
