//! A tiny seeded generator for fault injection: runs are reproducible from
//! the scenario's seed, and nothing reads a global RNG.

/// SplitMix64, seeded explicitly.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator whose whole sequence follows from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SimRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Whether an event with probability `percent` % happens. A certain
    /// event draws nothing, so adding a 100 % fault does not reshuffle the
    /// draws of the others.
    pub fn chance(&mut self, percent: u8) -> bool {
        match percent {
            0 => false,
            100.. => true,
            p => self.next_u64() % 100 < u64::from(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_draws() {
        let mut a = SimRng::new(42);
        let mut b = SimRng::new(42);
        for _ in 0..64 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn chance_roughly_follows_the_percentage() {
        let mut rng = SimRng::new(9);
        let hits = (0..10_000).filter(|_| rng.chance(30)).count();
        assert!(
            (2_500..3_500).contains(&hits),
            "{hits} hits of 10000 at 30%"
        );
        assert!((0..100).all(|_| rng.chance(100)));
        assert!((0..100).all(|_| !rng.chance(0)));
    }
}
