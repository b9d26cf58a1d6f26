//! Simulated time: a monotonic "true" time that drives events, and the host's
//! wall clock, which the machine sees and which can jump.

use credstate::Timestamp;

/// Where every simulation starts: 2026-11-29T00:00:00Z.
pub const SIM_EPOCH: Timestamp = Timestamp::from_unix_secs(1_795_910_400);

/// The two clocks of a simulated host.
///
/// True time only moves forward and is what IMDS stamps credentials with;
/// the host's wall clock is true time plus an offset that a `clock_jump`
/// fault changes, so a jump of `+3d` makes every credential look three days
/// older to the host, as after a suspend, a snapshot restore or an NTP step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimClock {
    elapsed_ms: u64,
    wall_offset_ms: i64,
}

impl SimClock {
    /// A clock at the start of the simulation, wall clock in step.
    #[must_use]
    pub fn new() -> Self {
        SimClock::default()
    }

    /// True time since the start, in milliseconds.
    #[must_use]
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed_ms
    }

    /// The true instant (what IMDS uses).
    #[must_use]
    pub fn true_now(&self) -> Timestamp {
        SIM_EPOCH.shifted_by_millis(self.elapsed_ms as i64)
    }

    /// The host's wall clock (what the machine and the seed policies see).
    #[must_use]
    pub fn wall_now(&self) -> Timestamp {
        self.true_now().shifted_by_millis(self.wall_offset_ms)
    }

    /// How far the wall clock is from true time, in milliseconds.
    #[must_use]
    pub fn wall_offset_ms(&self) -> i64 {
        self.wall_offset_ms
    }

    /// Move true time forward to `elapsed_ms`; true time never goes back, so
    /// an earlier value is ignored.
    pub fn advance_to(&mut self, elapsed_ms: u64) {
        self.elapsed_ms = self.elapsed_ms.max(elapsed_ms);
    }

    /// Step the wall clock by a signed number of milliseconds.
    pub fn jump_wall(&mut self, by_ms: i64) {
        self.wall_offset_ms = self.wall_offset_ms.saturating_add(by_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_jump_moves_the_wall_clock_only() {
        let mut clock = SimClock::new();
        clock.advance_to(60_000);
        clock.jump_wall(3 * 86_400_000);
        assert_eq!(clock.true_now(), SIM_EPOCH.shifted_by_millis(60_000));
        assert_eq!(
            clock.wall_now(),
            SIM_EPOCH.shifted_by_millis(60_000 + 3 * 86_400_000)
        );
        clock.jump_wall(-3 * 86_400_000);
        assert_eq!(clock.wall_now(), clock.true_now());
    }

    #[test]
    fn true_time_never_goes_back() {
        let mut clock = SimClock::new();
        clock.advance_to(5_000);
        clock.advance_to(1_000);
        assert_eq!(clock.elapsed_ms(), 5_000);
    }
}
