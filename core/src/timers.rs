//! The machine's timers: one slot per purpose, the earliest is the deadline.

use crate::time::Timestamp;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The in-flight request's own deadline (the machine enforces it even if
    /// the adapter does not).
    RequestDeadline,
    /// The pause between attempts within one fetch sequence.
    AttemptPause,
    /// The next background fetch: advisory refresh, recheck or retry.
    Refresh,
}

const ALL: [Timer; 3] = [Timer::RequestDeadline, Timer::AttemptPause, Timer::Refresh];

/// A fixed table of optional deadlines.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    slots: [Option<Timestamp>; 3],
}

impl Timers {
    fn index(timer: Timer) -> usize {
        timer as usize
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Timestamp) {
        self.slots[Self::index(timer)] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.slots[Self::index(timer)] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.slots[Self::index(timer)]
    }

    /// The earliest deadline of all.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.slots.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now` and the instant it was due, removed
    /// from the table.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(Timer, Timestamp)> {
        let (at, due) = ALL
            .into_iter()
            .filter_map(|timer| {
                self.get(timer)
                    .filter(|at| *at <= now)
                    .map(|at| (at, timer))
            })
            .min_by_key(|(at, _)| *at)?;
        self.clear(due);
        Some((due, at))
    }

    /// Move every deadline by `millis` (negative: earlier), after a clock jump.
    pub(crate) fn shift_by_millis(&mut self, millis: i64) {
        for slot in self.slots.iter_mut().flatten() {
            *slot = slot.shifted_by_millis(millis);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_due_timer_fires_first_and_only_once() {
        let mut timers = Timers::default();
        timers.set(Timer::Refresh, Timestamp::from_unix_millis(50));
        timers.set(Timer::AttemptPause, Timestamp::from_unix_millis(20));
        assert_eq!(timers.next(), Some(Timestamp::from_unix_millis(20)));
        assert_eq!(timers.pop_due(Timestamp::from_unix_millis(10)), None);
        let now = Timestamp::from_unix_millis(60);
        assert_eq!(
            timers.pop_due(now),
            Some((Timer::AttemptPause, Timestamp::from_unix_millis(20)))
        );
        assert_eq!(
            timers.pop_due(now),
            Some((Timer::Refresh, Timestamp::from_unix_millis(50)))
        );
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.next(), None);
    }
}
