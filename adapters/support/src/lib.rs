//! What credstate's adapters share, so that each adapter is only its loop.
//!
//! - [`Clock`] and [`SystemClock`]: the wall clock as a [`credstate::Timestamp`]
//!   (reading it is IO, so it lives here and not in the core), and
//!   [`ManualClock`] for tests.
//! - [`SnapshotCell`]: the machine's [`credstate::Snapshot`] published through
//!   `arc-swap`, read on the hot path through a per-thread copy: a
//!   thread-local lookup, one comparison with the clock and one `Arc` clone,
//!   with no write to memory another thread reads.
//! - [`caller_demand`]: a caller's demand and whether it leaves the driver
//!   work; [`drain`]: one round of [`credstate::Machine::poll`] until the
//!   deadline; [`read_file`] for the file reads it asks for; [`report`] to
//!   hand the outcome of each operation back.
//! - [`EventSink`]: forwards the machine's events to `tracing` (target
//!   `credstate`) with identical events rate-limited, and to an optional hook.
//! - [`ProviderSettings`]: what every adapter's builder configures besides
//!   its transport, turned into the machine, clock and sink a provider runs
//!   on; `provider_settings_setters!` writes the builders' setters for it.
//! - [`default_seed`] and [`sleep_until`].
//! - With the `test-support` feature, `testing`: fixtures the adapters'
//!   tests share.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod drain;
mod environment;
mod log;
mod settings;
mod snapshot;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use clock::{
    default_seed, sleep_until, Clock, ClockHandle, ManualClock, SystemClock, MAX_SLEEP,
};
pub use drain::{
    caller_demand, drain, read_file, report, CallerDemand, Drained, Operation, Outcome,
};
pub use environment::{process_machine_config, resolve_process_config, EnvironmentError};
pub use log::{EventHook, EventLog, EventSink, DEFAULT_LOG_INTERVAL};
pub use settings::{ProviderParts, ProviderSettings};
pub use snapshot::SnapshotCell;

/// The URL the configured source is fetched from when it is `https`, which
/// needs a TLS-capable transport.
#[must_use]
pub fn https_source(config: &credstate::Config) -> Option<&str> {
    let url = config.source_url();
    url.starts_with("https://").then_some(url)
}
