//! Backoff: how long to wait after the n-th failure before trying again.

use std::time::Duration;

/// Exponential backoff: `base`, `2 * base`, `4 * base`, ... never above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `attempt`-th failure (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        assert_eq!(backoff.delay(1), Duration::from_millis(500));
        assert_eq!(backoff.delay(2), Duration::from_secs(1));
        assert_eq!(backoff.delay(3), Duration::from_secs(2));
        assert_eq!(backoff.delay(10), Duration::from_secs(30));
        assert_eq!(backoff.delay(200), Duration::from_secs(30));
    }

    /// The service's reconnect delays: 250 ms doubling to 10 s.
    #[test]
    fn reconnect_backoff_doubles_up_to_ten_seconds() {
        let backoff = Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
        };
        assert_eq!(backoff.delay(0), Duration::from_millis(250));
        assert_eq!(backoff.delay(1), Duration::from_millis(250));
        assert_eq!(backoff.delay(2), Duration::from_millis(500));
        assert_eq!(backoff.delay(6), Duration::from_secs(8));
        assert_eq!(backoff.delay(7), Duration::from_secs(10));
        assert_eq!(backoff.delay(32), Duration::from_secs(10));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
    }
}
