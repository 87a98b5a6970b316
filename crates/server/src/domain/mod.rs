//! The domain: parsed values that cannot hold invalid data, the rules between
//! them, and the one error type every operation returns. Nothing here knows
//! about gRPC or SQL.

/// A fieldless, copyable enum whose variants each have one name, declared
/// once: `ALL` in declaration order, and `as_str` and `parse` from that one
/// table, so the two directions cannot drift apart.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant of that name, if there is one.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The variant a column holds; another value is a broken row.
            pub fn from_db(value: &str) -> anyhow::Result<Self> {
                Self::parse(value).ok_or_else(|| {
                    anyhow::anyhow!(concat!("unknown ", stringify!($name), " {:?}"), value)
                })
            }
        }
    };
}

pub mod activity;
pub mod directory;
pub mod email;
pub mod error;
pub mod idempotency;
pub mod invitation;
pub mod joining;
pub mod locale;
pub mod mail_domain;
pub mod pagination;
pub mod permission;
pub mod secret;
pub mod suppression;
pub mod text;
pub mod user;
pub mod workspace;

pub use email::EmailAddress;

/// The weak entity tag of a record's version (AIP-154): `W/"7"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version an etag names; `None` for a malformed etag.
pub fn version_of_etag(etag: &str) -> Option<i64> {
    etag.strip_prefix("W/\"")?.strip_suffix('"')?.parse().ok()
}
pub use error::{Error, FieldViolation, Reason, Violations};
