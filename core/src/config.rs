//! Every number the machine uses, with the defaults of FIELD-GUIDE §4.

use alloc::string::String;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::container::ContainerSource;
use crate::errors::ConfigError;
use crate::parse::validate_role_name;
use crate::time::serde_duration;

/// What to do when the held credentials have expired and no fresh ones can
/// be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stability {
    /// Keep serving the expired credentials for a bounded time (FIELD-GUIDE
    /// §4.6), so a short outage of the source is not an outage of the service.
    #[default]
    Static,
    /// Reject instead.
    Strict,
}

/// The machine's configuration. Every field has the documented default;
/// `Config::default()` is the recommended setting for EC2.
///
/// Deserializes from JSON objects whose keys are these field names and whose
/// durations are strings such as `"90s"`; unknown keys are an error.
///
/// The source is IMDS unless [`Config::container`] is set, e.g.
/// `{"container": {"uri": "http://169.254.170.2/v2/credentials/…"}}`; the
/// IMDS-only fields (`endpoint`, `v1_disabled`, `role_name`, the token
/// fields, `request_timeout`) are then unused. [`crate::resolve_config`]
/// builds a `Config` from the environment and the AWS config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Never fetch: every demand fails with `Disabled`
    /// (`AWS_EC2_METADATA_DISABLED`). Applies to IMDS only: it cannot be
    /// combined with [`Config::container`].
    pub disabled: bool,
    /// Fetch from this container endpoint (ECS, EKS Pod Identity) instead of
    /// IMDS.
    pub container: Option<ContainerSource>,
    /// The IMDS endpoint, scheme and authority, e.g. `http://169.254.169.254`.
    pub endpoint: String,
    /// Never fall back to IMDSv1.
    pub v1_disabled: bool,
    /// Use this role instead of discovering it on every refresh.
    pub role_name: Option<String>,
    /// TTL asked for IMDS session tokens (1 s ..= 6 h).
    #[serde(with = "serde_duration")]
    pub token_ttl: Duration,
    /// Renew the session token when less than this much of its TTL remains.
    #[serde(with = "serde_duration")]
    pub token_renew_before: Duration,
    /// Deadline of one IMDS request attempt, connect through last body byte
    /// (the container source has its own, [`ContainerSource::timeout`]).
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    /// Attempts in all within one fetch sequence for retryable failures.
    pub attempts: u32,
    /// Longest jittered pause between attempts within a fetch.
    #[serde(with = "serde_duration")]
    pub retry_pause_max: Duration,
    /// Bodies larger than this are rejected.
    pub max_body_bytes: usize,
    /// Credentials are usable until `Expiration` minus this.
    #[serde(with = "serde_duration")]
    pub expiry_buffer: Duration,
    /// Advisory window for credentials living at most `short_lifetime_max`.
    #[serde(with = "serde_duration")]
    pub advisory_window_short: Duration,
    /// Lifetimes up to this get the short advisory window.
    #[serde(with = "serde_duration")]
    pub short_lifetime_max: Duration,
    /// Advisory window for lifetimes below `medium_lifetime_max`.
    #[serde(with = "serde_duration")]
    pub advisory_window_medium: Duration,
    /// Lifetimes below this get the medium advisory window.
    #[serde(with = "serde_duration")]
    pub medium_lifetime_max: Duration,
    /// Advisory window for longer lifetimes.
    #[serde(with = "serde_duration")]
    pub advisory_window_long: Duration,
    /// The advisory window is shortened by a random fraction up to this
    /// percentage, so a fleet does not refresh in lockstep.
    pub advisory_jitter_percent: u32,
    /// The last stretch before expiry in which callers wait for the refresh.
    #[serde(with = "serde_duration")]
    pub mandatory_window: Duration,
    /// Static stability or strict rejection.
    pub stability: Stability,
    /// Shortest static-stability extension.
    #[serde(with = "serde_duration")]
    pub extension_min: Duration,
    /// Longest static-stability extension.
    #[serde(with = "serde_duration")]
    pub extension_max: Duration,
    /// Static stability ends this long after the original expiration.
    #[serde(with = "serde_duration")]
    pub max_degraded: Duration,
    /// First backoff delay after a failed fetch.
    #[serde(with = "serde_duration")]
    pub backoff_initial: Duration,
    /// Backoff cap while valid credentials are held outside the mandatory window.
    #[serde(with = "serde_duration")]
    pub backoff_cap: Duration,
    /// Backoff cap inside the mandatory window, after expiry, or with none held.
    #[serde(with = "serde_duration")]
    pub backoff_cap_urgent: Duration,
    /// At most one fetch sequence starts per this interval, whatever callers do.
    #[serde(with = "serde_duration")]
    pub min_fetch_interval: Duration,
    /// After unchanged credentials, look again no sooner than this.
    #[serde(with = "serde_duration")]
    pub unchanged_min_spacing: Duration,
    /// After unchanged credentials, look again after this fraction (1/N) of
    /// the time left before the mandatory window.
    pub unchanged_spacing_divisor: u32,
    /// Shortest time a non-recoverable failure is remembered.
    #[serde(with = "serde_duration")]
    pub failure_memory_min: Duration,
    /// Longest time a non-recoverable failure is remembered.
    #[serde(with = "serde_duration")]
    pub failure_memory_max: Duration,
    /// A wall clock that steps back more than this counts as a jump.
    #[serde(with = "serde_duration")]
    pub clock_jump_tolerance: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            disabled: false,
            container: None,
            endpoint: String::from("http://169.254.169.254"),
            v1_disabled: false,
            role_name: None,
            token_ttl: Duration::from_secs(21_600),
            token_renew_before: Duration::from_secs(120),
            request_timeout: Duration::from_secs(1),
            attempts: 3,
            retry_pause_max: Duration::from_secs(1),
            max_body_bytes: 64 * 1024,
            expiry_buffer: Duration::from_secs(10),
            advisory_window_short: 5 * MINUTE,
            short_lifetime_max: 20 * MINUTE,
            advisory_window_medium: 15 * MINUTE,
            medium_lifetime_max: 90 * MINUTE,
            advisory_window_long: 60 * MINUTE,
            advisory_jitter_percent: 20,
            mandatory_window: MINUTE,
            stability: Stability::Static,
            extension_min: 5 * MINUTE,
            extension_max: 10 * MINUTE,
            max_degraded: 60 * MINUTE,
            backoff_initial: Duration::from_secs(1),
            backoff_cap: 5 * MINUTE,
            backoff_cap_urgent: Duration::from_secs(30),
            min_fetch_interval: Duration::from_secs(1),
            unchanged_min_spacing: MINUTE,
            unchanged_spacing_divisor: 4,
            failure_memory_min: Duration::from_secs(1),
            failure_memory_max: Duration::from_secs(5),
            clock_jump_tolerance: Duration::from_secs(1),
        }
    }
}

fn problem(field: &'static str, text: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        problem: text.into(),
    }
}

impl Config {
    /// The defaults with `strict` instead of static stability.
    #[must_use]
    pub fn strict() -> Self {
        Config {
            stability: Stability::Strict,
            ..Config::default()
        }
    }

    /// Check every field; the machine refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(container) = &self.container {
            container.validate()?;
            if self.disabled {
                return Err(problem(
                    "disabled",
                    "disables IMDS and cannot be combined with a container source",
                ));
            }
        }
        let endpoint = self.endpoint.as_str();
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .ok_or_else(|| problem("endpoint", "must be an absolute http:// or https:// URI"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', ' ', '@']) {
            return Err(problem(
                "endpoint",
                "must be scheme://host[:port] with no path, query or user info",
            ));
        }
        if let Some(role) = &self.role_name {
            validate_role_name(role).map_err(|why| problem("role_name", why))?;
        }
        let ttl = self.token_ttl.as_secs();
        if !(1..=21_600).contains(&ttl) || self.token_ttl.subsec_nanos() != 0 {
            return Err(problem("token_ttl", "must be whole seconds from 1s to 6h"));
        }
        if self.token_renew_before >= self.token_ttl {
            return Err(problem(
                "token_renew_before",
                "must be shorter than token_ttl",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(problem("request_timeout", "must be more than zero"));
        }
        if self.attempts == 0 {
            return Err(problem("attempts", "must be at least 1"));
        }
        if self.max_body_bytes == 0 {
            return Err(problem("max_body_bytes", "must be at least 1"));
        }
        if self.advisory_jitter_percent > 100 {
            return Err(problem("advisory_jitter_percent", "must be at most 100"));
        }
        if self.extension_min > self.extension_max {
            return Err(problem("extension_min", "must not exceed extension_max"));
        }
        let extends = self.stability == Stability::Static && !self.extension_max.is_zero();
        if extends && self.backoff_cap_urgent > self.extension_min {
            return Err(problem(
                "backoff_cap_urgent",
                "must not exceed extension_min, or static stability lapses between retries",
            ));
        }
        if self.failure_memory_min > self.failure_memory_max {
            return Err(problem(
                "failure_memory_min",
                "must not exceed failure_memory_max",
            ));
        }
        if self.backoff_initial.is_zero() {
            return Err(problem("backoff_initial", "must be more than zero"));
        }
        if self.min_fetch_interval.is_zero() {
            return Err(problem(
                "min_fetch_interval",
                "must be more than zero: it is what keeps callers and failures from a fetch storm",
            ));
        }
        if self.mandatory_window > self.advisory_window_short {
            return Err(problem(
                "mandatory_window",
                "must not exceed advisory_window_short, or callers would wait for every refresh",
            ));
        }
        if self.unchanged_spacing_divisor == 0 {
            return Err(problem("unchanged_spacing_divisor", "must be at least 1"));
        }
        Ok(())
    }

    /// The URL the configured source fetches from: the container URI when
    /// the container source is selected, else the IMDS endpoint. Adapters use
    /// it to tell whether they need TLS.
    #[must_use]
    pub fn source_url(&self) -> &str {
        match &self.container {
            Some(container) => &container.uri,
            None => &self.endpoint,
        }
    }

    /// The endpoint without a trailing slash.
    pub(crate) fn endpoint_base(&self) -> &str {
        self.endpoint.trim_end_matches('/')
    }

    /// The advisory window for credentials with this lifetime, before jitter.
    /// Never more than half the lifetime, so short-lived credentials are not
    /// refetched on every call.
    #[must_use]
    pub fn advisory_window_for(&self, lifetime: Duration) -> Duration {
        let window = if lifetime <= self.short_lifetime_max {
            self.advisory_window_short
        } else if lifetime < self.medium_lifetime_max {
            self.advisory_window_medium
        } else {
            self.advisory_window_long
        };
        window.min(lifetime / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_field_guide() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.request_timeout, Duration::from_secs(1));
        assert_eq!(config.attempts, 3);
        assert_eq!(config.expiry_buffer, Duration::from_secs(10));
        assert_eq!(config.max_body_bytes, 65_536);
    }

    #[test]
    fn advisory_window_scales_with_lifetime_like_go_v2() {
        let config = Config::default();
        assert_eq!(config.advisory_window_for(20 * MINUTE), 5 * MINUTE);
        assert_eq!(config.advisory_window_for(60 * MINUTE), 15 * MINUTE);
        assert_eq!(config.advisory_window_for(360 * MINUTE), 60 * MINUTE);
        assert_eq!(config.advisory_window_for(4 * MINUTE), 2 * MINUTE);
    }

    #[test]
    fn config_reads_from_json_with_duration_strings() {
        let config: Config = serde_json::from_str(
            r#"{"request_timeout":"250ms","stability":"strict","role_name":"web"}"#,
        )
        .unwrap();
        assert_eq!(config.request_timeout, Duration::from_millis(250));
        assert_eq!(config.stability, Stability::Strict);
        assert_eq!(config.role_name.as_deref(), Some("web"));
    }

    #[test]
    fn the_source_url_is_the_container_uri_when_the_container_source_is_selected() {
        let mut config = Config::default();
        assert_eq!(config.source_url(), "http://169.254.169.254");
        config =
            serde_json::from_str(r#"{"container":{"uri":"https://creds.example/x"}}"#).unwrap();
        assert_eq!(config.source_url(), "https://creds.example/x");
    }

    #[test]
    fn unknown_config_keys_are_rejected_by_name() {
        let err = serde_json::from_str::<Config>(r#"{"request_timeot":"1s"}"#).unwrap_err();
        assert!(alloc::format!("{err}").contains("request_timeot"));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases: [(Config, &str); 6] = [
            (
                Config {
                    backoff_cap_urgent: 6 * MINUTE,
                    ..Config::default()
                },
                "backoff_cap_urgent",
            ),
            (
                Config {
                    endpoint: "169.254.169.254".into(),
                    ..Config::default()
                },
                "endpoint",
            ),
            (
                Config {
                    attempts: 0,
                    ..Config::default()
                },
                "attempts",
            ),
            (
                Config {
                    role_name: Some("../admin".into()),
                    ..Config::default()
                },
                "role_name",
            ),
            (
                Config {
                    token_ttl: Duration::from_secs(30_000),
                    ..Config::default()
                },
                "token_ttl",
            ),
            (
                Config {
                    extension_min: 20 * MINUTE,
                    ..Config::default()
                },
                "extension_min",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(config.validate().unwrap_err().field, field);
        }
    }
}
