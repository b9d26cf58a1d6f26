//! The credential state machine.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::actions::{
    Demand, Output, Request, RequestId, Response, Snapshot, Step, TransportFailure,
};
use crate::backoff::Backoff;
use crate::config::{Config, Stability};
use crate::credentials::Credentials;
use crate::errors::{BadResponse, ConfigError, MisuseError, SourceError};
use crate::events::{Event, FetchReason, ScheduleReason};
use crate::file_read::{FileError, FileRead, FileReadId};
use crate::rng::Rng;
use crate::source::{Action, Progress, Sequence, Source};
use crate::time::Timestamp;
use crate::timers::{Timer, Timers};

/// Undrained events beyond this are counted, not stored.
const EVENT_QUEUE_LIMIT: usize = 1024;

/// Request ids of one machine start at a multiple of 2^32 drawn from below
/// 2^20 by the seed (on a stream of its own, so jitter is unchanged), so they
/// stay exact as JavaScript numbers (below 2^53).
fn request_id_base(seed: u64) -> u64 {
    const BASES: u64 = 1 << 20;
    let mut ids = Rng::new(seed ^ 0x5EED_1D5E_ED1D_5EED);
    (1 + ids.next_u64() % (BASES - 1)) << 32
}

/// Keeps one source's credentials valid.
///
/// The machine is pure: it never reads a clock, sleeps or does IO. Every
/// method takes the caller's wall-clock `now`; time may jump either way.
///
/// Methods come in four kinds:
///
/// - **Queries** (`&self`): [`credentials`](Self::credentials),
///   [`snapshot`](Self::snapshot), [`is_fetching`](Self::is_fetching),
///   [`next_deadline`](Self::next_deadline), [`config`](Self::config).
/// - **Caller demand**: [`demand`](Self::demand) — a caller wants
///   credentials; the answer is ready, wait, or a typed rejection.
/// - **Inputs**: [`handle_response`](Self::handle_response),
///   [`handle_failure`](Self::handle_failure) for the requests it issued,
///   [`handle_file`](Self::handle_file) for the files it asked to read, and
///   [`handle_timeout`](Self::handle_timeout) when a deadline passes. Early,
///   late and repeated calls are harmless.
/// - **Output**: [`poll`](Self::poll) returns the next [`Output`] — a request
///   to send, a file to read, an event, and finally the deadline to wake at.
///
/// Any call is allowed at any time; nothing has to be drained first.
///
/// # The run loop
///
/// 1. On a caller's demand, call [`demand`](Self::demand). `Ready` hands out
///    credentials; `Pending` means park the caller until the next input has
///    been handled, then ask again; `Rejected` is the error to return.
/// 2. Call [`poll`](Self::poll) until it returns [`Output::WakeAt`] or
///    [`Output::Idle`]: perform each [`Output::Send`] (respecting its
///    `timeout`), read each [`Output::ReadFile`] (the container source's token
///    file), log each [`Output::Event`].
/// 3. Report each request's outcome with `handle_response` or
///    `handle_failure`, each file's with `handle_file`; at the deadline call
///    `handle_timeout`. Go to 2.
///
/// ```
/// use credstate::{Config, Demand, Machine, Output, Response, Timestamp};
///
/// let mut machine = Machine::new(Config::default(), 7).unwrap();
/// let now = Timestamp::from_unix_secs(1_795_910_400); // 2026-11-29T00:00:00Z
/// assert!(matches!(machine.demand(now), Demand::Pending));
/// let body = r#"{"Code":"Success","AccessKeyId":"ASIA1","SecretAccessKey":"s",
///               "Token":"t","Expiration":"2026-11-29T06:00:00Z"}"#;
/// loop {
///     match machine.poll(now) {
///         Output::Send(request) => {
///             let response = match request.path() {
///                 "/latest/api/token" => Response::new(200, "token"),
///                 "/latest/meta-data/iam/security-credentials-extended/" => Response::new(200, "web"),
///                 _ => Response::new(200, body),
///             };
///             machine.handle_response(request.id, response, now).unwrap();
///         }
///         Output::Event(event) => println!("{event}"),
///         _ => break,
///     }
/// }
/// assert!(matches!(machine.demand(now), Demand::Ready(_)));
/// ```
#[derive(Debug)]
pub struct Machine {
    config: Config,
    source: Source,
    rng: Rng,
    held: Option<Held>,
    fetch: Option<Fetch>,
    timers: Timers,
    refresh_reason: FetchReason,
    backoff: Backoff,
    events: VecDeque<Event>,
    dropped_events: u64,
    last_fetch_start: Option<Timestamp>,
    /// Demands may not start a fetch before this (backoff or a remembered
    /// non-recoverable failure).
    not_before: Option<Timestamp>,
    last_failure: Option<SourceError>,
    failing_since: Option<Timestamp>,
    last_now: Option<Timestamp>,
    /// Request and file-read ids run from here, a base drawn from the seed,
    /// so an id fed to the wrong machine is caught as misuse.
    first_request_id: u64,
    next_request_id: u64,
}

#[derive(Debug)]
struct Held {
    credentials: Arc<Credentials>,
    usable_until: Timestamp,
    mandatory_at: Timestamp,
    /// Static stability: expired credentials are served until this instant.
    extended_until: Option<Timestamp>,
}

#[derive(Debug)]
struct Fetch {
    sequence: Sequence,
    failed_attempts: u32,
    in_flight: Option<InFlight>,
    /// The step of the last request sent, to name it (with the role actually
    /// discovered) in errors about the credentials it brought.
    last_step: Option<Step>,
}

#[derive(Debug)]
struct InFlight {
    /// The raw [`RequestId`] or [`FileReadId`]; one counter numbers both.
    id: u64,
    kind: Operation,
    sent_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Request,
    FileRead,
}

/// Why [`Machine::credentials`] has none to hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// A fetch is in flight or due; a [`Machine::demand`] would wait for it.
    Fetching,
    /// A demand would be rejected with this cause.
    Failed(SourceError),
}

/// The outcome of assessing a demand, before acting on it.
enum Verdict {
    Serve(Arc<Credentials>, Serving),
    Wait,
    Start(FetchReason),
    Reject(SourceError),
}

enum Serving {
    Fresh,
    WhileRefreshing,
    Expired { until: Timestamp },
}

impl Machine {
    /// A machine with this configuration; `seed` drives every jitter, so a
    /// run is reproducible from it.
    pub fn new(config: Config, seed: u64) -> Result<Machine, ConfigError> {
        config.validate()?;
        Ok(Machine {
            source: Source::from_config(&config),
            config,
            rng: Rng::new(seed),
            held: None,
            fetch: None,
            timers: Timers::default(),
            refresh_reason: FetchReason::Advisory,
            backoff: Backoff::default(),
            events: VecDeque::new(),
            dropped_events: 0,
            last_fetch_start: None,
            not_before: None,
            last_failure: None,
            failing_since: None,
            last_now: None,
            first_request_id: request_id_base(seed),
            next_request_id: request_id_base(seed),
        })
    }

    // ----- queries -------------------------------------------------------

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The credentials a demand at `now` would hand out, or why not — without
    /// changing anything (no fetch starts, no event is emitted).
    pub fn credentials(&self, now: Timestamp) -> Result<Arc<Credentials>, Unavailable> {
        match self.assess(now) {
            Verdict::Serve(credentials, _) => Ok(credentials),
            Verdict::Wait | Verdict::Start(_) => Err(Unavailable::Fetching),
            Verdict::Reject(cause) => Err(Unavailable::Failed(cause)),
        }
    }

    /// The credentials callers may use without asking, and until when; see
    /// [`Snapshot`]. Changes only when credentials arrive.
    #[must_use]
    pub fn snapshot(&self) -> Option<Snapshot> {
        let held = self.held.as_ref()?;
        Some(Snapshot {
            credentials: Arc::clone(&held.credentials),
            serve_until: held.mandatory_at.min(held.usable_until),
        })
    }

    /// Whether a fetch sequence is in progress.
    #[must_use]
    pub fn is_fetching(&self) -> bool {
        self.fetch.is_some()
    }

    /// The earliest instant at which the machine wants
    /// [`handle_timeout`](Self::handle_timeout), if any.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    // ----- caller demand -------------------------------------------------

    /// A caller wants credentials at `now`.
    pub fn demand(&mut self, now: Timestamp) -> Demand {
        self.advance(now);
        let mut verdict = self.assess(now);
        if let Verdict::Start(reason) = verdict {
            self.start_fetch(reason, now);
            verdict = self.assess(now);
        }
        match verdict {
            Verdict::Serve(credentials, serving) => {
                match serving {
                    Serving::Fresh => {}
                    Serving::WhileRefreshing => self.emit(Event::ServingCachedWhileRefreshing {
                        expires_at: credentials.expiration,
                    }),
                    Serving::Expired { until } => self.emit(Event::ServingExpired {
                        expired_at: credentials.expiration,
                        until,
                    }),
                }
                Demand::Ready(credentials)
            }
            Verdict::Wait | Verdict::Start(_) => Demand::Pending,
            Verdict::Reject(cause) => {
                self.emit(Event::Rejected {
                    cause: cause.clone(),
                });
                Demand::Rejected(cause)
            }
        }
    }

    // ----- inputs --------------------------------------------------------

    /// The response to request `id`. A response to a request the machine
    /// abandoned (timed out, superseded) is ignored.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: Response,
        now: Timestamp,
    ) -> Result<(), MisuseError> {
        let Some(in_flight) = self.take_in_flight(id)? else {
            self.advance(now);
            return Ok(());
        };
        self.advance(now);
        let mut events = Vec::new();
        let progress = match &mut self.fetch {
            Some(fetch) => self.source.on_response(
                &mut fetch.sequence,
                &response,
                in_flight.sent_at,
                &mut events,
            ),
            None => return Ok(()),
        };
        self.emit_all(events);
        self.apply(progress, now);
        Ok(())
    }

    /// The contents of the file asked for with `id` (at most
    /// [`FileRead::max_bytes`] + 1 bytes of it), or why it could not be read.
    /// The outcome of a read the machine abandoned (timed out) is ignored.
    pub fn handle_file(
        &mut self,
        id: FileReadId,
        contents: Result<Vec<u8>, FileError>,
        now: Timestamp,
    ) -> Result<(), MisuseError> {
        let in_flight = self
            .take_operation(id.0, Operation::FileRead)
            .ok_or(MisuseError::UnknownFileRead(id))?;
        self.advance(now);
        if in_flight.is_none() {
            return Ok(());
        }
        let progress = match &mut self.fetch {
            Some(fetch) => self.source.on_file(&mut fetch.sequence, contents),
            None => return Ok(()),
        };
        self.apply(progress, now);
        Ok(())
    }

    /// Request `id` failed below HTTP.
    pub fn handle_failure(
        &mut self,
        id: RequestId,
        failure: TransportFailure,
        now: Timestamp,
    ) -> Result<(), MisuseError> {
        if self.take_in_flight(id)?.is_some() {
            self.advance(now);
            self.fail_in_flight(failure, now);
        } else {
            self.advance(now);
        }
        Ok(())
    }

    /// Fire whatever is due at `now`. Calling early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    // ----- output --------------------------------------------------------

    /// The next thing to do. Call until it returns [`Output::WakeAt`] or
    /// [`Output::Idle`].
    pub fn poll(&mut self, now: Timestamp) -> Output {
        self.advance(now);
        if self.dropped_events > 0 && self.events.len() < EVENT_QUEUE_LIMIT {
            let count = core::mem::take(&mut self.dropped_events);
            self.events.push_back(Event::EventsDropped { count });
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if let Some(output) = self.next_action(now) {
            return output;
        }
        match self.timers.next() {
            Some(at) => Output::WakeAt(at),
            None => Output::Idle,
        }
    }

    // ----- internals -----------------------------------------------------

    fn emit(&mut self, event: Event) {
        if self.events.len() >= EVENT_QUEUE_LIMIT {
            self.dropped_events += 1;
        } else {
            self.events.push_back(event);
        }
    }

    fn emit_all(&mut self, events: Vec<Event>) {
        for event in events {
            self.emit(event);
        }
    }

    fn take_in_flight(&mut self, id: RequestId) -> Result<Option<InFlight>, MisuseError> {
        self.take_operation(id.0, Operation::Request)
            .ok_or(MisuseError::UnknownRequest(id))
    }

    /// `None` when the machine never issued `raw` as this kind of operation;
    /// `Some(None)` when it did but no longer waits for it.
    fn take_operation(&mut self, raw: u64, kind: Operation) -> Option<Option<InFlight>> {
        if !(self.first_request_id..self.next_request_id).contains(&raw) {
            return None;
        }
        let Some(fetch) = &mut self.fetch else {
            return Some(None);
        };
        match &fetch.in_flight {
            Some(current) if current.id == raw && current.kind != kind => None,
            Some(current) if current.id == raw => {
                self.timers.clear(Timer::RequestDeadline);
                Some(fetch.in_flight.take())
            }
            _ => Some(None),
        }
    }

    fn next_action(&mut self, now: Timestamp) -> Option<Output> {
        let fetch = self.fetch.as_mut()?;
        if fetch.in_flight.is_some() || self.timers.get(Timer::AttemptPause).is_some() {
            return None;
        }
        let action = self.source.next_action(&fetch.sequence);
        let id = self.next_request_id;
        self.next_request_id += 1;
        let (kind, timeout) = match &action {
            Action::Http(outgoing) => (Operation::Request, outgoing.timeout),
            Action::ReadFile(file) => (Operation::FileRead, file.timeout),
        };
        fetch.in_flight = Some(InFlight {
            id,
            kind,
            sent_at: now,
        });
        self.timers.set(Timer::RequestDeadline, now + timeout);
        let max_bytes = self.config.max_body_bytes;
        if let Action::Http(outgoing) = &action {
            fetch.last_step = Some(outgoing.step.clone());
        }
        Some(match action {
            Action::Http(outgoing) => Output::Send(Request {
                id: RequestId(id),
                step: outgoing.step,
                method: outgoing.method,
                url: outgoing.url,
                headers: outgoing.headers,
                timeout: outgoing.timeout,
                max_body_bytes: max_bytes,
            }),
            Action::ReadFile(file) => Output::ReadFile(FileRead {
                id: FileReadId(id),
                step: file.step,
                path: file.path,
                max_bytes,
                timeout: file.timeout,
            }),
        })
    }

    /// Notice clock jumps, then fire every due timer.
    fn advance(&mut self, now: Timestamp) {
        if let Some(last) = self.last_now {
            let back = last.millis_since(now);
            if back > self.config.clock_jump_tolerance.as_millis() as i64 {
                self.on_clock_jumped_back(back, now);
            }
        }
        self.last_now = Some(self.last_now.map_or(now, |last| {
            if last.millis_since(now) > self.config.clock_jump_tolerance.as_millis() as i64 {
                now
            } else {
                last.max(now)
            }
        }));
        while let Some((timer, due_at)) = self.timers.pop_due(now) {
            match timer {
                Timer::RequestDeadline => {
                    let Some(fetch) = &mut self.fetch else {
                        continue;
                    };
                    if fetch.in_flight.take().is_none() {
                        continue;
                    }
                    // Noticed long after it was due, the deadline says the
                    // wall clock leapt or the host slept, not that the
                    // source is slow: the request's fate is unknown, so it
                    // is sent again (a token PUT taken for timed out would
                    // read as the hop-limit symptom).
                    let late = now.millis_since(due_at);
                    if late <= self.config.clock_jump_tolerance.as_millis() as i64 {
                        self.fail_in_flight(TransportFailure::TimedOut, now);
                    }
                }
                Timer::AttemptPause => {}
                Timer::Refresh => {
                    if self.fetch.is_none() {
                        let allowed_at = self.rate_limit_until();
                        match allowed_at {
                            Some(at) if now < at => self.timers.set(Timer::Refresh, at),
                            _ => self.start_fetch(self.overdue_reason(now), now),
                        }
                    }
                }
            }
        }
        self.extend_if_expired_while_failing(now);
    }

    /// A refresh planned ahead that only runs once the credentials have
    /// expired (the clock jumped, the host slept) is labelled for what it is.
    fn overdue_reason(&self, now: Timestamp) -> FetchReason {
        let expired = self
            .held
            .as_ref()
            .is_some_and(|held| now >= held.usable_until);
        match self.refresh_reason {
            FetchReason::Advisory | FetchReason::Recheck if expired => FetchReason::Expired,
            reason => reason,
        }
    }

    /// Credentials that expire while the last refresh has failed and the next
    /// attempt is still in backoff are served under static stability from the
    /// moment they expire, not only after the next failure.
    fn extend_if_expired_while_failing(&mut self, now: Timestamp) {
        let Some(held) = &self.held else { return };
        let unextended = held.extended_until.is_none();
        let within_bound = now < held.credentials.expiration + self.config.max_degraded;
        if self.failing_since.is_some() && unextended && within_bound && now >= held.usable_until {
            self.extend_if_expired(now);
        }
    }

    /// A backward step of the wall clock: everything measured from "now"
    /// (timers, backoff, extensions, the token's TTL) moves with the clock so
    /// nothing freezes, and a refresh re-evaluates the credentials, whose
    /// expiration is an absolute time that the clock may have disagreed with.
    fn on_clock_jumped_back(&mut self, back_millis: i64, now: Timestamp) {
        let shift = -back_millis;
        self.timers.shift_by_millis(shift);
        self.source.shift_by_millis(shift);
        for instant in [
            &mut self.last_fetch_start,
            &mut self.not_before,
            &mut self.failing_since,
        ]
        .into_iter()
        .flatten()
        {
            *instant = instant.shifted_by_millis(shift);
        }
        if let Some(held) = &mut self.held {
            if let Some(until) = &mut held.extended_until {
                *until = until.shifted_by_millis(shift);
            }
        }
        if let Some(in_flight) = self.fetch.as_mut().and_then(|f| f.in_flight.as_mut()) {
            in_flight.sent_at = in_flight.sent_at.shifted_by_millis(shift);
        }
        self.emit(Event::ClockJumpedBackwards {
            by: Duration::from_millis(back_millis as u64),
        });
        if self.held.is_some() && self.fetch.is_none() {
            // A failing source keeps its backoff (shifted above): a clock
            // flapping back and forth must not turn into a fetch per flap.
            let at = self
                .not_before
                .map_or(now, |not_before| not_before.max(now));
            self.refresh_reason = FetchReason::ClockJump;
            self.timers.set(Timer::Refresh, at);
        }
    }

    fn rate_limit_until(&self) -> Option<Timestamp> {
        self.last_fetch_start
            .map(|start| start + self.config.min_fetch_interval)
    }

    fn may_start(&self, now: Timestamp) -> bool {
        self.fetch.is_none()
            && self.rate_limit_until().is_none_or(|at| now >= at)
            && self.not_before.is_none_or(|at| now >= at)
    }

    fn assess(&self, now: Timestamp) -> Verdict {
        let fetching = self.fetch.is_some();
        let Some(held) = &self.held else {
            return if fetching {
                Verdict::Wait
            } else if self.may_start(now) {
                Verdict::Start(FetchReason::Cold)
            } else {
                Verdict::Reject(
                    self.last_failure
                        .clone()
                        .unwrap_or(SourceError::Unreachable {
                            step: self.source.first_step(),
                            failure: TransportFailure::TimedOut,
                        }),
                )
            };
        };
        let credentials = Arc::clone(&held.credentials);
        if now < held.mandatory_at && now < held.usable_until {
            let serving = if fetching {
                Serving::WhileRefreshing
            } else {
                Serving::Fresh
            };
            return Verdict::Serve(credentials, serving);
        }
        if now < held.usable_until {
            // The mandatory window: wait for a refresh, but fall back to the
            // still-valid credentials when none can run.
            return if fetching {
                Verdict::Wait
            } else if self.may_start(now) {
                Verdict::Start(FetchReason::Mandatory)
            } else {
                Verdict::Serve(credentials, Serving::Fresh)
            };
        }
        if let Some(until) = held.extended_until.filter(|until| now < *until) {
            return Verdict::Serve(credentials, Serving::Expired { until });
        }
        if fetching {
            Verdict::Wait
        } else if self.may_start(now) {
            Verdict::Start(FetchReason::Expired)
        } else if self.last_failure.is_none() && self.timers.get(Timer::Refresh).is_some() {
            // Nothing has failed: the next look (spaced after unchanged
            // credentials, or rate-limited) is only moments away.
            Verdict::Wait
        } else {
            Verdict::Reject(self.expired_error(held, now))
        }
    }

    fn expired_error(&self, held: &Held, now: Timestamp) -> SourceError {
        SourceError::CredentialsExpired {
            expired_at: held.credentials.expiration,
            failing_for: self
                .failing_since
                .map_or(Duration::ZERO, |since| now.saturating_since(since)),
            last_cause: self.last_failure.clone().map(Box::new),
        }
    }

    fn start_fetch(&mut self, reason: FetchReason, now: Timestamp) {
        if self.fetch.is_some() {
            return;
        }
        self.timers.clear(Timer::Refresh);
        self.last_fetch_start = Some(now);
        self.emit(Event::FetchStarted { reason });
        if self.config.disabled {
            self.finish_failure(SourceError::Disabled, now);
            return;
        }
        self.fetch = Some(Fetch {
            sequence: self.source.begin(now),
            failed_attempts: 0,
            in_flight: None,
            last_step: None,
        });
    }

    fn fail_in_flight(&mut self, failure: TransportFailure, now: Timestamp) {
        let mut events = Vec::new();
        let progress = match &mut self.fetch {
            Some(fetch) => self
                .source
                .on_failure(&mut fetch.sequence, failure, &mut events),
            None => return,
        };
        self.emit_all(events);
        self.apply(progress, now);
    }

    fn apply(&mut self, progress: Progress, now: Timestamp) {
        match progress {
            Progress::Continue => {}
            Progress::Done(credentials) => self.finish_success(credentials, now),
            Progress::Fail(cause) => self.finish_failure(cause, now),
            Progress::Retry(cause) => {
                let Some(fetch) = &mut self.fetch else { return };
                fetch.failed_attempts += 1;
                if fetch.failed_attempts >= self.config.attempts {
                    self.finish_failure(cause, now);
                    return;
                }
                let attempt = fetch.failed_attempts;
                let max = self.config.retry_pause_max;
                let pause = self.rng.duration_between(max / 10, max);
                self.timers.set(Timer::AttemptPause, now + pause);
                self.emit(Event::AttemptFailed {
                    cause,
                    attempt,
                    retry_in: pause,
                });
            }
        }
    }

    fn end_fetch(&mut self) {
        self.fetch = None;
        self.timers.clear(Timer::AttemptPause);
        self.timers.clear(Timer::RequestDeadline);
    }

    fn finish_success(&mut self, credentials: Credentials, now: Timestamp) {
        let step = self.fetch.as_mut().and_then(|fetch| fetch.last_step.take());
        self.end_fetch();
        let expiration = credentials.expiration;
        let usable_until = expiration - self.config.expiry_buffer;
        let unchanged = self
            .held
            .as_ref()
            .is_some_and(|held| held.credentials.is_same_as(&credentials));
        self.emit(Event::CredentialsReceived {
            expires_at: expiration,
            lifetime: expiration.saturating_since(now),
            unchanged,
        });

        if now >= usable_until {
            // Only credentials that really have expired are ever extended:
            // valid ones held are kept, so are expired ones that expired
            // later (a stale cache must not cut static stability short), and
            // strict mode takes none.
            let keep_held = self.held.as_ref().is_some_and(|held| {
                now < held.usable_until || held.credentials.expiration >= expiration
            });
            if !keep_held && self.config.stability == Stability::Static {
                self.held = Some(self.hold(credentials));
            }
            let cause = SourceError::BadResponse {
                step: step.unwrap_or_else(|| self.credentials_step()),
                problem: BadResponse::AlreadyExpired {
                    expired_at: expiration,
                },
            };
            self.finish_failure(cause, now);
            return;
        }

        self.backoff.reset();
        self.last_failure = None;
        self.failing_since = None;
        self.not_before = None;

        if unchanged {
            let held = self.held.as_mut().expect("unchanged implies held");
            held.extended_until = None;
            let (mandatory_at, usable_until) = (held.mandatory_at, held.usable_until);
            let divisor = self.config.unchanged_spacing_divisor;
            let next = if now < mandatory_at {
                let spacing = (mandatory_at.saturating_since(now) / divisor)
                    .max(self.config.unchanged_min_spacing);
                (now + spacing).min(mandatory_at.max(now + self.config.min_fetch_interval))
            } else {
                let spacing = (usable_until.saturating_since(now) / divisor)
                    .max(self.config.min_fetch_interval);
                now + spacing
            };
            // Demands in the mandatory window wait for this too, so unchanged
            // answers cannot turn callers into a fetch storm.
            self.not_before = Some(next);
            self.schedule_refresh(
                next,
                FetchReason::Recheck,
                ScheduleReason::UnchangedCredentials,
            );
            return;
        }

        let held = self.hold(credentials);
        let lifetime = expiration.saturating_since(now);
        let window = self.config.advisory_window_for(lifetime);
        let window = self
            .rng
            .reduce_by_up_to_percent(window, self.config.advisory_jitter_percent);
        let refresh_at = (expiration - window).max(now + self.config.min_fetch_interval);
        self.held = Some(held);
        self.schedule_refresh(
            refresh_at,
            FetchReason::Advisory,
            ScheduleReason::AdvisoryWindow,
        );
    }

    fn hold(&self, credentials: Credentials) -> Held {
        let expiration = credentials.expiration;
        Held {
            credentials: Arc::new(credentials),
            usable_until: expiration - self.config.expiry_buffer,
            mandatory_at: expiration - self.config.mandatory_window,
            extended_until: None,
        }
    }

    fn credentials_step(&self) -> Step {
        self.source.credentials_step(&self.config)
    }

    fn schedule_refresh(&mut self, at: Timestamp, reason: FetchReason, why: ScheduleReason) {
        self.refresh_reason = reason;
        self.timers.set(Timer::Refresh, at);
        self.emit(Event::RefreshScheduled { at, reason: why });
    }

    fn finish_failure(&mut self, cause: SourceError, now: Timestamp) {
        self.end_fetch();
        let failures = self.backoff.record_failure();
        self.failing_since.get_or_insert(now);

        let urgent = self
            .held
            .as_ref()
            .is_none_or(|held| now >= held.mandatory_at);
        let cap = if urgent {
            self.config.backoff_cap_urgent
        } else {
            self.config.backoff_cap
        };
        let backoff = self
            .backoff
            .delay(&mut self.rng, self.config.backoff_initial, cap)
            .max(self.config.min_fetch_interval);
        // Non-recoverable causes reach callers at once and are remembered
        // briefly; the next demand after that tries again.
        let remembered = if cause.is_retryable() {
            backoff
        } else {
            self.rng.duration_between(
                self.config.failure_memory_min,
                self.config.failure_memory_max,
            )
        };
        let retry_at = now + remembered;
        self.not_before = Some(retry_at);

        if let Some(held) = &self.held {
            // However long the backoff, the mandatory window gets a retry of
            // its own: its urgent cap applies from the moment it opens.
            let mandatory_at = held.mandatory_at;
            let mut background_at = now + backoff.max(remembered);
            if now < mandatory_at {
                background_at = background_at
                    .min(mandatory_at)
                    .max(now + self.config.min_fetch_interval);
            }
            self.extend_if_expired(now);
            self.schedule_refresh(
                background_at,
                FetchReason::Retry,
                ScheduleReason::Backoff { failures },
            );
        }
        self.last_failure = Some(cause.clone());
        self.emit(Event::FetchFailed { cause, retry_at });
    }

    /// Static stability (FIELD-GUIDE §4.6): after a failed refresh, expired
    /// credentials are served a little longer, within a bound.
    fn extend_if_expired(&mut self, now: Timestamp) {
        if self.config.stability != Stability::Static {
            return;
        }
        let extension = self
            .rng
            .duration_between(self.config.extension_min, self.config.extension_max);
        let Some(held) = &mut self.held else { return };
        if now < held.usable_until {
            return;
        }
        let bound = held.credentials.expiration + self.config.max_degraded;
        let until = (now + extension).min(bound);
        if until > now {
            held.extended_until = Some(until);
            let expired_at = held.credentials.expiration;
            self.emit(Event::StaticStabilityExtended { expired_at, until });
        } else {
            held.extended_until = None;
        }
    }
}
