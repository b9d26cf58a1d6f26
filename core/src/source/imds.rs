//! The EC2 instance metadata service (FIELD-GUIDE §1 and §4.4, §4.5, §4.10).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::{status_error, Outgoing, Progress};
use crate::actions::{HeaderValue, Method, Response, Step, TransportFailure};
use crate::config::Config;
use crate::credentials::Secret;
use crate::errors::{BadResponse, SourceError, TokenFailure, V1DisabledBy};
use crate::events::Event;
use crate::parse::{parse_credentials_redacting, parse_role_list, parse_token};
use crate::time::Timestamp;

const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const LEGACY_PREFIX: &str = "/latest/meta-data/iam/security-credentials/";
const EXTENDED_PREFIX: &str = "/latest/meta-data/iam/security-credentials-extended/";

/// Which credentials API the instance speaks; learnt once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiVersion {
    Unknown,
    Extended,
    Legacy,
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    expires_at: Timestamp,
}

/// What IMDS state outlives one fetch: the session token and the API version.
#[derive(Debug)]
pub(crate) struct ImdsSource {
    base: String,
    v1_disabled: bool,
    configured_role: Option<String>,
    token_ttl: Duration,
    token_renew_before: Duration,
    timeout: Duration,
    max_body: usize,
    token: Option<CachedToken>,
    api: ApiVersion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Token,
    RoleList,
    Credentials,
}

/// One fetch sequence: token (if needed), role (unless configured), credentials.
#[derive(Debug)]
pub(crate) struct ImdsSequence {
    phase: Phase,
    /// Set once the token request failed in a way that permits IMDSv1.
    v1_because: Option<TokenFailure>,
    retried_after_401: bool,
    role: Option<String>,
}

impl ImdsSource {
    pub(crate) fn new(config: &Config) -> Self {
        ImdsSource {
            base: String::from(config.endpoint_base()),
            v1_disabled: config.v1_disabled,
            configured_role: config.role_name.clone(),
            token_ttl: config.token_ttl,
            token_renew_before: config.token_renew_before,
            timeout: config.request_timeout,
            max_body: config.max_body_bytes,
            token: None,
            api: ApiVersion::Unknown,
        }
    }

    fn token_usable_at(&self, now: Timestamp) -> bool {
        self.token
            .as_ref()
            .is_some_and(|token| now + self.token_renew_before < token.expires_at)
    }

    fn phase_after_token(&self, role: &Option<String>) -> Phase {
        if role.is_some() {
            Phase::Credentials
        } else {
            Phase::RoleList
        }
    }

    pub(crate) fn begin(&mut self, now: Timestamp) -> ImdsSequence {
        let role = self.configured_role.clone();
        let phase = if self.token_usable_at(now) {
            self.phase_after_token(&role)
        } else {
            self.token = None;
            Phase::Token
        };
        ImdsSequence {
            phase,
            v1_because: None,
            retried_after_401: false,
            role,
        }
    }

    fn step_of(&self, seq: &ImdsSequence) -> Step {
        match seq.phase {
            Phase::Token => Step::ImdsToken,
            Phase::RoleList => Step::ImdsRoleList,
            Phase::Credentials => Step::ImdsCredentials {
                role: seq.role.clone().unwrap_or_default(),
            },
        }
    }

    fn prefix(&self) -> &'static str {
        match self.api {
            ApiVersion::Unknown | ApiVersion::Extended => EXTENDED_PREFIX,
            ApiVersion::Legacy => LEGACY_PREFIX,
        }
    }

    pub(crate) fn next_request(&self, seq: &ImdsSequence) -> Outgoing {
        let step = self.step_of(seq);
        let (method, path, mut headers) = match seq.phase {
            Phase::Token => (
                Method::Put,
                String::from(TOKEN_PATH),
                vec![(
                    TOKEN_TTL_HEADER,
                    HeaderValue::Plain(format!("{}", self.token_ttl.as_secs())),
                )],
            ),
            Phase::RoleList => (Method::Get, String::from(self.prefix()), Vec::new()),
            Phase::Credentials => (
                Method::Get,
                format!(
                    "{}{}",
                    self.prefix(),
                    seq.role.as_deref().unwrap_or_default()
                ),
                Vec::new(),
            ),
        };
        if seq.phase != Phase::Token && seq.v1_because.is_none() {
            if let Some(token) = &self.token {
                headers.push((TOKEN_HEADER, HeaderValue::Secret(token.value.clone())));
            }
        }
        Outgoing {
            step,
            method,
            url: format!("{}{}", self.base, path),
            headers,
            timeout: self.timeout,
        }
    }

    /// The token request failed in a way that permits IMDSv1 (FIELD-GUIDE
    /// §4.5), unless the configuration forbids it.
    fn fall_back_to_v1(
        &self,
        seq: &mut ImdsSequence,
        cause: TokenFailure,
        events: &mut Vec<Event>,
    ) -> Progress {
        if self.v1_disabled {
            return Progress::Fail(v1_disabled_error(V1DisabledBy::Config, cause));
        }
        seq.v1_because = Some(cause);
        seq.phase = self.phase_after_token(&seq.role);
        events.push(Event::FellBackToV1 { cause });
        Progress::Continue
    }

    pub(crate) fn on_response(
        &mut self,
        seq: &mut ImdsSequence,
        response: &Response,
        sent_at: Timestamp,
        events: &mut Vec<Event>,
    ) -> Progress {
        let step = self.step_of(seq);
        match (seq.phase, response.status) {
            (Phase::Token, 200) => {
                let value = match parse_token(&response.body, self.max_body) {
                    Ok(value) => value,
                    Err(problem) => {
                        return Progress::Retry(SourceError::BadResponse { step, problem })
                    }
                };
                let ttl = response
                    .header(TOKEN_TTL_HEADER)
                    .and_then(|ttl| ttl.trim().parse::<u64>().ok())
                    .filter(|secs| *secs > 0)
                    .map_or(self.token_ttl, Duration::from_secs)
                    // IMDS echoes the TTL asked for; a longer echo would keep
                    // a token past its real expiry and never renew it.
                    .min(self.token_ttl);
                // The TTL counts from when the PUT was sent, so a slow answer
                // can only make us renew early, never late.
                self.token = Some(CachedToken {
                    value,
                    expires_at: sent_at + ttl,
                });
                events.push(Event::TokenAcquired { ttl });
                seq.phase = self.phase_after_token(&seq.role);
                Progress::Continue
            }
            (Phase::Token, 400) => Progress::Fail(SourceError::Misconfigured { step }),
            (Phase::Token, status @ 403..=405) => {
                self.fall_back_to_v1(seq, TokenFailure::Status(status), events)
            }
            (Phase::Token, status) => status_error(step, status),
            (_, 401) => self.on_unauthorized(seq, step),
            (Phase::RoleList, 200) => match parse_role_list(&response.body, self.max_body) {
                Ok(role) => {
                    self.learn_api_works();
                    seq.role = Some(role);
                    seq.phase = Phase::Credentials;
                    Progress::Continue
                }
                Err(problem @ BadResponse::InvalidRoleName(_)) => {
                    Progress::Fail(SourceError::BadResponse { step, problem })
                }
                Err(problem) => Progress::Retry(SourceError::BadResponse { step, problem }),
            },
            (Phase::Credentials, 200) => match parse_credentials_redacting(
                &response.body,
                self.max_body,
                self.token.as_ref().map(|token| &token.value),
            ) {
                Ok(credentials) => {
                    self.learn_api_works();
                    Progress::Done(credentials)
                }
                Err(problem) => Progress::Retry(SourceError::BadResponse { step, problem }),
            },
            (_, 404) if self.api == ApiVersion::Unknown => {
                // The extended API is missing: use the legacy paths for good.
                self.api = ApiVersion::Legacy;
                events.push(Event::SwitchedToLegacyApi);
                Progress::Continue
            }
            (Phase::RoleList, 404) => Progress::Fail(SourceError::NoRoleAttached),
            (Phase::Credentials, 404) => Progress::Fail(SourceError::RoleNotFound {
                role: seq.role.clone().unwrap_or_default(),
            }),
            (_, status) => status_error(step, status),
        }
    }

    fn learn_api_works(&mut self) {
        if self.api == ApiVersion::Unknown {
            self.api = ApiVersion::Extended;
        }
    }

    /// A GET answered 401: with a token, it was stale — get a new one and
    /// retry once; without one, the instance requires IMDSv2.
    fn on_unauthorized(&mut self, seq: &mut ImdsSequence, step: Step) -> Progress {
        if let Some(cause) = seq.v1_because {
            return Progress::Fail(v1_disabled_error(V1DisabledBy::Instance, cause));
        }
        if seq.retried_after_401 {
            return Progress::Fail(SourceError::UnexpectedStatus { step, status: 401 });
        }
        seq.retried_after_401 = true;
        self.token = None;
        seq.phase = Phase::Token;
        Progress::Continue
    }

    pub(crate) fn on_failure(
        &mut self,
        seq: &mut ImdsSequence,
        failure: TransportFailure,
        events: &mut Vec<Event>,
    ) -> Progress {
        if seq.phase == Phase::Token && failure == TransportFailure::TimedOut {
            // The hop-limit symptom: not retried, fall back at once.
            return self.fall_back_to_v1(seq, TokenFailure::TimedOut(self.timeout), events);
        }
        Progress::Retry(SourceError::Unreachable {
            step: self.step_of(seq),
            failure,
        })
    }

    pub(crate) fn shift_by_millis(&mut self, millis: i64) {
        if let Some(token) = &mut self.token {
            token.expires_at = token.expires_at.shifted_by_millis(millis);
        }
    }
}

fn v1_disabled_error(by: V1DisabledBy, cause: TokenFailure) -> SourceError {
    match cause {
        TokenFailure::TimedOut(timeout) => SourceError::LikelyHopLimit { timeout },
        token_failure => SourceError::V1Disabled { by, token_failure },
    }
}
