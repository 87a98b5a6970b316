//! The ways in besides a personal invitation: invite links a team shares,
//! and requests to join an administrator approves. Both end in an ordinary
//! invitation to a proved address.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    EmailAddress,
    idempotency::IdempotencyKey,
    invitation::TokenHash,
    pagination::{Cursor, Listed},
    secret::Secret,
};

/// The secret of an invite link: `wclink_` and 32 random bytes (base64url).
/// The prefix lets secret scanners find a leaked one.
#[derive(Debug)]
pub struct LinkSecret(Secret);

impl LinkSecret {
    const PREFIX: &'static str = "wclink_";

    pub fn generate() -> Self {
        LinkSecret(Secret::generate(Self::PREFIX))
    }

    /// Anything shaped like a link secret; whether it works is for the
    /// store to say.
    pub fn parse(input: &str) -> Option<Self> {
        Secret::parse(input.trim(), Self::PREFIX).map(LinkSecret)
    }

    /// The SHA-256 of the secret, the only form the database holds.
    pub fn hash(&self) -> TokenHash {
        TokenHash(self.0.sha256())
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

named_enum! {
    #[derive(Serialize, Deserialize)]
    pub enum InviteLinkState {
        Active = "ACTIVE",
        Expired = "EXPIRED",
        Revoked = "REVOKED",
        Exhausted = "EXHAUSTED",
    }
}

/// An invite link as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteLink {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub creator_id: Uuid,
    pub requires_approval: bool,
    pub max_uses: i32,
    pub use_count: i32,
    pub state: InviteLinkState,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Listed for InviteLink {
    fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

/// What an invite link is created with.
#[derive(Debug, Clone)]
pub struct NewInviteLink {
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub valid_for: Duration,
    pub max_uses: i32,
    pub requires_approval: bool,
    pub idempotency: Option<IdempotencyKey>,
}

/// How many invitations one link may make.
pub struct LinkUses;

impl LinkUses {
    pub const DEFAULT: i32 = 25;
    pub const MAX: i32 = 1_000;

    /// The default for 0; otherwise `requested`, if from 1 to [`Self::MAX`].
    pub fn parse(requested: i32) -> Result<i32, String> {
        match requested {
            0 => Ok(Self::DEFAULT),
            1..=Self::MAX => Ok(requested),
            _ => Err(format!("must be from 1 to {}", Self::MAX)),
        }
    }
}

/// A link's creation answered: the link and its secret, shown this once.
/// Serialized for idempotent retries, which answer the same secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedLink {
    pub link: InviteLink,
    pub secret: String,
}

/// A redemption of a link by someone holding its secret.
#[derive(Debug)]
pub struct Redemption {
    pub secret: LinkSecret,
    pub email: EmailAddress,
    /// For a link that requires approval: what the administrators see.
    pub display_name: String,
    pub message: String,
}

named_enum! {
    #[derive(Serialize, Deserialize)]
    pub enum JoinRequestStatus {
        Unconfirmed = "UNCONFIRMED",
        Pending = "PENDING",
        Approved = "APPROVED",
        Denied = "DENIED",
        Expired = "EXPIRED",
    }
}

/// A request to join, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub message: String,
    pub status: JoinRequestStatus,
    pub invite_link_id: Option<Uuid>,
    pub proposed_role: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub decided_by: Option<Uuid>,
    pub denial_reason: String,
    pub invitation_id: Option<Uuid>,
}

impl Listed for JoinRequest {
    fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

/// A request to join as a stranger makes it (directly or through a link).
#[derive(Debug)]
pub struct NewJoinRequest {
    pub workspace_id: Uuid,
    pub email: EmailAddress,
    pub display_name: String,
    pub message: String,
}

/// How long a request waits for its email's confirmation, then for a
/// decision.
pub const CONFIRMATION_VALIDITY: Duration = Duration::hours(24);
pub const DECISION_VALIDITY: Duration = Duration::days(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_secrets_round_trip_are_redacted_and_refuse_other_shapes() {
        let secret = LinkSecret::generate();
        assert!(secret.expose().starts_with("wclink_"));
        let parsed = LinkSecret::parse(secret.expose()).expect("its own shape");
        assert_eq!(parsed.hash(), secret.hash());
        assert!(!format!("{secret:?}").contains(&secret.expose()[7..]));
        assert!(LinkSecret::parse("wclink_short").is_none());
        assert!(LinkSecret::parse(&secret.expose()[1..]).is_none());
        assert!(LinkSecret::parse("wcdir_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_none());
    }

    #[test]
    fn uses_default_and_stay_within_bounds() {
        assert_eq!(LinkUses::parse(0), Ok(LinkUses::DEFAULT));
        assert_eq!(LinkUses::parse(1), Ok(1));
        assert_eq!(LinkUses::parse(1000), Ok(1000));
        assert!(LinkUses::parse(1001).is_err());
        assert!(LinkUses::parse(-1).is_err());
    }
}
