//! The mock IMDS: a real HTTP/1.1 server on loopback that speaks the EC2
//! instance metadata protocol (field guide §1) and the container credentials
//! protocol (§2), with faults injected on demand.
//!
//! Where the simulated IMDS runs on simulated time, this one runs on the
//! server's real clock: tokens and credentials expire for real, and faults
//! are scheduled by time since the server started or by request count.
//!
//! ```no_run
//! use std::time::Duration;
//! use credstate_tests::mock_imds::{MockImds, MockImdsOptions};
//! use credstate_tests::scenario::FaultKind;
//!
//! let mock = MockImds::start(MockImdsOptions {
//!     credential_lifetime: Duration::from_secs(3600),
//!     ..MockImdsOptions::default()
//! });
//! let endpoint = mock.endpoint(); // "http://127.0.0.1:PORT"
//! mock.set_fault(Some(FaultKind::Http503));
//! // ... point a client at `endpoint`, watch it back off ...
//! mock.set_fault(None);
//! assert!(mock.stats().token_requests() >= 1);
//! # let _ = endpoint;
//! ```
//!
//! Behaviour in brief:
//! - `PUT /latest/api/token` needs `X-aws-ec2-metadata-token-ttl-seconds` in
//!   `1..=21600` (else 400), answers a token and echoes the TTL header.
//! - A GET carrying `X-aws-ec2-metadata-token` with an unknown or expired
//!   token gets 401; a GET without one gets 401 when IMDSv1 is disabled.
//! - `…/security-credentials/` and `…/security-credentials-extended/` list
//!   the role (404 when none is attached, or for the extended paths when the
//!   extended API is off); `…/<role>` answers the credentials JSON, with
//!   `AccountId` on the extended path.
//! - The container endpoint (default `GET /container/credentials`) checks
//!   the `Authorization` header when one is required: 401 when missing, 403
//!   when different, each with a `{"Code", "Message"}` JSON body.
//! - `GET /_stats` answers [`MockStats`] as JSON; `POST /_reset` clears it.
//!   Neither is counted, delayed or faulted.
//!
//! Fault kinds act on the requests they make sense for: `http_500`,
//! `http_503`, `http_429`, `timeout` and `refused` on every request;
//! `bad_json` and `expired_credentials` on credentials requests (IMDS and
//! container); `token_unsupported` and `token_timeout` on the token PUT.
//! `timeout` never answers and closes the connection after
//! [`MockImdsOptions::hang_limit`]; `refused` reads the request and closes
//! the connection without a word (a listening server cannot produce a real
//! "connection refused" without giving up its port). `clock_jump` means
//! nothing to a server on a real clock, nor `token_file_missing` (the
//! container token file is the client's): they are ignored with a note on
//! stderr.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use credstate::Secret;
use serde::Serialize;
use tokio::sync::watch;

use crate::scenario::{Fault, FaultKind, ImdsModel, Rotation, Scenario, TokenSupport};

mod server;
mod state;

use state::MockState;

/// How the mock IMDS behaves; every field can be set with struct update
/// syntax over [`MockImdsOptions::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct MockImdsOptions {
    /// Port on 127.0.0.1; 0 picks a free one (see [`MockImds::endpoint`]).
    pub port: u16,
    /// Seed of every token, key and fault probability the server makes up.
    pub seed: u64,
    /// Lifetime of each new set of credentials.
    pub credential_lifetime: Duration,
    /// `Fresh`: new credentials on every fetch. `Late`: the same ones until
    /// [`rotate_before`](Self::rotate_before) their expiration, as EC2 does.
    pub rotation: Rotation,
    /// How long before expiry `Late` rotation issues new credentials (EC2:
    /// at least 5 minutes). Tests with short lifetimes shorten it.
    pub rotate_before: Duration,
    /// Whether `PUT /latest/api/token` exists. `Unsupported` answers it 404
    /// and ignores token headers on GETs, like an IMDS without v2.
    pub token: TokenSupport,
    /// GETs without a session token get 401.
    pub v1_disabled: bool,
    /// Time to answer each request (added to [`MockImds::set_delay`]).
    pub latency: Duration,
    /// Role attached to the instance; `None` means no role (404s).
    pub role: Option<String>,
    /// Whether `…/security-credentials-extended/` is offered.
    pub extended_api: bool,
    /// Account id of the extended API and the container endpoint.
    pub account_id: String,
    /// Path of the container credentials endpoint.
    pub container_path: String,
    /// Exact `Authorization` value the container endpoint requires; `None`
    /// requires nothing.
    pub container_authorization: Option<String>,
    /// Faults in force from the start.
    pub faults: Vec<FaultRule>,
    /// How long a `timeout` or `token_timeout` request hangs before the
    /// server closes its connection.
    pub hang_limit: Duration,
    /// Print one line per request (method, path, status; never a secret) on
    /// stderr.
    pub log_requests: bool,
}

impl Default for MockImdsOptions {
    fn default() -> Self {
        MockImdsOptions {
            port: 0,
            seed: 0,
            credential_lifetime: Duration::from_secs(6 * 3600),
            rotation: Rotation::Late,
            rotate_before: Duration::from_secs(5 * 60),
            token: TokenSupport::Supported,
            v1_disabled: false,
            latency: Duration::ZERO,
            role: Some(String::from("credstate-demo-role")),
            extended_api: true,
            account_id: String::from("123456789012"),
            container_path: String::from("/container/credentials"),
            container_authorization: None,
            faults: Vec::new(),
            hang_limit: Duration::from_secs(30),
            log_requests: false,
        }
    }
}

impl MockImdsOptions {
    /// The healthy behaviour described by a scenario's `imds` section. An
    /// empty `role` means no role attached.
    #[must_use]
    pub fn from_model(model: &ImdsModel) -> Self {
        MockImdsOptions {
            credential_lifetime: model.credential_lifetime,
            rotation: model.rotation,
            token: model.token,
            v1_disabled: model.v1_disabled,
            latency: model.latency,
            role: Some(model.role.clone()).filter(|role| !role.is_empty()),
            extended_api: model.extended_api,
            ..MockImdsOptions::default()
        }
    }

    /// A whole scenario: its `imds` model, its seed and its faults, timed
    /// from the server's start. `clock_jump` and `token_file_missing` faults
    /// are left out with a note on stderr; callers, duration and config are
    /// the client's business.
    #[must_use]
    pub fn from_scenario(scenario: &Scenario) -> Self {
        MockImdsOptions {
            seed: scenario.seed,
            faults: scenario
                .faults
                .iter()
                .filter_map(|fault| {
                    let rule = FaultRule::from_scenario(fault);
                    if rule.is_none() {
                        note_ignored(fault.kind);
                    }
                    rule
                })
                .collect(),
            ..MockImdsOptions::from_model(&scenario.imds)
        }
    }
}

/// Whether a server can play this fault kind at all.
pub(crate) fn is_server_fault(kind: FaultKind) -> bool {
    !matches!(kind, FaultKind::ClockJump | FaultKind::TokenFileMissing)
}

fn note_ignored(kind: FaultKind) {
    let why = match kind {
        FaultKind::TokenFileMissing => {
            "the container token file is read by the client, not served; \
             use `credstate simulate` to take it away"
        }
        _ => "the mock runs on the real clock; use `credstate simulate` to jump a simulated clock",
    };
    eprintln!("mock-imds: note: {kind} ignored: {why}");
}

/// When a fault is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultSchedule {
    /// Until cleared.
    Always,
    /// Over `[from, to)` measured from the server's start (`to: None`: for
    /// good), as a scenario's `from`/`to`.
    Between {
        /// Start offset.
        from: Duration,
        /// End offset (exclusive).
        to: Option<Duration>,
    },
    /// For the `first..=last` (1-based) requests the rule is eligible for,
    /// counted from when the rule was installed (`last: None`: every one
    /// from `first` on).
    Requests {
        /// First affected request.
        first: u64,
        /// Last affected request.
        last: Option<u64>,
    },
}

/// One fault: its kind, when it is in force and which requests it touches.
///
/// A request is *eligible* for a rule when its path matches and the kind
/// acts on it (`bad_json` only on credentials requests, `token_*` only on the
/// token PUT, others on every request); request counts count eligible
/// requests only, so `FaultRule::requests(FaultKind::BadJson, 2..=2)` spoils
/// the second credentials fetch whatever else was asked in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// What goes wrong.
    pub kind: FaultKind,
    /// When.
    pub schedule: FaultSchedule,
    /// Only requests to this path; a trailing `*` makes it a prefix.
    /// `None`: every path.
    pub path: Option<String>,
    /// Percent of eligible, scheduled requests affected (chosen from the
    /// seed, so runs repeat); 100 affects all.
    pub percent: u8,
}

impl FaultRule {
    /// A fault on every eligible request until cleared.
    #[must_use]
    pub fn always(kind: FaultKind) -> Self {
        FaultRule {
            kind,
            schedule: FaultSchedule::Always,
            path: None,
            percent: 100,
        }
    }

    /// A fault over `[from, to)` since the server's start.
    #[must_use]
    pub fn between(kind: FaultKind, from: Duration, to: Option<Duration>) -> Self {
        FaultRule {
            schedule: FaultSchedule::Between { from, to },
            ..FaultRule::always(kind)
        }
    }

    /// A fault on the eligible requests numbered `range` (1-based,
    /// inclusive), counted from when the rule is installed.
    #[must_use]
    pub fn requests(kind: FaultKind, range: RangeInclusive<u64>) -> Self {
        FaultRule {
            schedule: FaultSchedule::Requests {
                first: *range.start(),
                last: Some(*range.end()),
            },
            ..FaultRule::always(kind)
        }
    }

    /// Restrict to one path (exact, or a prefix when it ends in `*`).
    #[must_use]
    pub fn on_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Affect only this percentage of the requests (capped at 100).
    #[must_use]
    pub fn with_percent(mut self, percent: u8) -> Self {
        self.percent = percent.min(100);
        self
    }

    /// The rule for a scenario fault; `None` for `clock_jump` and
    /// `token_file_missing`, which a server on the real clock cannot play.
    #[must_use]
    pub fn from_scenario(fault: &Fault) -> Option<Self> {
        if !is_server_fault(fault.kind) {
            return None;
        }
        let rule = FaultRule::between(fault.kind, fault.from, fault.to);
        Some(match fault.percent {
            Some(percent) => rule.with_percent(percent),
            None => rule,
        })
    }

    fn matches_path(&self, path: &str) -> bool {
        match &self.path {
            None => true,
            Some(wanted) => match wanted.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == wanted,
            },
        }
    }
}

/// Requests seen, as counted on arrival (faulted ones included; `/_stats`
/// and `/_reset` excluded). Also served as JSON at `GET /_stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MockStats {
    /// All requests.
    pub total: u64,
    /// Requests per path, e.g. `"/latest/api/token": 3`.
    pub by_path: BTreeMap<String, u64>,
    /// Requests per method and path, e.g. `"PUT /latest/api/token": 3`.
    pub by_method_and_path: BTreeMap<String, u64>,
    /// Requests a fault acted on, per fault name.
    pub faults_injected: BTreeMap<String, u64>,
}

impl MockStats {
    /// Requests to `path`, any method.
    #[must_use]
    pub fn requests_to(&self, path: &str) -> u64 {
        self.by_path.get(path).copied().unwrap_or(0)
    }

    /// Requests with this method to `path`.
    #[must_use]
    pub fn requests(&self, method: &str, path: &str) -> u64 {
        self.by_method_and_path
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
    }

    /// Token PUTs.
    #[must_use]
    pub fn token_requests(&self) -> u64 {
        self.requests("PUT", state::TOKEN_PATH)
    }

    /// GETs of a role's credentials, legacy and extended (role listings not
    /// included).
    #[must_use]
    pub fn credential_requests(&self) -> u64 {
        self.by_method_and_path
            .iter()
            .filter(|(key, _)| {
                [state::LEGACY_PATH, state::EXTENDED_PATH]
                    .iter()
                    .any(|base| {
                        key.strip_prefix("GET ")
                            .and_then(|path| path.strip_prefix(base))
                            .and_then(|rest| rest.strip_prefix('/'))
                            .is_some_and(|role| !role.is_empty() && !role.contains('/'))
                    })
            })
            .map(|(_, count)| count)
            .sum()
    }

    /// GETs of the role listing, legacy and extended.
    #[must_use]
    pub fn role_list_requests(&self) -> u64 {
        [state::LEGACY_PATH, state::EXTENDED_PATH]
            .iter()
            .map(|base| self.requests("GET", &format!("{base}/")) + self.requests("GET", base))
            .sum()
    }

    /// Faults acted out of this kind.
    #[must_use]
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults_injected.get(kind.name()).copied().unwrap_or(0)
    }
}

/// Which endpoint handed out a set of credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `…/security-credentials[-extended]/<role>`.
    Imds,
    /// The container endpoint.
    Container,
}

/// One set of credentials the mock made up, so tests can check which one a
/// client ended up with. Secrets are fake but still redacted in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// 1-based, across both sources, in order of issue.
    pub serial: u64,
    /// Endpoint that issued them.
    pub source: CredentialSource,
    /// `ASIAMOCK` followed by the zero-padded serial (20 characters).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token.
    pub token: Secret,
    /// `Expiration` as sent (RFC 3339, whole seconds, UTC).
    pub expiration: String,
}

/// A running mock IMDS. Dropping it stops the server (and any request it is
/// holding), promptly.
pub struct MockImds {
    shared: Arc<Mutex<MockState>>,
    address: SocketAddr,
    container_path: String,
    // Dropping the sender tells the accept loop and every connection to stop.
    shutdown: Option<watch::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MockImds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockImds")
            .field("endpoint", &self.endpoint())
            .field("own_thread", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl MockImds {
    /// Start on its own runtime thread, from any code (blocking or async).
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound (the port is taken): this is meant for
    /// tests. Use [`MockImds::bind`] to handle that.
    #[must_use]
    pub fn start(options: MockImdsOptions) -> MockImds {
        let port = options.port;
        MockImds::bind(options)
            .unwrap_or_else(|err| panic!("mock IMDS: cannot listen on 127.0.0.1:{port}: {err}"))
    }

    /// Start on its own runtime thread; fails if the port cannot be bound.
    pub fn bind(options: MockImdsOptions) -> io::Result<MockImds> {
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, options.port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (sender, receiver) = watch::channel(());
        let mut mock = MockImds::new(options, address, sender);
        let shared = Arc::clone(&mock.shared);
        let thread = std::thread::Builder::new()
            .name(format!("mock-imds-{}", address.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => server::serve(listener, shared, receiver).await,
                        Err(err) => eprintln!("mock-imds: cannot register the listener: {err}"),
                    }
                });
                // Dropping the runtime here cancels the connections still open.
            })?;
        mock.thread = Some(thread);
        Ok(mock)
    }

    /// Start on the current tokio runtime (which needs IO and time enabled).
    /// The server's tasks end when the returned value is dropped.
    pub async fn spawn(options: MockImdsOptions) -> io::Result<MockImds> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).await?;
        let address = listener.local_addr()?;
        let (sender, receiver) = watch::channel(());
        let mock = MockImds::new(options, address, sender);
        tokio::spawn(server::serve(listener, Arc::clone(&mock.shared), receiver));
        Ok(mock)
    }

    fn new(options: MockImdsOptions, address: SocketAddr, sender: watch::Sender<()>) -> MockImds {
        let container_path = options.container_path.clone();
        MockImds {
            shared: Arc::new(Mutex::new(MockState::new(options, Instant::now()))),
            address,
            container_path,
            shutdown: Some(sender),
            thread: None,
        }
    }

    fn state(&self) -> MutexGuard<'_, MockState> {
        server::lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT`: the value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The full container endpoint URL: the value for
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    #[must_use]
    pub fn container_url(&self) -> String {
        format!("http://{}{}", self.address, self.container_path)
    }

    /// The bound address (always on 127.0.0.1).
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Time since the server started: the origin of
    /// [`FaultSchedule::Between`].
    #[must_use]
    pub fn uptime(&self) -> Duration {
        self.state().uptime(Instant::now())
    }

    /// Request counts so far.
    #[must_use]
    pub fn stats(&self) -> MockStats {
        self.state().stats().clone()
    }

    /// Forget the request counts.
    pub fn reset_stats(&self) {
        self.state().reset_stats();
    }

    /// Put one fault in force on every eligible request (`None` lifts it).
    /// It takes precedence over scheduled faults, which stay installed.
    pub fn set_fault(&self, kind: Option<FaultKind>) {
        if let Some(kind) = kind.filter(|kind| !is_server_fault(*kind)) {
            note_ignored(kind);
            return;
        }
        self.state().set_manual_fault(kind);
    }

    /// Install a scheduled fault (after those already installed).
    pub fn add_fault(&self, rule: FaultRule) {
        if !is_server_fault(rule.kind) {
            note_ignored(rule.kind);
            return;
        }
        self.state().add_fault(rule);
    }

    /// Lift every fault: the one of [`set_fault`](Self::set_fault) and the
    /// scheduled ones, including those from the options.
    pub fn clear_faults(&self) {
        self.state().clear_faults();
    }

    /// Delay every answer by this much on top of the options' latency (for
    /// example to hold a refresh in flight while callers keep being served).
    pub fn set_delay(&self, delay: Duration) {
        self.state().set_delay(delay);
    }

    /// Attach another role, or none.
    pub fn set_role(&self, role: Option<String>) {
        self.state().set_role(role);
    }

    /// Turn IMDSv1 (token-less GETs) off or back on.
    pub fn set_v1_disabled(&self, disabled: bool) {
        self.state().set_v1_disabled(disabled);
    }

    /// Change the `Authorization` value the container endpoint requires.
    pub fn set_container_authorization(&self, value: Option<String>) {
        self.state().set_container_authorization(value);
    }

    /// Make every session token issued so far unknown (their GETs get 401).
    pub fn expire_tokens(&self) {
        self.state().expire_tokens();
    }

    /// Issue new credentials on the next fetch from each source, whatever the
    /// rotation model says.
    pub fn rotate_credentials(&self) {
        self.state().rotate_credentials();
    }

    /// Every set of credentials issued so far, oldest first (the last 1000).
    #[must_use]
    pub fn issued_credentials(&self) -> Vec<IssuedCredentials> {
        self.state().issued().to_vec()
    }

    /// Stop the server now (dropping does the same).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for MockImds {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            // The thread only waits for the accept loop, which stops at once.
            let _ = thread.join();
        }
    }
}
