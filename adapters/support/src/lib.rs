//! What credstate's adapters share, so that each adapter is only its loop.
//!
//! - [`Clock`] and [`SystemClock`]: the wall clock as a [`credstate::Timestamp`]
//!   (reading it is IO, so it lives here and not in the core), and
//!   [`ManualClock`] for tests.
//! - [`SnapshotCell`]: the machine's [`credstate::Snapshot`] published through
//!   `arc-swap`, read on the hot path through a per-thread copy: a
//!   thread-local lookup, one comparison with the clock and one `Arc` clone,
//!   with no write to memory another thread reads.
//! - [`drain`]: one round of [`credstate::Machine::poll`] until the deadline,
//!   and [`read_file`] for the file reads it asks for.
//! - [`EventSink`]: forwards the machine's events to `tracing` (target
//!   `credstate`) with identical events rate-limited, and to an optional hook.
//! - [`default_seed`] and [`sleep_until`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod drain;
mod log;
mod snapshot;

pub use clock::{
    default_seed, sleep_until, Clock, ClockHandle, ManualClock, SystemClock, MAX_SLEEP,
};
pub use drain::{drain, read_file, Drained, Operation};
pub use log::{EventHook, EventLog, EventSink, DEFAULT_LOG_INTERVAL};
pub use snapshot::SnapshotCell;

/// The URL the configured source is fetched from when it is `https`, which
/// needs a TLS-capable transport.
#[must_use]
pub fn https_source(config: &credstate::Config) -> Option<&str> {
    let url = match &config.container {
        Some(container) => container.uri.as_str(),
        None => config.endpoint.as_str(),
    };
    url.starts_with("https://").then_some(url)
}
