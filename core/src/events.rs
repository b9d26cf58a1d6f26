//! Typed events: every decision the machine makes, with its reason.
//!
//! No event carries a secret; each has a stable [`Event::name`] and a
//! readable `Display`.

use core::fmt;
use core::time::Duration;

use crate::errors::{SourceError, TokenFailure};
use crate::time::{format_duration, Timestamp};

/// Why a fetch sequence started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchReason {
    /// No credentials are held and a caller asked.
    Cold,
    /// The advisory window opened: refresh ahead in the background.
    Advisory,
    /// A caller asked inside the mandatory window.
    Mandatory,
    /// The held credentials have expired and a caller asked.
    Expired,
    /// A retry after a failed fetch.
    Retry,
    /// The source returned unchanged credentials earlier; look again.
    Recheck,
    /// The wall clock jumped backwards; re-evaluate.
    ClockJump,
}

impl fmt::Display for FetchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchReason::Cold => "no credentials held",
            FetchReason::Advisory => "advisory refresh window",
            FetchReason::Mandatory => "mandatory refresh window",
            FetchReason::Expired => "credentials expired",
            FetchReason::Retry => "retry after failure",
            FetchReason::Recheck => "recheck after unchanged credentials",
            FetchReason::ClockJump => "wall clock jumped backwards",
        })
    }
}

/// Why the next background fetch is scheduled when it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScheduleReason {
    /// The start of the (jittered) advisory window of new credentials.
    AdvisoryWindow,
    /// The source returned the same credentials; space the next look out.
    UnchangedCredentials,
    /// Exponential backoff after the given number of failed fetches.
    Backoff {
        /// Consecutive failed fetch sequences.
        failures: u32,
    },
}

/// Something the machine decided or observed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A fetch sequence started.
    FetchStarted {
        /// Why.
        reason: FetchReason,
    },
    /// A new IMDS session token was obtained.
    TokenAcquired {
        /// Its lifetime.
        ttl: Duration,
    },
    /// The token request failed in a way that permits IMDSv1, which this
    /// fetch uses instead.
    FellBackToV1 {
        /// How the token request failed.
        cause: TokenFailure,
    },
    /// The extended credentials API answered 404; the legacy paths are used
    /// from now on.
    SwitchedToLegacyApi,
    /// A request failed and will be retried within the same fetch.
    AttemptFailed {
        /// Why.
        cause: SourceError,
        /// Failed attempts so far in this fetch.
        attempt: u32,
        /// Pause before the next attempt.
        retry_in: Duration,
    },
    /// Credentials arrived.
    CredentialsReceived {
        /// Their expiration.
        expires_at: Timestamp,
        /// Time left until expiration at arrival (zero if already expired).
        lifetime: Duration,
        /// Whether they are the same credentials already held.
        unchanged: bool,
    },
    /// The next background fetch is scheduled.
    RefreshScheduled {
        /// When.
        at: Timestamp,
        /// Why then.
        reason: ScheduleReason,
    },
    /// A fetch sequence failed.
    FetchFailed {
        /// Why.
        cause: SourceError,
        /// When the next fetch may start (background retry or next demand).
        retry_at: Timestamp,
    },
    /// A caller got the cached credentials while a refresh is in flight.
    ServingCachedWhileRefreshing {
        /// Their expiration.
        expires_at: Timestamp,
    },
    /// Static stability: expired credentials were extended.
    StaticStabilityExtended {
        /// Their original expiration.
        expired_at: Timestamp,
        /// They are served until this instant unless extended again.
        until: Timestamp,
    },
    /// A caller got expired credentials under static stability.
    ServingExpired {
        /// Their original expiration.
        expired_at: Timestamp,
        /// The end of the current extension.
        until: Timestamp,
    },
    /// A caller was refused credentials.
    Rejected {
        /// Why.
        cause: SourceError,
    },
    /// The wall clock went backwards; timers were shifted and a refresh
    /// re-evaluates the credentials.
    ClockJumpedBackwards {
        /// By how much.
        by: Duration,
    },
    /// Events were dropped because nobody drained them.
    EventsDropped {
        /// How many.
        count: u64,
    },
}

impl Event {
    /// A stable `snake_case` name, e.g. for JSON lines.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Event::FetchStarted { .. } => "fetch_started",
            Event::TokenAcquired { .. } => "token_acquired",
            Event::FellBackToV1 { .. } => "fell_back_to_v1",
            Event::SwitchedToLegacyApi => "switched_to_legacy_api",
            Event::AttemptFailed { .. } => "attempt_failed",
            Event::CredentialsReceived { .. } => "credentials_received",
            Event::RefreshScheduled { .. } => "refresh_scheduled",
            Event::FetchFailed { .. } => "fetch_failed",
            Event::ServingCachedWhileRefreshing { .. } => "serving_cached_while_refreshing",
            Event::StaticStabilityExtended { .. } => "static_stability_extended",
            Event::ServingExpired { .. } => "serving_expired",
            Event::Rejected { .. } => "rejected",
            Event::ClockJumpedBackwards { .. } => "clock_jumped_backwards",
            Event::EventsDropped { .. } => "events_dropped",
        }
    }

    /// Whether the event reports trouble (worth a warning in logs).
    #[must_use]
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::FellBackToV1 { .. }
                | Event::AttemptFailed { .. }
                | Event::FetchFailed { .. }
                | Event::StaticStabilityExtended { .. }
                | Event::ServingExpired { .. }
                | Event::Rejected { .. }
                | Event::ClockJumpedBackwards { .. }
                | Event::EventsDropped { .. }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::FetchStarted { reason } => write!(f, "fetch started ({reason})"),
            Event::TokenAcquired { ttl } => {
                write!(f, "IMDS session token acquired (ttl {})", format_duration(*ttl))
            }
            Event::FellBackToV1 { cause } => {
                write!(f, "IMDS token request failed ({cause}); using IMDSv1")
            }
            Event::SwitchedToLegacyApi => {
                f.write_str("extended credentials API not available; using the legacy paths")
            }
            Event::AttemptFailed {
                cause,
                attempt,
                retry_in,
            } => write!(
                f,
                "attempt {attempt} failed: {cause}; retrying in {}",
                format_duration(*retry_in)
            ),
            Event::CredentialsReceived {
                expires_at,
                lifetime,
                unchanged,
            } => write!(
                f,
                "{} credentials expiring {expires_at} (in {})",
                if *unchanged { "unchanged" } else { "new" },
                format_duration(*lifetime)
            ),
            Event::RefreshScheduled { at, reason } => match reason {
                ScheduleReason::AdvisoryWindow => write!(f, "refresh scheduled at {at} (advisory window)"),
                ScheduleReason::UnchangedCredentials => {
                    write!(f, "recheck scheduled at {at} (credentials unchanged)")
                }
                ScheduleReason::Backoff { failures } => {
                    write!(f, "retry scheduled at {at} (backoff after {failures} failed fetches)")
                }
            },
            Event::FetchFailed { cause, retry_at } => {
                write!(f, "fetch failed: {cause}; next attempt from {retry_at}")
            }
            Event::ServingCachedWhileRefreshing { expires_at } => {
                write!(f, "serving cached credentials (expiring {expires_at}) while refreshing")
            }
            Event::StaticStabilityExtended { expired_at, until } => write!(
                f,
                "static stability: credentials that expired at {expired_at} are served until {until}"
            ),
            Event::ServingExpired { expired_at, until } => write!(
                f,
                "serving credentials that expired at {expired_at} (static stability until {until})"
            ),
            Event::Rejected { cause } => write!(f, "rejected: {cause}"),
            Event::ClockJumpedBackwards { by } => {
                write!(f, "wall clock jumped backwards by {}", format_duration(*by))
            }
            Event::EventsDropped { count } => write!(f, "{count} events dropped (not drained)"),
        }
    }
}
