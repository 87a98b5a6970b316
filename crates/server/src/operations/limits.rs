//! Keyed rate limits (GCRA, `governor`) in the memory of each replica: the
//! one implementation behind the sign-in, invitation and token-attempt
//! limits.

use std::{
    hash::Hash,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

/// Prunes idle entries once per this many checks, so memory stays bounded by
/// the recent keys, not by every key ever seen.
const PRUNE_EVERY: u64 = 4096;

/// At most `n` events per minute per key; `n = 0` turns the limit off.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    pub fn per_minute(n: u32) -> Self {
        KeyedLimit {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one event of `key`; over the limit, how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(key)
            .map_err(|until| until.wait_time_from(limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_past_its_budget_with_a_wait() {
        let limit = KeyedLimit::per_minute(2);
        assert!(limit.check(&"a").is_ok());
        assert!(limit.check(&"a").is_ok());
        assert!(matches!(limit.check(&"a"), Err(wait) if wait > Duration::ZERO));
        assert!(limit.check(&"b").is_ok());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = KeyedLimit::per_minute(0);
        for _ in 0..1000 {
            assert!(limit.check(&1).is_ok());
        }
    }
}
