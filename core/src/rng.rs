//! A small seeded pseudo-random generator for jitter.
//!
//! The machine never touches a global RNG: the caller passes a seed, so a run is
//! reproducible from its seed alone.

use core::time::Duration;

/// SplitMix64: tiny, fast, and good enough for jittering timers.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration drawn uniformly from `[low, high]`.
    pub(crate) fn duration_between(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        let low_ms = low.as_millis() as u64;
        let span = (high.as_millis() as u64 - low_ms).saturating_add(1);
        Duration::from_millis(low_ms + self.next_u64() % span)
    }

    /// `value` reduced by a random fraction of at most `percent` percent.
    pub(crate) fn reduce_by_up_to_percent(&mut self, value: Duration, percent: u32) -> Duration {
        let percent = u64::from(percent.min(100));
        let reduction_per_mille = self.next_u64() % (percent * 10 + 1);
        let ms = value.as_millis() as u64;
        Duration::from_millis(ms - ms * reduction_per_mille / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let d = rng.duration_between(Duration::from_secs(5), Duration::from_secs(10));
            assert!(d >= Duration::from_secs(5) && d <= Duration::from_secs(10));
            let r = rng.reduce_by_up_to_percent(Duration::from_secs(100), 20);
            assert!(r >= Duration::from_secs(80) && r <= Duration::from_secs(100));
        }
    }
}
