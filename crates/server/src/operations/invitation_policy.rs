//! How often invitations may go out and be tried: every email sent (an
//! invitation, a row of a batch, a resend) counts towards the limits per
//! inviter and per workspace, and one invitation is sent at most a set
//! number of times; attempts with a token (accept, preview) are limited per
//! token and per client address.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

use super::limits::{Limit, SharedLimits, Take, address_bytes};
use crate::{
    domain::{Error, Reason, invitation::TokenHash},
    store::GenericClient,
};

/// The invitation policy's settings; a limit of 0 is off.
#[derive(Debug, Clone)]
pub struct InvitationPolicySettings {
    /// The least time between two sends of one invitation.
    pub resend_cooldown: Duration,
    /// How many times one invitation may be sent, the first send included.
    pub max_sends_per_invitation: u32,
    pub sends_per_inviter_per_minute: u32,
    pub sends_per_workspace_per_minute: u32,
    /// Invitation emails one address receives per day, from every inviter
    /// and workspace together.
    pub sends_per_recipient_per_day: u32,
    /// Accept and preview attempts per token.
    pub attempts_per_token_per_minute: u32,
    /// Accept and preview attempts per client address.
    pub attempts_per_address_per_minute: u32,
}

/// The limits are shared by every replica (`limits`); each fails closed.
pub struct InvitationPolicy {
    pub resend_cooldown: time::Duration,
    pub max_sends_per_invitation: u32,
    sends_by_inviter: Limit,
    sends_by_workspace: Limit,
    sends_to_recipient: Limit,
    attempts_by_token: Limit,
    attempts_by_address: Limit,
}

impl InvitationPolicy {
    pub fn new(settings: &InvitationPolicySettings) -> Self {
        InvitationPolicy {
            resend_cooldown: time::Duration::try_from(settings.resend_cooldown)
                .unwrap_or(time::Duration::MAX),
            max_sends_per_invitation: settings.max_sends_per_invitation,
            sends_by_inviter: Limit::per_minute(
                "invitations.sends_by_inviter",
                settings.sends_per_inviter_per_minute,
            ),
            sends_by_workspace: Limit::per_minute(
                "invitations.sends_by_workspace",
                settings.sends_per_workspace_per_minute,
            ),
            sends_to_recipient: Limit::per_day(
                "invitations.sends_to_recipient",
                settings.sends_per_recipient_per_day,
            ),
            attempts_by_token: Limit::per_minute(
                "invitations.attempts_by_token",
                settings.attempts_per_token_per_minute,
            ),
            attempts_by_address: Limit::per_minute(
                "invitations.attempts_by_address",
                settings.attempts_per_address_per_minute,
            ),
        }
    }

    /// The units one email sent by `inviter` in `workspace` takes: the
    /// inviter's first, so an inviter over their own limit does not use up
    /// the workspace's. Empty when both limits are off.
    pub async fn send_takes(
        &self,
        limits: &SharedLimits,
        workspace: Uuid,
        inviter: Uuid,
    ) -> Result<Vec<Take>, Error> {
        limits
            .takes(&[
                (self.sends_by_inviter, &[inviter.as_bytes()]),
                (self.sends_by_workspace, &[workspace.as_bytes()]),
            ])
            .await
    }

    /// The unit one email to the address `email_normalized` takes from its
    /// daily limit, which every inviter and workspace share (none when the
    /// limit is off). Refused with [`recipient_refused`].
    pub async fn recipient_takes(
        &self,
        limits: &SharedLimits,
        email_normalized: &str,
    ) -> Result<Vec<Take>, Error> {
        limits
            .takes(&[(self.sends_to_recipient, &[email_normalized.as_bytes()])])
            .await
    }

    /// Takes, in `db`'s transaction, the unit one email to the address
    /// `email_normalized` takes from its daily limit (nothing when the
    /// limit is off); refused with [`recipient_refused`].
    pub async fn admit_recipient(
        &self,
        limits: &SharedLimits,
        db: &impl GenericClient,
        email_normalized: &str,
    ) -> Result<(), Error> {
        let takes = self.recipient_takes(limits, email_normalized).await?;
        limits.take(db, &takes).await?.map_err(recipient_refused)
    }

    /// Refuses one more send of an invitation already sent `sent` times.
    pub fn ensure_may_send_again(&self, sent: i64) -> Result<(), Error> {
        if self.max_sends_per_invitation == 0 || sent < i64::from(self.max_sends_per_invitation) {
            Ok(())
        } else {
            Err(Error::precondition(
                Reason::InvitationSendLimit,
                format!(
                    "this invitation was already sent {sent} times; revoke it and invite again"
                ),
            ))
        }
    }

    /// Counts one accept or preview attempt with a token from `client`:
    /// the address's limit first (every attempt from there counts), then
    /// the token's.
    pub async fn admit_attempt(
        &self,
        limits: &SharedLimits,
        db: &impl GenericClient,
        token: TokenHash,
        client: Option<IpAddr>,
    ) -> Result<(), Error> {
        let address = client.map(address_bytes);
        let by_address = self.attempts_by_address.only_if(address.is_some());
        let address = address.unwrap_or_default();
        let checks: [(Limit, &[&[u8]]); 2] = [
            (by_address, &[&address]),
            (self.attempts_by_token, &[&token.0]),
        ];
        let takes = limits.takes(&checks).await?;
        limits.take(db, &takes).await?.map_err(|wait| {
            Error::rate_limited(
                Reason::InvitationAttemptsExceeded,
                "too many attempts with invitation tokens; retry later",
                wait,
            )
        })
    }
}

/// Why an invitation email was refused by the sending limits.
pub fn sends_refused(wait: Duration) -> Error {
    Error::rate_limited(
        Reason::InvitationRateLimited,
        "too many invitations; retry later",
        wait,
    )
}

/// An email refused because its address has had its invitation emails
/// for now.
pub fn recipient_refused(wait: Duration) -> Error {
    Error::rate_limited(
        Reason::RecipientRateLimited,
        "this address has received the most invitation emails it may for now, from any \
         workspace; try again later",
        wait,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_sends: u32) -> InvitationPolicy {
        InvitationPolicy::new(&InvitationPolicySettings {
            resend_cooldown: Duration::ZERO,
            max_sends_per_invitation: max_sends,
            sends_per_inviter_per_minute: 0,
            sends_per_recipient_per_day: 0,
            sends_per_workspace_per_minute: 0,
            attempts_per_token_per_minute: 0,
            attempts_per_address_per_minute: 0,
        })
    }

    #[test]
    fn zero_sends_is_no_cap() {
        let limits = policy(0);
        for sent in 0..1000 {
            assert!(limits.ensure_may_send_again(sent).is_ok());
        }
    }

    #[test]
    fn an_invitation_is_sent_at_most_the_configured_number_of_times() {
        let limits = policy(5);
        assert!(limits.ensure_may_send_again(4).is_ok());
        assert!(matches!(
            limits.ensure_may_send_again(5),
            Err(Error::FailedPrecondition {
                reason: Reason::InvitationSendLimit,
                ..
            })
        ));
    }
}
