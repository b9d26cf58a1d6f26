//! The wall clock, a manual clock for tests, the seed and the sleep bound.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credstate::Timestamp;

/// Where an adapter reads "now". The machine takes wall-clock time and copes
/// with it jumping either way, so an implementation need not be monotonic.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
///
/// On Linux it reads `CLOCK_REALTIME_COARSE` (the wall clock as of the last
/// scheduler tick, a few milliseconds at most behind, and several times
/// cheaper to read than the precise clock, which matters on the hot path);
/// elsewhere `SystemTime::now()`. Both follow the wall clock when it jumps.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        system_now()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn system_now() -> Timestamp {
    use rustix::time::{clock_gettime, ClockId};
    let now = clock_gettime(ClockId::RealtimeCoarse);
    Timestamp::from_unix_millis(
        now.tv_sec
            .saturating_mul(1000)
            .saturating_add(now.tv_nsec as i64 / 1_000_000),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn system_now() -> Timestamp {
    let millis = match SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Timestamp::from_unix_millis(millis)
}

/// The clock an adapter was given: the system clock unless another was
/// injected. The system clock is read without a virtual call, since every
/// hot-path call reads it.
#[derive(Clone, Default)]
pub struct ClockHandle {
    injected: Option<Arc<dyn Clock>>,
}

impl ClockHandle {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        ClockHandle { injected: None }
    }

    /// This clock.
    #[must_use]
    pub fn injected(clock: impl Clock) -> Self {
        ClockHandle {
            injected: Some(Arc::new(clock)),
        }
    }

    /// The current wall-clock time.
    #[inline]
    #[must_use]
    pub fn now(&self) -> Timestamp {
        match &self.injected {
            None => system_now(),
            Some(clock) => clock.now(),
        }
    }
}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.injected.is_some() {
            "ClockHandle(injected)"
        } else {
            "ClockHandle(system)"
        })
    }
}

/// A clock that moves only when told, for tests. Clones share the time.
#[derive(Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `at`.
    #[must_use]
    pub fn at(at: Timestamp) -> Self {
        ManualClock {
            millis: Arc::new(AtomicI64::new(at.unix_millis())),
        }
    }

    /// Show `at` from now on (earlier or later).
    pub fn set(&self, at: Timestamp) {
        self.millis.store(at.unix_millis(), Ordering::SeqCst);
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.millis.load(Ordering::SeqCst))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// A seed for the machine's jitter that differs between processes and
/// providers, so a fleet started together does not refresh in lockstep.
#[must_use]
pub fn default_seed() -> u64 {
    // RandomState is keyed randomly per process; time and pid separate
    // providers made in the same process and processes forked from one.
    let mut hasher = RandomState::new().build_hasher();
    SystemTime::now().hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    std::thread::current().id().hash(&mut hasher);
    hasher.finish()
}

/// The longest an adapter sleeps between looks at the wall clock, so a jump
/// of the clock (suspend and resume) is noticed within this much real time.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long to sleep, on a monotonic timer, to wake at the machine's deadline
/// `wake_at` (none: no deadline), never longer than [`MAX_SLEEP`].
#[must_use]
pub fn sleep_until(now: Timestamp, wake_at: Option<Timestamp>) -> Duration {
    match wake_at {
        Some(at) => at.saturating_since(now).min(MAX_SLEEP),
        None => MAX_SLEEP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_wall_clock_in_milliseconds() {
        let precise = || {
            SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        let before = precise();
        let now = SystemClock.now().unix_millis();
        let after = precise();
        // The coarse clock trails the precise one by at most a scheduler
        // tick (a few ms); a minute covers any scheduler, never a unit error.
        assert!(now <= after, "{now} > {after}");
        assert!(before - now < 60_000, "{now} far behind {before}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::at(Timestamp::from_unix_secs(100));
        let shared = clock.clone();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(shared.now(), Timestamp::from_unix_millis(101_500));
        shared.set(Timestamp::from_unix_secs(5));
        assert_eq!(clock.now(), Timestamp::from_unix_secs(5));
    }

    #[test]
    fn sleeps_end_at_the_deadline_but_never_exceed_a_minute() {
        let now = Timestamp::from_unix_secs(1000);
        assert_eq!(
            sleep_until(now, Some(now + Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            sleep_until(now, Some(now + Duration::from_secs(3600))),
            MAX_SLEEP
        );
        assert_eq!(
            sleep_until(now, Some(Timestamp::from_unix_secs(10))),
            Duration::ZERO
        );
        assert_eq!(sleep_until(now, None), MAX_SLEEP);
    }

    #[test]
    fn seeds_differ_between_calls() {
        assert_ne!(default_seed(), default_seed());
    }
}
