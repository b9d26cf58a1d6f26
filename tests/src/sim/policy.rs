//! The policies a scenario can be run against, and the one interface the
//! harness drives them through.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use credstate::{
    Config, Credentials, Demand, Event, FileError, FileReadId, Machine, Output, Request, RequestId,
    Response, Stability, Timestamp, TransportFailure,
};

use super::imds::SimRequest;
use super::java_v1::{java_container_endpoint, JavaV1Client};
use super::timeline::{Entry, Note};

/// A refresh policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// The credstate machine with the scenario's configuration.
    Default,
    /// The same with `stability: strict` (no static stability).
    Strict,
    /// The seed system: AWS SDK for Java v1's instance profile provider.
    JavaV1,
    /// The same with `refreshCredentialsAsync = true`.
    JavaV1Async,
}

impl PolicyKind {
    /// Every policy, in the order the CLI lists them.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Default,
        PolicyKind::Strict,
        PolicyKind::JavaV1,
        PolicyKind::JavaV1Async,
    ];

    /// The name used on the command line, e.g. `java-v1`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Default => "default",
            PolicyKind::Strict => "strict",
            PolicyKind::JavaV1 => "java-v1",
            PolicyKind::JavaV1Async => "java-v1-async",
        }
    }

    /// One line saying what the policy is.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            PolicyKind::Default => "credstate with the scenario's configuration",
            PolicyKind::Strict => "credstate, strict (no static stability)",
            PolicyKind::JavaV1 => "AWS SDK for Java v1 InstanceProfileCredentialsProvider",
            PolicyKind::JavaV1Async => {
                "AWS SDK for Java v1 InstanceProfileCredentialsProvider, async refresh"
            }
        }
    }

    /// [`PolicyKind::description`] for a run with `config`: Java v1 runs its
    /// container provider against a container source.
    #[must_use]
    pub fn description_for(self, config: &Config) -> &'static str {
        match (self, &config.container) {
            (PolicyKind::JavaV1, Some(_)) => "AWS SDK for Java v1 ContainerCredentialsProvider",
            _ => self.description(),
        }
    }

    /// Whether this policy is the credstate machine.
    #[must_use]
    pub fn is_credstate(self) -> bool {
        matches!(self, PolicyKind::Default | PolicyKind::Strict)
    }

    /// Why this policy cannot run with `config`, if it cannot: the Java v1
    /// models cover only what the seed system supports (see
    /// [`java_container_endpoint`]).
    #[must_use]
    pub fn cannot_run(self, config: &Config) -> Option<String> {
        let source = config.container.as_ref()?;
        match self {
            PolicyKind::Default | PolicyKind::Strict => None,
            PolicyKind::JavaV1 => java_container_endpoint(source, false).err(),
            PolicyKind::JavaV1Async => java_container_endpoint(source, true).err(),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of [`PolicyKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        write!(
            f,
            "unknown policy {:?}: expected one of {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|policy| policy.name() == text)
            .ok_or_else(|| UnknownPolicy(text.to_string()))
    }
}

/// The two clocks a policy may read: the host's wall clock, and monotonic
/// time (for what a real program times with a monotonic clock, such as a
/// thread pool's fixed-delay schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimNow {
    /// The host's wall clock.
    pub wall: Timestamp,
    /// Monotonic time since the start, in milliseconds.
    pub elapsed_ms: u64,
}

/// The answer a caller finally gets.
#[derive(Debug, Clone)]
pub enum CallAnswer {
    /// Credentials.
    Served {
        /// The credentials.
        credentials: Arc<Credentials>,
        /// The policy said it served them knowing they had expired (for
        /// credstate: a `ServingExpired` event for this very call).
        marked_expired: bool,
    },
    /// An error.
    Rejected {
        /// The error, as the caller would see it.
        cause: String,
    },
}

/// The next thing a policy wants from the harness.
#[derive(Debug)]
pub enum ClientOutput {
    /// Send this request to the server (IMDS or the container agent).
    Send(SimRequest),
    /// Read this file and report it with [`Client::on_file`].
    ReadFile {
        /// The client's id for the read.
        id: u64,
        /// The path.
        path: String,
    },
    /// Record this timeline entry.
    Entry(Entry),
    /// Caller `caller` has its answer.
    Answer {
        /// The id the harness gave the call.
        caller: u64,
        /// The answer.
        answer: CallAnswer,
    },
    /// Nothing more until this monotonic instant (ms since the start), or
    /// until an input arrives.
    WakeAt(u64),
    /// Nothing more until an input arrives.
    Idle,
}

/// A refresh policy as the harness drives it: callers and request outcomes
/// go in, requests, events, answers and a wake-up time come out of `poll`.
pub trait Client: fmt::Debug {
    /// Caller `caller` wants credentials. The answer comes out of
    /// [`Client::poll`], now or after later inputs.
    fn call(&mut self, caller: u64, now: SimNow);
    /// Request `id` got this response.
    fn on_response(&mut self, id: u64, response: Response, now: SimNow);
    /// Request `id` failed below HTTP (including timing out).
    fn on_failure(&mut self, id: u64, failure: TransportFailure, now: SimNow);
    /// The file read `id` asked for gave these contents, or failed.
    fn on_file(&mut self, id: u64, contents: Result<Vec<u8>, FileError>, now: SimNow);
    /// The instant asked for with [`ClientOutput::WakeAt`] has come.
    fn on_timeout(&mut self, now: SimNow);
    /// The next output; drain until `WakeAt` or `Idle`.
    fn poll(&mut self, now: SimNow) -> ClientOutput;
}

/// Build the client for `policy`, or say why the policy cannot run with
/// this configuration (see [`PolicyKind::cannot_run`]).
pub fn client_for(
    policy: PolicyKind,
    config: Config,
    seed: u64,
) -> Result<Box<dyn Client>, String> {
    let async_refresh = policy == PolicyKind::JavaV1Async;
    Ok(match (policy, &config.container) {
        (PolicyKind::Default | PolicyKind::Strict, _) => {
            let mut config = config;
            if policy == PolicyKind::Strict {
                config.stability = Stability::Strict;
            }
            Box::new(MachineClient::new(config, seed))
        }
        (_, None) => Box::new(JavaV1Client::new(async_refresh)),
        (_, Some(source)) => Box::new(JavaV1Client::for_container(java_container_endpoint(
            source,
            async_refresh,
        )?)),
    })
}

/// The credstate machine behind the run loop its documentation teaches: a
/// caller whose demand is pending is asked again after each input.
#[derive(Debug)]
pub struct MachineClient {
    machine: Option<Machine>,
    startup_error: Option<String>,
    pending: Vec<u64>,
    out: VecDeque<ClientOutput>,
}

impl MachineClient {
    /// A machine with this configuration and seed. An invalid configuration
    /// does not panic: every call is rejected with the configuration error.
    #[must_use]
    pub fn new(config: Config, seed: u64) -> Self {
        match Machine::new(config, seed) {
            Ok(machine) => MachineClient {
                machine: Some(machine),
                startup_error: None,
                pending: Vec::new(),
                out: VecDeque::new(),
            },
            Err(err) => MachineClient {
                machine: None,
                startup_error: Some(err.to_string()),
                pending: Vec::new(),
                out: VecDeque::new(),
            },
        }
    }

    /// The machine, for queries in tests.
    #[must_use]
    pub fn machine(&self) -> Option<&Machine> {
        self.machine.as_ref()
    }

    /// Move everything the machine has to say into the output queue;
    /// returns whether a `ServingExpired` event was among it.
    fn drain(&mut self, now: SimNow) -> bool {
        let Some(machine) = &mut self.machine else {
            return false;
        };
        let mut serving_expired = false;
        loop {
            match machine.poll(now.wall) {
                Output::Send(request) => self.out.push_back(ClientOutput::Send(to_sim(&request))),
                Output::ReadFile(read) => self.out.push_back(ClientOutput::ReadFile {
                    id: read.id.get(),
                    path: read.path,
                }),
                Output::Event(event) => {
                    serving_expired |= matches!(event, Event::ServingExpired { .. });
                    self.out
                        .push_back(ClientOutput::Entry(Entry::Credstate(event)));
                }
                // The wake-up is recomputed by `poll` once the queue is empty.
                _ => return serving_expired,
            }
        }
    }

    /// Ask the machine for `caller`; true when the caller got an answer.
    fn demand(&mut self, caller: u64, now: SimNow) -> bool {
        let Some(machine) = &mut self.machine else {
            let cause = self.startup_error.clone().unwrap_or_default();
            self.out.push_back(ClientOutput::Answer {
                caller,
                answer: CallAnswer::Rejected { cause },
            });
            return true;
        };
        let demand = machine.demand(now.wall);
        let serving_expired = self.drain(now);
        let answer = match demand {
            Demand::Ready(credentials) => CallAnswer::Served {
                credentials,
                marked_expired: serving_expired,
            },
            Demand::Rejected(cause) => CallAnswer::Rejected {
                cause: cause.to_string(),
            },
            _ => return false,
        };
        self.out.push_back(ClientOutput::Answer { caller, answer });
        true
    }

    /// After an input: drain, then ask every waiting caller again.
    fn after_input(&mut self, now: SimNow) {
        self.drain(now);
        let waiting = std::mem::take(&mut self.pending);
        for caller in waiting {
            if !self.demand(caller, now) {
                self.pending.push(caller);
            }
        }
    }

    fn note_misuse(&mut self, error: impl fmt::Display) {
        self.out
            .push_back(ClientOutput::Entry(Entry::Harness(Note::ClientMisuse {
                message: error.to_string(),
            })));
    }
}

fn to_sim(request: &Request) -> SimRequest {
    SimRequest {
        id: request.id.get(),
        method: request.method,
        path: request.path().to_string(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.expose().to_string()))
            .collect(),
        timeout: request.timeout,
    }
}

impl Client for MachineClient {
    fn call(&mut self, caller: u64, now: SimNow) {
        if !self.demand(caller, now) {
            self.pending.push(caller);
        }
    }

    fn on_response(&mut self, id: u64, response: Response, now: SimNow) {
        if let Some(machine) = &mut self.machine {
            if let Err(err) = machine.handle_response(RequestId::from_raw(id), response, now.wall) {
                self.note_misuse(err);
            }
        }
        self.after_input(now);
    }

    fn on_failure(&mut self, id: u64, failure: TransportFailure, now: SimNow) {
        if let Some(machine) = &mut self.machine {
            if let Err(err) = machine.handle_failure(RequestId::from_raw(id), failure, now.wall) {
                self.note_misuse(err);
            }
        }
        self.after_input(now);
    }

    fn on_file(&mut self, id: u64, contents: Result<Vec<u8>, FileError>, now: SimNow) {
        if let Some(machine) = &mut self.machine {
            if let Err(err) = machine.handle_file(FileReadId::from_raw(id), contents, now.wall) {
                self.note_misuse(err);
            }
        }
        self.after_input(now);
    }

    fn on_timeout(&mut self, now: SimNow) {
        if let Some(machine) = &mut self.machine {
            machine.handle_timeout(now.wall);
        }
        self.after_input(now);
    }

    fn poll(&mut self, now: SimNow) -> ClientOutput {
        if let Some(output) = self.out.pop_front() {
            return output;
        }
        let Some(machine) = &mut self.machine else {
            return ClientOutput::Idle;
        };
        match machine.poll(now.wall) {
            Output::Send(request) => ClientOutput::Send(to_sim(&request)),
            Output::ReadFile(read) => ClientOutput::ReadFile {
                id: read.id.get(),
                path: read.path,
            },
            Output::Event(event) => ClientOutput::Entry(Entry::Credstate(event)),
            // A real adapter sleeps on a monotonic clock for as long as the
            // wall clock says; a wall-clock jump meanwhile is noticed when it
            // wakes, as in production.
            Output::WakeAt(at) => {
                let sleep_ms = at.millis_since(now.wall).max(0) as u64;
                ClientOutput::WakeAt(now.elapsed_ms.saturating_add(sleep_ms))
            }
            _ => ClientOutput::Idle,
        }
    }
}
