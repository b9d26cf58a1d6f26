//! # credstate
//!
//! A pure, sans-IO state machine that keeps AWS temporary credentials from the
//! EC2 instance metadata service (IMDS) or a container endpoint (ECS, EKS Pod
//! Identity) valid: it decides when to fetch, when
//! to refresh ahead of expiry, when to keep serving and when to reject, from
//! an injected clock and injected HTTP responses. It never reads a clock,
//! sleeps, spawns or touches the network, so every behaviour is testable
//! deterministically and the same core runs under tokio, plain threads and
//! WebAssembly.
//!
//! Start with [`Machine`]: its documentation teaches the run loop. The
//! defaults in [`Config`] follow the project's field guide:
//!
//! - credentials are usable until `Expiration − 10 s` and never handed out
//!   past that, except under static stability;
//! - refresh runs ahead of expiry, off the caller's path, in a jittered
//!   advisory window scaled by lifetime (5 / 15 / 60 min); in the last minute
//!   callers wait for it;
//! - one fetch is in flight at a time, shared by every caller;
//! - the IMDSv2 session token is cached and renewed 120 s before its TTL;
//!   IMDSv1 is the fallback only where the field guide's table allows it;
//! - failures back off exponentially with jitter and never cost the
//!   credentials already held;
//! - the container source shares all of the above; its token file is read
//!   afresh (through the adapter, as [`Output::ReadFile`]) before every fetch.
//!
//! [`resolve_config`] turns explicit settings, the environment and the AWS
//! config file into a [`Config`], recording where every value came from.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

extern crate alloc;

mod actions;
mod backoff;
mod config;
mod container;
mod credentials;
mod errors;
mod events;
mod file_read;
mod machine;
mod parse;
mod resolve;
mod rng;
mod source;
mod time;
mod timers;

pub use actions::{
    Demand, HeaderValue, Method, Output, Request, RequestId, Response, Snapshot, Step,
    TransportFailure,
};
pub use config::{Config, Stability};
pub use container::{
    validate_container_uri, AuthTokenProblem, ContainerAuth, ContainerSource, ContainerUriError,
    ECS_CONTAINER_ENDPOINT,
};
pub use credentials::{Credentials, Secret};
pub use errors::{
    BadResponse, ConfigError, DurationParseError, MisuseError, SourceError, TokenFailure,
    V1DisabledBy,
};
pub use events::{Event, FetchReason, ScheduleReason};
pub use file_read::{FileError, FileRead, FileReadId};
pub use machine::{Machine, Unavailable};
pub use parse::{parse_credentials, parse_role_list, parse_token};
pub use resolve::{
    config_file_path, origin_key, resolve_config, ConfigReport, ContainerReport, EndpointMode,
    Environment, ImdsReport, ImdsSettings, Origin, ProfileFile, ResolveError, ResolvedConfig,
    Settings, SourceKind,
};
pub use time::{format_duration, parse_duration, serde_duration, Timestamp};
