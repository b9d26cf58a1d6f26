//! Configuration of the container credentials source (ECS, EKS Pod Identity;
//! FIELD-GUIDE §2): the endpoint URI and its host rules, and how requests are
//! authorized.

use alloc::format;
use alloc::string::{String, ToString};
use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::credentials::Secret;
use crate::errors::ConfigError;
use crate::time::serde_duration;

/// Where `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` paths are sent (ECS).
pub const ECS_CONTAINER_ENDPOINT: &str = "http://169.254.170.2";

/// The ECS agent's host.
const ECS_HOST: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
/// The EKS Pod Identity agent's IPv4 host.
const EKS_HOST_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The EKS Pod Identity agent's IPv6 host, `fd00:ec2::23`.
const EKS_HOST_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23);

/// Shown instead of a token wherever a configuration is serialized.
const REDACTED_TOKEN: &str = "<redacted>";

/// The container credentials endpoint and how to authorize requests to it.
///
/// Deserializes from `{"uri": "http://169.254.170.2/v2/credentials/…"}`,
/// optionally with `"auth"` (`"none"`, `{"token": "…"}` or
/// `{"token_file": "/path"}`) and `"timeout"` (default `"2s"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ContainerSource {
    /// The absolute URI credentials are fetched from, query string included.
    pub uri: String,
    /// How requests are authorized.
    #[serde(default)]
    pub auth: ContainerAuth,
    /// Deadline of one request attempt (and of one token-file read).
    #[serde(default = "default_container_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

fn default_container_timeout() -> Duration {
    ContainerSource::DEFAULT_TIMEOUT
}

/// How requests to the container endpoint are authorized.
///
/// `Debug` and serialization never show a token: serialized configurations
/// carry a placeholder, which deserialization refuses rather than send it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AuthRepr", into = "AuthRepr")]
#[non_exhaustive]
pub enum ContainerAuth {
    /// No `Authorization` header (ECS).
    #[default]
    None,
    /// This token, sent as the `Authorization` header
    /// (`AWS_CONTAINER_AUTHORIZATION_TOKEN`).
    Token(Secret),
    /// The contents of this file, read afresh before every fetch because EKS
    /// rotates it (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    TokenFile(String),
}

/// The serialized form of [`ContainerAuth`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum AuthRepr {
    None,
    Token(String),
    TokenFile(String),
}

impl TryFrom<AuthRepr> for ContainerAuth {
    type Error = &'static str;

    fn try_from(repr: AuthRepr) -> Result<Self, Self::Error> {
        Ok(match repr {
            AuthRepr::None => ContainerAuth::None,
            AuthRepr::Token(token) if token == REDACTED_TOKEN => {
                return Err("the token is the redacted placeholder of a serialized configuration, not a token");
            }
            AuthRepr::Token(token) => ContainerAuth::Token(Secret::new(token)),
            AuthRepr::TokenFile(path) => ContainerAuth::TokenFile(path),
        })
    }
}

impl From<ContainerAuth> for AuthRepr {
    fn from(auth: ContainerAuth) -> Self {
        match auth {
            ContainerAuth::None => AuthRepr::None,
            ContainerAuth::Token(_) => AuthRepr::Token(String::from(REDACTED_TOKEN)),
            ContainerAuth::TokenFile(path) => AuthRepr::TokenFile(path),
        }
    }
}

impl ContainerSource {
    /// Per-attempt deadline for container endpoints (FIELD-GUIDE §4.12).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The source for `AWS_CONTAINER_CREDENTIALS_FULL_URI`: any `https` URI,
    /// or `http` to a loopback host or a container agent's host.
    pub fn full_uri(uri: &str) -> Result<ContainerSource, ContainerUriError> {
        validate_container_uri(uri)?;
        Ok(ContainerSource {
            uri: String::from(uri),
            auth: ContainerAuth::None,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The source for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`: the path (and
    /// query) on the ECS agent, `http://169.254.170.2`.
    pub fn relative_uri(path: &str) -> Result<ContainerSource, ContainerUriError> {
        if !path.starts_with('/') {
            return Err(ContainerUriError::RelativeNotAPath);
        }
        Self::full_uri(&format!("{ECS_CONTAINER_ENDPOINT}{path}"))
    }

    /// The same source with this authorization.
    #[must_use]
    pub fn with_auth(mut self, auth: ContainerAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The same source with this per-attempt timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Check the URI, the configured token and the timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_container_uri(&self.uri).map_err(|err| ConfigError {
            field: "container.uri",
            problem: err.to_string(),
        })?;
        match &self.auth {
            ContainerAuth::Token(token) => {
                check_auth_token(token.expose()).map_err(|problem| ConfigError {
                    field: "container.auth",
                    problem: format!("the authorization token {problem}"),
                })?;
            }
            ContainerAuth::TokenFile(path) if path.trim().is_empty() => {
                return Err(ConfigError {
                    field: "container.auth",
                    problem: String::from("the token file path is empty"),
                });
            }
            ContainerAuth::TokenFile(_) | ContainerAuth::None => {}
        }
        if self.timeout.is_zero() {
            return Err(ConfigError {
                field: "container.timeout",
                problem: String::from("must be more than zero"),
            });
        }
        Ok(())
    }
}

/// Why a container credentials URI is refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum ContainerUriError {
    /// Not an absolute `http://` or `https://` URI.
    #[error("must be an absolute http:// or https:// URI")]
    NotAbsolute,
    /// A relative URI that does not start with `/`.
    #[error("must be a path starting with /")]
    RelativeNotAPath,
    /// Whitespace or a control character.
    #[error("contains whitespace or a control character")]
    InvalidCharacter,
    /// `user@host`: the host would not be what it seems.
    #[error("must not contain user info (user@host)")]
    UserInfo,
    /// A `#fragment`, which is never sent.
    #[error("must not contain a #fragment")]
    Fragment,
    /// No host, or one that is not a valid name or IP literal.
    #[error("has an empty or malformed host")]
    InvalidHost,
    /// A port that is not a number from 1 to 65535.
    #[error("has an invalid port")]
    InvalidPort,
    /// Plain `http` to a host that is neither loopback nor a container agent.
    #[error("uses plain http to host {host}, which is allowed only to loopback (127.0.0.0/8, localhost, [::1]) and the container agents (169.254.170.2, 169.254.170.23, [fd00:ec2::23]); use https")]
    HostNotAllowed {
        /// The host as written.
        host: String,
    },
}

/// Check a full container credentials URI (FIELD-GUIDE §2): any `https`
/// URI, or `http` only to loopback (127.0.0.0/8, `localhost`, `[::1]`), the
/// ECS agent `169.254.170.2` or the EKS agents `169.254.170.23` and
/// `[fd00:ec2::23]`. Query strings are allowed; user info and fragments are
/// not.
pub fn validate_container_uri(uri: &str) -> Result<(), ContainerUriError> {
    let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(uri, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(uri, "http://") {
        (false, rest)
    } else {
        return Err(ContainerUriError::NotAbsolute);
    };
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ContainerUriError::InvalidCharacter);
    }
    if uri.contains('#') {
        return Err(ContainerUriError::Fragment);
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(ContainerUriError::UserInfo);
    }
    let (host, port) = split_host_port(authority)?;
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(ContainerUriError::InvalidPort);
        }
    }
    let kind = classify_host(host)?;
    if secure || kind.allowed_over_http() {
        Ok(())
    } else {
        Err(ContainerUriError::HostNotAllowed {
            host: String::from(host),
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `host[:port]` or `[v6][:port]`; the host keeps its brackets.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), ContainerUriError> {
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or(ContainerUriError::InvalidHost)?;
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or(ContainerUriError::InvalidHost),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

enum HostKind {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Name { localhost: bool },
}

impl HostKind {
    fn allowed_over_http(&self) -> bool {
        match self {
            HostKind::Ipv4(ip) => ip.is_loopback() || *ip == ECS_HOST || *ip == EKS_HOST_V4,
            HostKind::Ipv6(ip) => ip.is_loopback() || *ip == EKS_HOST_V6,
            HostKind::Name { localhost } => *localhost,
        }
    }
}

fn classify_host(host: &str) -> Result<HostKind, ContainerUriError> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        return inner
            .parse::<Ipv6Addr>()
            .map(HostKind::Ipv6)
            .map_err(|_| ContainerUriError::InvalidHost);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostKind::Ipv4(ip));
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.is_empty() || !host.chars().all(name_char) {
        return Err(ContainerUriError::InvalidHost);
    }
    Ok(HostKind::Name {
        localhost: host.eq_ignore_ascii_case("localhost"),
    })
}

/// What is wrong with a container authorization token. The token itself is
/// never part of the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum AuthTokenProblem {
    /// The token is empty.
    #[error("is empty")]
    Empty,
    /// The token contains CR or LF, which would split the header.
    #[error("contains a line break (CR or LF); it must be a single line with no trailing newline")]
    LineBreak,
    /// The token contains another control character or a non-ASCII one.
    #[error("contains a character that is not allowed in an HTTP header value")]
    InvalidCharacter,
    /// The token file is larger than the cap.
    #[error("is larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The token file is not UTF-8.
    #[error("is not UTF-8")]
    NotUtf8,
}

/// Whether `token` can be sent as the `Authorization` header value.
pub(crate) fn check_auth_token(token: &str) -> Result<(), AuthTokenProblem> {
    if token.is_empty() {
        return Err(AuthTokenProblem::Empty);
    }
    if token.contains(['\r', '\n']) {
        return Err(AuthTokenProblem::LineBreak);
    }
    let allowed = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
    if !token.bytes().all(allowed) {
        return Err(AuthTokenProblem::InvalidCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris_go_to_the_ecs_agent_with_their_query() {
        let source = ContainerSource::relative_uri("/v2/credentials/abc?x=1").unwrap();
        assert_eq!(source.uri, "http://169.254.170.2/v2/credentials/abc?x=1");
        assert_eq!(source.timeout, Duration::from_secs(2));
    }

    #[test]
    fn a_full_uri_to_a_lookalike_host_is_refused() {
        for uri in [
            "http://169.254.170.2.example.com/creds",
            "http://localhost.example.com/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                matches!(
                    validate_container_uri(uri),
                    Err(ContainerUriError::HostNotAllowed { .. })
                ),
                "{uri}"
            );
        }
        assert_eq!(
            validate_container_uri("http://169.254.170.2@evil.example/"),
            Err(ContainerUriError::UserInfo)
        );
    }

    #[test]
    fn tokens_must_be_one_header_line() {
        assert_eq!(check_auth_token("Bearer abc"), Ok(()));
        assert_eq!(check_auth_token("abc\n"), Err(AuthTokenProblem::LineBreak));
        assert_eq!(check_auth_token("a\rb"), Err(AuthTokenProblem::LineBreak));
        assert_eq!(check_auth_token(""), Err(AuthTokenProblem::Empty));
        assert_eq!(
            check_auth_token("a\u{0}b"),
            Err(AuthTokenProblem::InvalidCharacter)
        );
    }

    #[test]
    fn serialized_tokens_are_redacted_and_refused_back() {
        let source = ContainerSource::full_uri("http://localhost/creds")
            .unwrap()
            .with_auth(ContainerAuth::Token(Secret::new("tok-secret")));
        let json = serde_json::to_string(&source).unwrap();
        assert!(!json.contains("tok-secret"), "{json}");
        assert!(serde_json::from_str::<ContainerSource>(&json).is_err());
        let file: ContainerSource = serde_json::from_str(
            r#"{"uri":"http://localhost/creds","auth":{"token_file":"/t"},"timeout":"500ms"}"#,
        )
        .unwrap();
        assert_eq!(file.auth, ContainerAuth::TokenFile("/t".into()));
        assert_eq!(file.timeout, Duration::from_millis(500));
    }
}
