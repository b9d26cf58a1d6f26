//! Forwarding the machine's events to `tracing`, rate-limited, and to a hook.

use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use credstate::Event;

/// A callback that sees every event the machine emits, unthrottled, on the
/// adapter's driver. It must return quickly and must not hold a provider
/// handle (that would keep the provider alive forever).
pub type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identical events are logged at most once per this interval by default.
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Events that differ only in their instants count as identical: an outage
/// repeats the same failure with a new retry time each round.
type EventKey = (&'static str, Option<&'static str>);

fn key_of(event: &Event) -> EventKey {
    let cause = match event {
        Event::Rejected { cause }
        | Event::FetchFailed { cause, .. }
        | Event::AttemptFailed { cause, .. } => Some(cause.name()),
        _ => None,
    };
    (event.name(), cause)
}

#[derive(Debug)]
struct Window {
    opened_at: Instant,
    suppressed: u64,
}

/// Logs events to `tracing` (target `credstate`), each kind at most once per
/// interval; the next line logged for a kind says how many were suppressed.
///
/// Warnings ([`Event::is_warning`]) log at WARN, new credentials at INFO,
/// routine steps at DEBUG. Events never carry secrets (the core's guarantee),
/// and only their `Display` and name are logged.
#[derive(Debug)]
pub struct EventLog {
    interval: Duration,
    windows: HashMap<EventKey, Window>,
}

impl EventLog {
    /// A log that lets one event of a kind through per `interval` (zero: all).
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        EventLog {
            interval,
            windows: HashMap::new(),
        }
    }

    /// Whether `event`, arriving at `at`, is logged: `Some(n)` with the number
    /// of identical events suppressed since the last one logged, or `None`
    /// when it is suppressed.
    pub fn admit(&mut self, event: &Event, at: Instant) -> Option<u64> {
        match self.windows.get_mut(&key_of(event)) {
            Some(window) if at.saturating_duration_since(window.opened_at) < self.interval => {
                window.suppressed += 1;
                None
            }
            Some(window) => {
                window.opened_at = at;
                Some(std::mem::take(&mut window.suppressed))
            }
            None => {
                self.windows.insert(
                    key_of(event),
                    Window {
                        opened_at: at,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Log `event` unless an identical one was logged within the interval.
    pub fn record(&mut self, event: &Event, at: Instant) {
        if let Some(suppressed) = self.admit(event, at) {
            emit(event, suppressed);
        }
    }
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::new(DEFAULT_LOG_INTERVAL)
    }
}

macro_rules! log_at {
    ($level:ident, $event:expr, $suppressed:expr) => {{
        let event = $event;
        let name = event.name();
        if $suppressed > 0 {
            tracing::$level!(target: "credstate", event = name, suppressed = $suppressed, "{event}");
        } else {
            tracing::$level!(target: "credstate", event = name, "{event}");
        }
    }};
}

fn emit(event: &Event, suppressed: u64) {
    if event.is_warning() {
        log_at!(warn, event, suppressed);
    } else if matches!(
        event,
        Event::CredentialsReceived { .. } | Event::SwitchedToLegacyApi
    ) {
        log_at!(info, event, suppressed);
    } else {
        log_at!(debug, event, suppressed);
    }
}

/// Where an adapter's driver delivers the events it drained: the rate-limited
/// [`EventLog`] and, unthrottled, an optional [`EventHook`].
pub struct EventSink {
    log: EventLog,
    hook: Option<EventHook>,
}

impl EventSink {
    /// A sink logging with `log` and calling `hook` for every event.
    #[must_use]
    pub fn new(log: EventLog, hook: Option<EventHook>) -> Self {
        EventSink { log, hook }
    }

    /// Log and hand over each event, in order.
    pub fn deliver(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let now = Instant::now();
        for event in events {
            self.log.record(&event, now);
            if let Some(hook) = &self.hook {
                // A panicking hook must not take the driver, and with it every
                // caller's credentials, down.
                if catch_unwind(AssertUnwindSafe(|| hook(&event))).is_err() {
                    tracing::error!(
                        target: "credstate",
                        event = event.name(),
                        "the event hook panicked; the event was dropped"
                    );
                }
            }
        }
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("log", &self.log)
            .field("hook", &self.hook.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::capture_logs as capture;
    use credstate::{SourceError, Step, Timestamp, TransportFailure};
    use std::sync::Mutex;

    fn fetch_failed(retry_secs: i64) -> Event {
        Event::FetchFailed {
            cause: SourceError::ServerError {
                step: Step::ImdsRoleList,
                status: 500,
            },
            retry_at: Timestamp::from_unix_secs(retry_secs),
        }
    }

    fn unreachable() -> Event {
        Event::FetchFailed {
            cause: SourceError::Unreachable {
                step: Step::ImdsToken,
                failure: TransportFailure::ConnectRefused,
            },
            retry_at: Timestamp::from_unix_secs(1),
        }
    }

    #[test]
    fn identical_events_are_logged_once_per_interval_with_the_suppressed_count() {
        let mut log = EventLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert_eq!(log.admit(&fetch_failed(1), at(0)), Some(0));
        assert_eq!(log.admit(&fetch_failed(2), at(10)), None);
        assert_eq!(log.admit(&fetch_failed(3), at(59)), None);
        assert_eq!(log.admit(&fetch_failed(4), at(60)), Some(2));
        assert_eq!(log.admit(&fetch_failed(5), at(61)), None);
    }

    #[test]
    fn different_causes_and_kinds_are_not_suppressed_by_each_other() {
        let mut log = EventLog::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(log.admit(&fetch_failed(1), now), Some(0));
        assert_eq!(log.admit(&unreachable(), now), Some(0));
        assert_eq!(log.admit(&Event::SwitchedToLegacyApi, now), Some(0));
    }

    #[test]
    fn a_zero_interval_logs_everything() {
        let mut log = EventLog::new(Duration::ZERO);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(log.admit(&fetch_failed(1), now), Some(0));
        }
    }

    #[test]
    fn an_outage_logs_one_warning_per_interval_then_says_how_many_were_suppressed() {
        let output = capture(|| {
            let mut log = EventLog::new(Duration::from_secs(60));
            let start = Instant::now();
            for second in 0..=120 {
                log.record(
                    &fetch_failed(second),
                    start + Duration::from_secs(second as u64),
                );
            }
        });
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 3, "{output}");
        assert!(lines.iter().all(|line| line.contains("WARN")
            && line.contains("credstate")
            && line.contains("event=\"fetch_failed\"")
            && line.contains("HTTP 500")));
        assert!(!lines[0].contains("suppressed"));
        assert!(lines[1].contains("suppressed=59"), "{}", lines[1]);
        assert!(lines[2].contains("suppressed=59"), "{}", lines[2]);
    }

    #[test]
    fn the_hook_sees_every_event_and_a_panicking_hook_is_contained() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let hook: EventHook = Arc::new(move |event: &Event| {
            recorder.lock().unwrap().push(event.name());
            if matches!(event, Event::SwitchedToLegacyApi) {
                panic!("hook failure under test");
            }
        });
        let mut sink = EventSink::new(EventLog::default(), Some(hook));
        let output = capture(|| {
            sink.deliver(vec![
                fetch_failed(1),
                fetch_failed(2),
                Event::SwitchedToLegacyApi,
                unreachable(),
            ]);
        });
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "fetch_failed",
                "fetch_failed",
                "switched_to_legacy_api",
                "fetch_failed"
            ]
        );
        assert!(output.contains("the event hook panicked"), "{output}");
    }
}
