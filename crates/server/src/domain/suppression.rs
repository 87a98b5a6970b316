//! The suppression list: addresses no invitation email goes to, from any
//! workspace of the installation, because an email to them bounced for good
//! or their owner unsubscribed; and the signed token of an invitation
//! email's unsubscribe link (RFC 8058 one-click).
//!
//! An unsubscribe token is `base64url(version | issued at | workspace id |
//! invitation id | normalized address | tag)`: the tag is the first 128
//! bits of HMAC-SHA256 of everything before it under the installation's
//! unsubscribe key ([`UnsubscribeKey`], derived from the secret every
//! replica shares). It holds no secret of its own: whoever has it can only
//! stop invitation emails to the address it names, which is what the link
//! is for. It works for [`TOKEN_LIFETIME`] from the email's send.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{EmailAddress, Error, Reason};

named_enum! {
    /// Why an address is suppressed: its name in the store, the event and
    /// the ErrorInfo metadata `suppression`.
    #[derive(Serialize, Deserialize)]
    pub enum SuppressionCause {
        /// A 5xx reply to an invitation email (a hard bounce): an
        /// administrator may clear it.
        Bounced = "bounced",
        /// The owner's own choice: nobody else clears it.
        Unsubscribed = "unsubscribed",
    }
}

impl std::fmt::Display for SuppressionCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SuppressionCause {
    /// What a refused invitation says, and what to do about it.
    pub fn refusal_message(self) -> &'static str {
        match self {
            SuppressionCause::Bounced => {
                "an invitation email to this address bounced: the mail server refused it for \
                 good, so no workspace sends it invitations; check the address, and once it is \
                 right an administrator can clear the suppression (ClearEmailSuppression) and \
                 invite again"
            }
            SuppressionCause::Unsubscribed => {
                "the owner of this address unsubscribed from WowChat invitation emails, so no \
                 workspace sends it invitations and no administrator can undo that; invite \
                 another address of theirs, or ask them to contact the operator of this \
                 WowChat installation"
            }
        }
    }
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSuppression {
    /// Normalized (trimmed, lower case).
    pub email: String,
    pub cause: SuppressionCause,
    /// For a bounce, what the mail server answered; empty otherwise.
    pub detail: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How long an unsubscribe link works after its email was sent: a year,
/// so an old invitation still read later can always be unsubscribed from.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::days(365);

/// The layout version of an unsubscribe token.
const VERSION: u8 = 1;
/// The bytes of a token's MAC: 128 bits are plenty against forgery.
const TAG_LEN: usize = 16;
/// Version, issue time, workspace id, invitation id.
const FIXED_LEN: usize = 1 + 8 + 16 + 16;
/// The longest address a token carries (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;

/// The key unsubscribe tokens are signed with (HMAC-SHA256); every replica
/// derives the same one from the installation's secret.
#[derive(Clone)]
pub struct UnsubscribeKey(Hmac<Sha256>);

impl UnsubscribeKey {
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        Hmac::new_from_slice(key)
            .map(UnsubscribeKey)
            .map_err(|e| Error::Unexpected(anyhow::anyhow!("the unsubscribe key: {e}")))
    }

    fn tag(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(body);
        mac
    }
}

/// What a valid unsubscribe token says: whose address, and the invitation
/// (and its workspace) whose email carried the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscription {
    pub email: String,
    pub workspace_id: Uuid,
    pub invitation_id: Uuid,
    pub issued_at: OffsetDateTime,
}

impl Unsubscription {
    /// The token of the unsubscribe link of the email to `email` (its
    /// normalized form) of `invitation_id`, sent at `now`.
    pub fn token(
        key: &UnsubscribeKey,
        email: &str,
        workspace_id: Uuid,
        invitation_id: Uuid,
        now: OffsetDateTime,
    ) -> String {
        let email = EmailAddress::normalize(email);
        let mut bytes = Vec::with_capacity(FIXED_LEN + email.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&now.unix_timestamp().to_be_bytes());
        bytes.extend_from_slice(workspace_id.as_bytes());
        bytes.extend_from_slice(invitation_id.as_bytes());
        bytes.extend_from_slice(email.as_bytes());
        let tag = key.tag(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `token` says, if `key` signed it and it is younger than
    /// [`TOKEN_LIFETIME`] at `now`; else INVALID_UNSUBSCRIBE_TOKEN.
    pub fn verify(key: &UnsubscribeKey, token: &str, now: OffsetDateTime) -> Result<Self, Error> {
        let invalid = || {
            Error::invalid_with(
                Reason::InvalidUnsubscribeToken,
                "token",
                "is not an unsubscribe link of this service (altered or cut short?); open the \
                 link of the email again",
            )
        };
        if token.len() > 2 * (FIXED_LEN + MAX_EMAIL_LEN + TAG_LEN) {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        let Some((body, tag)) = bytes.split_last_chunk::<TAG_LEN>() else {
            return Err(invalid());
        };
        // In constant time, so the tag cannot be guessed byte by byte.
        key.tag(body)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        let Some((fixed, email)) = body.split_first_chunk::<FIXED_LEN>() else {
            return Err(invalid());
        };
        let [version, rest @ ..] = fixed;
        if *version != VERSION {
            return Err(invalid());
        }
        let (issued, ids) = rest.split_at(8);
        let issued = i64::from_be_bytes(issued.try_into().map_err(|_| invalid())?);
        let issued_at = OffsetDateTime::from_unix_timestamp(issued).map_err(|_| invalid())?;
        let workspace_id = Uuid::from_slice(&ids[..16]).map_err(|_| invalid())?;
        let invitation_id = Uuid::from_slice(&ids[16..]).map_err(|_| invalid())?;
        let email = String::from_utf8(email.to_vec()).map_err(|_| invalid())?;
        if email.is_empty() {
            return Err(invalid());
        }
        if now - issued_at > TOKEN_LIFETIME {
            return Err(Error::invalid_with(
                Reason::InvalidUnsubscribeToken,
                "token",
                "this unsubscribe link is more than a year old; use the link of a newer \
                 invitation email",
            ));
        }
        Ok(Unsubscription {
            email,
            workspace_id,
            invitation_id,
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(secret: &[u8]) -> UnsubscribeKey {
        UnsubscribeKey::new(secret).unwrap()
    }

    fn reason(error: Error) -> Reason {
        match error {
            Error::InvalidArgument { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_says_the_normalized_address_and_where_it_came_from() {
        let now = OffsetDateTime::now_utc();
        let (workspace, invitation) = (Uuid::now_v7(), Uuid::now_v7());
        let token =
            Unsubscription::token(&key(b"k"), " Ivy@Example.COM ", workspace, invitation, now);
        assert!(!token.contains('='), "URL-safe, unpadded: {token}");
        let read = Unsubscription::verify(&key(b"k"), &token, now).unwrap();
        assert_eq!(read.email, "ivy@example.com");
        assert_eq!(
            (read.workspace_id, read.invitation_id),
            (workspace, invitation)
        );
        // A year later it still works; past that it does not.
        let later = now + TOKEN_LIFETIME - time::Duration::minutes(1);
        assert!(Unsubscription::verify(&key(b"k"), &token, later).is_ok());
        let too_late = now + TOKEN_LIFETIME + time::Duration::minutes(1);
        assert_eq!(
            reason(Unsubscription::verify(&key(b"k"), &token, too_late).unwrap_err()),
            Reason::InvalidUnsubscribeToken
        );
    }

    #[test]
    fn an_altered_truncated_or_foreign_token_is_refused() {
        let now = OffsetDateTime::now_utc();
        let token = Unsubscription::token(
            &key(b"k"),
            "ivy@example.com",
            Uuid::now_v7(),
            Uuid::now_v7(),
            now,
        );
        let refused = |token: &str, key: &UnsubscribeKey| {
            reason(Unsubscription::verify(key, token, now).unwrap_err())
                == Reason::InvalidUnsubscribeToken
        };
        assert!(refused(&token, &key(b"another installation")));
        assert!(refused(&token[..token.len() - 1], &key(b"k")));
        assert!(refused("", &key(b"k")));
        assert!(refused("not base64 !", &key(b"k")));
        assert!(refused(&"A".repeat(5000), &key(b"k")));
        // Every one-character change is refused.
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != token {
                assert!(refused(&altered, &key(b"k")), "{altered}");
            }
        }
        // Another address under a valid-looking tag: refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let at = FIXED_LEN;
        bytes[at] = b'j';
        assert!(refused(&URL_SAFE_NO_PAD.encode(bytes), &key(b"k")));
    }
}
