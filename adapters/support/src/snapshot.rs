//! The hot path: the machine's snapshot, published for lock-free reads.
//!
//! The adapter publishes the machine's [`Snapshot`] through `arc-swap` and
//! bumps a generation counter. Each thread keeps, per cell, the generation it
//! last saw and its own `Arc` of those credentials: while the generation is
//! unchanged, a read is a thread-local lookup, one comparison with the clock
//! and one clone of a thread-local `Arc` — no shared cache line is written, so
//! threads reading at once do not slow each other down. The first read on a
//! thread after new credentials arrive copies them into that thread's `Arc`.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use credstate::{Credentials, Machine, Snapshot, Timestamp};

/// Distinguishes cells in the thread-local caches.
static NEXT_CELL_ID: AtomicU64 = AtomicU64::new(0);

/// One thread's copy of one cell's snapshot.
struct Cached {
    cell: u64,
    /// Dead once the cell is dropped; such entries are swept on a miss.
    alive: Weak<()>,
    generation: u64,
    credentials: Option<Arc<Credentials>>,
    serve_until: Timestamp,
}

thread_local! {
    static CACHED: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

/// The latest [`Snapshot`] of a machine, readable without a lock.
///
/// The adapter [`publish`](Self::publish)es after every call that may have
/// changed the machine, while it holds the machine's lock; callers read with
/// [`servable_at`](Self::servable_at) and only go to the machine when that
/// answers `None`.
pub struct SnapshotCell {
    id: u64,
    alive: Arc<()>,
    /// Moves after each publication; thread-local copies older than it are
    /// refreshed from `current`.
    generation: AtomicU64,
    current: ArcSwapOption<Snapshot>,
}

impl Default for SnapshotCell {
    fn default() -> Self {
        SnapshotCell {
            id: NEXT_CELL_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            generation: AtomicU64::new(0),
            current: ArcSwapOption::empty(),
        }
    }
}

impl SnapshotCell {
    /// An empty cell: every caller goes to the machine until credentials arrive.
    #[must_use]
    pub fn new() -> Self {
        SnapshotCell::default()
    }

    /// The published credentials if a caller may use them at `now` without
    /// asking the machine.
    ///
    /// The answer is an `Arc` owned by this thread: equal to the machine's
    /// credentials, and the same `Arc` on every call on this thread until new
    /// credentials are published.
    #[inline]
    #[must_use]
    pub fn servable_at(&self, now: Timestamp) -> Option<Arc<Credentials>> {
        // Acquire: a generation seen here was bumped after its snapshot was
        // stored, so reloading below sees that snapshot or a newer one.
        let generation = self.generation.load(Ordering::Acquire);
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            let entry = match cached.iter().position(|entry| entry.cell == self.id) {
                Some(index) if cached[index].generation == generation => &cached[index],
                found => self.refresh(&mut cached, found, generation),
            };
            if now < entry.serve_until {
                entry.credentials.clone()
            } else {
                None
            }
        })
    }

    /// Reload this thread's copy from the published snapshot; sweep the
    /// copies of cells that are gone while at it.
    #[cold]
    fn refresh<'a>(
        &self,
        cached: &'a mut Vec<Cached>,
        found: Option<usize>,
        generation: u64,
    ) -> &'a Cached {
        if let Some(index) = found {
            cached.swap_remove(index);
        }
        cached.retain(|entry| entry.alive.strong_count() > 0);
        let (credentials, serve_until) = match &*self.current.load() {
            Some(snapshot) => (
                Some(Arc::new(Credentials::clone(&snapshot.credentials))),
                snapshot.serve_until,
            ),
            None => (None, Timestamp::from_unix_millis(i64::MIN)),
        };
        cached.push(Cached {
            cell: self.id,
            alive: Arc::downgrade(&self.alive),
            generation,
            credentials,
            serve_until,
        });
        cached.last().expect("just pushed")
    }

    /// Publish the machine's current snapshot if it differs from the one
    /// published. Call it with the machine's lock held, so publications are
    /// ordered like the machine's changes.
    pub fn publish(&self, machine: &Machine) {
        let fresh = machine.snapshot();
        let unchanged = match (&*self.current.load(), &fresh) {
            (Some(old), Some(new)) => {
                Arc::ptr_eq(&old.credentials, &new.credentials)
                    && old.serve_until == new.serve_until
            }
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            self.current.store(fresh.map(Arc::new));
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

impl fmt::Debug for SnapshotCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotCell")
            .field("current", &self.current.load().as_deref())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credstate::{Config, Demand, Output, Response};
    use std::time::Duration;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_795_910_400);

    fn run_until_idle(machine: &mut Machine, now: Timestamp, expiration: &str) {
        loop {
            match machine.poll(now) {
                Output::Send(request) => {
                    let response = match request.path() {
                        "/latest/api/token" => Response::new(200, "token"),
                        path if path.ends_with('/') => Response::new(200, "web"),
                        _ => Response::new(
                            200,
                            format!(
                                r#"{{"Code":"Success","AccessKeyId":"ASIA-{expiration}","SecretAccessKey":"s",
                                    "Token":"t","Expiration":"{expiration}"}}"#
                            ),
                        ),
                    };
                    machine.handle_response(request.id, response, now).unwrap();
                }
                Output::Event(_) => {}
                _ => break,
            }
        }
    }

    fn machine_holding_credentials() -> Machine {
        let mut machine = Machine::new(Config::default(), 3).unwrap();
        assert!(matches!(machine.demand(NOW), Demand::Pending));
        run_until_idle(&mut machine, NOW, "2026-11-29T06:00:00Z");
        machine
    }

    #[test]
    fn an_empty_cell_serves_nothing() {
        assert!(SnapshotCell::new().servable_at(NOW).is_none());
    }

    #[test]
    fn published_credentials_are_served_until_the_mandatory_window() {
        let machine = machine_holding_credentials();
        let cell = SnapshotCell::new();
        cell.publish(&machine);
        let snapshot = machine.snapshot().unwrap();
        let served = cell.servable_at(NOW).unwrap();
        assert_eq!(*served, *snapshot.credentials);
        assert!(cell
            .servable_at(snapshot.serve_until - Duration::from_millis(1))
            .is_some());
        assert!(cell.servable_at(snapshot.serve_until).is_none());
    }

    #[test]
    fn a_thread_gets_the_same_arc_until_new_credentials_are_published() {
        let mut machine = machine_holding_credentials();
        let cell = SnapshotCell::new();
        cell.publish(&machine);
        let first = cell.servable_at(NOW).unwrap();
        let second = cell.servable_at(NOW).unwrap();
        assert!(Arc::ptr_eq(&first, &second));

        // Into the mandatory window: the machine refreshes.
        let later = Timestamp::parse_rfc3339("2026-11-29T05:59:30Z").unwrap();
        assert!(matches!(machine.demand(later), Demand::Pending));
        run_until_idle(&mut machine, later, "2026-11-29T12:00:00Z");
        cell.publish(&machine);
        let refreshed = cell.servable_at(later).unwrap();
        assert_eq!(refreshed.access_key_id, "ASIA-2026-11-29T12:00:00Z");
    }

    #[test]
    fn other_threads_get_equal_credentials_in_their_own_arc() {
        let machine = machine_holding_credentials();
        let cell = Arc::new(SnapshotCell::new());
        cell.publish(&machine);
        let here = cell.servable_at(NOW).unwrap();
        let there = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || cell.servable_at(NOW).unwrap())
                .join()
                .unwrap()
        };
        assert_eq!(*here, *there);
        assert!(!Arc::ptr_eq(&here, &there));
    }

    #[test]
    fn copies_of_dropped_cells_are_swept_on_the_next_miss() {
        let machine = machine_holding_credentials();
        let dropped = SnapshotCell::new();
        dropped.publish(&machine);
        assert!(dropped.servable_at(NOW).is_some());
        drop(dropped);
        let live = SnapshotCell::new();
        live.publish(&machine);
        assert!(live.servable_at(NOW).is_some());
        CACHED.with(|cached| {
            let cached = cached.borrow();
            assert!(cached.iter().all(|entry| entry.alive.strong_count() > 0));
        });
    }
}
