//! Scripted IMDS and container answers, a scripted filesystem and a
//! simulated clock for the machine's tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use credstate::{
    Config, ContainerAuth, ContainerSource, Demand, Event, FileError, FileRead, Machine, Output,
    Request, Response, SourceError, Timestamp, TransportFailure,
};

/// 2026-11-29T00:00:00Z.
pub const T0: Timestamp = Timestamp::from_unix_secs(1_795_910_400);
pub const SECOND: Duration = Duration::from_secs(1);
pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

pub const TOKEN: &str = "AQAEAtoken-secret-value";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI-secret-key";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-session-token";
pub const ROLE: &str = "web";

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const EXTENDED_LIST: &str = "/latest/meta-data/iam/security-credentials-extended/";
pub const LEGACY_LIST: &str = "/latest/meta-data/iam/security-credentials/";

/// What the scripted IMDS does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Respond(Response),
    Fail(TransportFailure),
    /// Never answer: the machine's own deadline ends the request.
    Hang,
}

pub fn ok(body: &str) -> Reply {
    Reply::Respond(Response::new(200, body))
}

pub fn status(code: u16) -> Reply {
    Reply::Respond(Response::new(code, ""))
}

pub fn credentials_json(key: &str, expiration: Timestamp) -> String {
    format!(
        r#"{{"Code":"Success","LastUpdated":"2026-11-29T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{SECRET_KEY}","Token":"{SESSION_TOKEN}","Expiration":"{}"}}"#,
        expiration.to_rfc3339()
    )
}

/// A healthy IMDS handing out `key` expiring at `expiration`.
pub fn healthy(key: &str, expiration: Timestamp) -> impl FnMut(&Request) -> Reply {
    let body = credentials_json(key, expiration);
    move |request: &Request| match request.path() {
        TOKEN_PATH => Reply::Respond(
            Response::new(200, TOKEN).with_header("X-aws-ec2-metadata-token-ttl-seconds", "21600"),
        ),
        EXTENDED_LIST | LEGACY_LIST => ok(ROLE),
        _ => ok(&body),
    }
}

/// A credentials body as the ECS and EKS agents send it (no `Code`).
pub fn container_credentials_json(key: &str, expiration: Timestamp) -> String {
    format!(
        r#"{{"AccessKeyId":"{key}","SecretAccessKey":"{SECRET_KEY}","Token":"{SESSION_TOKEN}","Expiration":"{}","RoleArn":"arn:aws:iam::123456789012:role/web"}}"#,
        expiration.to_rfc3339()
    )
}

/// A healthy container agent handing out `key` expiring at `expiration`.
pub fn container_healthy(key: &str, expiration: Timestamp) -> impl FnMut(&Request) -> Reply {
    let body = container_credentials_json(key, expiration);
    move |_: &Request| ok(&body)
}

/// The EKS Pod Identity agent's URI.
pub const EKS_URI: &str = "http://169.254.170.23/v1/credentials";
/// Where the scripted filesystem keeps the EKS token.
pub const TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
/// The token in that file.
pub const FILE_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.file-token-secret";
/// A token configured directly (as from `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
pub const ENV_TOKEN: &str = "env-authorization-token-secret";

/// The default configuration with a container source.
pub fn container_config(uri: &str, auth: ContainerAuth) -> Config {
    config_with(|c| {
        c.container = Some(
            ContainerSource::full_uri(uri)
                .expect("valid container URI")
                .with_auth(auth),
        )
    })
}

/// The EKS Pod Identity configuration: the token comes from [`TOKEN_FILE`].
pub fn eks_config() -> Config {
    container_config(EKS_URI, ContainerAuth::TokenFile(TOKEN_FILE.into()))
}

/// What the scripted filesystem does with one read.
#[derive(Clone, Debug)]
pub enum FileReply {
    Contents(Vec<u8>),
    Error(FileError),
    /// Never answer: the machine's own deadline ends the read.
    Hang,
}

/// Every request gets the same reply.
pub fn always(reply: Reply) -> impl FnMut(&Request) -> Reply {
    move |_: &Request| reply.clone()
}

/// The machine on a simulated clock, with everything it said recorded.
pub struct Sim {
    pub machine: Machine,
    pub now: Timestamp,
    pub sent: Vec<(Timestamp, Request)>,
    pub events: Vec<(Timestamp, Event)>,
    /// Requests sent and not yet answered.
    pub outbox: Vec<Request>,
    hanging: Vec<Request>,
    /// Every file read asked for.
    pub reads: Vec<(Timestamp, FileRead)>,
    /// File reads asked for and not yet answered.
    pub read_outbox: Vec<FileRead>,
    /// The scripted filesystem: a path not in it is not found.
    pub files: HashMap<String, FileReply>,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        Sim {
            machine: Machine::new(config, 42).expect("valid config"),
            now: T0,
            sent: Vec::new(),
            events: Vec::new(),
            outbox: Vec::new(),
            hanging: Vec::new(),
            reads: Vec::new(),
            read_outbox: Vec::new(),
            files: HashMap::new(),
        }
    }

    pub fn default_config() -> Sim {
        Sim::new(Config::default())
    }

    pub fn demand(&mut self) -> Demand {
        let demand = self.machine.demand(self.now);
        self.collect();
        demand
    }

    /// Drain outputs; returns the requests sent just now and keeps every
    /// unanswered one in the outbox.
    pub fn collect(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        loop {
            match self.machine.poll(self.now) {
                Output::Send(request) => {
                    self.sent.push((self.now, request.clone()));
                    self.outbox.push(request.clone());
                    out.push(request);
                }
                Output::ReadFile(read) => {
                    self.reads.push((self.now, read.clone()));
                    self.read_outbox.push(read);
                }
                Output::Event(event) => self.events.push((self.now, event)),
                Output::WakeAt(_) | Output::Idle => return out,
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    /// Put `contents` in the scripted file at `path`.
    pub fn write_file(&mut self, path: &str, contents: &str) {
        self.files.insert(
            path.to_string(),
            FileReply::Contents(contents.as_bytes().to_vec()),
        );
    }

    /// Answer every file read from the scripted filesystem.
    fn answer_reads(&mut self) {
        for read in std::mem::take(&mut self.read_outbox) {
            let reply = self
                .files
                .get(&read.path)
                .cloned()
                .unwrap_or(FileReply::Error(FileError::NotFound));
            let outcome = match reply {
                FileReply::Contents(bytes) => Ok(bytes),
                FileReply::Error(error) => Err(error),
                FileReply::Hang => continue,
            };
            self.machine
                .handle_file(read.id, outcome, self.now)
                .unwrap();
        }
    }

    /// Answer every request the machine sends (and every file it asks to
    /// read) at the current instant.
    pub fn answer(&mut self, imds: &mut impl FnMut(&Request) -> Reply) {
        for _ in 0..100 {
            self.collect();
            let requests = std::mem::take(&mut self.outbox);
            if requests.is_empty() && self.read_outbox.is_empty() {
                return;
            }
            self.answer_reads();
            for request in requests {
                match imds(&request) {
                    Reply::Respond(response) => self
                        .machine
                        .handle_response(request.id, response, self.now)
                        .unwrap(),
                    Reply::Fail(failure) => self
                        .machine
                        .handle_failure(request.id, failure, self.now)
                        .unwrap(),
                    Reply::Hang => self.hanging.push(request),
                }
            }
        }
        panic!("the machine kept sending requests at one instant");
    }

    /// Move the clock forward, firing every deadline on the way and
    /// answering every request with `imds`.
    pub fn run_for(&mut self, duration: Duration, imds: &mut impl FnMut(&Request) -> Reply) {
        let end = self.now + duration;
        self.answer(imds);
        for _ in 0..1_000_000 {
            match self.machine.next_deadline() {
                Some(at) if at <= end => {
                    self.now = at.max(self.now);
                    self.machine.handle_timeout(self.now);
                    self.answer(imds);
                }
                _ => {
                    self.now = end;
                    self.machine.handle_timeout(self.now);
                    self.answer(imds);
                    return;
                }
            }
        }
        panic!("too many deadlines");
    }

    /// A caller demand, with the machine's requests answered until the
    /// caller is served or rejected (bounded).
    pub fn demand_until_settled(&mut self, imds: &mut impl FnMut(&Request) -> Reply) -> Demand {
        for _ in 0..1000 {
            match self.demand() {
                Demand::Pending => {
                    self.answer(imds);
                    if let Err(credstate::Unavailable::Fetching) =
                        self.machine.credentials(self.now)
                    {
                        // Something hangs, or the next look is scheduled:
                        // let the earliest deadline pass.
                        let next = self
                            .machine
                            .next_deadline()
                            .expect("waiting without deadline");
                        self.now = next.max(self.now);
                        self.machine.handle_timeout(self.now);
                        self.answer(imds);
                    }
                }
                settled => return settled,
            }
        }
        panic!("demand never settled");
    }

    pub fn jump_to(&mut self, at: Timestamp) {
        self.now = at;
    }

    pub fn paths_sent(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(_, r)| r.path().to_string())
            .collect()
    }

    pub fn count_events(&self, predicate: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| predicate(e)).count()
    }

    pub fn fetch_starts(&self) -> Vec<Timestamp> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::FetchStarted { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn clear_log(&mut self) {
        self.sent.clear();
        self.events.clear();
        self.reads.clear();
    }
}

pub fn expect_ready(demand: Demand) -> std::sync::Arc<credstate::Credentials> {
    match demand {
        Demand::Ready(credentials) => credentials,
        other => panic!("expected credentials, got {other:?}"),
    }
}

pub fn expect_rejected(demand: Demand) -> SourceError {
    match demand {
        Demand::Rejected(cause) => cause,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// A warm machine holding `AKIA1` valid for six hours from T0.
pub fn warm(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    let mut imds = healthy("ASIA1", T0 + 6 * HOUR);
    expect_ready(sim.demand_until_settled(&mut imds));
    sim
}

/// The default configuration with some fields changed.
pub fn config_with(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    change(&mut config);
    config
}
