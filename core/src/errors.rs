//! The two families of errors.
//!
//! [`MisuseError`] means the caller broke the contract (the h11 distinction:
//! "you misused the API"); [`SourceError`] means the credential source failed
//! or misbehaved. Neither ever carries a secret: messages name statuses,
//! fields and steps, never values read from a body.

use alloc::boxed::Box;
use alloc::string::String;
use core::time::Duration;

use thiserror::Error;

use crate::actions::{RequestId, Step, TransportFailure};
use crate::container::AuthTokenProblem;
use crate::file_read::{FileError, FileReadId};
use crate::time::{format_duration, Timestamp};

/// The caller used the machine wrongly. The machine's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// A response or failure was reported for a request the machine never issued.
    #[error("request {0} was never issued by this machine")]
    UnknownRequest(RequestId),
    /// A file's contents were reported for a read the machine never asked for.
    #[error("{0} was never asked for by this machine")]
    UnknownFileRead(FileReadId),
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid configuration field `{field}`: {problem}")]
pub struct ConfigError {
    /// The configuration field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// A duration string that does not parse (see [`crate::parse_duration`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid duration {input:?}: expected e.g. 250ms, 90s, 5h50m or 3d")]
pub struct DurationParseError {
    /// The text that was given.
    pub input: String,
}

/// Why the session-token request did not give a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFailure {
    /// IMDS answered the token PUT with this status (403, 404 or 405).
    Status(u16),
    /// The token PUT got no answer within the timeout.
    TimedOut(Duration),
}

impl core::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TokenFailure::Status(403) => {
                f.write_str("HTTP 403 (IMDS disabled or token requests blocked)")
            }
            TokenFailure::Status(status @ (404 | 405)) => {
                write!(f, "HTTP {status} (this endpoint does not offer IMDSv2)")
            }
            TokenFailure::Status(status) => write!(f, "HTTP {status}"),
            TokenFailure::TimedOut(after) => {
                write!(f, "timed out after {}", format_duration(*after))
            }
        }
    }
}

/// Who disabled the IMDSv1 fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1DisabledBy {
    /// The client's configuration (`ec2_metadata_v1_disabled`).
    Config,
    /// The instance: IMDS answered a token-less request with 401.
    Instance,
}

/// What was wrong with a response body.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BadResponse {
    /// The body was larger than the configured cap.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The body was not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// The body was not the expected JSON.
    #[error("invalid JSON ({category}) at line {line} column {column}")]
    InvalidJson {
        /// serde_json's classification: syntax, data, eof or io.
        category: &'static str,
        /// Line of the problem.
        line: usize,
        /// Column of the problem.
        column: usize,
    },
    /// A required field was missing or empty.
    #[error("field `{0}` is missing or empty")]
    MissingField(&'static str),
    /// A timestamp field was not RFC 3339.
    #[error("field `{field}` is not an RFC 3339 timestamp")]
    InvalidTimestamp {
        /// The field's name.
        field: &'static str,
    },
    /// The source reported a `Code` other than `Success`.
    #[error("source reported Code {code:?}{}", message.as_ref().map(|m| alloc::format!(": {m}")).unwrap_or_default())]
    NotSuccess {
        /// The `Code` value.
        code: String,
        /// The `Message` value, if any.
        message: Option<String>,
    },
    /// The role list was empty.
    #[error("the role list is empty")]
    EmptyRoleList,
    /// The role name is not a valid IAM role name and would not be put in a URL.
    #[error("role name is not a valid IAM role name ({0})")]
    InvalidRoleName(&'static str),
    /// The session token was empty or not a valid header value.
    #[error("the session token is empty or not a valid header value")]
    InvalidToken,
    /// The credentials had already expired when they arrived.
    #[error("the credentials had already expired at {expired_at}")]
    AlreadyExpired {
        /// Their expiration.
        expired_at: Timestamp,
    },
}

/// Why the source could not supply credentials.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source is disabled by configuration (`AWS_EC2_METADATA_DISABLED`).
    #[error("the instance metadata service is disabled by configuration")]
    Disabled,
    /// No IAM role is attached to the instance.
    #[error("no IAM role is attached to this instance")]
    NoRoleAttached,
    /// The role name (configured or discovered) has no credentials.
    #[error("IMDS has no credentials for role '{role}'")]
    RoleNotFound {
        /// The role name.
        role: String,
    },
    /// IMDSv1 is not allowed and the token request failed.
    #[error("IMDSv1 is disabled ({}) and the IMDS token request failed: {token_failure}", match by { V1DisabledBy::Config => "by configuration", V1DisabledBy::Instance => "by the instance" })]
    V1Disabled {
        /// Who disabled IMDSv1.
        by: V1DisabledBy,
        /// How the token request failed.
        token_failure: TokenFailure,
    },
    /// The token PUT timed out and IMDSv1 could not be used: the classic
    /// symptom of a container behind one network hop too many.
    #[error("IMDS token request timed out after {} — in a container the instance metadata hop limit may need to be 2", format_duration(*timeout))]
    LikelyHopLimit {
        /// The per-attempt timeout that expired.
        timeout: Duration,
    },
    /// A 400 to the token request: the client's own request is malformed.
    #[error("IMDS rejected the {step} as malformed (HTTP 400): check the token TTL configuration")]
    Misconfigured {
        /// The step.
        step: Step,
    },
    /// The source throttled us (429 or 503).
    #[error("{step} was throttled (HTTP {status})")]
    Throttled {
        /// The step.
        step: Step,
        /// The status.
        status: u16,
    },
    /// The source answered with a server error.
    #[error("{step} failed with HTTP {status}")]
    ServerError {
        /// The step.
        step: Step,
        /// The status.
        status: u16,
    },
    /// The source answered with a status nothing expects.
    #[error("{step} got unexpected HTTP {status}")]
    UnexpectedStatus {
        /// The step.
        step: Step,
        /// The status.
        status: u16,
    },
    /// The source could not be reached or the connection broke.
    #[error("{step} failed: {failure}")]
    Unreachable {
        /// The step.
        step: Step,
        /// The transport failure.
        failure: TransportFailure,
    },
    /// The source answered with something unusable.
    #[error("{step} returned a bad response: {problem}")]
    BadResponse {
        /// The step.
        step: Step,
        /// What was wrong.
        problem: BadResponse,
    },
    /// The source refused the request with a 4xx status, with the `Code` and
    /// `Message` of its error body when it had them.
    #[error("{step} was refused with HTTP {status}{}{}", code.as_ref().map(|c| alloc::format!(": {c}")).unwrap_or_default(), message.as_ref().map(|m| alloc::format!(": {m}")).unwrap_or_default())]
    Refused {
        /// The step.
        step: Step,
        /// The status.
        status: u16,
        /// The error body's `Code`.
        code: Option<String>,
        /// The error body's `Message`.
        message: Option<String>,
    },
    /// The container authorization token file could not be read.
    #[error("the container authorization token file {path} could not be read: {error}")]
    TokenFileUnreadable {
        /// The file's path.
        path: String,
        /// Why.
        error: FileError,
    },
    /// The container authorization token file holds something that cannot be
    /// sent as a header (the token itself is never shown).
    #[error("the container authorization token in {path} {problem}")]
    InvalidAuthorizationToken {
        /// The file's path.
        path: String,
        /// What is wrong with its contents.
        problem: AuthTokenProblem,
    },
    /// The held credentials have expired and no fresh ones could be fetched.
    #[error("the credentials expired at {expired_at} and the source has been failing for {}{}", format_duration(*failing_for), last_cause.as_ref().map(|c| alloc::format!(" (last error: {c})")).unwrap_or_default())]
    CredentialsExpired {
        /// When the last credentials expired.
        expired_at: Timestamp,
        /// How long refreshes have been failing.
        failing_for: Duration,
        /// The most recent failure, if any.
        last_cause: Option<Box<SourceError>>,
    },
}

impl SourceError {
    /// Whether retrying soon may help (throttling, server errors, network,
    /// bad bodies), as opposed to a condition that needs a change somewhere.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Throttled { .. }
                | SourceError::ServerError { .. }
                | SourceError::Unreachable { .. }
                | SourceError::BadResponse { .. }
                | SourceError::CredentialsExpired { .. }
        )
    }

    /// Whether the cause says this source has no credentials to offer here
    /// at all (disabled by configuration, no role attached), as opposed to
    /// failing to deliver them: a chain of credential providers should move
    /// on to its next provider rather than report an error.
    #[must_use]
    pub fn is_source_absent(&self) -> bool {
        matches!(self, SourceError::Disabled | SourceError::NoRoleAttached)
    }

    /// A stable, short name for the cause, e.g. `LikelyHopLimit`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            SourceError::Disabled => "Disabled",
            SourceError::NoRoleAttached => "NoRoleAttached",
            SourceError::RoleNotFound { .. } => "RoleNotFound",
            SourceError::V1Disabled { .. } => "V1Disabled",
            SourceError::LikelyHopLimit { .. } => "LikelyHopLimit",
            SourceError::Misconfigured { .. } => "Misconfigured",
            SourceError::Throttled { .. } => "Throttled",
            SourceError::ServerError { .. } => "ServerError",
            SourceError::UnexpectedStatus { .. } => "UnexpectedStatus",
            SourceError::Unreachable { .. } => "Unreachable",
            SourceError::BadResponse { .. } => "BadResponse",
            SourceError::Refused { .. } => "Refused",
            SourceError::TokenFileUnreadable { .. } => "TokenFileUnreadable",
            SourceError::InvalidAuthorizationToken { .. } => "InvalidAuthorizationToken",
            SourceError::CredentialsExpired { .. } => "CredentialsExpired",
        }
    }
}
