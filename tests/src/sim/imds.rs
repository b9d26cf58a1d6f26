//! The simulated IMDS: the wire protocol of FIELD-GUIDE §1 on simulated time,
//! with the scenario's faults injected from a seeded generator.
//!
//! It is a pure function of the requests it gets and the true time they
//! arrive at; latency, hangs and timeouts are the harness's business.

use std::collections::BTreeMap;
use std::time::Duration;

use credstate::{Method, Response};

use super::issuer::{CredentialIssuer, CredentialSet};
use super::rng::SimRng;
use crate::scenario::{Fault, FaultKind, FaultTarget, ImdsModel, TokenSupport};

const TOKEN_PATH: &str = "/latest/api/token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const LEGACY_PREFIX: &str = "/latest/meta-data/iam/security-credentials/";
const EXTENDED_PREFIX: &str = "/latest/meta-data/iam/security-credentials-extended/";
const ACCOUNT_ID: &str = "123456789012";

/// One HTTP request as it reaches the simulated IMDS.
#[derive(Clone, PartialEq, Eq)]
pub struct SimRequest {
    /// The client's id for the request; its outcome is reported with it.
    pub id: u64,
    /// The method.
    pub method: Method,
    /// Path of the URL, e.g. `/latest/api/token`.
    pub path: String,
    /// Headers as sent (values may be secret: never print them).
    pub headers: Vec<(String, String)>,
    /// The client gives up on the request after this long.
    pub timeout: Duration,
}

impl SimRequest {
    /// The first header of that name, compared case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for SimRequest {
    // Header values include the IMDS session token: print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "header_names",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What the simulated IMDS does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImdsAnswer {
    /// An HTTP response.
    Respond(Response),
    /// The connection is refused.
    Refuse,
    /// Nothing ever comes back: the client times out.
    Hang,
}

/// Counters of what the simulated IMDS saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImdsStats {
    /// Every request.
    pub requests: u64,
    /// Token PUTs.
    pub token_requests: u64,
    /// Requests for a role's credentials.
    pub credential_requests: u64,
    /// Requests a fault acted on.
    pub faulted: u64,
    /// Sets of credentials issued.
    pub credentials_issued: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    Token,
    RoleList { extended: bool },
    Credentials { extended: bool, role: &'a str },
    Unknown,
}

impl Target<'_> {
    fn fault_target(self) -> FaultTarget {
        match self {
            Target::Token => FaultTarget::ImdsToken,
            Target::Credentials { .. } => FaultTarget::Credentials,
            Target::RoleList { .. } | Target::Unknown => FaultTarget::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    BadJson,
    Stale { fault: usize },
}

/// The simulated instance metadata service.
#[derive(Debug, Clone)]
pub struct SimImds {
    model: ImdsModel,
    faults: Vec<Fault>,
    rng: SimRng,
    /// Token value → true expiry (ms since the start).
    tokens: BTreeMap<String, u64>,
    issuer: CredentialIssuer,
    stats: ImdsStats,
}

impl SimImds {
    /// An IMDS behaving as `model`, with `faults` injected; `seed` decides
    /// which requests a fault with a `percent` hits, and the token values.
    #[must_use]
    pub fn new(model: ImdsModel, faults: Vec<Fault>, seed: u64) -> Self {
        SimImds {
            issuer: CredentialIssuer::new(model.credential_lifetime, model.rotation),
            model,
            faults,
            rng: SimRng::new(seed),
            tokens: BTreeMap::new(),
            stats: ImdsStats::default(),
        }
    }

    /// What it saw so far.
    #[must_use]
    pub fn stats(&self) -> ImdsStats {
        ImdsStats {
            credentials_issued: self.issuer.issued(),
            ..self.stats
        }
    }

    /// Answer `request`, arriving `elapsed_ms` of true time into the run.
    pub fn handle(&mut self, request: &SimRequest, elapsed_ms: u64) -> ImdsAnswer {
        self.stats.requests += 1;
        let target = classify(&request.path);
        match target {
            Target::Token => self.stats.token_requests += 1,
            Target::Credentials { .. } => self.stats.credential_requests += 1,
            _ => {}
        }
        let mut body_fault = None;
        let at = Duration::from_millis(elapsed_ms);
        for index in 0..self.faults.len() {
            let fault = &self.faults[index];
            if !fault.covers(at) || !fault.kind.acts_on(target.fault_target()) {
                continue;
            }
            let (kind, percent) = (fault.kind, fault.percent.unwrap_or(100));
            if !self.rng.chance(percent) {
                continue;
            }
            self.stats.faulted += 1;
            match kind {
                FaultKind::Http500 => return status(500, "Internal Server Error"),
                FaultKind::Http503 => return status(503, "Service Unavailable"),
                FaultKind::Http429 => return status(429, "Too Many Requests"),
                FaultKind::Timeout | FaultKind::TokenTimeout => return ImdsAnswer::Hang,
                FaultKind::Refused => return ImdsAnswer::Refuse,
                FaultKind::TokenUnsupported => return status(404, "Not Found"),
                FaultKind::BadJson => body_fault = body_fault.or(Some(BodyFault::BadJson)),
                FaultKind::ExpiredCredentials => {
                    body_fault = body_fault.or(Some(BodyFault::Stale { fault: index }));
                }
                FaultKind::ClockJump | FaultKind::TokenFileMissing => {}
            }
        }
        ImdsAnswer::Respond(self.respond(request, target, elapsed_ms, body_fault))
    }

    fn respond(
        &mut self,
        request: &SimRequest,
        target: Target<'_>,
        elapsed_ms: u64,
        body_fault: Option<BodyFault>,
    ) -> Response {
        if target == Target::Token {
            return self.token(request, elapsed_ms);
        }
        if request.method != Method::Get {
            return Response::new(405, "Method Not Allowed");
        }
        let authorized = match request.header(TOKEN_HEADER) {
            Some(token) => self
                .tokens
                .get(token)
                .is_some_and(|expires| elapsed_ms < *expires),
            None => !self.model.v1_disabled,
        };
        if !authorized {
            return Response::new(401, "Unauthorized");
        }
        match target {
            Target::RoleList { extended } if extended && !self.model.extended_api => {
                Response::new(404, "Not Found")
            }
            Target::RoleList { .. } if self.model.role.is_empty() => {
                Response::new(404, "Not Found")
            }
            Target::RoleList { .. } => Response::new(200, format!("{}\n", self.model.role)),
            Target::Credentials { extended, role }
                if (extended && !self.model.extended_api)
                    || role.is_empty()
                    || role != self.model.role =>
            {
                Response::new(404, "Not Found")
            }
            Target::Credentials { extended, .. } => {
                let set = match body_fault {
                    Some(BodyFault::BadJson) => {
                        return Response::new(200, r#"{"Code":"Success","AccessKeyId":"ASIA"#)
                    }
                    Some(BodyFault::Stale { fault }) => self.issuer.stale_set(fault, elapsed_ms),
                    None => self.issuer.current_set(elapsed_ms),
                };
                Response::new(200, credentials_body(set, extended))
            }
            Target::Token | Target::Unknown => Response::new(404, "Not Found"),
        }
    }

    fn token(&mut self, request: &SimRequest, elapsed_ms: u64) -> Response {
        if request.method != Method::Put {
            return Response::new(405, "Method Not Allowed");
        }
        if self.model.token == TokenSupport::Unsupported {
            return Response::new(404, "Not Found");
        }
        let Some(ttl) = request
            .header(TTL_HEADER)
            .and_then(|ttl| ttl.trim().parse::<u64>().ok())
            .filter(|ttl| (1..=21_600).contains(ttl))
        else {
            return Response::new(400, "Bad Request");
        };
        self.tokens.retain(|_, expires| *expires > elapsed_ms);
        let token = format!("sim-imds-token-{:016x}", self.rng.next_u64());
        self.tokens.insert(token.clone(), elapsed_ms + ttl * 1000);
        Response::new(200, token).with_header(TTL_HEADER, ttl.to_string())
    }
}

fn classify(path: &str) -> Target<'_> {
    if path == TOKEN_PATH {
        return Target::Token;
    }
    for (prefix, extended) in [(EXTENDED_PREFIX, true), (LEGACY_PREFIX, false)] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let rest = rest.trim_end_matches('/');
            return if rest.is_empty() {
                Target::RoleList { extended }
            } else {
                Target::Credentials {
                    extended,
                    role: rest,
                }
            };
        }
    }
    Target::Unknown
}

fn status(code: u16, text: &str) -> ImdsAnswer {
    ImdsAnswer::Respond(Response::new(code, text))
}

fn credentials_body(set: CredentialSet, extended: bool) -> String {
    let mut body = serde_json::json!({
        "Code": "Success",
        "LastUpdated": set.issued_at().to_rfc3339(),
        "Type": "AWS-HMAC",
        "AccessKeyId": format!("ASIASIM{:013}", set.serial),
        "SecretAccessKey": format!("sim-secret-access-key-{:08}", set.serial),
        "Token": format!("sim-session-token-{:08}", set.serial),
        "Expiration": set.expires_at().to_rfc3339(),
    });
    if extended {
        body["AccountId"] = serde_json::Value::from(ACCOUNT_ID);
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::sim::clock::SIM_EPOCH;

    fn get(path: &str, token: Option<&str>) -> SimRequest {
        SimRequest {
            id: 0,
            method: Method::Get,
            path: path.into(),
            headers: token
                .map(|t| vec![(TOKEN_HEADER.to_string(), t.to_string())])
                .unwrap_or_default(),
            timeout: Duration::from_secs(1),
        }
    }

    fn put_token(ttl: &str) -> SimRequest {
        SimRequest {
            id: 0,
            method: Method::Put,
            path: TOKEN_PATH.into(),
            headers: vec![(TTL_HEADER.to_string(), ttl.to_string())],
            timeout: Duration::from_secs(1),
        }
    }

    fn respond(answer: ImdsAnswer) -> Response {
        match answer {
            ImdsAnswer::Respond(response) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn imds(scenario: &str) -> SimImds {
        let scenario = Scenario::from_json(scenario).unwrap();
        SimImds::new(scenario.imds, scenario.faults, scenario.seed)
    }

    fn credentials_at(imds: &mut SimImds, ms: u64) -> credstate::Credentials {
        let response = respond(imds.handle(&get(&format!("{LEGACY_PREFIX}role"), None), ms));
        assert_eq!(response.status, 200);
        credstate::parse_credentials(&response.body, 65_536).unwrap()
    }

    #[test]
    fn the_token_put_echoes_the_ttl_and_the_token_authorizes_gets_until_it_expires() {
        let mut imds = imds(r#"{"duration": "1h", "imds": {"v1_disabled": true, "role": "role"}}"#);
        let response = respond(imds.handle(&put_token("60"), 0));
        assert_eq!(response.status, 200);
        assert_eq!(response.header(TTL_HEADER), Some("60"));
        let token = String::from_utf8(response.body).unwrap();
        let list = respond(imds.handle(&get(LEGACY_PREFIX, Some(&token)), 59_999));
        assert_eq!((list.status, list.body.as_slice()), (200, &b"role\n"[..]));
        let late = respond(imds.handle(&get(LEGACY_PREFIX, Some(&token)), 60_000));
        assert_eq!(late.status, 401);
    }

    #[test]
    fn a_token_less_get_is_refused_only_when_v1_is_disabled() {
        let mut v1_off = imds(r#"{"duration": "1h", "imds": {"v1_disabled": true}}"#);
        assert_eq!(
            respond(v1_off.handle(&get(LEGACY_PREFIX, None), 0)).status,
            401
        );
        let mut v1_on = imds(r#"{"duration": "1h"}"#);
        assert_eq!(
            respond(v1_on.handle(&get(LEGACY_PREFIX, None), 0)).status,
            200
        );
        let forged = respond(v1_on.handle(&get(LEGACY_PREFIX, Some("forged")), 0));
        assert_eq!(forged.status, 401);
    }

    #[test]
    fn a_malformed_ttl_is_a_bad_request() {
        let mut imds = imds(r#"{"duration": "1h"}"#);
        for ttl in ["0", "21601", "soon"] {
            assert_eq!(
                respond(imds.handle(&put_token(ttl), 0)).status,
                400,
                "{ttl}"
            );
        }
    }

    #[test]
    fn the_extended_api_answers_only_when_offered() {
        let mut with = imds(r#"{"duration": "1h", "imds": {"role": "web"}}"#);
        let body = respond(with.handle(&get(&format!("{EXTENDED_PREFIX}web"), None), 0));
        let credentials = credstate::parse_credentials(&body.body, 65_536).unwrap();
        assert_eq!(credentials.account_id.as_deref(), Some(ACCOUNT_ID));
        let mut without =
            imds(r#"{"duration": "1h", "imds": {"role": "web", "extended_api": false}}"#);
        assert_eq!(
            respond(without.handle(&get(EXTENDED_PREFIX, None), 0)).status,
            404
        );
        let legacy = respond(without.handle(&get(&format!("{LEGACY_PREFIX}web"), None), 0));
        assert_eq!(legacy.status, 200);
        let other = respond(without.handle(&get(&format!("{LEGACY_PREFIX}other"), None), 0));
        assert_eq!(other.status, 404);
    }

    #[test]
    fn late_rotation_keeps_the_same_credentials_until_five_minutes_before_expiry() {
        let mut imds = imds(
            r#"{"duration": "12h", "imds": {"role": "role", "credential_lifetime": "1h", "rotation": "late"}}"#,
        );
        let first = credentials_at(&mut imds, 0);
        let later = credentials_at(&mut imds, 54 * 60_000);
        assert!(first.is_same_as(&later));
        let rotated = credentials_at(&mut imds, 55 * 60_000);
        assert!(!first.is_same_as(&rotated));
        assert_eq!(
            rotated.expiration,
            SIM_EPOCH.shifted_by_millis(115 * 60_000)
        );
    }

    #[test]
    fn fresh_rotation_issues_new_credentials_on_every_fetch() {
        let mut imds = imds(r#"{"duration": "1h", "imds": {"role": "role", "rotation": "fresh"}}"#);
        let first = credentials_at(&mut imds, 0);
        let second = credentials_at(&mut imds, 1_000);
        assert!(!first.is_same_as(&second));
    }

    #[test]
    fn faults_act_only_within_their_span_and_on_their_requests() {
        let mut imds = imds(
            r#"{"duration": "1h", "imds": {"role": "role"}, "faults": [
                {"from": "10m", "to": "20m", "kind": "http_503"},
                {"from": "30m", "to": "40m", "kind": "token_timeout"},
                {"from": "30m", "to": "40m", "kind": "bad_json"}]}"#,
        );
        let minute = 60_000;
        assert_eq!(
            respond(imds.handle(&get(LEGACY_PREFIX, None), 10 * minute)).status,
            503
        );
        assert_eq!(
            respond(imds.handle(&get(LEGACY_PREFIX, None), 20 * minute)).status,
            200
        );
        assert_eq!(imds.handle(&put_token("60"), 30 * minute), ImdsAnswer::Hang);
        assert_eq!(
            respond(imds.handle(&get(LEGACY_PREFIX, None), 30 * minute)).status,
            200
        );
        let body = respond(imds.handle(&get(&format!("{LEGACY_PREFIX}role"), None), 30 * minute));
        assert!(credstate::parse_credentials(&body.body, 65_536).is_err());
        assert_eq!(imds.stats().faulted, 3);
    }

    #[test]
    fn expired_credentials_keep_answering_one_stale_set() {
        let mut imds = imds(
            r#"{"duration": "1h", "imds": {"role": "role"},
                "faults": [{"from": "10m", "to": "20m", "kind": "expired_credentials"}]}"#,
        );
        let minute = 60_000;
        let stale = credentials_at(&mut imds, 10 * minute);
        assert_eq!(stale.expiration, SIM_EPOCH.shifted_by_millis(0));
        assert!(credentials_at(&mut imds, 15 * minute).is_same_as(&stale));
        let healthy = credentials_at(&mut imds, 20 * minute);
        assert!(healthy.expiration > SIM_EPOCH.shifted_by_millis(20 * minute as i64));
    }

    #[test]
    fn percent_faults_follow_the_seed() {
        let scenario = |seed: u64| {
            format!(
                r#"{{"duration": "1h", "seed": {seed},
                    "faults": [{{"from": "0s", "kind": "http_500", "percent": 50}}]}}"#
            )
        };
        let pattern = |seed: u64| {
            let mut imds = imds(&scenario(seed));
            (0..64)
                .map(|i| respond(imds.handle(&get(LEGACY_PREFIX, None), i)).status)
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(1), pattern(1));
        assert_ne!(pattern(1), pattern(2));
        let failures = pattern(1).iter().filter(|s| **s == 500).count();
        assert!((16..48).contains(&failures), "{failures} of 64");
    }

    #[test]
    fn request_debug_output_hides_header_values() {
        let request = get(LEGACY_PREFIX, Some("sim-imds-token-secret"));
        assert!(!format!("{request:?}").contains("sim-imds-token-secret"));
    }
}
