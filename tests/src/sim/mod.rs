//! The simulation harness: a scenario's callers and simulated IMDS run
//! against a refresh policy on simulated time, in milliseconds of CPU per
//! simulated day.
//!
//! - [`imds`]: the simulated IMDS (FIELD-GUIDE §1) with seeded faults.
//! - [`container`]: the simulated container credentials agent (ECS, EKS Pod
//!   Identity; FIELD-GUIDE §2) and its rotating token file, for scenarios
//!   whose configuration selects the container source.
//! - [`clock`]: true time, and the host's wall clock that can jump.
//! - [`policy`]: the policies — credstate ([`policy::MachineClient`]) and
//!   the Java v1 seed system ([`java_v1::JavaV1Client`]) — behind one
//!   [`policy::Client`] interface.
//! - [`harness`]: the discrete-event loop and its [`harness::Metrics`].
//! - [`timeline`]: what happened, printable, as JSON, or condensed.
//!
//! ```
//! use credstate_tests::scenario::{Scenario, DEFAULT_SCENARIO};
//! use credstate_tests::sim::{simulate, PolicyKind};
//!
//! let scenario = Scenario::from_json(DEFAULT_SCENARIO).unwrap();
//! let credstate = simulate(&scenario, PolicyKind::Default).unwrap();
//! let java = simulate(&scenario, PolicyKind::JavaV1).unwrap();
//! assert!(java.metrics.rejected > credstate.metrics.rejected);
//! assert!(java.metrics.max_gap_ms > credstate.metrics.max_gap_ms);
//! ```
//!
//! The loop steps to the earliest of: the next call, the next answer of
//! IMDS or the container agent (after the scenario's latency, or the
//! request's timeout when the server hangs) or token-file read,
//! the policy's wake-up, and the next fault boundary or clock jump. Calls
//! that a policy cannot answer at once wait, and are answered when an input
//! lets it. Every run is bounded by [`harness::ITERATION_CAP`].

pub mod clock;
pub mod container;
pub mod harness;
pub mod imds;
mod issuer;
pub mod java_v1;
pub mod policy;
pub mod rng;
pub mod timeline;

pub use harness::{simulate, CallOutcome, CallRecord, Metrics, Run};
pub use policy::PolicyKind;
pub use timeline::{digest, DigestLine, Entry, Note, TimelineEntry};
