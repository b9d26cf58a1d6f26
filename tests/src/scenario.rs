//! The scenario file: what the simulated instance, its IMDS and its callers do.
//!
//! Shared by `credstate simulate` (simulated time) and the mock IMDS server
//! (real time), so one file describes an outage for both.
//!
//! ```json
//! {"duration": "12h", "seed": 7,
//!  "callers": [{"every": "1m"}, {"burst": 1000, "at": "0s"}],
//!  "imds": {"credential_lifetime": "6h", "rotation": "late", "token": "supported",
//!           "v1_disabled": false, "latency": "3ms"},
//!  "faults": [{"from": "5h50m", "to": "6h10m", "kind": "http_500"},
//!             {"from": "2h", "kind": "clock_jump", "by": "+3d"}],
//!  "config": {}}
//! ```
//!
//! A scenario whose `config` selects the container source (ECS, EKS Pod
//! Identity) runs against the simulated container agent instead, described
//! by an optional `container` section:
//!
//! ```json
//! {"duration": "12h",
//!  "callers": [{"every": "1m"}],
//!  "container": {"credential_lifetime": "6h", "rotation": "late", "latency": "3ms",
//!                "token_rotation": "1h", "token_grace": "1m"},
//!  "faults": [{"from": "3h", "to": "3h5m", "kind": "token_file_missing"}],
//!  "config": {"container": {"uri": "http://169.254.170.23/v1/credentials",
//!             "auth": {"token_file": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}}}}
//! ```

use std::fmt;
use std::time::Duration;

use credstate::{parse_duration, serde_duration, Config, ContainerAuth, ContainerSource};
use serde::{de, Deserialize, Deserializer};

/// A scenario file that could not be used; names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// Path of the offending field, e.g. `faults[0].kind` (empty for the file itself).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid scenario: {}", self.problem)
        } else {
            write!(
                f,
                "invalid scenario field `{}`: {}",
                self.field, self.problem
            )
        }
    }
}

impl std::error::Error for ScenarioError {}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Simulated time to run.
    #[serde(with = "serde_duration")]
    pub duration: Duration,
    /// Seed for every random choice (machine jitter and fault injection).
    #[serde(default)]
    pub seed: u64,
    /// Who asks for credentials, and when.
    #[serde(default)]
    pub callers: Vec<Caller>,
    /// How the simulated IMDS behaves when healthy.
    #[serde(default)]
    pub imds: ImdsModel,
    /// How the simulated container agent and token file behave when healthy;
    /// only for scenarios whose `config.container` selects that source
    /// (absent: the defaults of [`ContainerModel`]).
    #[serde(default)]
    pub container: Option<ContainerModel>,
    /// Faults, each over a span of time (or at an instant for `clock_jump`).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Overrides of credstate's configuration fields, by name.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// A caller pattern: either periodic (`every`, optionally from `at`) or a
/// one-off `burst` of simultaneous calls `at` an offset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Call once per this period.
    #[serde(default, with = "option_duration")]
    pub every: Option<Duration>,
    /// Number of simultaneous calls.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Offset of the burst, or of the first periodic call (default 0s).
    #[serde(default, with = "option_duration")]
    pub at: Option<Duration>,
}

/// How IMDS rotates credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// New credentials on every fetch.
    Fresh,
    /// The same credentials until 5 minutes before they expire, as EC2 does.
    #[default]
    Late,
}

/// Whether IMDS offers session tokens (IMDSv2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenSupport {
    /// `PUT /latest/api/token` works.
    #[default]
    Supported,
    /// `PUT /latest/api/token` answers 404 (an IMDS without v2).
    Unsupported,
}

/// The healthy behaviour of the simulated IMDS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImdsModel {
    /// Lifetime of each new set of credentials.
    #[serde(with = "serde_duration")]
    pub credential_lifetime: Duration,
    /// Rotation model.
    pub rotation: Rotation,
    /// Token support.
    pub token: TokenSupport,
    /// IMDS answers token-less requests with 401 (IMDSv1 disabled on the instance).
    pub v1_disabled: bool,
    /// Time to answer each request.
    #[serde(with = "serde_duration")]
    pub latency: Duration,
    /// Role attached to the instance.
    pub role: String,
    /// Whether the extended credentials API (with `AccountId`) is offered.
    pub extended_api: bool,
}

impl Default for ImdsModel {
    fn default() -> Self {
        ImdsModel {
            credential_lifetime: Duration::from_secs(6 * 3600),
            rotation: Rotation::Late,
            token: TokenSupport::Supported,
            v1_disabled: false,
            latency: Duration::from_millis(3),
            role: String::from("credstate-demo-role"),
            extended_api: true,
        }
    }
}

/// The healthy behaviour of the simulated container credentials agent (ECS,
/// EKS Pod Identity) and of the authorization token file it checks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerModel {
    /// Lifetime of each new set of credentials.
    #[serde(with = "serde_duration")]
    pub credential_lifetime: Duration,
    /// Rotation model (as IMDS's: `late` rotates 5 min before expiry).
    pub rotation: Rotation,
    /// Time to answer each request.
    #[serde(with = "serde_duration")]
    pub latency: Duration,
    /// The token file's contents change this often (as EKS rotates the
    /// projected service account token); absent: never. Only with
    /// `config.container.auth.token_file`.
    #[serde(with = "option_duration")]
    pub token_rotation: Option<Duration>,
    /// How long after a rotation the agent still accepts the previous token
    /// (absent: [`ContainerModel::DEFAULT_TOKEN_GRACE`]). Only with
    /// `token_rotation`.
    #[serde(with = "option_duration")]
    pub token_grace: Option<Duration>,
}

impl ContainerModel {
    /// One minute: longer than any fetch sequence (whose retries reuse the
    /// token read at its start), far shorter than EKS, whose old tokens stay
    /// valid for hours — so a client that keeps a token instead of reading
    /// the file before each fetch is refused.
    pub const DEFAULT_TOKEN_GRACE: Duration = Duration::from_secs(60);

    /// The grace period in force.
    #[must_use]
    pub fn token_grace(&self) -> Duration {
        self.token_grace.unwrap_or(Self::DEFAULT_TOKEN_GRACE)
    }
}

impl Default for ContainerModel {
    fn default() -> Self {
        ContainerModel {
            credential_lifetime: Duration::from_secs(6 * 3600),
            rotation: Rotation::Late,
            latency: Duration::from_millis(3),
            token_rotation: None,
            token_grace: None,
        }
    }
}

/// The kinds of fault the simulated (and mock) IMDS can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Every request answers 500.
    #[serde(rename = "http_500")]
    Http500,
    /// Every request answers 503 (throttled).
    #[serde(rename = "http_503")]
    Http503,
    /// Every request answers 429 (throttled).
    #[serde(rename = "http_429")]
    Http429,
    /// No answer: the request hangs until the client gives up.
    Timeout,
    /// The connection is refused.
    Refused,
    /// Credentials bodies are not JSON.
    BadJson,
    /// Credentials bodies carry an `Expiration` already in the past.
    ExpiredCredentials,
    /// The token PUT answers 404.
    TokenUnsupported,
    /// The token PUT hangs, as behind an instance hop limit of 1.
    TokenTimeout,
    /// The host's wall clock jumps by `by` at `from`.
    ClockJump,
    /// The container authorization token file is missing: reading it fails
    /// with "no such file" (container scenarios with a token file only).
    TokenFileMissing,
}

/// One fault over `[from, to)`; `clock_jump` happens once at `from`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Start offset.
    #[serde(with = "serde_duration")]
    pub from: Duration,
    /// End offset (exclusive); absent means until the end of the run.
    #[serde(default, with = "option_duration")]
    pub to: Option<Duration>,
    /// What goes wrong.
    pub kind: FaultKind,
    /// For `clock_jump`: signed jump such as `+3d` or `-2h`, in milliseconds.
    #[serde(default, deserialize_with = "signed_duration_ms")]
    pub by: Option<i64>,
    /// Probability in percent that a request in the span is affected (default 100).
    #[serde(default)]
    pub percent: Option<u8>,
}

impl FaultKind {
    /// The name used in scenario files, e.g. `http_500`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Http500 => "http_500",
            FaultKind::Http503 => "http_503",
            FaultKind::Http429 => "http_429",
            FaultKind::Timeout => "timeout",
            FaultKind::Refused => "refused",
            FaultKind::BadJson => "bad_json",
            FaultKind::ExpiredCredentials => "expired_credentials",
            FaultKind::TokenUnsupported => "token_unsupported",
            FaultKind::TokenTimeout => "token_timeout",
            FaultKind::ClockJump => "clock_jump",
            FaultKind::TokenFileMissing => "token_file_missing",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request to a simulated or mock server is for, as far as faults
/// care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// The IMDS session token `PUT`.
    ImdsToken,
    /// A set of credentials: an IMDS role's, or the container endpoint's.
    Credentials,
    /// Anything else: a role listing, other metadata, an unknown path.
    Other,
}

impl FaultKind {
    /// Whether the kind acts on the IMDS token request only.
    #[must_use]
    pub fn is_imds_token_fault(self) -> bool {
        matches!(self, FaultKind::TokenUnsupported | FaultKind::TokenTimeout)
    }

    /// Whether a server acts this fault out on a request for `target`.
    #[must_use]
    pub fn acts_on(self, target: FaultTarget) -> bool {
        match self {
            FaultKind::Http500
            | FaultKind::Http503
            | FaultKind::Http429
            | FaultKind::Timeout
            | FaultKind::Refused => true,
            FaultKind::BadJson | FaultKind::ExpiredCredentials => {
                target == FaultTarget::Credentials
            }
            FaultKind::TokenUnsupported | FaultKind::TokenTimeout => {
                target == FaultTarget::ImdsToken
            }
            // The host's clock and the client's token file are beyond a server.
            FaultKind::ClockJump | FaultKind::TokenFileMissing => false,
        }
    }
}

impl Fault {
    /// Whether the fault covers the offset `at`.
    #[must_use]
    pub fn covers(&self, at: Duration) -> bool {
        at >= self.from && self.to.is_none_or(|to| at < to)
    }
}

mod option_duration {
    use super::*;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| parse_duration(&t).map_err(de::Error::custom))
            .transpose()
    }
}

fn signed_duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let text = String::deserialize(d)?;
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text.as_str()),
    };
    let magnitude = parse_duration(rest).map_err(de::Error::custom)?;
    let millis = i64::try_from(magnitude.as_millis()).map_err(de::Error::custom)?;
    Ok(Some(sign * millis))
}

impl Scenario {
    /// Parse and validate a scenario from JSON text.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." { String::new() } else { path };
            error(field, err.into_inner().to_string())
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if self.duration.is_zero() {
            return Err(error("duration", "must be more than zero"));
        }
        for (i, caller) in self.callers.iter().enumerate() {
            match (caller.every, caller.burst) {
                (Some(every), None) if every.is_zero() => {
                    return Err(error(
                        format!("callers[{i}].every"),
                        "must be more than zero",
                    ))
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(error(
                        format!("callers[{i}]"),
                        "give exactly one of `every` or `burst`",
                    ))
                }
            }
        }
        if self.imds.credential_lifetime < Duration::from_secs(120) {
            return Err(error("imds.credential_lifetime", "must be at least 2m"));
        }
        let config = self.credstate_config()?;
        for (i, fault) in self.faults.iter().enumerate() {
            match (fault.kind, fault.by) {
                (FaultKind::ClockJump, None) => {
                    return Err(error(
                        format!("faults[{i}].by"),
                        "clock_jump needs `by`, e.g. \"+3d\"",
                    ))
                }
                (FaultKind::ClockJump, Some(_)) if fault.to.is_some() => {
                    return Err(error(
                        format!("faults[{i}].to"),
                        "a clock_jump happens once, at `from`; it takes no `to`",
                    ))
                }
                (FaultKind::ClockJump, Some(_)) if fault.percent.is_some() => {
                    return Err(error(
                        format!("faults[{i}].percent"),
                        "a clock_jump always happens; it takes no `percent`",
                    ))
                }
                (FaultKind::ClockJump, Some(_)) => {}
                (_, Some(_)) => {
                    return Err(error(
                        format!("faults[{i}].by"),
                        "only clock_jump takes `by`",
                    ))
                }
                (_, None) => {}
            }
            if fault.to.is_some_and(|to| to <= fault.from) {
                return Err(error(format!("faults[{i}].to"), "must be after `from`"));
            }
            if fault.percent.is_some_and(|p| p > 100) {
                return Err(error(format!("faults[{i}].percent"), "must be at most 100"));
            }
        }
        match &config.container {
            Some(source) => self.validate_container(source),
            None => self.validate_imds_only(),
        }
    }

    /// A container scenario: the agent's model, and faults it can play.
    fn validate_container(&self, source: &ContainerSource) -> Result<(), ScenarioError> {
        if self.imds != ImdsModel::default() {
            return Err(error(
                "imds",
                "this scenario's config selects the container source (config.container): \
                 describe the agent under `container`, not `imds`",
            ));
        }
        let model = self.container_model();
        if model.credential_lifetime < Duration::from_secs(120) {
            return Err(error(
                "container.credential_lifetime",
                "must be at least 2m",
            ));
        }
        let reads_token_file = matches!(source.auth, ContainerAuth::TokenFile(_));
        match model.token_rotation {
            Some(every) if every.is_zero() => {
                return Err(error("container.token_rotation", "must be more than zero"))
            }
            Some(_) if !reads_token_file => {
                return Err(error(
                    "container.token_rotation",
                    "only a token file rotates: config.container.auth is not {\"token_file\": …}",
                ))
            }
            None if model.token_grace.is_some() => {
                return Err(error(
                    "container.token_grace",
                    "a grace period needs `token_rotation`",
                ))
            }
            _ => {}
        }
        for (i, fault) in self.faults.iter().enumerate() {
            if fault.kind.is_imds_token_fault() {
                return Err(error(
                    format!("faults[{i}].kind"),
                    format!(
                        "{} acts on the IMDS token request; this scenario fetches from the \
                         container agent (config.container)",
                        fault.kind
                    ),
                ));
            }
            if fault.kind == FaultKind::TokenFileMissing && !reads_token_file {
                return Err(error(
                    format!("faults[{i}].kind"),
                    "token_file_missing needs a token file: config.container.auth is not \
                     {\"token_file\": …}",
                ));
            }
        }
        Ok(())
    }

    /// An IMDS scenario: nothing that only a container scenario can use.
    fn validate_imds_only(&self) -> Result<(), ScenarioError> {
        if self.container.is_some() {
            return Err(error(
                "container",
                "the container agent is simulated only when `config.container` selects the \
                 container source, e.g. {\"uri\": \"http://169.254.170.2/v2/credentials/…\"}",
            ));
        }
        for (i, fault) in self.faults.iter().enumerate() {
            if fault.kind == FaultKind::TokenFileMissing {
                return Err(error(
                    format!("faults[{i}].kind"),
                    "token_file_missing needs a container scenario whose \
                     config.container.auth reads a token file",
                ));
            }
        }
        Ok(())
    }

    /// The container agent's model: the `container` section, or its defaults.
    #[must_use]
    pub fn container_model(&self) -> ContainerModel {
        self.container.clone().unwrap_or_default()
    }

    /// credstate's configuration: the defaults with this scenario's overrides.
    pub fn credstate_config(&self) -> Result<Config, ScenarioError> {
        let mut merged = serde_json::to_value(Config::default())
            .map_err(|err| error("config", err.to_string()))?;
        if let serde_json::Value::Object(fields) = &mut merged {
            for (key, value) in &self.config {
                if !fields.contains_key(key) {
                    return Err(error(
                        format!("config.{key}"),
                        "unknown configuration field",
                    ));
                }
                fields.insert(key.clone(), value.clone());
            }
        }
        let config: Config = serde_path_to_error::deserialize(merged).map_err(|err| {
            error(
                format!("config.{}", err.path()),
                err.into_inner().to_string(),
            )
        })?;
        config
            .validate()
            .map_err(|err| error(format!("config.{}", err.field), err.problem))?;
        Ok(config)
    }
}

/// The built-in scenario of `credstate simulate`: 12 h of an EC2 instance
/// with 6 h credentials rotated late, a caller every minute, a 20-minute IMDS
/// outage across an expiry, and a token-endpoint blip.
pub const DEFAULT_SCENARIO: &str = r#"{
  "duration": "12h",
  "seed": 7,
  "callers": [{"every": "1m"}],
  "imds": {"credential_lifetime": "6h", "rotation": "late", "token": "supported", "latency": "3ms"},
  "faults": [
    {"from": "2h", "to": "2h5m", "kind": "token_timeout"},
    {"from": "5h50m", "to": "6h10m", "kind": "http_500"}
  ],
  "config": {}
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let scenario = Scenario::from_json(
            r#"{"duration": "12h", "seed": 7,
                "callers": [{"every": "1m"}, {"burst": 1000, "at": "0s"}],
                "imds": {"credential_lifetime": "6h", "rotation": "late", "token": "supported", "v1_disabled": false, "latency": "3ms"},
                "faults": [{"from": "5h50m", "to": "6h10m", "kind": "http_500"},
                           {"from": "2h", "kind": "clock_jump", "by": "+3d"}],
                "config": {}}"#,
        )
        .unwrap();
        assert_eq!(scenario.duration, Duration::from_secs(12 * 3600));
        assert_eq!(scenario.callers[1].burst, Some(1000));
        assert_eq!(scenario.faults[1].by, Some(3 * 86_400_000));
        assert!(scenario.faults[0].covers(Duration::from_secs(6 * 3600)));
    }

    #[test]
    fn the_default_scenario_parses() {
        Scenario::from_json(DEFAULT_SCENARIO).unwrap();
    }

    const EKS_CONFIG: &str = r#""config": {"container": {"uri": "http://169.254.170.23/v1/credentials",
        "auth": {"token_file": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}}}"#;
    const ECS_CONFIG: &str =
        r#""config": {"container": {"uri": "http://169.254.170.2/v2/credentials/abc"}}"#;

    #[test]
    fn a_container_scenario_parses_with_or_without_its_agent_section() {
        let bare = Scenario::from_json(&format!(r#"{{"duration": "1h", {ECS_CONFIG}}}"#)).unwrap();
        assert_eq!(bare.container_model(), ContainerModel::default());
        let eks = Scenario::from_json(&format!(
            r#"{{"duration": "1h", "container": {{"token_rotation": "10m", "latency": "1ms"}},
                "faults": [{{"from": "5m", "to": "6m", "kind": "token_file_missing"}}], {EKS_CONFIG}}}"#
        ))
        .unwrap();
        let model = eks.container_model();
        assert_eq!(model.token_rotation, Some(Duration::from_secs(600)));
        assert_eq!(model.token_grace(), ContainerModel::DEFAULT_TOKEN_GRACE);
        assert_eq!(eks.faults[0].kind.name(), "token_file_missing");
    }

    #[test]
    fn container_scenario_errors_name_the_field() {
        let cases = [
            (
                format!(r#"{{"duration": "1h", "imds": {{"latency": "9ms"}}, {ECS_CONFIG}}}"#),
                "imds",
            ),
            (
                r#"{"duration": "1h", "container": {"latency": "1ms"}}"#.to_string(),
                "container",
            ),
            (
                format!(r#"{{"duration": "1h", "container": {{"token_rotation": "1h"}}, {ECS_CONFIG}}}"#),
                "container.token_rotation",
            ),
            (
                format!(r#"{{"duration": "1h", "container": {{"token_rotation": "0"}}, {EKS_CONFIG}}}"#),
                "container.token_rotation",
            ),
            (
                format!(r#"{{"duration": "1h", "container": {{"token_grace": "1m"}}, {EKS_CONFIG}}}"#),
                "container.token_grace",
            ),
            (
                format!(r#"{{"duration": "1h", "container": {{"credential_lifetime": "1m"}}, {EKS_CONFIG}}}"#),
                "container.credential_lifetime",
            ),
            (
                format!(r#"{{"duration": "1h", "container": {{"rotaton": "late"}}, {EKS_CONFIG}}}"#),
                "container.rotaton",
            ),
            (
                format!(
                    r#"{{"duration": "1h", "faults": [{{"from": "0s", "kind": "token_timeout"}}], {EKS_CONFIG}}}"#
                ),
                "faults[0].kind",
            ),
            (
                format!(
                    r#"{{"duration": "1h", "faults": [{{"from": "0s", "kind": "token_file_missing"}}], {ECS_CONFIG}}}"#
                ),
                "faults[0].kind",
            ),
            (
                r#"{"duration": "1h", "faults": [{"from": "0s", "kind": "token_file_missing"}]}"#
                    .to_string(),
                "faults[0].kind",
            ),
            (
                r#"{"duration": "1h", "config": {"container": {"uri": "http://example.com/creds"}}}"#
                    .to_string(),
                "config.container.uri",
            ),
        ];
        for (text, field) in cases {
            let err = Scenario::from_json(&text).unwrap_err();
            assert_eq!(err.field, field, "{text}: got {err}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"duration": "12x"}"#, "duration"),
            (
                r#"{"duration": "1h", "imds": {"rotation": "sometimes"}}"#,
                "imds.rotation",
            ),
            (
                r#"{"duration": "1h", "faults": [{"from": "0s", "kind": "meteor"}]}"#,
                "faults[0].kind",
            ),
            (
                r#"{"duration": "1h", "callers": [{"evry": "1m"}]}"#,
                "callers[0]",
            ),
            (r#"{"duration": "1h", "bogus": 1}"#, ""),
            (
                r#"{"duration": "1h", "config": {"request_timeot": "1s"}}"#,
                "config.request_timeot",
            ),
            (
                r#"{"duration": "1h", "config": {"attempts": 0}}"#,
                "config.attempts",
            ),
            (
                r#"{"duration": "1h", "config": {"request_timeout": "soon"}}"#,
                "config.request_timeout",
            ),
            (
                r#"{"duration": "1h", "faults": [{"from": "0s", "kind": "clock_jump"}]}"#,
                "faults[0].by",
            ),
            (
                r#"{"duration": "1h", "callers": [{"every": "1m", "burst": 3}]}"#,
                "callers[0]",
            ),
            (
                r#"{"duration": "1h", "faults": [{"from": "0s", "to": "1m", "kind": "clock_jump", "by": "+1h"}]}"#,
                "faults[0].to",
            ),
        ];
        for (text, field) in cases {
            let err = Scenario::from_json(text).unwrap_err();
            assert!(err.field.starts_with(field), "{text}: got {err}");
            if field.is_empty() {
                assert!(err.problem.contains("bogus"), "{err}");
            }
        }
    }
}
