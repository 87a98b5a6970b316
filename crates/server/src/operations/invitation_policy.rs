//! How often invitations may go out and be tried: every email sent (an
//! invitation, a row of a batch, a resend) counts towards the limits per
//! inviter and per workspace, and one invitation is sent at most a set
//! number of times; attempts with a token (accept, preview) are limited per
//! token and per client address.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;

use super::limits::KeyedLimit;
use crate::domain::{Error, Reason, invitation::TokenHash};

/// The invitation policy's settings; a limit of 0 is off.
#[derive(Debug, Clone)]
pub struct InvitationPolicySettings {
    /// The least time between two sends of one invitation.
    pub resend_cooldown: Duration,
    /// How many times one invitation may be sent, the first send included.
    pub max_sends_per_invitation: u32,
    pub sends_per_inviter_per_minute: u32,
    pub sends_per_workspace_per_minute: u32,
    /// Accept and preview attempts per token.
    pub attempts_per_token_per_minute: u32,
    /// Accept and preview attempts per client address.
    pub attempts_per_address_per_minute: u32,
}

pub struct InvitationPolicy {
    pub resend_cooldown: time::Duration,
    pub max_sends_per_invitation: u32,
    sends_by_inviter: KeyedLimit<Uuid>,
    sends_by_workspace: KeyedLimit<Uuid>,
    attempts_by_token: KeyedLimit<[u8; 32]>,
    attempts_by_address: KeyedLimit<IpAddr>,
}

impl InvitationPolicy {
    pub fn new(settings: &InvitationPolicySettings) -> Self {
        InvitationPolicy {
            resend_cooldown: time::Duration::try_from(settings.resend_cooldown)
                .unwrap_or(time::Duration::MAX),
            max_sends_per_invitation: settings.max_sends_per_invitation,
            sends_by_inviter: KeyedLimit::per_minute(settings.sends_per_inviter_per_minute),
            sends_by_workspace: KeyedLimit::per_minute(settings.sends_per_workspace_per_minute),
            attempts_by_token: KeyedLimit::per_minute(settings.attempts_per_token_per_minute),
            attempts_by_address: KeyedLimit::per_minute(settings.attempts_per_address_per_minute),
        }
    }

    /// Counts one email sent by `inviter` in `workspace`; over either limit,
    /// refused with how long to wait.
    pub fn admit_send(&self, workspace: Uuid, inviter: Uuid) -> Result<(), Error> {
        let refused = |wait| {
            Error::rate_limited(
                Reason::InvitationRateLimited,
                "too many invitations; retry later",
                wait,
            )
        };
        self.sends_by_inviter.check(&inviter).map_err(refused)?;
        self.sends_by_workspace.check(&workspace).map_err(refused)
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

    /// Counts one accept or preview attempt with a token from `client`.
    pub fn admit_attempt(&self, token: TokenHash, client: Option<IpAddr>) -> Result<(), Error> {
        let refused = |wait| {
            Error::rate_limited(
                Reason::InvitationAttemptsExceeded,
                "too many attempts with invitation tokens; retry later",
                wait,
            )
        };
        if let Some(address) = client {
            self.attempts_by_address.check(&address).map_err(refused)?;
        }
        self.attempts_by_token.check(&token.0).map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(per_inviter: u32, per_workspace: u32, max_sends: u32) -> InvitationPolicy {
        InvitationPolicy::new(&InvitationPolicySettings {
            resend_cooldown: Duration::ZERO,
            max_sends_per_invitation: max_sends,
            sends_per_inviter_per_minute: per_inviter,
            sends_per_workspace_per_minute: per_workspace,
            attempts_per_token_per_minute: 2,
            attempts_per_address_per_minute: 3,
        })
    }

    #[test]
    fn each_inviter_has_their_own_budget_within_the_workspace_one() {
        let limits = policy(2, 3, 5);
        let (workspace, ann, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(limits.admit_send(workspace, ann).is_ok());
        assert!(limits.admit_send(workspace, ann).is_ok());
        assert!(matches!(
            limits.admit_send(workspace, ann),
            Err(Error::ResourceExhausted { retry_after, .. }) if retry_after > Duration::ZERO
        ));
        assert!(limits.admit_send(workspace, bob).is_ok());
        // The workspace's three are used up, whoever asks.
        assert!(limits.admit_send(workspace, bob).is_err());
        let carol = Uuid::new_v4();
        assert!(limits.admit_send(workspace, carol).is_err());
        assert!(limits.admit_send(Uuid::new_v4(), carol).is_ok());
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let limits = policy(0, 0, 0);
        let (workspace, ann) = (Uuid::new_v4(), Uuid::new_v4());
        for sent in 0..1000 {
            assert!(limits.admit_send(workspace, ann).is_ok());
            assert!(limits.ensure_may_send_again(sent).is_ok());
        }
    }

    #[test]
    fn an_invitation_is_sent_at_most_the_configured_number_of_times() {
        let limits = policy(0, 0, 5);
        assert!(limits.ensure_may_send_again(4).is_ok());
        assert!(matches!(
            limits.ensure_may_send_again(5),
            Err(Error::FailedPrecondition {
                reason: Reason::InvitationSendLimit,
                ..
            })
        ));
    }

    #[test]
    fn token_attempts_are_limited_per_token_and_per_address() {
        let limits = policy(0, 0, 0);
        let (one, two) = (TokenHash([1; 32]), TokenHash([2; 32]));
        let here = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(limits.admit_attempt(one, None).is_ok());
        assert!(limits.admit_attempt(one, None).is_ok());
        assert!(limits.admit_attempt(one, None).is_err());
        assert!(limits.admit_attempt(two, here).is_ok());
        assert!(limits.admit_attempt(two, here).is_ok());
        let three = TokenHash([3; 32]);
        assert!(limits.admit_attempt(three, here).is_ok());
        // The address's three are used up, whatever the token.
        assert!(limits.admit_attempt(TokenHash([4; 32]), here).is_err());
    }
}
