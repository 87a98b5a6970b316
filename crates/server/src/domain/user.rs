//! Users: the record, its status, and the management actions on it.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::idempotency::IdempotencyKey;

named_enum! {
    #[derive(Serialize, Deserialize)]
    pub enum UserStatus {
        Active = "ACTIVE",
        Deactivated = "DEACTIVATED",
    }
}

/// A member of one workspace, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub status: UserStatus,
    pub deactivation_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
    /// When the user last signed in or made an authenticated call, to the
    /// minute; `None` for never. Not part of the version.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_active_at: Option<OffsetDateTime>,
    /// When the user's access ends by itself; `None`: never. From that
    /// moment every call of theirs is refused (USER_ACCESS_EXPIRED), and
    /// the expiry sweep deactivates them.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub access_expires_at: Option<OffsetDateTime>,
}

impl User {
    /// Whether the user's access has ended by `now` (their expiry passed).
    pub fn access_expired_at(&self, now: OffsetDateTime) -> bool {
        access_ended(self.access_expires_at, now)
    }

    /// The entity tag of this version of the user.
    pub fn etag(&self) -> String {
        super::etag(self.version)
    }

    /// The version an etag names; `None` for a malformed etag.
    pub fn version_of_etag(etag: &str) -> Option<i64> {
        super::version_of_etag(etag)
    }
}

/// Why the expiry sweep deactivated a user: extending their access
/// reactivates them (a deactivation for any other reason stays).
pub const ACCESS_EXPIRED_REASON: &str = "access expired";

/// The one rule of access expiry: access ends at the expiry itself.
pub fn access_ended(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

/// A password as typed by its owner: 8 to 128 characters. Never printed.
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(input: &str) -> Result<Self, String> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Password(SecretString::from(input.to_owned())))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// One management action of `ManageUser`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    UpdateProfile {
        display_name: Option<String>,
    },
    ChangeRole {
        role: String,
    },
    SetReportingTo {
        manager_id: Uuid,
    },
    ClearReportingTo,
    Deactivate {
        reason: String,
    },
    Reactivate,
    EndSessions,
    /// Sets (`Some`) or clears (`None`) when the user's access ends.
    SetAccessExpiry {
        expires_at: Option<OffsetDateTime>,
    },
}

/// A parsed `ManageUser` request.
#[derive(Debug, Clone)]
pub struct ManageUser {
    pub user_id: Uuid,
    pub expected_version: Option<i64>,
    pub idempotency: Option<IdempotencyKey>,
    pub action: UserAction,
}

/// A parsed `AcceptInvitation` request.
#[derive(Debug)]
pub struct AcceptInvitation {
    pub token: super::invitation::InvitationToken,
    pub display_name: String,
    pub password: Password,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_reject_garbage() {
        assert_eq!(User::version_of_etag("W/\"7\""), Some(7));
        assert_eq!(User::version_of_etag("7"), None);
        assert_eq!(User::version_of_etag("W/\"x\""), None);
    }

    #[test]
    fn passwords_are_bounded_and_redacted() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        let password = Password::parse("correct horse").expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
