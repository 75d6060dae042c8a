//! Exponential back-off for reconciles that fail.
//!
//! A failing key is retried after `base`, then `2 × base`, `4 × base`, …
//! up to `max`, so a broken dependency (a node that is down, a database that
//! refuses writes) is not hammered while a transient failure is still retried
//! quickly. The count of consecutive failures lives with the key in the work
//! queue and is forgotten at the first success.

use std::time::Duration;

/// How long to wait before retrying a key after its `n`-th consecutive failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The delay is never longer than this, however many failures follow.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to one minute: a restarting container is retried
    /// within a second, a dead node costs one attempt a minute.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (`failures >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let ms: Vec<u128> = (1..=7).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }
}
