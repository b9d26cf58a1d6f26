//! The discrete-event loop: callers, the simulated IMDS and a policy, on
//! simulated time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use credstate::{Config, Credentials, Event, FileError, Response, Timestamp, TransportFailure};
use serde_json::{json, Value};

use super::clock::SimClock;
use super::container::{ContainerStats, SimContainer};
use super::imds::{ImdsAnswer, ImdsStats, SimImds, SimRequest};
use super::java_v1::JavaEvent;
use super::policy::{client_for, CallAnswer, Client, ClientOutput, PolicyKind, SimNow};
use super::timeline::{json_object_line, Entry, Note, TimelineEntry};
use crate::scenario::{FaultKind, Scenario, ScenarioError};

/// A scenario whose callers make more calls than this is refused.
pub const MAX_CALLS: u64 = 1_000_000;
/// A run stops after this many steps, whatever the scenario asks.
pub const ITERATION_CAP: u64 = 5_000_000;
/// …or after this many steps without simulated time moving.
pub const SAME_INSTANT_CAP: u64 = 100_000;
/// …or when one drain of the policy's outputs yields this many.
const OUTPUTS_PER_DRAIN_CAP: u64 = 1_000_000;
/// Fault draws use their own stream, so a policy's jitter (seeded from the
/// same scenario seed) does not correlate with which requests fail.
const FAULT_SEED_SALT: u64 = 0xFA17_5EED_0000_0001;

/// The figures of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// HTTP requests sent to IMDS or the container agent (token-file reads
    /// are not requests: see [`ContainerStats::token_file_reads`]).
    pub requests: u64,
    /// Calls that got credentials.
    pub served: u64,
    /// …of which were past their `Expiration` by the host's clock.
    pub served_expired: u64,
    /// Calls that got an error.
    pub rejected: u64,
    /// Longest simulated time from a rejected call to the next served one
    /// (to the end of the run if none was served after it).
    pub max_gap_ms: u64,
    /// Calls still waiting when the run ended.
    pub unanswered: u64,
}

/// What became of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// It got credentials.
    Served {
        /// The credentials.
        credentials: Arc<Credentials>,
        /// Their expiration.
        expiration: Timestamp,
        /// Past their expiration by the host's clock when served.
        expired: bool,
        /// The policy said it served them as expired (static stability).
        marked_expired: bool,
    },
    /// It got an error.
    Rejected {
        /// The error.
        cause: String,
    },
    /// The run ended first.
    Unanswered,
}

/// One call of one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// When it was made (true time, ms since the start).
    pub asked_ms: u64,
    /// When it was answered.
    pub answered_ms: Option<u64>,
    /// The host's wall clock when it was answered.
    pub answered_wall: Option<Timestamp>,
    /// The answer.
    pub outcome: CallOutcome,
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// The policy.
    pub policy: PolicyKind,
    /// The figures.
    pub metrics: Metrics,
    /// Every event and harness note, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Every call, in the order made.
    pub calls: Vec<CallRecord>,
    /// What the simulated IMDS saw (all zero in a container scenario).
    pub imds: ImdsStats,
    /// What the simulated container agent and token file saw, in a
    /// container scenario.
    pub container: Option<ContainerStats>,
    /// Most requests outstanding at once.
    pub max_in_flight: u32,
    /// The scenario's duration.
    pub duration_ms: u64,
    /// The run hit a harness cap and stopped early.
    pub truncated: bool,
}

impl Run {
    /// The credstate events with their timeline entries.
    pub fn credstate_events(&self) -> impl Iterator<Item = (&TimelineEntry, &Event)> {
        self.timeline.iter().filter_map(|entry| match &entry.entry {
            Entry::Credstate(event) => Some((entry, event)),
            _ => None,
        })
    }

    /// The Java v1 events with their timeline entries.
    pub fn java_events(&self) -> impl Iterator<Item = (&TimelineEntry, &JavaEvent)> {
        self.timeline.iter().filter_map(|entry| match &entry.entry {
            Entry::JavaV1(event) => Some((entry, event)),
            _ => None,
        })
    }

    /// The entries with this name (see [`Entry::name`]).
    pub fn entries_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a TimelineEntry> + 'a {
        self.timeline
            .iter()
            .filter(move |entry| entry.entry.name() == name)
    }

    /// [`Run::summary_json`] on one line, keys in the documented order.
    #[must_use]
    pub fn summary_json_line(&self) -> String {
        let summary = json_object_line(&[
            ("policy", Value::from(self.policy.name())),
            ("requests", Value::from(self.metrics.requests)),
            ("served", Value::from(self.metrics.served)),
            ("served_expired", Value::from(self.metrics.served_expired)),
            ("rejected", Value::from(self.metrics.rejected)),
            ("max_gap_ms", Value::from(self.metrics.max_gap_ms)),
        ]);
        format!("{{\"summary\":{summary}}}")
    }

    /// The summary as one JSON object: `{"summary": {"policy", "requests",
    /// "served", "served_expired", "rejected", "max_gap_ms"}}`.
    #[must_use]
    pub fn summary_json(&self) -> Value {
        json!({"summary": {
            "policy": self.policy.name(),
            "requests": self.metrics.requests,
            "served": self.metrics.served,
            "served_expired": self.metrics.served_expired,
            "rejected": self.metrics.rejected,
            "max_gap_ms": self.metrics.max_gap_ms,
        }})
    }
}

/// Run `policy` over `scenario`. The errors: a scenario whose `config` does
/// not make a valid credstate configuration, one with more calls than the
/// harness holds, and a Java v1 policy on a container source the seed system
/// cannot use (field `config.container`; see [`PolicyKind::cannot_run`]).
pub fn simulate(scenario: &Scenario, policy: PolicyKind) -> Result<Run, ScenarioError> {
    let config = scenario.credstate_config()?;
    let calls = planned_calls(scenario);
    if calls > MAX_CALLS {
        return Err(ScenarioError {
            field: String::from("callers"),
            problem: format!(
                "the callers make {calls} calls over the run; at most {MAX_CALLS} can be simulated"
            ),
        });
    }
    let server = Server::for_scenario(scenario, &config);
    let client = client_for(policy, config, scenario.seed).map_err(|reason| ScenarioError {
        field: String::from("config.container"),
        problem: format!("the {policy} policy cannot run this scenario: {reason}"),
    })?;
    Ok(Harness::new(scenario, policy, client, server).run())
}

/// The simulated credentials server the scenario's configuration selects.
#[derive(Debug)]
enum Server {
    Imds(SimImds),
    Container(SimContainer),
}

impl Server {
    fn for_scenario(scenario: &Scenario, config: &Config) -> Server {
        let seed = scenario.seed ^ FAULT_SEED_SALT;
        match &config.container {
            Some(source) => Server::Container(SimContainer::new(
                scenario.container_model(),
                source,
                scenario.faults.clone(),
                seed,
            )),
            None => Server::Imds(SimImds::new(
                scenario.imds.clone(),
                scenario.faults.clone(),
                seed,
            )),
        }
    }

    fn latency(&self, scenario: &Scenario) -> Duration {
        match self {
            Server::Imds(_) => scenario.imds.latency,
            Server::Container(_) => scenario.container_model().latency,
        }
    }

    fn handle(&mut self, request: &SimRequest, elapsed_ms: u64) -> ImdsAnswer {
        match self {
            Server::Imds(imds) => imds.handle(request, elapsed_ms),
            Server::Container(agent) => agent.handle(request, elapsed_ms),
        }
    }

    /// The host's files: only a container scenario's token file exists.
    fn read_file(&mut self, path: &str, elapsed_ms: u64) -> Result<Vec<u8>, FileError> {
        match self {
            Server::Imds(_) => Err(FileError::NotFound),
            Server::Container(agent) => agent.read_file(path, elapsed_ms),
        }
    }
}

/// How many calls the scenario's callers make before it ends.
#[must_use]
pub fn planned_calls(scenario: &Scenario) -> u64 {
    let end = millis(scenario.duration);
    scenario
        .callers
        .iter()
        .map(|caller| {
            let at = caller.at.map_or(0, millis);
            match (caller.every.map(millis), caller.burst) {
                _ if at >= end => 0,
                (Some(every), _) if every > 0 => (end - 1 - at) / every + 1,
                (_, Some(burst)) => u64::from(burst),
                _ => 0,
            }
        })
        .fold(0u64, u64::saturating_add)
}

enum Delivery {
    Response(u64, Response),
    Failure(u64, TransportFailure),
    File(u64, Result<Vec<u8>, FileError>),
}

struct CallerPattern {
    next_ms: Option<u64>,
    every_ms: Option<u64>,
    calls: u32,
}

struct Boundary {
    at_ms: u64,
    starts: bool,
    kind: FaultKind,
    percent: Option<u8>,
    jump_ms: Option<i64>,
}

struct Harness {
    policy: PolicyKind,
    client: Box<dyn Client>,
    server: Server,
    latency_ms: u64,
    clock: SimClock,
    end_ms: u64,
    patterns: Vec<CallerPattern>,
    boundaries: Vec<Boundary>,
    next_boundary: usize,
    deliveries: BTreeMap<(u64, u64), Delivery>,
    delivery_seq: u64,
    wake_ms: Option<u64>,
    timeline: Vec<TimelineEntry>,
    calls: Vec<CallRecord>,
    metrics: Metrics,
    rejected_since: Option<u64>,
    in_flight: u32,
    max_in_flight: u32,
    truncated: bool,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Harness {
    fn new(
        scenario: &Scenario,
        policy: PolicyKind,
        client: Box<dyn Client>,
        server: Server,
    ) -> Self {
        let patterns = scenario
            .callers
            .iter()
            .map(|caller| CallerPattern {
                next_ms: Some(caller.at.map_or(0, millis)),
                every_ms: caller.every.map(millis),
                calls: caller.burst.unwrap_or(1),
            })
            .collect();
        let mut boundaries = Vec::new();
        for fault in &scenario.faults {
            boundaries.push(Boundary {
                at_ms: millis(fault.from),
                starts: true,
                kind: fault.kind,
                percent: fault.percent.filter(|p| *p < 100),
                jump_ms: fault.by,
            });
            if let Some(to) = fault.to.filter(|_| fault.kind != FaultKind::ClockJump) {
                boundaries.push(Boundary {
                    at_ms: millis(to),
                    starts: false,
                    kind: fault.kind,
                    percent: None,
                    jump_ms: None,
                });
            }
        }
        // Ends before starts at the same instant; otherwise file order.
        boundaries.sort_by_key(|b| (b.at_ms, b.starts));
        Harness {
            policy,
            client,
            latency_ms: millis(server.latency(scenario)),
            server,
            clock: SimClock::new(),
            end_ms: millis(scenario.duration),
            patterns,
            boundaries,
            next_boundary: 0,
            deliveries: BTreeMap::new(),
            delivery_seq: 0,
            wake_ms: None,
            timeline: Vec::new(),
            calls: Vec::new(),
            metrics: Metrics::default(),
            rejected_since: None,
            in_flight: 0,
            max_in_flight: 0,
            truncated: false,
        }
    }

    fn now(&self) -> SimNow {
        SimNow {
            wall: self.clock.wall_now(),
            elapsed_ms: self.clock.elapsed_ms(),
        }
    }

    fn next_instant(&self) -> Option<u64> {
        let call = self.patterns.iter().filter_map(|p| p.next_ms).min();
        let delivery = self.deliveries.keys().next().map(|(at, _)| *at);
        let boundary = self.boundaries.get(self.next_boundary).map(|b| b.at_ms);
        [call, delivery, boundary, self.wake_ms]
            .into_iter()
            .flatten()
            .min()
    }

    fn run(mut self) -> Run {
        let mut iterations = 0u64;
        let mut same_instant = 0u64;
        let mut last = None;
        while let Some(t) = self.next_instant().filter(|t| *t < self.end_ms) {
            iterations += 1;
            same_instant = if last == Some(t) { same_instant + 1 } else { 0 };
            last = Some(t);
            if iterations > ITERATION_CAP || same_instant > SAME_INSTANT_CAP {
                self.truncated = true;
            }
            if self.truncated {
                self.note(Note::Truncated { iterations });
                break;
            }
            self.clock.advance_to(t);
            self.step(t);
        }
        self.finish()
    }

    fn step(&mut self, t: u64) {
        while let Some(boundary) = self
            .boundaries
            .get(self.next_boundary)
            .filter(|b| b.at_ms == t)
        {
            let (starts, kind, percent, jump) = (
                boundary.starts,
                boundary.kind,
                boundary.percent,
                boundary.jump_ms,
            );
            self.next_boundary += 1;
            match (kind, jump) {
                (FaultKind::ClockJump, Some(by_ms)) => {
                    self.clock.jump_wall(by_ms);
                    self.note(Note::ClockJumped { by_ms });
                }
                (FaultKind::ClockJump, None) => {}
                _ if starts => self.note(Note::FaultStarted { kind, percent }),
                _ => self.note(Note::FaultEnded { kind }),
            }
        }
        while let Some(entry) = self.deliveries.first_entry().filter(|e| e.key().0 == t) {
            let delivery = entry.remove();
            let now = self.now();
            match delivery {
                Delivery::Response(id, response) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.client.on_response(id, response, now);
                }
                Delivery::Failure(id, failure) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.client.on_failure(id, failure, now);
                }
                Delivery::File(id, contents) => self.client.on_file(id, contents, now),
            }
            self.drain();
        }
        if self.wake_ms.is_some_and(|at| at <= t) {
            self.wake_ms = None;
            let now = self.now();
            self.client.on_timeout(now);
            self.drain();
        }
        for index in 0..self.patterns.len() {
            let pattern = &mut self.patterns[index];
            if pattern.next_ms != Some(t) {
                continue;
            }
            pattern.next_ms = pattern.every_ms.map(|every| t.saturating_add(every));
            for _ in 0..pattern.calls {
                let caller = self.calls.len() as u64;
                self.calls.push(CallRecord {
                    asked_ms: t,
                    answered_ms: None,
                    answered_wall: None,
                    outcome: CallOutcome::Unanswered,
                });
                let now = self.now();
                self.client.call(caller, now);
                self.drain();
            }
        }
    }

    /// Take every output of the policy until it names its next wake-up.
    fn drain(&mut self) {
        let now = self.now();
        for _ in 0..OUTPUTS_PER_DRAIN_CAP {
            match self.client.poll(now) {
                ClientOutput::Send(request) => self.send(&request),
                ClientOutput::ReadFile { id, path } => self.read_file(id, &path),
                ClientOutput::Entry(entry) => self.record(entry),
                ClientOutput::Answer { caller, answer } => self.answer(caller, answer),
                ClientOutput::WakeAt(at) => {
                    self.wake_ms = Some(at);
                    return;
                }
                ClientOutput::Idle => {
                    self.wake_ms = None;
                    return;
                }
            }
        }
        self.truncated = true;
    }

    fn send(&mut self, request: &SimRequest) {
        let t = self.clock.elapsed_ms();
        self.metrics.requests += 1;
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        let timeout_ms = millis(request.timeout);
        let (at, delivery) = match self.server.handle(request, t) {
            ImdsAnswer::Respond(_) | ImdsAnswer::Refuse if self.latency_ms >= timeout_ms => (
                t + timeout_ms,
                Delivery::Failure(request.id, TransportFailure::TimedOut),
            ),
            ImdsAnswer::Respond(response) => (
                t + self.latency_ms,
                Delivery::Response(request.id, response),
            ),
            ImdsAnswer::Refuse => (
                t + self.latency_ms,
                Delivery::Failure(request.id, TransportFailure::ConnectRefused),
            ),
            ImdsAnswer::Hang => (
                t + timeout_ms,
                Delivery::Failure(request.id, TransportFailure::TimedOut),
            ),
        };
        self.delivery_seq += 1;
        self.deliveries.insert((at, self.delivery_seq), delivery);
    }

    /// Read a file for the policy. Local reads take no simulated time, but
    /// the contents arrive as an input of their own, after the policy's
    /// current outputs, as from an adapter.
    fn read_file(&mut self, id: u64, path: &str) {
        let t = self.clock.elapsed_ms();
        let contents = self.server.read_file(path, t);
        self.delivery_seq += 1;
        self.deliveries
            .insert((t, self.delivery_seq), Delivery::File(id, contents));
    }

    fn record(&mut self, entry: Entry) {
        self.timeline.push(TimelineEntry {
            t_ms: self.clock.elapsed_ms(),
            wall: self.clock.wall_now(),
            entry,
        });
    }

    fn note(&mut self, note: Note) {
        self.record(Entry::Harness(note));
    }

    fn answer(&mut self, caller: u64, answer: CallAnswer) {
        let t = self.clock.elapsed_ms();
        let wall = self.clock.wall_now();
        let Some(call) = self
            .calls
            .get_mut(caller as usize)
            .filter(|call| call.answered_ms.is_none())
        else {
            self.note(Note::ClientMisuse {
                message: format!("an answer for call {caller}, which is unknown or answered"),
            });
            return;
        };
        call.answered_ms = Some(t);
        call.answered_wall = Some(wall);
        call.outcome = match answer {
            CallAnswer::Served {
                credentials,
                marked_expired,
            } => {
                let expired = credentials.expiration <= wall;
                self.metrics.served += 1;
                self.metrics.served_expired += u64::from(expired);
                if let Some(since) = self.rejected_since.take() {
                    self.metrics.max_gap_ms = self.metrics.max_gap_ms.max(t - since);
                }
                CallOutcome::Served {
                    expiration: credentials.expiration,
                    credentials,
                    expired,
                    marked_expired,
                }
            }
            CallAnswer::Rejected { cause } => {
                self.metrics.rejected += 1;
                self.rejected_since.get_or_insert(t);
                CallOutcome::Rejected { cause }
            }
        };
    }

    fn finish(mut self) -> Run {
        let end = if self.truncated {
            self.clock.elapsed_ms()
        } else {
            self.end_ms
        };
        if let Some(since) = self.rejected_since {
            self.metrics.max_gap_ms = self.metrics.max_gap_ms.max(end.saturating_sub(since));
        }
        self.metrics.unanswered = self
            .calls
            .iter()
            .filter(|call| call.answered_ms.is_none())
            .count() as u64;
        Run {
            policy: self.policy,
            metrics: self.metrics,
            timeline: self.timeline,
            calls: self.calls,
            imds: match &self.server {
                Server::Imds(imds) => imds.stats(),
                Server::Container(_) => ImdsStats::default(),
            },
            container: match &self.server {
                Server::Container(agent) => Some(agent.stats()),
                Server::Imds(_) => None,
            },
            max_in_flight: self.max_in_flight,
            duration_ms: self.end_ms,
            truncated: self.truncated,
        }
    }
}
