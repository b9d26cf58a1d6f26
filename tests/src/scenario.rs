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

use std::fmt;
use std::time::Duration;

use credstate::{parse_duration, serde_duration, Config};
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
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
        self.credstate_config()?;
        Ok(())
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
