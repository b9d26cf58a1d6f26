//! Jittered exponential backoff between failed fetch sequences.

use core::time::Duration;

use crate::rng::Rng;

/// Counts consecutive failed fetch sequences and turns the count into a delay.
#[derive(Clone, Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Record one more failure; returns the consecutive count.
    pub(crate) fn record_failure(&mut self) -> u32 {
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay after the current number of failures: `initial · 2^(n-1)`
    /// capped at `cap`, then drawn from its upper half so that a fleet
    /// spreads out while the schedule stays predictable.
    pub(crate) fn delay(&self, rng: &mut Rng, initial: Duration, cap: Duration) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(30);
        let ceiling = initial.saturating_mul(1u32 << exponent).min(cap);
        rng.duration_between(ceiling / 2, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_respect_the_cap() {
        let mut rng = Rng::new(3);
        let mut backoff = Backoff::default();
        let initial = Duration::from_secs(1);
        let cap = Duration::from_secs(30);
        // (failures, lowest, highest) in seconds
        let table = [
            (1, 0.5, 1.0),
            (2, 1.0, 2.0),
            (3, 2.0, 4.0),
            (5, 8.0, 16.0),
            (6, 15.0, 30.0),
            (20, 15.0, 30.0),
        ];
        for (failures, low, high) in table {
            while backoff.failures() < failures {
                backoff.record_failure();
            }
            for _ in 0..50 {
                let d = backoff.delay(&mut rng, initial, cap).as_secs_f64();
                assert!(d >= low && d <= high, "{failures} failures gave {d}s");
            }
        }
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
    }
}
