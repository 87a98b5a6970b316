//! Who is calling: bearer JWTs verified against configured keys, the caller's
//! current role and status read from Postgres on every call, and password
//! hashing.

pub mod caller;
pub mod jwt;
pub mod password;

pub use caller::Caller;
pub use jwt::JwtKeys;
pub use password::PasswordHasher;
