//! Who is calling: bearer JWTs verified against configured keys, the caller's
//! current role and status (read from Postgres, or from the replica's cache
//! that Postgres notifications invalidate), and password hashing.

pub mod cache;
pub mod caller;
pub mod invalidation;
pub mod jwt;
pub mod password;

pub use cache::CallerCache;
pub use caller::Caller;
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
