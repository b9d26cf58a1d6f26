//! The machine driven through its public API by arbitrary interleavings of
//! demands, answers, transport failures, timeouts and clock steps both ways,
//! with the invariants of FIELD-GUIDE §4 checked after every input.

mod support;

use std::time::Duration;

use credstate::{Config, Demand, Event, Machine, Output, Request, RequestId, Response, Timestamp};
use credstate::{TransportFailure, TransportFailure::*};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use support::*;

/// Polls allowed to drain one input's outputs; the loop must end in
/// `WakeAt` or `Idle` well before.
const POLL_BOUND: usize = 100;
const SECRETS: [&str; 3] = [TOKEN, SECRET_KEY, SESSION_TOKEN];
const EXPIRY_BUFFER: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Answer {
    /// What a healthy IMDS says to that path, with credentials living this long
    /// (negative: already expired) and this key number.
    Healthy {
        lifetime_secs: i64,
        key: u8,
    },
    /// The credentials body last handed out, again (late rotation).
    Unchanged,
    Status(u16),
    /// A 200 whose body is garbage quoting every secret.
    Garbage,
    /// A `Code` other than `Success` whose message echoes the secrets.
    NotSuccess,
}

#[derive(Clone, Debug)]
enum Input {
    Demand,
    Answer {
        pick: usize,
        answer: Answer,
    },
    Fail {
        pick: usize,
        failure: TransportFailure,
    },
    Timeout,
    UnknownId(u64),
    Forward(Duration),
    Back(Duration),
    ToDeadline,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => (
            prop::sample::select(vec![-7_200i64, -5, 5, 30, 70, 300, 900, 3_600, 21_600]),
            0u8..3
        )
            .prop_map(|(lifetime_secs, key)| Answer::Healthy { lifetime_secs, key }),
        2 => Just(Answer::Unchanged),
        3 => prop::sample::select(vec![400u16, 401, 403, 404, 405, 429, 500, 503, 418])
            .prop_map(Answer::Status),
        1 => Just(Answer::Garbage),
        1 => Just(Answer::NotSuccess),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let ms = Duration::from_millis;
    prop_oneof![
        4 => Just(Input::Demand),
        6 => (any::<usize>(), answer()).prop_map(|(pick, answer)| Input::Answer { pick, answer }),
        2 => (any::<usize>(), prop::sample::select(vec![ConnectRefused, TimedOut, Reset]))
            .prop_map(|(pick, failure)| Input::Fail { pick, failure }),
        1 => Just(Input::Timeout),
        1 => any::<u64>().prop_map(Input::UnknownId),
        3 => prop::sample::select(vec![
            ms(1), ms(400), ms(1_000), ms(30_000), ms(300_000), ms(3_600_000), ms(259_200_000)
        ]).prop_map(Input::Forward),
        1 => prop::sample::select(vec![ms(300), ms(2_000), ms(3_600_000), ms(86_400_000)])
            .prop_map(Input::Back),
        3 => Just(Input::ToDeadline),
    ]
}

/// A request the test has not answered, with the machine's deadline for it
/// as the machine keeps it (moved with backward clock jumps).
struct Unanswered {
    request: Request,
    deadline: Timestamp,
}

struct Run {
    machine: Machine,
    tolerance: i64,
    now: Timestamp,
    /// The machine's view of the latest instant (it ignores small steps back).
    last_now: Option<Timestamp>,
    unanswered: Vec<Unanswered>,
    last_body: Option<String>,
}

impl Run {
    /// Mirror of the machine's clock-jump rule, to move the deadlines the
    /// test keeps the way the machine moves its own.
    fn observe(&mut self, now: Timestamp) {
        if let Some(last) = self.last_now {
            let back = last.millis_since(now);
            if back > self.tolerance {
                for request in &mut self.unanswered {
                    request.deadline = request.deadline.shifted_by_millis(-back);
                }
                self.last_now = Some(now);
                return;
            }
            self.last_now = Some(last.max(now));
        } else {
            self.last_now = Some(now);
        }
    }

    /// The requests whose deadline the machine has not yet seen pass.
    fn in_flight(&self) -> usize {
        let seen = self.last_now.unwrap_or(self.now);
        self.unanswered.iter().filter(|u| u.deadline > seen).count()
    }

    fn drain(&mut self) -> Result<Vec<Event>, TestCaseError> {
        let mut events = Vec::new();
        for _ in 0..POLL_BOUND {
            let output = self.machine.poll(self.now);
            self.observe(self.now);
            match output {
                Output::Send(request) => {
                    prop_assert_eq!(self.in_flight(), 0, "a second request in flight");
                    for (_, value) in &request.headers {
                        if !value.is_secret() {
                            for secret in SECRETS {
                                prop_assert!(!value.expose().contains(secret));
                            }
                        }
                    }
                    let deadline = self.now + request.timeout;
                    self.unanswered.push(Unanswered { request, deadline });
                }
                Output::Event(event) => {
                    let printed = format!("{event} {event:?} {event:#?}");
                    for secret in SECRETS {
                        prop_assert!(
                            !printed.contains(secret),
                            "an event printed a secret: {}",
                            printed
                        );
                    }
                    events.push(event);
                }
                Output::WakeAt(_) | Output::Idle => return Ok(events),
                other => prop_assert!(false, "unexpected output {:?}", other),
            }
        }
        Err(TestCaseError::fail("poll never settled in WakeAt or Idle"))
    }

    fn body_for(&mut self, request: &Request, answer: &Answer) -> Response {
        match answer {
            Answer::Healthy { lifetime_secs, key } => match request.path() {
                TOKEN_PATH => Response::new(200, TOKEN)
                    .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
                EXTENDED_LIST | LEGACY_LIST => Response::new(200, ROLE),
                _ => {
                    let expiration = self.now.shifted_by_millis(lifetime_secs * 1000);
                    let body = credentials_json(&format!("ASIA{key}"), expiration);
                    self.last_body = Some(body.clone());
                    Response::new(200, body)
                }
            },
            Answer::Unchanged => match &self.last_body {
                Some(body) if request.path().ends_with(ROLE) => Response::new(200, body.as_str()),
                _ => Response::new(503, ""),
            },
            Answer::Status(status) => Response::new(*status, ""),
            Answer::Garbage => {
                Response::new(200, format!("{{ {TOKEN}\n{SECRET_KEY} {SESSION_TOKEN}"))
            }
            Answer::NotSuccess => {
                // A server echoing the secret headers it was sent, and the
                // secrets of its own body.
                let echoed: Vec<&str> = request
                    .headers
                    .iter()
                    .filter(|(_, value)| value.is_secret())
                    .map(|(_, value)| value.expose())
                    .collect();
                let echoed = echoed.join(" ");
                Response::new(
                    200,
                    format!(
                        r#"{{"Code":"Denied {echoed}","Message":"{SECRET_KEY}\r\n{SESSION_TOKEN} {echoed}","SecretAccessKey":"{SECRET_KEY}","Token":"{SESSION_TOKEN}"}}"#
                    ),
                )
            }
        }
    }

    fn step(&mut self, input: Input) -> Result<(), TestCaseError> {
        match input {
            Input::Demand => {
                let demand = self.machine.demand(self.now);
                self.observe(self.now);
                let events = self.drain()?;
                if let Demand::Ready(credentials) = &demand {
                    let usable_until = credentials.expiration - EXPIRY_BUFFER;
                    if self.now >= usable_until {
                        prop_assert!(
                            events
                                .iter()
                                .any(|e| matches!(e, Event::ServingExpired { .. })),
                            "expired credentials served at {} without ServingExpired",
                            self.now
                        );
                    }
                }
                if let Demand::Rejected(cause) = &demand {
                    let printed = format!("{cause} {cause:?}");
                    for secret in SECRETS {
                        prop_assert!(!printed.contains(secret));
                    }
                }
                return Ok(());
            }
            Input::Answer { pick, answer } => {
                if !self.unanswered.is_empty() {
                    let Unanswered { request, .. } =
                        self.unanswered.remove(pick % self.unanswered.len());
                    let response = self.body_for(&request, &answer);
                    prop_assert!(self
                        .machine
                        .handle_response(request.id, response, self.now)
                        .is_ok());
                    self.observe(self.now);
                }
            }
            Input::Fail { pick, failure } => {
                if !self.unanswered.is_empty() {
                    let Unanswered { request, .. } =
                        self.unanswered.remove(pick % self.unanswered.len());
                    prop_assert!(self
                        .machine
                        .handle_failure(request.id, failure, self.now)
                        .is_ok());
                    self.observe(self.now);
                }
            }
            Input::Timeout => {
                self.machine.handle_timeout(self.now);
                self.observe(self.now);
            }
            Input::UnknownId(raw) => {
                // Misuse or a stale id: an error or a no-op, never a panic.
                let _ = self.machine.handle_response(
                    RequestId::from_raw(raw),
                    Response::new(200, TOKEN),
                    self.now,
                );
                self.observe(self.now);
            }
            Input::Forward(by) => self.now = self.now + by,
            Input::Back(by) => self.now = self.now - by,
            Input::ToDeadline => {
                if let Some(at) = self.machine.next_deadline() {
                    self.now = self.now.max(at);
                    self.machine.handle_timeout(self.now);
                    self.observe(self.now);
                }
            }
        }
        self.drain().map(drop)
    }
}

fn config() -> impl Strategy<Value = Config> {
    prop_oneof![
        Just(Config::default()),
        Just(Config::strict()),
        Just(config_with(|c| {
            c.attempts = 1;
            c.retry_pause_max = Duration::ZERO;
            c.extension_min = Duration::ZERO;
            c.extension_max = Duration::ZERO;
            c.max_degraded = Duration::ZERO;
            c.role_name = Some(ROLE.into());
            c.v1_disabled = true;
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_of_inputs_keeps_the_machine_sound(
        config in config(),
        seed in any::<u64>(),
        inputs in prop::collection::vec(input(), 1..80),
    ) {
        let tolerance = config.clock_jump_tolerance.as_millis() as i64;
        let mut run = Run {
            machine: Machine::new(config, seed).unwrap(),
            tolerance,
            now: T0,
            last_now: None,
            unanswered: Vec::new(),
            last_body: None,
        };
        for input in inputs {
            run.step(input)?;
        }
    }
}
