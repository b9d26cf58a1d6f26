//! The seed system as a small state machine: the AWS SDK for Java v1's
//! `InstanceProfileCredentialsProvider` over `BaseCredentialsFetcher`
//! (FIELD-GUIDE §6), driven by the same harness and simulated IMDS as
//! credstate so the two can be compared call for call.
//!
//! What is modelled:
//! - `getCredentials()` refetches when the cache is empty, when the cached
//!   credentials expire within 15 minutes, or when the last check is more
//!   than 60 minutes old (`needsToLoadCredentials`); the check time is taken
//!   when a fetch starts.
//! - The fetch is `synchronized`: callers that need a fetch while another
//!   runs block on the monitor, and each re-checks when it gets it — after a
//!   failure (empty cache) or an unchanged answer inside the 15-minute
//!   window, every one of them fetches again, one after the other.
//! - A fetch is role list then credentials, each preceded by its own token
//!   PUT (a new token per request); 403/404/405 on the PUT means "send it
//!   without a token" (IMDSv1), any other token failure fails the fetch.
//!   Requests time out after 5 s of silence (read timeout), one attempt.
//! - Any error empties the cache (`refresh()`) and is thrown to the caller
//!   that ran the fetch; credentials that arrive already expired throw
//!   "The credentials received have been expired".
//! - Async mode: a thread calls `getCredentials()` every minute (fixed delay,
//!   monotonic), once a caller has succeeded; its errors are logged and
//!   empty the cache, so the next caller must fetch on its own.
//!
//! For container scenarios it models `ContainerCredentialsProvider` of the
//! same SDK generation, over the same fetcher logic (`needsToLoadCredentials`,
//! `synchronized` fetch, "The credentials received have been expired"), as
//! far as that provider can serve the scenario ([`java_container_endpoint`]
//! says why not, otherwise):
//! - `http://169.254.170.2/…` is `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`:
//!   no `Authorization` header, and `ContainerCredentialsRetryPolicy` — up to
//!   5 retries, at once, after a 5xx or an I/O error (timeouts included).
//! - Any other URI is `AWS_CONTAINER_CREDENTIALS_FULL_URI`, which that
//!   provider accepts only to `127.0.0.1` or `localhost`; the `Authorization`
//!   header comes from `AWS_CONTAINER_AUTHORIZATION_TOKEN` (the scenario's
//!   `auth: {"token": …}`); no retries. It reads no token file, so EKS Pod
//!   Identity (token file, host `169.254.170.23`) is out of its reach.
//! - A failed fetch throws to the caller that ran it but keeps the cache:
//!   this provider never calls `refresh()`, and has no async mode.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use credstate::{
    parse_credentials, ContainerAuth, ContainerSource, Credentials, FileError, Method, Response,
    Timestamp, TransportFailure,
};

use super::imds::SimRequest;
use super::policy::{CallAnswer, Client, ClientOutput, SimNow};
use super::timeline::Entry;

const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const NEAR_EXPIRY: Duration = Duration::from_secs(15 * 60);
const RECHECK_AFTER: Duration = Duration::from_secs(60 * 60);
const ASYNC_PERIOD: Duration = Duration::from_secs(60);
/// `HttpURLConnection` read timeout of the v1 SDK (connect: 2 s, which the
/// simulated IMDS never needs: it accepts at once, then hangs or answers).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_LIMIT: usize = 64 * 1024;
/// `ContainerCredentialsRetryPolicy.MAX_RETRIES` (relative URIs only).
const CONTAINER_MAX_RETRIES: u32 = 5;
/// Where `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` paths go.
const ECS_HOST: &str = "169.254.170.2";
/// The only hosts that provider accepts in `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
const ALLOWED_FULL_URI_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// How Java v1's `ContainerCredentialsProvider` reaches a container agent.
#[derive(Clone, PartialEq, Eq)]
pub struct JavaContainerEndpoint {
    /// The URI, for messages.
    url: String,
    /// Its path and query, for the request.
    path: String,
    /// The `Authorization` header, if any (a secret: never printed).
    authorization: Option<String>,
    /// Immediate retries after a 5xx or an I/O error.
    max_retries: u32,
}

impl fmt::Debug for JavaContainerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JavaContainerEndpoint")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// How the seed system would fetch from `source`, or why it cannot: Java
/// v1's `ContainerCredentialsProvider` of the `InstanceProfileCredentialsProvider`
/// generation reads no token file, sends no header to the relative URI,
/// accepts full URIs only to `127.0.0.1` or `localhost`, and has no async
/// refresh.
pub fn java_container_endpoint(
    source: &ContainerSource,
    async_refresh: bool,
) -> Result<JavaContainerEndpoint, String> {
    let mut reasons = Vec::new();
    if async_refresh {
        reasons.push(String::from(
            "has no async refresh (refreshCredentialsAsync belongs to \
             InstanceProfileCredentialsProvider)",
        ));
    }
    let (scheme, host, path) = split_uri(&source.uri);
    let relative = scheme.eq_ignore_ascii_case("http") && host == ECS_HOST;
    let authorization = match &source.auth {
        ContainerAuth::None => None,
        ContainerAuth::Token(token) if !relative => Some(token.expose().to_string()),
        ContainerAuth::Token(_) => {
            reasons.push(String::from(
                "sends no Authorization header to the ECS relative URI \
                 (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), but this scenario's agent wants one",
            ));
            None
        }
        ContainerAuth::TokenFile(_) => {
            reasons.push(String::from(
                "reads no token file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, as EKS Pod \
                 Identity uses), only AWS_CONTAINER_AUTHORIZATION_TOKEN (\"auth\": {\"token\": …})",
            ));
            None
        }
        _ => {
            reasons.push(String::from("knows no such authorization"));
            None
        }
    };
    if !relative && !ALLOWED_FULL_URI_HOSTS.contains(&host) {
        reasons.push(format!(
            "accepts AWS_CONTAINER_CREDENTIALS_FULL_URI only to {}, not {host}",
            ALLOWED_FULL_URI_HOSTS.join(" or ")
        ));
    }
    if !reasons.is_empty() {
        return Err(format!(
            "Java v1's ContainerCredentialsProvider {}",
            reasons.join("; and it ")
        ));
    }
    Ok(JavaContainerEndpoint {
        url: source.uri.clone(),
        path: path.to_string(),
        authorization,
        max_retries: if relative { CONTAINER_MAX_RETRIES } else { 0 },
    })
}

/// `(scheme, host without port or brackets, path and query)` of an absolute
/// URI; the path is found as `credstate::Request::path` finds it.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    (scheme, host, path)
}

/// Why Java v1 decided to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaReason {
    /// No credentials cached.
    CacheEmpty,
    /// The cached credentials expire within 15 minutes.
    NearExpiry,
    /// The last check is more than 60 minutes old.
    HourlyCheck,
}

impl fmt::Display for JavaReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JavaReason::CacheEmpty => "cache empty",
            JavaReason::NearExpiry => "within 15 min of expiry",
            JavaReason::HourlyCheck => "60 min since the last check",
        })
    }
}

/// What the Java v1 model did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JavaEvent {
    /// A fetch started.
    FetchStarted {
        /// Why.
        reason: JavaReason,
        /// Run by the async refresh thread rather than a caller.
        by_async_thread: bool,
    },
    /// The token PUT answered this status; the request goes without a token.
    FellBackToV1 {
        /// 403, 404 or 405.
        status: u16,
    },
    /// Credentials arrived and were cached.
    CredentialsReceived {
        /// Their expiration.
        expires_at: Timestamp,
        /// Same as the cached ones.
        unchanged: bool,
    },
    /// An attempt failed and the retry policy sends the request again at once.
    AttemptFailed {
        /// What went wrong.
        message: String,
        /// This retry's number (1-based).
        retry: u32,
        /// Retries the policy allows.
        max_retries: u32,
    },
    /// The fetch failed (or brought expired credentials).
    FetchFailed {
        /// The exception message.
        message: String,
        /// The cache was emptied (`refresh()`).
        cache_cleared: bool,
    },
    /// A caller's `getCredentials()` threw.
    Rejected {
        /// The exception message.
        message: String,
    },
}

impl JavaEvent {
    /// A stable `snake_case` name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            JavaEvent::FetchStarted { .. } => "fetch_started",
            JavaEvent::FellBackToV1 { .. } => "fell_back_to_v1",
            JavaEvent::CredentialsReceived { .. } => "credentials_received",
            JavaEvent::AttemptFailed { .. } => "attempt_failed",
            JavaEvent::FetchFailed { .. } => "fetch_failed",
            JavaEvent::Rejected { .. } => "rejected",
        }
    }

    /// Whether it reports trouble.
    #[must_use]
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            JavaEvent::FellBackToV1 { .. }
                | JavaEvent::AttemptFailed { .. }
                | JavaEvent::FetchFailed { .. }
                | JavaEvent::Rejected { .. }
        )
    }

    /// For a failed fetch: the message and what became of the cache.
    #[must_use]
    pub fn failure_text(&self) -> String {
        match self {
            JavaEvent::FetchFailed {
                message,
                cache_cleared: true,
            } => format!("{message}; cache cleared"),
            JavaEvent::FetchFailed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for JavaEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JavaEvent::FetchStarted {
                reason,
                by_async_thread: false,
            } => write!(f, "fetch ({reason})"),
            JavaEvent::FetchStarted { reason, .. } => {
                write!(f, "fetch by the async refresh thread ({reason})")
            }
            JavaEvent::FellBackToV1 { status } => write!(
                f,
                "token PUT answered HTTP {status}; request sent without a token (IMDSv1)"
            ),
            JavaEvent::CredentialsReceived {
                expires_at,
                unchanged,
            } => write!(
                f,
                "{} credentials expiring {expires_at}",
                if *unchanged { "unchanged" } else { "new" }
            ),
            JavaEvent::AttemptFailed {
                message,
                retry,
                max_retries,
            } => write!(
                f,
                "attempt failed: {message}; retrying at once ({retry} of {max_retries})"
            ),
            JavaEvent::FetchFailed { .. } => write!(f, "fetch failed: {}", self.failure_text()),
            JavaEvent::Rejected { message } => write!(f, "getCredentials() threw: {message}"),
        }
    }
}

/// Who is inside `getCredentials()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thread {
    Caller(u64),
    AsyncRefresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    RoleToken,
    RoleList,
    CredentialsToken,
    Credentials,
    /// The one GET of `ContainerCredentialsProvider`.
    Container,
}

#[derive(Debug)]
struct Fetch {
    owner: Thread,
    phase: Phase,
    /// The token for the GET of this phase; `None` after a v1 fallback.
    token: Option<String>,
    role: Option<String>,
    in_flight: u64,
    /// Retries of the container GET so far.
    retries: u32,
}

/// Which provider is modelled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Provider {
    /// `InstanceProfileCredentialsProvider`.
    InstanceProfile,
    /// `ContainerCredentialsProvider`.
    Container(JavaContainerEndpoint),
}

/// Java v1's instance profile (or container) provider, as a sans-IO state
/// machine.
#[derive(Debug)]
pub struct JavaV1Client {
    provider: Provider,
    cache: Option<Arc<Credentials>>,
    last_check: Option<Timestamp>,
    fetch: Option<Fetch>,
    /// Threads blocked on the fetcher's monitor, in arrival order.
    blocked: VecDeque<Thread>,
    /// Set once a caller's `getCredentials()` returned (`shouldRefresh`).
    should_refresh: bool,
    /// The async thread's next run (monotonic ms), when it is not busy.
    next_async_run: Option<u64>,
    next_request_id: u64,
    out: VecDeque<ClientOutput>,
}

impl JavaV1Client {
    /// The provider; `async_refresh` is `refreshCredentialsAsync`.
    #[must_use]
    pub fn new(async_refresh: bool) -> Self {
        JavaV1Client {
            provider: Provider::InstanceProfile,
            cache: None,
            last_check: None,
            fetch: None,
            blocked: VecDeque::new(),
            should_refresh: false,
            // The executor starts with the provider, initial delay 0.
            next_async_run: async_refresh.then_some(0),
            next_request_id: 0,
            out: VecDeque::new(),
        }
    }

    /// `ContainerCredentialsProvider` reaching the agent at `endpoint`.
    #[must_use]
    pub fn for_container(endpoint: JavaContainerEndpoint) -> Self {
        JavaV1Client {
            provider: Provider::Container(endpoint),
            ..JavaV1Client::new(false)
        }
    }

    fn emit(&mut self, event: JavaEvent) {
        self.out
            .push_back(ClientOutput::Entry(Entry::JavaV1(event)));
    }

    /// `needsToLoadCredentials()`.
    fn needs_to_load(&self, now: SimNow) -> Option<JavaReason> {
        let Some(credentials) = &self.cache else {
            return Some(JavaReason::CacheEmpty);
        };
        if credentials.expiration.millis_since(now.wall) < NEAR_EXPIRY.as_millis() as i64 {
            return Some(JavaReason::NearExpiry);
        }
        if self
            .last_check
            .is_some_and(|last| now.wall.millis_since(last) > RECHECK_AFTER.as_millis() as i64)
        {
            return Some(JavaReason::HourlyCheck);
        }
        None
    }

    /// `getCredentials()` entered by `thread`.
    fn get_credentials(&mut self, thread: Thread, now: SimNow) {
        match self.needs_to_load(now) {
            Some(_) if self.fetch.is_some() => self.blocked.push_back(thread),
            Some(reason) => self.start_fetch(thread, reason, now),
            None => self.return_cached(thread, now),
        }
    }

    /// The end of `getCredentials()` when no fetch is needed (any more).
    fn return_cached(&mut self, thread: Thread, now: SimNow) {
        match self.cache.clone() {
            Some(credentials) if credentials.expiration > now.wall => {
                if let Thread::Caller(caller) = thread {
                    self.should_refresh = true;
                    self.out.push_back(ClientOutput::Answer {
                        caller,
                        answer: CallAnswer::Served {
                            credentials,
                            marked_expired: false,
                        },
                    });
                } else {
                    self.async_run_done(now);
                }
            }
            _ => self.throw(
                thread,
                "The credentials received have been expired".into(),
                now,
            ),
        }
    }

    fn throw(&mut self, thread: Thread, message: String, now: SimNow) {
        match thread {
            Thread::Caller(caller) => {
                self.emit(JavaEvent::Rejected {
                    message: message.clone(),
                });
                self.out.push_back(ClientOutput::Answer {
                    caller,
                    answer: CallAnswer::Rejected { cause: message },
                });
            }
            Thread::AsyncRefresh => {
                // handleError(): refresh() and log.
                self.cache = None;
                self.async_run_done(now);
            }
        }
    }

    fn async_run_done(&mut self, now: SimNow) {
        self.next_async_run = Some(now.elapsed_ms + ASYNC_PERIOD.as_millis() as u64);
    }

    fn start_fetch(&mut self, owner: Thread, reason: JavaReason, now: SimNow) {
        self.last_check = Some(now.wall);
        self.emit(JavaEvent::FetchStarted {
            reason,
            by_async_thread: owner == Thread::AsyncRefresh,
        });
        let phase = match self.provider {
            Provider::InstanceProfile => Phase::RoleToken,
            Provider::Container(_) => Phase::Container,
        };
        self.fetch = Some(Fetch {
            owner,
            phase,
            token: None,
            role: None,
            in_flight: 0,
            retries: 0,
        });
        self.send_next();
    }

    fn send_next(&mut self) {
        let Some(fetch) = &mut self.fetch else {
            return;
        };
        let id = self.next_request_id;
        self.next_request_id += 1;
        fetch.in_flight = id;
        let (method, path, headers) = match fetch.phase {
            Phase::RoleToken | Phase::CredentialsToken => (
                Method::Put,
                TOKEN_PATH.to_string(),
                vec![(
                    "x-aws-ec2-metadata-token-ttl-seconds".to_string(),
                    "21600".to_string(),
                )],
            ),
            Phase::RoleList => (Method::Get, CREDENTIALS_PATH.to_string(), Vec::new()),
            Phase::Credentials => (
                Method::Get,
                format!(
                    "{CREDENTIALS_PATH}{}",
                    fetch.role.as_deref().unwrap_or_default()
                ),
                Vec::new(),
            ),
            Phase::Container => match &self.provider {
                Provider::Container(endpoint) => (
                    Method::Get,
                    endpoint.path.clone(),
                    endpoint
                        .authorization
                        .iter()
                        .map(|token| ("Authorization".to_string(), token.clone()))
                        .collect(),
                ),
                Provider::InstanceProfile => {
                    unreachable!("only the container provider GETs an agent")
                }
            },
        };
        let mut headers = headers;
        if let (Phase::RoleList | Phase::Credentials, Some(token)) = (fetch.phase, &fetch.token) {
            headers.push(("x-aws-ec2-metadata-token".to_string(), token.clone()));
        }
        self.out.push_back(ClientOutput::Send(SimRequest {
            id,
            method,
            path,
            headers,
            timeout: READ_TIMEOUT,
        }));
    }

    fn advance(&mut self, phase: Phase, token: Option<String>) {
        if let Some(fetch) = &mut self.fetch {
            fetch.phase = phase;
            fetch.token = token;
        }
        self.send_next();
    }

    fn on_answer(&mut self, response: &Response, now: SimNow) {
        let Some(fetch) = &self.fetch else { return };
        let status = response.status;
        match (fetch.phase, status) {
            (Phase::RoleToken | Phase::CredentialsToken, 200) => {
                let token = String::from_utf8_lossy(&response.body).trim().to_string();
                let next = next_phase(fetch.phase);
                self.advance(next, Some(token));
            }
            (Phase::RoleToken | Phase::CredentialsToken, 403..=405) => {
                let next = next_phase(fetch.phase);
                self.emit(JavaEvent::FellBackToV1 { status });
                self.advance(next, None);
            }
            (Phase::RoleToken | Phase::CredentialsToken, _) => {
                self.fail(format!("Fail to retrieve token: HTTP {status}"), now);
            }
            (Phase::RoleList, 200) => {
                let body = String::from_utf8_lossy(&response.body);
                let role = body.trim().split('\n').next().unwrap_or_default().trim();
                if role.is_empty() {
                    self.fail("Unable to load credentials path".into(), now);
                } else {
                    let role = role.to_string();
                    if let Some(fetch) = &mut self.fetch {
                        fetch.role = Some(role);
                    }
                    self.advance(Phase::CredentialsToken, None);
                }
            }
            (Phase::Credentials, 200) => match parse_credentials(&response.body, BODY_LIMIT) {
                Ok(credentials) => self.succeed(credentials, now),
                Err(_) => self.fail(
                    "Unable to parse response returned from service endpoint".into(),
                    now,
                ),
            },
            (Phase::RoleList | Phase::Credentials, _) => self.fail(
                format!("Unable to load credentials from service endpoint: HTTP {status}"),
                now,
            ),
            (Phase::Container, 200) => match parse_credentials(&response.body, BODY_LIMIT) {
                Ok(credentials) => self.succeed(credentials, now),
                Err(_) => self.fail(
                    "Unable to parse response returned from service endpoint".into(),
                    now,
                ),
            },
            (Phase::Container, 404) => {
                let url = self.container_url();
                self.fail(format!("The requested metadata is not found at {url}"), now);
            }
            (Phase::Container, 500..=599) => self.retry_or_fail(
                format!("Unable to load credentials from service endpoint: HTTP {status}"),
                now,
            ),
            (Phase::Container, _) => self.fail(
                format!("Unable to load credentials from service endpoint: HTTP {status}"),
                now,
            ),
        }
    }

    fn container_url(&self) -> String {
        match &self.provider {
            Provider::Container(endpoint) => endpoint.url.clone(),
            Provider::InstanceProfile => String::new(),
        }
    }

    /// `ContainerCredentialsRetryPolicy`: send the request again at once
    /// while retries remain, else fail with `message`.
    fn retry_or_fail(&mut self, message: String, now: SimNow) {
        let max_retries = match &self.provider {
            Provider::Container(endpoint) => endpoint.max_retries,
            Provider::InstanceProfile => 0,
        };
        let Some(fetch) = &mut self.fetch else { return };
        if fetch.retries >= max_retries {
            self.fail(message, now);
            return;
        }
        fetch.retries += 1;
        let retry = fetch.retries;
        self.emit(JavaEvent::AttemptFailed {
            message,
            retry,
            max_retries,
        });
        self.send_next();
    }

    fn on_transport_failure(&mut self, failure: TransportFailure, now: SimNow) {
        let Some(fetch) = &self.fetch else { return };
        let what = match failure {
            TransportFailure::TimedOut => {
                format!("read timed out after {}s", READ_TIMEOUT.as_secs())
            }
            other => other.to_string(),
        };
        match fetch.phase {
            Phase::RoleToken | Phase::CredentialsToken => {
                self.fail(format!("Fail to retrieve token: {what}"), now);
            }
            Phase::Container => {
                self.retry_or_fail(
                    format!("Failed to connect to service endpoint: {what}"),
                    now,
                );
            }
            Phase::RoleList | Phase::Credentials => {
                self.fail(
                    format!("Failed to connect to service endpoint: {what}"),
                    now,
                );
            }
        }
    }

    fn succeed(&mut self, credentials: Credentials, now: SimNow) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        let unchanged = self
            .cache
            .as_ref()
            .is_some_and(|cached| cached.is_same_as(&credentials));
        let expires_at = credentials.expiration;
        self.cache = Some(Arc::new(credentials));
        self.emit(JavaEvent::CredentialsReceived {
            expires_at,
            unchanged,
        });
        if expires_at <= now.wall {
            self.emit(JavaEvent::FetchFailed {
                message: "The credentials received have been expired".into(),
                cache_cleared: fetch.owner == Thread::AsyncRefresh,
            });
        }
        self.return_cached(fetch.owner, now);
        self.wake_blocked(now);
    }

    fn fail(&mut self, message: String, now: SimNow) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        // The instance profile model empties the cache on every failure; the
        // container provider never calls `refresh()`, so its fetcher only
        // throws and the cache survives for the next caller.
        let cache_cleared = self.provider == Provider::InstanceProfile;
        if cache_cleared {
            self.cache = None;
        }
        self.emit(JavaEvent::FetchFailed {
            message: message.clone(),
            cache_cleared,
        });
        self.throw(fetch.owner, message, now);
        self.wake_blocked(now);
    }

    /// The monitor is free: blocked threads take it one by one, each
    /// re-checking; the first that still needs a fetch runs its own.
    fn wake_blocked(&mut self, now: SimNow) {
        while let Some(thread) = self.blocked.pop_front() {
            match self.needs_to_load(now) {
                Some(reason) => {
                    self.start_fetch(thread, reason, now);
                    return;
                }
                None => self.return_cached(thread, now),
            }
        }
    }
}

fn next_phase(token_phase: Phase) -> Phase {
    match token_phase {
        Phase::RoleToken => Phase::RoleList,
        _ => Phase::Credentials,
    }
}

impl Client for JavaV1Client {
    fn call(&mut self, caller: u64, now: SimNow) {
        self.get_credentials(Thread::Caller(caller), now);
    }

    fn on_response(&mut self, id: u64, response: Response, now: SimNow) {
        if self.fetch.as_ref().is_some_and(|f| f.in_flight == id) {
            self.on_answer(&response, now);
        }
    }

    fn on_failure(&mut self, id: u64, failure: TransportFailure, now: SimNow) {
        if self.fetch.as_ref().is_some_and(|f| f.in_flight == id) {
            self.on_transport_failure(failure, now);
        }
    }

    fn on_file(&mut self, _id: u64, _contents: Result<Vec<u8>, FileError>, _now: SimNow) {
        // Java v1 never asks for a file: it reads no token file.
    }

    fn on_timeout(&mut self, now: SimNow) {
        let Some(at) = self.next_async_run else {
            return;
        };
        if at > now.elapsed_ms {
            return;
        }
        self.next_async_run = None;
        if self.should_refresh {
            self.get_credentials(Thread::AsyncRefresh, now);
        } else {
            self.async_run_done(now);
        }
    }

    fn poll(&mut self, _now: SimNow) -> ClientOutput {
        if let Some(output) = self.out.pop_front() {
            return output;
        }
        match self.next_async_run {
            Some(at) => ClientOutput::WakeAt(at),
            None => ClientOutput::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::clock::SIM_EPOCH;

    fn now(minutes: u64) -> SimNow {
        SimNow {
            wall: SIM_EPOCH.shifted_by_millis(minutes as i64 * 60_000),
            elapsed_ms: minutes * 60_000,
        }
    }

    fn drain(client: &mut JavaV1Client) -> Vec<ClientOutput> {
        let mut outputs = Vec::new();
        while let Some(output) = client.out.pop_front() {
            outputs.push(output);
        }
        outputs
    }

    fn sent<'a>(outputs: impl IntoIterator<Item = &'a ClientOutput>) -> Vec<(u64, Method, String)> {
        outputs
            .into_iter()
            .filter_map(|o| match o {
                ClientOutput::Send(r) => Some((r.id, r.method, r.path.clone())),
                _ => None,
            })
            .collect()
    }

    fn body(expires_minutes: i64) -> String {
        format!(
            r#"{{"Code":"Success","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"{}"}}"#,
            SIM_EPOCH.shifted_by_millis(expires_minutes * 60_000)
        )
    }

    /// Run one whole fetch against scripted answers; returns the outputs.
    fn fetch(client: &mut JavaV1Client, at: SimNow, expires_minutes: i64) -> Vec<ClientOutput> {
        let mut all = Vec::new();
        for answer in ["token", "role", "token", "creds"] {
            let outputs = drain(client);
            let (id, _, _) = sent(&outputs).pop().expect("a request");
            all.extend(outputs);
            let response = match answer {
                "token" => Response::new(200, "tok"),
                "role" => Response::new(200, "role\n"),
                _ => Response::new(200, body(expires_minutes)),
            };
            client.on_response(id, response, at);
        }
        all.extend(drain(client));
        all
    }

    fn answers<'a>(outputs: impl IntoIterator<Item = &'a ClientOutput>) -> Vec<(u64, bool)> {
        outputs
            .into_iter()
            .filter_map(|o| match o {
                ClientOutput::Answer { caller, answer } => {
                    Some((*caller, matches!(answer, CallAnswer::Served { .. })))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_fetch_puts_a_new_token_before_each_get() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        let outputs = fetch(&mut client, now(0), 360);
        let paths: Vec<String> = sent(&outputs).into_iter().map(|(_, _, p)| p).collect();
        assert_eq!(
            paths,
            [
                TOKEN_PATH,
                CREDENTIALS_PATH,
                TOKEN_PATH,
                "/latest/meta-data/iam/security-credentials/role"
            ]
        );
        assert_eq!(answers(&outputs), [(1, true)]);
    }

    #[test]
    fn refetches_within_fifteen_minutes_of_expiry_and_after_an_hour() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        fetch(&mut client, now(0), 360);
        assert_eq!(client.needs_to_load(now(60)), None);
        assert_eq!(client.needs_to_load(now(61)), Some(JavaReason::HourlyCheck));
        client.last_check = Some(now(340).wall);
        assert_eq!(client.needs_to_load(now(344)), None);
        assert_eq!(client.needs_to_load(now(346)), Some(JavaReason::NearExpiry));
    }

    #[test]
    fn an_error_empties_the_cache_and_throws_even_with_valid_credentials() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        fetch(&mut client, now(0), 360);
        client.call(2, now(61));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_response(id, Response::new(500, "oops"), now(61));
        let outputs = drain(&mut client);
        assert_eq!(answers(&outputs), [(2, false)]);
        assert!(client.cache.is_none());
    }

    #[test]
    fn a_token_404_sends_the_get_without_a_token_but_a_token_timeout_fails() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_response(id, Response::new(404, ""), now(0));
        let outputs = drain(&mut client);
        assert!(outputs.iter().any(|o| matches!(
            o,
            ClientOutput::Entry(Entry::JavaV1(JavaEvent::FellBackToV1 { status: 404 }))
        )));
        let ClientOutput::Send(get) = outputs.last().unwrap() else {
            panic!("expected the role list GET")
        };
        assert!(get.header("x-aws-ec2-metadata-token").is_none());

        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_failure(id, TransportFailure::TimedOut, now(0));
        assert_eq!(answers(&drain(&mut client)), [(1, false)]);
    }

    #[test]
    fn credentials_that_arrive_expired_throw() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(30));
        let outputs = fetch(&mut client, now(30), 20);
        assert_eq!(answers(&outputs), [(1, false)]);
    }

    #[test]
    fn blocked_callers_each_fetch_again_after_a_failure() {
        let mut client = JavaV1Client::new(false);
        client.call(1, now(0));
        client.call(2, now(0));
        client.call(3, now(0));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_failure(id, TransportFailure::ConnectRefused, now(0));
        assert_eq!(answers(&client.out), [(1, false)]);
        // Caller 2 took the monitor and started its own fetch.
        assert_eq!(sent(&client.out).len(), 1);
        let outputs = fetch(&mut client, now(0), 360);
        // Caller 2's fetch succeeded and caller 3 then found a fresh cache
        // (the outputs still hold caller 1's answer).
        assert_eq!(answers(&outputs), [(1, false), (2, true), (3, true)]);
    }

    #[test]
    fn the_async_thread_starts_after_the_first_success_and_its_errors_clear_the_cache() {
        let mut client = JavaV1Client::new(true);
        client.on_timeout(now(0));
        assert!(drain(&mut client).is_empty());
        assert_eq!(client.next_async_run, Some(60_000));
        client.call(1, now(0));
        fetch(&mut client, now(0), 360);
        // Within 15 min of expiry the async run fetches, and a 500 empties
        // the cache although the credentials were valid for 10 more minutes.
        client.next_async_run = Some(350 * 60_000);
        client.on_timeout(now(350));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_response(id, Response::new(500, ""), now(350));
        drain(&mut client);
        assert!(client.cache.is_none());
        assert_eq!(client.next_async_run, Some(351 * 60_000));
    }

    fn container_source(json: &str) -> ContainerSource {
        serde_json::from_str(json).unwrap()
    }

    fn ecs_client() -> JavaV1Client {
        let source = container_source(r#"{"uri": "http://169.254.170.2/v2/credentials/abc"}"#);
        JavaV1Client::for_container(java_container_endpoint(&source, false).unwrap())
    }

    fn container_body(expires_minutes: i64) -> String {
        format!(
            r#"{{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"{}"}}"#,
            SIM_EPOCH.shifted_by_millis(expires_minutes * 60_000)
        )
    }

    #[test]
    fn the_container_provider_gets_the_relative_uri_bare_and_retries_a_5xx_five_times_at_once() {
        let mut client = ecs_client();
        client.call(1, now(0));
        for _ in 0..5 {
            let outputs = drain(&mut client);
            let ClientOutput::Send(get) = outputs.last().unwrap() else {
                panic!("expected the GET, got {outputs:?}")
            };
            assert_eq!(
                (get.method, get.path.as_str()),
                (Method::Get, "/v2/credentials/abc")
            );
            assert!(get.header("authorization").is_none());
            client.on_response(get.id, Response::new(500, ""), now(0));
        }
        let (id, _, _) = sent(&drain(&mut client)).pop().expect("the fifth retry");
        client.on_response(id, Response::new(500, ""), now(0));
        let outputs = drain(&mut client);
        assert!(sent(&outputs).is_empty(), "a sixth retry");
        assert_eq!(answers(&outputs), [(1, false)]);
    }

    #[test]
    fn a_failed_container_fetch_throws_but_keeps_the_cache() {
        let mut client = ecs_client();
        client.call(1, now(0));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_response(id, Response::new(200, container_body(360)), now(0));
        assert_eq!(answers(&drain(&mut client)), [(1, true)]);
        // The hourly check meets a 404: the caller that ran it gets the
        // exception, the next one the cached credentials.
        client.call(2, now(61));
        let (id, _, _) = sent(&drain(&mut client)).pop().unwrap();
        client.on_response(id, Response::new(404, ""), now(61));
        let outputs = drain(&mut client);
        assert_eq!(answers(&outputs), [(2, false)]);
        assert!(client.cache.is_some());
        client.call(3, now(62));
        assert_eq!(answers(&drain(&mut client)), [(3, true)]);
    }

    #[test]
    fn a_full_uri_sends_the_configured_token_and_does_not_retry() {
        let source = container_source(
            r#"{"uri": "http://127.0.0.1:9911/creds", "auth": {"token": "sim-env-token"}}"#,
        );
        let endpoint = java_container_endpoint(&source, false).unwrap();
        assert!(!format!("{endpoint:?}").contains("sim-env-token"));
        let mut client = JavaV1Client::for_container(endpoint);
        client.call(1, now(0));
        let outputs = drain(&mut client);
        let ClientOutput::Send(get) = outputs.last().unwrap() else {
            panic!("expected the GET")
        };
        assert_eq!(get.path, "/creds");
        assert_eq!(get.header("authorization"), Some("sim-env-token"));
        client.on_failure(get.id, TransportFailure::TimedOut, now(0));
        assert_eq!(answers(&drain(&mut client)), [(1, false)]);
    }

    #[test]
    fn the_seed_container_provider_refuses_token_files_eks_hosts_and_async_refresh() {
        let eks = container_source(
            r#"{"uri": "http://169.254.170.23/v1/credentials", "auth": {"token_file": "/t"}}"#,
        );
        let why = java_container_endpoint(&eks, false).unwrap_err();
        assert!(why.contains("reads no token file"), "{why}");
        assert!(why.contains("not 169.254.170.23"), "{why}");
        let ecs = container_source(r#"{"uri": "http://169.254.170.2/v2/credentials/abc"}"#);
        let why = java_container_endpoint(&ecs, true).unwrap_err();
        assert!(why.contains("no async refresh"), "{why}");
        let ecs_with_token = container_source(
            r#"{"uri": "http://169.254.170.2/v2/credentials/abc", "auth": {"token": "x"}}"#,
        );
        assert!(java_container_endpoint(&ecs_with_token, false).is_err());
        let localhost = container_source(r#"{"uri": "http://localhost/creds"}"#);
        assert!(java_container_endpoint(&localhost, false).is_ok());
    }
}
