//! Invitations: the record, its status, the acceptance token and a parsed
//! request to invite someone.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    EmailAddress,
    idempotency::IdempotencyKey,
    locale::Locale,
    pagination::{Cursor, Listed},
    secret::Secret,
};

named_enum! {
    #[derive(Serialize, Deserialize)]
    pub enum InvitationStatus {
        Pending = "PENDING",
        Accepted = "ACCEPTED",
        Revoked = "REVOKED",
        Expired = "EXPIRED",
    }
}

named_enum! {
    /// Where the email of an invitation's latest send is.
    #[derive(Serialize, Deserialize, Default)]
    pub enum DeliveryStatus {
        #[default]
        Queued = "QUEUED",
        Sent = "SENT",
        Failed = "FAILED",
    }
}

/// An invitation as stored, with its status as of now (a pending invitation
/// past its expiry reads as expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub inviter_id: Uuid,
    pub message: String,
    pub status: InvitationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_sent_at: OffsetDateTime,
    pub resend_count: i32,
    pub accepted_user_id: Option<Uuid>,
    #[serde(default)]
    pub delivery_status: DeliveryStatus,
    #[serde(default)]
    pub delivery_failure_reason: Option<String>,
    /// When the access of the user it makes ends; `None`: never.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub access_expires_at: Option<OffsetDateTime>,
    /// Bumped by every change a person makes (not by a delivery result).
    #[serde(default)]
    pub version: i64,
    /// The language of its email and page.
    #[serde(default, with = "super::locale::by_tag")]
    pub locale: Locale,
}

impl Listed for Invitation {
    fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

impl Invitation {
    /// A new invitation as sent at `now`: pending for `valid_for`, its email
    /// queued, at version 1. It has no manager, no message, is in English
    /// and gives access without end until the caller sets those (struct
    /// update syntax).
    pub fn pending(
        id: Uuid,
        workspace_id: Uuid,
        inviter_id: Uuid,
        email: String,
        role: String,
        now: OffsetDateTime,
        valid_for: Duration,
    ) -> Self {
        Invitation {
            id,
            workspace_id,
            email,
            role,
            reporting_to: None,
            inviter_id,
            message: String::new(),
            status: InvitationStatus::Pending,
            expires_at: now + valid_for,
            created_at: now,
            updated_at: now,
            last_sent_at: now,
            resend_count: 0,
            accepted_user_id: None,
            delivery_status: DeliveryStatus::Queued,
            delivery_failure_reason: None,
            access_expires_at: None,
            version: 1,
            locale: Locale::English,
        }
    }

    /// The entity tag of this version of the invitation.
    pub fn etag(&self) -> String {
        super::etag(self.version)
    }
}

/// The acceptance token: 256 random bits, URL-safe base64. Only its SHA-256
/// is stored; the token itself goes to the invitee's email and nowhere else.
#[derive(Debug)]
pub struct InvitationToken(Secret);

/// The SHA-256 of a token, the only form the database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl InvitationToken {
    pub fn generate() -> Self {
        InvitationToken(Secret::generate(""))
    }

    /// Accepts anything shaped like a token; whether it exists is for the store to say.
    pub fn parse(input: &str) -> Option<Self> {
        Secret::parse(input.trim(), "").map(InvitationToken)
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(self.0.sha256())
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// How long an invitation stays valid.
pub struct Validity;

impl Validity {
    pub const DEFAULT: Duration = Duration::days(7);
    pub const MIN: Duration = Duration::hours(1);
    pub const MAX: Duration = Duration::days(30);

    /// The default for `None`; otherwise `requested`, if within bounds.
    pub fn parse(requested: Option<Duration>) -> Result<Duration, String> {
        match requested {
            None => Ok(Self::DEFAULT),
            Some(d) if (Self::MIN..=Self::MAX).contains(&d) => Ok(d),
            Some(_) => Err("must be between 1 hour and 30 days".into()),
        }
    }
}

/// A parsed `InviteUser` request.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: EmailAddress,
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub message: String,
    pub valid_for: Duration,
    /// When the access of the user it makes ends; `None`: never.
    pub access_expires_at: Option<OffsetDateTime>,
    pub idempotency: Option<IdempotencyKey>,
    /// The language; `None`: the workspace's default.
    pub locale: Option<Locale>,
}

/// A parsed `UpdateInvitation` request: `None` keeps a field as it is.
#[derive(Debug, Clone)]
pub struct InvitationUpdate {
    pub id: Uuid,
    /// Refused (ABORTED) unless the invitation is at this version.
    pub expected_version: Option<i64>,
    pub role: Option<String>,
    /// `Some(None)` makes the invitee report to nobody.
    pub reporting_to: Option<Option<Uuid>>,
    /// The new validity, counted from now.
    pub valid_for: Option<Duration>,
    /// The new language.
    pub locale: Option<Locale>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_hash_stably() {
        let token = InvitationToken::generate();
        assert_eq!(token.expose().len(), 43);
        let reparsed = InvitationToken::parse(token.expose()).expect("well-formed");
        assert_eq!(reparsed.hash(), token.hash());
        assert_ne!(InvitationToken::generate().hash(), token.hash());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(InvitationToken::parse("").is_none());
        assert!(InvitationToken::parse("abc").is_none());
        assert!(InvitationToken::parse(&"=".repeat(43)).is_none());
        assert!(InvitationToken::parse(&"a".repeat(44)).is_none());
    }

    #[test]
    fn validity_defaults_to_seven_days_and_is_bounded() {
        assert_eq!(Validity::parse(None), Ok(Duration::days(7)));
        assert!(Validity::parse(Some(Duration::minutes(5))).is_err());
        assert!(Validity::parse(Some(Duration::days(31))).is_err());
    }
}
