//! Configuration resolution (FIELD-GUIDE §5): explicit settings, the
//! environment and the AWS config file, merged key by key with the precedence
//! explicit > environment > profile file > default, every value checked and
//! its origin recorded.
//!
//! Pure: the caller reads the environment and the file and passes them in.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::config::Config;
use crate::container::{check_auth_token, ContainerAuth, ContainerSource};
use crate::credentials::Secret;
use crate::parse::validate_role_name;
use crate::time::parse_duration;

mod profile_file;

use profile_file::{ProfileFileText, ProfileValue};

/// The environment, as a map from variable name to value. Only the variables
/// named in FIELD-GUIDE §5 are read; an empty value counts as unset.
pub type Environment = BTreeMap<String, String>;

const IMDS_IPV4: &str = "http://169.254.169.254";
const IMDS_IPV6: &str = "http://[fd00:ec2::254]";
const DEFAULT_PROFILE: &str = "default";
const DEFAULT_CONFIG_FILE: &str = "~/.aws/config";
const MAX_TIMEOUT_SECS: u64 = 3600;
const MAX_ATTEMPTS: u32 = 100;

/// Environment variables.
mod var {
    pub(super) const DISABLED: &str = "AWS_EC2_METADATA_DISABLED";
    pub(super) const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
    pub(super) const ENDPOINT_MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
    pub(super) const V1_DISABLED: &str = "AWS_EC2_METADATA_V1_DISABLED";
    pub(super) const TIMEOUT: &str = "AWS_METADATA_SERVICE_TIMEOUT";
    pub(super) const ATTEMPTS: &str = "AWS_METADATA_SERVICE_NUM_ATTEMPTS";
    pub(super) const PROFILE_NAME: &str = "AWS_EC2_INSTANCE_PROFILE_NAME";
    pub(super) const PROFILE: &str = "AWS_PROFILE";
    pub(super) const CONFIG_FILE: &str = "AWS_CONFIG_FILE";
    pub(super) const RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
    pub(super) const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    pub(super) const TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
    pub(super) const TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
}

/// Keys of [`ResolvedConfig::origins`] (the fields of [`ConfigReport`]).
pub mod origin_key {
    /// Which source is used.
    pub const SOURCE: &str = "source";
    /// The IMDS endpoint.
    pub const ENDPOINT: &str = "imds.endpoint";
    /// Whether IMDSv1 is disabled.
    pub const V1_DISABLED: &str = "imds.v1_disabled";
    /// The IMDS per-attempt timeout.
    pub const TIMEOUT: &str = "imds.timeout_ms";
    /// Attempts per fetch.
    pub const ATTEMPTS: &str = "imds.attempts";
    /// The configured instance profile (role) name.
    pub const PROFILE_NAME: &str = "imds.profile_name";
    /// The container endpoint.
    pub const CONTAINER_URI: &str = "container.uri";
    /// The container authorization.
    pub const CONTAINER_AUTH: &str = "container.auth";
    /// The selected profile of the config file.
    pub const PROFILE: &str = "profile";
    /// The config file's path.
    pub const CONFIG_FILE: &str = "config_file";
}

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// An explicit setting ([`Settings`]).
    Explicit,
    /// This environment variable.
    Env(&'static str),
    /// This line of the config file.
    Profile {
        /// The file's path.
        path: String,
        /// The 1-based line.
        line: usize,
    },
    /// The built-in default.
    Default,
}

impl Origin {
    /// Where the value came from, in words, for error messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Origin::Explicit => String::from("(set explicitly)"),
            Origin::Env(var) => format!("(environment variable {var})"),
            Origin::Profile { path, line } => format!("(config file {path} line {line})"),
            Origin::Default => String::from("(default)"),
        }
    }
}

impl fmt::Display for Origin {
    /// `explicit`, `env:VAR`, `profile:PATH:LINE` or `default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Explicit => f.write_str("explicit"),
            Origin::Env(var) => write!(f, "env:{var}"),
            Origin::Profile { path, line } => write!(f, "profile:{path}:{line}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A setting's value is invalid.
    #[error("invalid {}: {problem}", describe_setting(key, origin))]
    InvalidValue {
        /// The setting as it was written: the environment variable, the
        /// config-file key, or the [`Settings`] field.
        key: &'static str,
        /// Where it was found.
        origin: Origin,
        /// What is wrong with it (never a token's value).
        problem: String,
    },
    /// The config file does not parse.
    #[error("config file {path} line {line}: {problem}")]
    ProfileFileSyntax {
        /// The file's path.
        path: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

impl ResolveError {
    /// The setting's name, if the error is about one.
    #[must_use]
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ResolveError::InvalidValue { key, .. } => Some(key),
            ResolveError::ProfileFileSyntax { .. } => None,
        }
    }

    /// Where the offending text came from.
    #[must_use]
    pub fn origin(&self) -> Origin {
        match self {
            ResolveError::InvalidValue { origin, .. } => origin.clone(),
            ResolveError::ProfileFileSyntax { path, line, .. } => Origin::Profile {
                path: path.clone(),
                line: *line,
            },
        }
    }
}

/// A setting and where it was found, in words.
fn describe_setting(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env(var) => format!("environment variable {var}"),
        Origin::Profile { path, line } => format!("{key} in config file {path} line {line}"),
        Origin::Explicit => format!("explicit setting {key}"),
        Origin::Default => format!("default {key}"),
    }
}

/// How to reach IMDS when no endpoint is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
#[non_exhaustive]
pub enum EndpointMode {
    /// `http://169.254.169.254`.
    Ipv4,
    /// `http://[fd00:ec2::254]`.
    Ipv6,
}

impl EndpointMode {
    /// `IPv4` or `IPv6`, in any case.
    #[must_use]
    pub fn parse(text: &str) -> Option<EndpointMode> {
        if text.eq_ignore_ascii_case("ipv4") {
            Some(EndpointMode::Ipv4)
        } else if text.eq_ignore_ascii_case("ipv6") {
            Some(EndpointMode::Ipv6)
        } else {
            None
        }
    }

    /// The IMDS endpoint of this mode.
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            EndpointMode::Ipv4 => IMDS_IPV4,
            EndpointMode::Ipv6 => IMDS_IPV6,
        }
    }
}

impl TryFrom<String> for EndpointMode {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        EndpointMode::parse(&text).ok_or_else(|| format!("expected IPv4 or IPv6, got {text:?}"))
    }
}

/// Explicit settings: the highest precedence, e.g. from code or command-line
/// flags. Every field is optional; `None` defers to the environment.
///
/// Deserializes from JSON with these field names; `timeout` is a duration
/// string such as `"1500ms"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Disable IMDS (`AWS_EC2_METADATA_DISABLED`).
    pub disabled: Option<bool>,
    /// The IMDS endpoint (`AWS_EC2_METADATA_SERVICE_ENDPOINT`).
    pub endpoint: Option<String>,
    /// The IMDS endpoint mode (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`).
    pub endpoint_mode: Option<EndpointMode>,
    /// Never fall back to IMDSv1 (`AWS_EC2_METADATA_V1_DISABLED`).
    pub v1_disabled: Option<bool>,
    /// The IMDS per-attempt timeout (`AWS_METADATA_SERVICE_TIMEOUT`).
    #[serde(deserialize_with = "option_duration")]
    pub timeout: Option<Duration>,
    /// Attempts per fetch (`AWS_METADATA_SERVICE_NUM_ATTEMPTS`).
    pub attempts: Option<u32>,
    /// The instance profile (role) name (`AWS_EC2_INSTANCE_PROFILE_NAME`).
    pub instance_profile_name: Option<String>,
    /// The profile of the config file to use (`AWS_PROFILE`).
    pub profile: Option<String>,
    /// The config file's path (`AWS_CONFIG_FILE`).
    pub config_file: Option<String>,
    /// The container endpoint path on the ECS agent
    /// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    pub container_relative_uri: Option<String>,
    /// The container endpoint URI (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).
    pub container_full_uri: Option<String>,
    /// The container authorization token (`AWS_CONTAINER_AUTHORIZATION_TOKEN`).
    #[serde(deserialize_with = "option_secret")]
    pub container_token: Option<Secret>,
    /// The container authorization token file
    /// (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    pub container_token_file: Option<String>,
}

fn option_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

fn option_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

/// The config file's text and where it was read from. A missing file is an
/// empty text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileFile<'a> {
    /// The path, as shown in origins and errors.
    pub path: &'a str,
    /// The contents.
    pub text: &'a str,
}

/// Which source the configuration selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceKind {
    /// The EC2 instance metadata service.
    Imds,
    /// A container endpoint (ECS, EKS Pod Identity).
    Container,
    /// IMDS disabled and no container endpoint: every demand fails.
    Disabled,
}

impl SourceKind {
    /// `imds`, `container` or `disabled`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Imds => "imds",
            SourceKind::Container => "container",
            SourceKind::Disabled => "disabled",
        }
    }
}

/// The resolved IMDS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImdsSettings {
    /// The endpoint.
    pub endpoint: String,
    /// Never fall back to IMDSv1.
    pub v1_disabled: bool,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts per fetch (shared by every source).
    pub attempts: u32,
    /// The configured role, if any.
    pub profile_name: Option<String>,
}

/// The outcome of [`resolve_config`]: every value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedConfig {
    /// The selected source.
    pub source: SourceKind,
    /// The IMDS settings (resolved even when another source is selected).
    pub imds: ImdsSettings,
    /// The container endpoint, when that source is selected.
    pub container: Option<ContainerSource>,
    /// The selected profile of the config file.
    pub profile: String,
    /// The config file's path, if one was given.
    pub config_file: Option<String>,
    /// The origin of every value, keyed by [`origin_key`] names.
    pub origins: BTreeMap<&'static str, Origin>,
    /// Settings that were found but have no effect, and why.
    pub warnings: Vec<String>,
}

/// The JSON shape of `credstate config --json`. Never holds a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConfigReport {
    /// `imds`, `container` or `disabled`.
    pub source: SourceKind,
    /// The IMDS settings.
    pub imds: ImdsReport,
    /// The container endpoint, if that source is selected.
    pub container: Option<ContainerReport>,
    /// `explicit`, `env:VAR`, `profile:PATH:LINE` or `default` per key.
    pub origins: BTreeMap<String, String>,
    /// The selected profile.
    pub profile: String,
    /// The config file's path, if one was given.
    pub config_file: Option<String>,
}

/// The IMDS part of [`ConfigReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImdsReport {
    /// The endpoint.
    pub endpoint: String,
    /// Never fall back to IMDSv1.
    pub v1_disabled: bool,
    /// Per-attempt timeout in milliseconds.
    pub timeout_ms: u64,
    /// Attempts per fetch.
    pub attempts: u32,
    /// The configured role, if any.
    pub profile_name: Option<String>,
}

/// The container part of [`ConfigReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerReport {
    /// The endpoint URI.
    pub uri: String,
    /// `null`, `"env"` (a token from `AWS_CONTAINER_AUTHORIZATION_TOKEN`),
    /// `"token"` (an explicit token) or `"file:PATH"`.
    pub auth: Option<String>,
}

impl ResolvedConfig {
    /// The shape printed by `credstate config --json`.
    #[must_use]
    pub fn report(&self) -> ConfigReport {
        let container = self.container.as_ref().map(|c| ContainerReport {
            uri: c.uri.clone(),
            auth: match &c.auth {
                ContainerAuth::Token(_) => Some(String::from(
                    match self.origins.get(origin_key::CONTAINER_AUTH) {
                        Some(Origin::Env(_)) => "env",
                        _ => "token",
                    },
                )),
                ContainerAuth::TokenFile(path) => Some(format!("file:{path}")),
                ContainerAuth::None => None,
            },
        });
        ConfigReport {
            source: self.source,
            imds: ImdsReport {
                endpoint: self.imds.endpoint.clone(),
                v1_disabled: self.imds.v1_disabled,
                timeout_ms: u64::try_from(self.imds.timeout.as_millis()).unwrap_or(u64::MAX),
                attempts: self.imds.attempts,
                profile_name: self.imds.profile_name.clone(),
            },
            container,
            origins: self
                .origins
                .iter()
                .map(|(key, origin)| (String::from(*key), origin.to_string()))
                .collect(),
            profile: self.profile.clone(),
            config_file: self.config_file.clone(),
        }
    }

    /// Set the fields this resolution decides (source, IMDS settings,
    /// attempts) on `config`, leaving the rest as they are.
    pub fn apply_to(&self, config: &mut Config) {
        config.disabled = self.source == SourceKind::Disabled;
        config.container = self.container.clone();
        config.endpoint = self.imds.endpoint.clone();
        config.v1_disabled = self.imds.v1_disabled;
        config.request_timeout = self.imds.timeout;
        config.attempts = self.imds.attempts;
        config.role_name = self.imds.profile_name.clone();
    }

    /// The machine configuration: the defaults with this resolution applied.
    #[must_use]
    pub fn machine_config(&self) -> Config {
        let mut config = Config::default();
        self.apply_to(&mut config);
        config
    }
}

/// The config file's path: the explicit setting, else `AWS_CONFIG_FILE`, else
/// `~/.aws/config`; a leading `~` is expanded with `home`. `None` when the
/// path needs a home directory and there is none.
#[must_use]
pub fn config_file_path(
    settings: &Settings,
    env: &Environment,
    home: Option<&str>,
) -> Option<String> {
    let path = settings
        .config_file
        .as_deref()
        .filter(|p| !p.is_empty())
        .or_else(|| env_value(env, var::CONFIG_FILE))
        .unwrap_or(DEFAULT_CONFIG_FILE);
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Some(format!("{}{rest}", home?.trim_end_matches('/')))
        }
        _ => Some(String::from(path)),
    }
}

fn env_value<'a>(env: &'a Environment, var: &str) -> Option<&'a str> {
    env.get(var).map(String::as_str).filter(|v| !v.is_empty())
}

/// Merge explicit settings, the environment and the config file (FIELD-GUIDE
/// §5) into one configuration, recording where every value came from.
///
/// The profile is `settings.profile`, else `AWS_PROFILE`, else `default`.
/// The source is the container endpoint when one is configured
/// (`…_RELATIVE_URI` wins over `…_FULL_URI`), else IMDS unless disabled.
/// Every value found is checked, even one that ends up unused (an endpoint
/// mode next to an endpoint), so a typo never goes unnoticed.
pub fn resolve_config(
    settings: &Settings,
    env: &Environment,
    profile_file: Option<ProfileFile<'_>>,
) -> Result<ResolvedConfig, ResolveError> {
    let mut origins = BTreeMap::new();
    let mut warnings = Vec::new();

    let (profile, profile_origin) = match (&settings.profile, env_value(env, var::PROFILE)) {
        (Some(name), _) if !name.is_empty() => (name.clone(), Origin::Explicit),
        (_, Some(name)) => (String::from(name), Origin::Env(var::PROFILE)),
        _ => (String::from(DEFAULT_PROFILE), Origin::Default),
    };
    origins.insert(origin_key::PROFILE, profile_origin);

    let parsed = match profile_file {
        Some(file) => {
            let text = ProfileFileText::parse(file.text).map_err(|err| {
                ResolveError::ProfileFileSyntax {
                    path: String::from(file.path),
                    line: err.line,
                    problem: err.problem,
                }
            })?;
            let config_file_origin = if settings.config_file.is_some() {
                Origin::Explicit
            } else if env_value(env, var::CONFIG_FILE).is_some() {
                Origin::Env(var::CONFIG_FILE)
            } else {
                Origin::Default
            };
            origins.insert(origin_key::CONFIG_FILE, config_file_origin);
            if profile != DEFAULT_PROFILE && !text.has_profile(&profile) {
                warnings.push(format!(
                    "profile {profile:?} is not defined in {}; its settings are the defaults",
                    file.path
                ));
            }
            Some((file.path, text.profile(&profile)))
        }
        None => None,
    };
    let layers = Layers {
        env,
        profile: parsed.as_ref().map(|(path, values)| (*path, values)),
    };

    let disabled = layers.resolve(
        settings.disabled,
        Key::env_only("disabled", var::DISABLED),
        parse_bool,
        |_| Ok(()),
    )?;
    let endpoint = layers.resolve(
        settings.endpoint.clone(),
        Key::both("endpoint", var::ENDPOINT, "ec2_metadata_service_endpoint"),
        |text| Ok(String::from(text)),
        check_endpoint,
    )?;
    let mode = layers.resolve(
        settings.endpoint_mode,
        Key::both(
            "endpoint_mode",
            var::ENDPOINT_MODE,
            "ec2_metadata_service_endpoint_mode",
        ),
        |text| EndpointMode::try_from(String::from(text)),
        |_| Ok(()),
    )?;
    let v1_disabled = layers.resolve(
        settings.v1_disabled,
        Key::both("v1_disabled", var::V1_DISABLED, "ec2_metadata_v1_disabled"),
        parse_bool,
        |_| Ok(()),
    )?;
    let timeout = layers.resolve(
        settings.timeout,
        Key::both("timeout", var::TIMEOUT, "metadata_service_timeout"),
        parse_seconds,
        check_timeout,
    )?;
    let attempts = layers.resolve(
        settings.attempts,
        Key::both("attempts", var::ATTEMPTS, "metadata_service_num_attempts"),
        |text| {
            text.parse::<u32>()
                .map_err(|_| format!("expected a whole number of attempts, got {text:?}"))
        },
        check_attempts,
    )?;
    let profile_name = layers.resolve(
        settings.instance_profile_name.clone(),
        Key::both(
            "instance_profile_name",
            var::PROFILE_NAME,
            "ec2_instance_profile_name",
        ),
        |text| Ok(String::from(text)),
        |name: &String| {
            validate_role_name(name)
                .map_err(|why| format!("not an IAM role name ({why}): {name:?}"))
        },
    )?;

    let defaults = Config::default();
    let endpoint = match (endpoint, mode) {
        (Some((endpoint, origin)), mode) => {
            if let Some((_, mode_origin)) = mode {
                warnings.push(format!(
                    "the endpoint mode {} is ignored because an endpoint is set {}",
                    mode_origin.describe(),
                    origin.describe()
                ));
            }
            (endpoint, origin)
        }
        (None, Some((mode, origin))) => (String::from(mode.endpoint()), origin),
        (None, None) => (defaults.endpoint.clone(), Origin::Default),
    };
    let imds = ImdsSettings {
        endpoint: record(
            &mut origins,
            origin_key::ENDPOINT,
            Some(endpoint),
            String::new(),
        ),
        v1_disabled: record(
            &mut origins,
            origin_key::V1_DISABLED,
            v1_disabled,
            defaults.v1_disabled,
        ),
        timeout: record(
            &mut origins,
            origin_key::TIMEOUT,
            timeout,
            defaults.request_timeout,
        ),
        attempts: record(
            &mut origins,
            origin_key::ATTEMPTS,
            attempts,
            defaults.attempts,
        ),
        profile_name: record(
            &mut origins,
            origin_key::PROFILE_NAME,
            profile_name.map(|(name, origin)| (Some(name), origin)),
            None,
        ),
    };

    let container = resolve_container(settings, env, &mut origins, &mut warnings)?;
    let source = match (&container, disabled) {
        (Some(_), disabled) => {
            let uri_origin = origins[origin_key::CONTAINER_URI].clone();
            origins.insert(origin_key::SOURCE, uri_origin);
            if let Some((true, origin)) = disabled {
                warnings.push(format!(
                    "IMDS is disabled {}, which does not affect the container source",
                    origin.describe()
                ));
            }
            SourceKind::Container
        }
        (None, Some((true, origin))) => {
            origins.insert(origin_key::SOURCE, origin);
            SourceKind::Disabled
        }
        (None, Some((false, origin))) => {
            origins.insert(origin_key::SOURCE, origin);
            SourceKind::Imds
        }
        (None, None) => {
            origins.insert(origin_key::SOURCE, Origin::Default);
            SourceKind::Imds
        }
    };

    Ok(ResolvedConfig {
        source,
        imds,
        container,
        profile,
        config_file: profile_file.map(|file| String::from(file.path)),
        origins,
        warnings,
    })
}

fn record<T>(
    origins: &mut BTreeMap<&'static str, Origin>,
    key: &'static str,
    found: Option<(T, Origin)>,
    default: T,
) -> T {
    let (value, origin) = found.unwrap_or((default, Origin::Default));
    origins.insert(key, origin);
    value
}

/// The names one setting goes by.
struct Key {
    explicit: &'static str,
    env: &'static str,
    profile: Option<&'static str>,
}

impl Key {
    fn both(explicit: &'static str, env: &'static str, profile: &'static str) -> Key {
        Key {
            explicit,
            env,
            profile: Some(profile),
        }
    }

    fn env_only(explicit: &'static str, env: &'static str) -> Key {
        Key {
            explicit,
            env,
            profile: None,
        }
    }
}

struct Layers<'a> {
    env: &'a Environment,
    profile: Option<(&'a str, &'a BTreeMap<String, ProfileValue<'a>>)>,
}

impl Layers<'_> {
    /// The winning value of one setting, parsed and checked, with its origin.
    fn resolve<T>(
        &self,
        explicit: Option<T>,
        key: Key,
        parse: impl Fn(&str) -> Result<T, String>,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Option<(T, Origin)>, ResolveError> {
        let invalid =
            |key: &'static str, origin: &Origin, problem: String| ResolveError::InvalidValue {
                key,
                origin: origin.clone(),
                problem,
            };
        if let Some(value) = explicit {
            check(&value).map_err(|problem| invalid(key.explicit, &Origin::Explicit, problem))?;
            return Ok(Some((value, Origin::Explicit)));
        }
        let (text, name, origin) = if let Some(text) = env_value(self.env, key.env) {
            (text, key.env, Origin::Env(key.env))
        } else {
            let found = key
                .profile
                .zip(self.profile)
                .and_then(|(name, (path, values))| {
                    values.get(name).filter(|v| !v.value.is_empty()).map(|v| {
                        (
                            v.value,
                            name,
                            Origin::Profile {
                                path: String::from(path),
                                line: v.line,
                            },
                        )
                    })
                });
            match found {
                Some(found) => found,
                None => return Ok(None),
            }
        };
        let value = parse(text.trim()).map_err(|problem| invalid(name, &origin, problem))?;
        check(&value).map_err(|problem| invalid(name, &origin, problem))?;
        Ok(Some((value, origin)))
    }
}

/// The container endpoint: explicit settings as a group, else the
/// environment; within a group the relative URI wins over the full one and
/// the token file over the token.
fn resolve_container(
    settings: &Settings,
    env: &Environment,
    origins: &mut BTreeMap<&'static str, Origin>,
    warnings: &mut Vec<String>,
) -> Result<Option<ContainerSource>, ResolveError> {
    let explicit = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let from_env = |name: &'static str| env_value(env, name).map(String::from);
    type Found = (String, &'static str, Origin);
    let with = |value: Option<String>, key: &'static str, origin: Origin| -> Option<Found> {
        value.map(|v| (v, key, origin))
    };

    let relative = with(
        explicit(&settings.container_relative_uri),
        "container_relative_uri",
        Origin::Explicit,
    );
    let full = with(
        explicit(&settings.container_full_uri),
        "container_full_uri",
        Origin::Explicit,
    );
    let (relative, full) = if relative.is_some() || full.is_some() {
        (relative, full)
    } else {
        (
            with(
                from_env(var::RELATIVE_URI),
                var::RELATIVE_URI,
                Origin::Env(var::RELATIVE_URI),
            ),
            with(
                from_env(var::FULL_URI),
                var::FULL_URI,
                Origin::Env(var::FULL_URI),
            ),
        )
    };
    let uri = match (relative, full) {
        (Some((path, key, origin)), full) => {
            if let Some((_, full_key, full_origin)) = full {
                warnings.push(format!(
                    "{} is ignored because {} is set",
                    named(full_key, &full_origin),
                    named(key, &origin)
                ));
            }
            let source =
                ContainerSource::relative_uri(&path).map_err(|err| ResolveError::InvalidValue {
                    key,
                    origin: origin.clone(),
                    problem: format!("{err} (got {path:?})"),
                })?;
            Some((source, origin))
        }
        (None, Some((uri, key, origin))) => {
            let source =
                ContainerSource::full_uri(&uri).map_err(|err| ResolveError::InvalidValue {
                    key,
                    origin: origin.clone(),
                    problem: format!("{err} (got {uri:?})"),
                })?;
            Some((source, origin))
        }
        (None, None) => None,
    };

    let explicit_file = explicit(&settings.container_token_file);
    let explicit_token = settings.container_token.clone();
    let auth = if explicit_file.is_some() || explicit_token.is_some() {
        match explicit_file {
            Some(path) => Some((
                ContainerAuth::TokenFile(path),
                "container_token_file",
                Origin::Explicit,
            )),
            None => explicit_token
                .map(|t| (ContainerAuth::Token(t), "container_token", Origin::Explicit)),
        }
    } else {
        match (from_env(var::TOKEN_FILE), env_value(env, var::TOKEN)) {
            (Some(path), _) => Some((
                ContainerAuth::TokenFile(path),
                var::TOKEN_FILE,
                Origin::Env(var::TOKEN_FILE),
            )),
            (None, Some(token)) => Some((
                ContainerAuth::Token(Secret::new(token)),
                var::TOKEN,
                Origin::Env(var::TOKEN),
            )),
            (None, None) => None,
        }
    };

    let Some((source, uri_origin)) = uri else {
        if let Some((_, key, origin)) = auth {
            warnings.push(format!(
                "{} is ignored because no container endpoint is configured",
                named(key, &origin)
            ));
        }
        return Ok(None);
    };
    origins.insert(origin_key::CONTAINER_URI, uri_origin);
    let source = match auth {
        Some((auth, key, origin)) => {
            if let ContainerAuth::Token(token) = &auth {
                // Never echo the token, only what is wrong with it.
                check_auth_token(token.expose()).map_err(|problem| ResolveError::InvalidValue {
                    key,
                    origin: origin.clone(),
                    problem: format!("the token {problem}"),
                })?;
            }
            origins.insert(origin_key::CONTAINER_AUTH, origin);
            source.with_auth(auth)
        }
        None => {
            origins.insert(origin_key::CONTAINER_AUTH, Origin::Default);
            source
        }
    };
    Ok(Some(source))
}

/// A setting's name for a message, with its origin unless the name (an
/// environment variable) already says it.
fn named(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env(_) => String::from(key),
        other => format!("{key} {}", other.describe()),
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("expected true or false, got {text:?}"))
    }
}

fn check_endpoint(endpoint: &String) -> Result<(), String> {
    let probe = Config {
        endpoint: endpoint.clone(),
        ..Config::default()
    };
    probe
        .validate()
        .map_err(|err| format!("{} (got {endpoint:?})", err.problem))
}

/// Seconds as an integer or a decimal fraction (`1`, `2.5`, `.25`), to the
/// millisecond.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a number of seconds such as 1 or 2.5, got {text:?}");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut millis_text: String = fraction.chars().take(3).collect();
    while millis_text.len() < 3 {
        millis_text.push('0');
    }
    let millis: u64 = millis_text.parse().map_err(|_| bad())?;
    let total = whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(millis))
        .ok_or_else(bad)?;
    Ok(Duration::from_millis(total))
}

fn check_timeout(timeout: &Duration) -> Result<(), String> {
    if timeout.is_zero() {
        Err(String::from("must be at least 1 millisecond"))
    } else if timeout.as_secs() > MAX_TIMEOUT_SECS
        || (timeout.as_secs() == MAX_TIMEOUT_SECS && timeout.subsec_nanos() > 0)
    {
        Err(format!("must be at most {MAX_TIMEOUT_SECS} seconds"))
    } else {
        Ok(())
    }
}

fn check_attempts(attempts: &u32) -> Result<(), String> {
    if (1..=MAX_ATTEMPTS).contains(attempts) {
        Ok(())
    } else {
        Err(format!("must be from 1 to {MAX_ATTEMPTS}, got {attempts}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_as_integers_and_fractions() {
        let ms = |text| parse_seconds(text).map(|d| d.as_millis());
        assert_eq!(ms("1"), Ok(1000));
        assert_eq!(ms("2.5"), Ok(2500));
        assert_eq!(ms(".25"), Ok(250));
        assert_eq!(ms("3."), Ok(3000));
        assert_eq!(ms("0.0005"), Ok(0));
        for bad in ["", ".", "abc", "-1", "1e3", "1.2.3", "１"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_config_file_path_expands_the_home_directory() {
        let env = Environment::new();
        let settings = Settings::default();
        assert_eq!(
            config_file_path(&settings, &env, Some("/home/u/")).as_deref(),
            Some("/home/u/.aws/config")
        );
        assert_eq!(config_file_path(&settings, &env, None), None);
        let mut env = Environment::new();
        env.insert(var::CONFIG_FILE.into(), "/etc/aws.ini".into());
        assert_eq!(
            config_file_path(&settings, &env, None).as_deref(),
            Some("/etc/aws.ini")
        );
    }
}
