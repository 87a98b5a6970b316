//! Invitation rate limits, per inviter and per workspace, with keyed GCRA
//! limiters (`governor`) in the memory of each replica, as for sign-in.
//! Every invitation created counts, one per row of a batch.

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use uuid::Uuid;

use crate::domain::{Error, Reason};

/// The invitation limits; 0 turns a limit off.
#[derive(Debug, Clone)]
pub struct InviteLimitSettings {
    pub per_inviter_per_minute: u32,
    pub per_workspace_per_minute: u32,
}

/// Prunes idle limiter entries once per this many checks.
const PRUNE_EVERY: u64 = 4096;

pub struct InviteLimits {
    by_inviter: Option<DefaultKeyedRateLimiter<Uuid>>,
    by_workspace: Option<DefaultKeyedRateLimiter<Uuid>>,
    checks: AtomicU64,
}

impl InviteLimits {
    pub fn new(settings: &InviteLimitSettings) -> Self {
        InviteLimits {
            by_inviter: NonZeroU32::new(settings.per_inviter_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            by_workspace: NonZeroU32::new(settings.per_workspace_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one invitation by `inviter` in `workspace`; over either limit,
    /// refused with how long to wait.
    pub fn admit(&self, workspace: Uuid, inviter: Uuid) -> Result<(), Error> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        if let Some(limiter) = &self.by_inviter {
            limiter
                .check_key(&inviter)
                .map_err(|until| rate_limited(until.wait_time_from(limiter.clock().now())))?;
        }
        if let Some(limiter) = &self.by_workspace {
            limiter
                .check_key(&workspace)
                .map_err(|until| rate_limited(until.wait_time_from(limiter.clock().now())))?;
        }
        Ok(())
    }

    fn prune(&self) {
        for limiter in [&self.by_inviter, &self.by_workspace].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn rate_limited(wait: Duration) -> Error {
    Error::rate_limited(
        Reason::InvitationRateLimited,
        "too many invitations; retry later",
        wait,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_inviter_has_their_own_budget_within_the_workspace_one() {
        let limits = InviteLimits::new(&InviteLimitSettings {
            per_inviter_per_minute: 2,
            per_workspace_per_minute: 3,
        });
        let (workspace, ann, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(limits.admit(workspace, ann).is_ok());
        assert!(limits.admit(workspace, ann).is_ok());
        assert!(matches!(
            limits.admit(workspace, ann),
            Err(Error::ResourceExhausted { retry_after, .. }) if retry_after > Duration::ZERO
        ));
        assert!(limits.admit(workspace, bob).is_ok());
        // The workspace's three are used up, whoever asks.
        assert!(limits.admit(workspace, bob).is_err());
        let carol = Uuid::new_v4();
        assert!(limits.admit(workspace, carol).is_err());
        assert!(limits.admit(Uuid::new_v4(), carol).is_ok());
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let limits = InviteLimits::new(&InviteLimitSettings {
            per_inviter_per_minute: 0,
            per_workspace_per_minute: 0,
        });
        let (workspace, ann) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..1000 {
            assert!(limits.admit(workspace, ann).is_ok());
        }
    }
}
