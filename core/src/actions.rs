//! What flows in and out of the machine: requests to send, responses and
//! transport failures to report, and the one [`Output`] enum to drain.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::credentials::{Credentials, Secret};
use crate::errors::SourceError;
use crate::events::Event;
use crate::file_read::FileRead;
use crate::time::Timestamp;

/// Identifies one request the machine issued; report its outcome with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The numeric id, e.g. to hand across an FFI boundary.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }

    /// Rebuild an id received back from an FFI boundary. An id the machine did
    /// not issue is rejected by the machine with [`crate::MisuseError`].
    #[must_use]
    pub fn from_raw(raw: u64) -> Self {
        RequestId(raw)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a request is for; used in events and error messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// `PUT /latest/api/token`.
    ImdsToken,
    /// The role list under `security-credentials[-extended]/`.
    ImdsRoleList,
    /// The credentials of one role.
    ImdsCredentials {
        /// The role name.
        role: String,
    },
    /// The credentials request to a container endpoint (ECS, EKS).
    ContainerCredentials {
        /// The endpoint's URI.
        url: String,
    },
    /// Reading the container authorization token file.
    ContainerTokenFile {
        /// The file's path.
        path: String,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ImdsToken => f.write_str("the IMDS token request"),
            Step::ImdsRoleList => f.write_str("the IMDS role list request"),
            Step::ImdsCredentials { role } => {
                write!(f, "the IMDS request for the credentials of role '{role}'")
            }
            Step::ContainerCredentials { url } => {
                write!(f, "the container credentials request to {url}")
            }
            Step::ContainerTokenFile { path } => {
                write!(f, "reading the container authorization token file {path}")
            }
        }
    }
}

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// GET.
    Get,
    /// PUT.
    Put,
}

impl Method {
    /// The method as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        }
    }
}

/// A header value that may be secret (the IMDS session token, the container
/// authorization token).
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// An ordinary value.
    Plain(String),
    /// A secret value; redacted by `Debug`.
    Secret(Secret),
}

impl HeaderValue {
    /// The value to put on the wire.
    #[must_use]
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(value) => value,
            HeaderValue::Secret(secret) => secret.expose(),
        }
    }

    /// Whether the value is secret and must not be logged.
    #[must_use]
    pub fn is_secret(&self) -> bool {
        matches!(self, HeaderValue::Secret(_))
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Plain(value) => fmt::Debug::fmt(value, f),
            HeaderValue::Secret(secret) => fmt::Debug::fmt(secret, f),
        }
    }
}

/// One HTTP request for the adapter to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// Report the outcome with this id.
    pub id: RequestId,
    /// What the request is for.
    pub step: Step,
    /// The method.
    pub method: Method,
    /// Absolute URL, e.g. `http://169.254.169.254/latest/api/token`.
    pub url: String,
    /// Headers to send, in order.
    pub headers: Vec<(&'static str, HeaderValue)>,
    /// Deadline for this attempt, from connecting through the last body byte.
    /// The machine also enforces it itself, so a late report is ignored.
    pub timeout: Duration,
    /// Read at most this many body bytes plus one; the machine rejects larger
    /// bodies, so reading more is wasted work.
    pub max_body_bytes: usize,
}

impl Request {
    /// The path and query part of the URL, e.g. `/latest/api/token`.
    #[must_use]
    pub fn path(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        self.url[after_scheme..]
            .find('/')
            .map_or("/", |i| &self.url[after_scheme + i..])
    }
}

/// An HTTP response, reported with [`crate::Machine::handle_response`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body, possibly cut at [`Request::max_body_bytes`] + 1.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers.
    #[must_use]
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header of that name, compared case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Response {
    // Bodies carry secrets (tokens, credentials): print only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field(
                "header_names",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// How a request failed below HTTP, reported with
/// [`crate::Machine::handle_failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The connection was refused or could not be made.
    ConnectRefused,
    /// No complete response arrived before the request's timeout.
    TimedOut,
    /// The connection broke after it was made (e.g. reset mid-body).
    Reset,
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportFailure::ConnectRefused => "connection refused",
            TransportFailure::TimedOut => "timed out",
            TransportFailure::Reset => "connection reset",
        })
    }
}

/// The next thing the caller must do, from [`crate::Machine::poll`].
///
/// Drain it until it returns [`Output::WakeAt`] or [`Output::Idle`]; the last
/// answer is always the deadline.
#[derive(Debug)]
#[must_use = "an Output is work the caller must do"]
#[non_exhaustive]
pub enum Output {
    /// Perform this HTTP request and report the outcome.
    Send(Request),
    /// Read this file now and report its contents or the reason with
    /// [`crate::Machine::handle_file`].
    ReadFile(FileRead),
    /// Something happened; log or count it.
    Event(Event),
    /// Nothing to do until this instant (or until an input arrives); then call
    /// [`crate::Machine::handle_timeout`]. Waking early or late is harmless.
    WakeAt(Timestamp),
    /// Nothing to do and no deadline: wait for the next input.
    Idle,
}

/// The machine's answer to a caller asking for credentials.
#[derive(Clone, Debug)]
#[must_use = "a Demand says whether the caller has credentials or must wait"]
#[non_exhaustive]
pub enum Demand {
    /// Use these credentials now.
    Ready(Arc<Credentials>),
    /// A fetch is in flight; wait for it, then ask again.
    Pending,
    /// No credentials can be handed out; here is why.
    Rejected(SourceError),
}

/// The credentials a caller may use without asking the machine, and until when.
///
/// Adapters publish this (e.g. in an atomically swapped `Arc`) so the hot path
/// is a load and one comparison: before [`Snapshot::serve_until`] the machine
/// would answer [`Demand::Ready`] with these same credentials and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The credentials.
    pub credentials: Arc<Credentials>,
    /// The end of the fast path: the start of the mandatory refresh window.
    pub serve_until: Timestamp,
}

impl Snapshot {
    /// Whether a caller may use [`Snapshot::credentials`] at `now` without
    /// asking the machine.
    #[must_use]
    pub fn is_servable_at(&self, now: Timestamp) -> bool {
        now < self.serve_until
    }
}
