//! The simulated container credentials agent (ECS, EKS Pod Identity;
//! FIELD-GUIDE §2) and the authorization token file it checks against, on
//! simulated time, with the scenario's faults injected from a seeded
//! generator.
//!
//! - The agent answers `GET` on the configured URI's path with the container
//!   JSON (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`,
//!   `RoleArn`, `AccountId`; no `Code`), rotated as the model says.
//! - With `auth: {"token": …}` it wants exactly that `Authorization` header;
//!   with `auth: {"token_file": …}` it wants the file's current contents
//!   (or, within `token_grace` of a rotation, default 1 min, the previous
//!   ones). A missing
//!   header gets 401, a wrong or stale one 403, each with a JSON
//!   `{"Code", "Message"}` body.
//! - The token file's contents change every `token_rotation` of true time.
//!   Reading it is instantaneous; `token_file_missing` makes it fail with
//!   "no such file".
//!
//! Like the simulated IMDS it is a pure function of what it is asked and the
//! true time it is asked at; latency, hangs and timeouts are the harness's.

use std::time::Duration;

use credstate::{ContainerAuth, ContainerSource, FileError, Method, Response};

use super::imds::{ImdsAnswer, SimRequest};
use super::issuer::{CredentialIssuer, CredentialSet};
use super::rng::SimRng;
use crate::scenario::{ContainerModel, Fault, FaultKind, FaultTarget};

const AUTHORIZATION_HEADER: &str = "authorization";
const ACCOUNT_ID: &str = "123456789012";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/credstate-demo-role";
/// Token values of one generation derive from the seed and the generation,
/// through their own stream.
const TOKEN_SEED_SALT: u64 = 0x70CE_7F11_E000_0001;
/// A refused token is recognised as stale if the file held it within this
/// many rotations.
const STALE_LOOKBACK: u64 = 1_000;

/// Counters of what the simulated agent and token file saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStats {
    /// Every HTTP request to the agent.
    pub requests: u64,
    /// Requests a fault acted on, and token-file reads it spoiled.
    pub faulted: u64,
    /// Requests refused for a missing `Authorization` header (401).
    pub missing_token: u64,
    /// Requests refused for a wrong `Authorization` header (403)…
    pub wrong_token: u64,
    /// …of which carried a token the file held earlier (a client that
    /// cached the token instead of reading the file afresh).
    pub stale_token: u64,
    /// Sets of credentials issued.
    pub credentials_issued: u64,
    /// Reads of the token file.
    pub token_file_reads: u64,
    /// Times the token file's contents changed during the run so far (as of
    /// the last read or request).
    pub token_rotations: u64,
}

impl ContainerStats {
    /// Requests refused for their `Authorization` header (401 or 403).
    #[must_use]
    pub fn auth_refusals(&self) -> u64 {
        self.missing_token + self.wrong_token
    }
}

/// What the agent wants in the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
enum Expected {
    /// Nothing (ECS): the header is not checked.
    Nothing,
    /// This configured token.
    Token(String),
    /// The token file's contents at the time of the request.
    TokenFile { path: String },
}

impl std::fmt::Debug for Expected {
    // The configured token is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Nothing => f.write_str("Nothing"),
            Expected::Token(_) => f.write_str("Token(<redacted>)"),
            Expected::TokenFile { path } => {
                f.debug_struct("TokenFile").field("path", path).finish()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    BadJson,
    Stale { fault: usize },
}

/// The simulated container credentials agent and the pod's token file.
#[derive(Debug, Clone)]
pub struct SimContainer {
    model: ContainerModel,
    /// The path and query the agent serves, from the configured URI.
    path: String,
    expected: Expected,
    faults: Vec<Fault>,
    rng: SimRng,
    token_seed: u64,
    issuer: CredentialIssuer,
    stats: ContainerStats,
}

impl SimContainer {
    /// An agent serving `source`'s URI and checking its authorization as
    /// configured, behaving as `model`, with `faults` injected; `seed` decides
    /// which requests a fault with a `percent` hits, and the token values.
    #[must_use]
    pub fn new(
        model: ContainerModel,
        source: &ContainerSource,
        faults: Vec<Fault>,
        seed: u64,
    ) -> Self {
        let expected = match &source.auth {
            ContainerAuth::Token(token) => Expected::Token(token.expose().to_string()),
            ContainerAuth::TokenFile(path) => Expected::TokenFile { path: path.clone() },
            _ => Expected::Nothing,
        };
        SimContainer {
            issuer: CredentialIssuer::new(model.credential_lifetime, model.rotation),
            model,
            path: path_of(&source.uri).to_string(),
            expected,
            faults,
            rng: SimRng::new(seed),
            token_seed: seed ^ TOKEN_SEED_SALT,
            stats: ContainerStats::default(),
        }
    }

    /// What it saw so far.
    #[must_use]
    pub fn stats(&self) -> ContainerStats {
        ContainerStats {
            credentials_issued: self.issuer.issued(),
            ..self.stats
        }
    }

    /// The path (and query) the agent serves, e.g. `/v1/credentials`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The token file's path, when the configuration reads one.
    #[must_use]
    pub fn token_file_path(&self) -> Option<&str> {
        match &self.expected {
            Expected::TokenFile { path } => Some(path),
            _ => None,
        }
    }

    /// How many times the token file has been rotated by `elapsed_ms`.
    fn generation(&self, elapsed_ms: u64) -> u64 {
        match self.model.token_rotation {
            Some(every) if !every.is_zero() => elapsed_ms / millis(every),
            _ => 0,
        }
    }

    /// The token file's contents in `generation`: one header-safe line.
    fn token(&self, generation: u64) -> String {
        let mut rng = SimRng::new(self.token_seed ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        format!(
            "sim-container-token-{generation:04}-{:016x}",
            rng.next_u64()
        )
    }

    fn note_generation(&mut self, elapsed_ms: u64) {
        let generation = self.generation(elapsed_ms);
        self.stats.token_rotations = self.stats.token_rotations.max(generation);
    }

    /// Read the file at `path`, `elapsed_ms` of true time into the run, as
    /// the adapter would: the current token, or why not. Only the configured
    /// token file exists.
    pub fn read_file(&mut self, path: &str, elapsed_ms: u64) -> Result<Vec<u8>, FileError> {
        if self.token_file_path() != Some(path) {
            return Err(FileError::NotFound);
        }
        self.stats.token_file_reads += 1;
        self.note_generation(elapsed_ms);
        let at = Duration::from_millis(elapsed_ms);
        for fault in &self.faults {
            if fault.kind != FaultKind::TokenFileMissing || !fault.covers(at) {
                continue;
            }
            if self.rng.chance(fault.percent.unwrap_or(100)) {
                self.stats.faulted += 1;
                return Err(FileError::NotFound);
            }
        }
        Ok(self.token(self.generation(elapsed_ms)).into_bytes())
    }

    /// Answer `request`, arriving `elapsed_ms` of true time into the run.
    pub fn handle(&mut self, request: &SimRequest, elapsed_ms: u64) -> ImdsAnswer {
        self.stats.requests += 1;
        self.note_generation(elapsed_ms);
        let mut body_fault = None;
        let at = Duration::from_millis(elapsed_ms);
        // Every request to the agent asks for credentials.
        for index in 0..self.faults.len() {
            let fault = &self.faults[index];
            if !fault.covers(at) || !fault.kind.acts_on(FaultTarget::Credentials) {
                continue;
            }
            let (kind, percent) = (fault.kind, fault.percent.unwrap_or(100));
            if !self.rng.chance(percent) {
                continue;
            }
            self.stats.faulted += 1;
            match kind {
                FaultKind::Http500 => return error(500, "InternalError", "internal error"),
                FaultKind::Http503 => return error(503, "ServiceUnavailable", "try again later"),
                FaultKind::Http429 => return error(429, "Throttling", "rate exceeded"),
                FaultKind::Timeout => return ImdsAnswer::Hang,
                FaultKind::Refused => return ImdsAnswer::Refuse,
                FaultKind::BadJson => body_fault = body_fault.or(Some(BodyFault::BadJson)),
                FaultKind::ExpiredCredentials => {
                    body_fault = body_fault.or(Some(BodyFault::Stale { fault: index }));
                }
                FaultKind::TokenUnsupported
                | FaultKind::TokenTimeout
                | FaultKind::ClockJump
                | FaultKind::TokenFileMissing => {}
            }
        }
        ImdsAnswer::Respond(self.respond(request, elapsed_ms, body_fault))
    }

    fn respond(
        &mut self,
        request: &SimRequest,
        elapsed_ms: u64,
        body_fault: Option<BodyFault>,
    ) -> Response {
        if request.path != self.path {
            return json_error(404, "NotFound", "no credentials are served at this path");
        }
        if request.method != Method::Get {
            return json_error(405, "MethodNotAllowed", "only GET is supported");
        }
        if let Some(refusal) =
            self.check_authorization(request.header(AUTHORIZATION_HEADER), elapsed_ms)
        {
            return refusal;
        }
        let set = match body_fault {
            Some(BodyFault::BadJson) => return Response::new(200, r#"{"AccessKeyId":"ASIA"#),
            Some(BodyFault::Stale { fault }) => self.issuer.stale_set(fault, elapsed_ms),
            None => self.issuer.current_set(elapsed_ms),
        };
        Response::new(200, credentials_body(set))
    }

    /// `None` when the header is acceptable, else the refusal.
    fn check_authorization(&mut self, header: Option<&str>, elapsed_ms: u64) -> Option<Response> {
        let accepted = match &self.expected {
            Expected::Nothing => return None,
            Expected::Token(token) => header == Some(token.as_str()),
            Expected::TokenFile { .. } => {
                let generation = self.generation(elapsed_ms);
                let in_grace = generation > 0
                    && self.model.token_rotation.is_some_and(|every| {
                        elapsed_ms - generation * millis(every) < millis(self.model.token_grace())
                    });
                header == Some(self.token(generation).as_str())
                    || (in_grace && header == Some(self.token(generation - 1).as_str()))
            }
        };
        if accepted {
            return None;
        }
        let Some(header) = header else {
            self.stats.missing_token += 1;
            return Some(json_error(
                401,
                "Unauthorized",
                "the Authorization header is missing",
            ));
        };
        self.stats.wrong_token += 1;
        let generation = self.generation(elapsed_ms);
        let recent = generation.saturating_sub(STALE_LOOKBACK)..generation;
        if matches!(self.expected, Expected::TokenFile { .. })
            && recent
                .into_iter()
                .any(|earlier| self.token(earlier) == header)
        {
            self.stats.stale_token += 1;
        }
        Some(json_error(
            403,
            "AccessDenied",
            "the authorization token is invalid or has expired",
        ))
    }
}

/// The path and query of an absolute URI: everything from the first `/`
/// after the authority (`/` when there is none), as `Request::path` does.
fn path_of(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    uri[after_scheme..]
        .find('/')
        .map_or("/", |i| &uri[after_scheme + i..])
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn json_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"Code": code, "Message": message});
    Response::new(status, body.to_string()).with_header("content-type", "application/json")
}

fn error(status: u16, code: &str, message: &str) -> ImdsAnswer {
    ImdsAnswer::Respond(json_error(status, code, message))
}

fn credentials_body(set: CredentialSet) -> String {
    serde_json::json!({
        "AccessKeyId": format!("ASIACTR{:013}", set.serial),
        "SecretAccessKey": format!("sim-secret-access-key-{:08}", set.serial),
        "Token": format!("sim-session-token-{:08}", set.serial),
        "Expiration": set.expires_at().to_rfc3339(),
        "RoleArn": ROLE_ARN,
        "AccountId": ACCOUNT_ID,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::sim::clock::SIM_EPOCH;

    const EKS_TOKEN_FILE: &str =
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
    const MINUTE: u64 = 60_000;

    fn agent(scenario: &str) -> SimContainer {
        let scenario = Scenario::from_json(scenario).unwrap_or_else(|err| panic!("{err}"));
        let config = scenario.credstate_config().unwrap();
        SimContainer::new(
            scenario.container_model(),
            config.container.as_ref().expect("a container scenario"),
            scenario.faults,
            scenario.seed,
        )
    }

    fn eks(extra: &str) -> SimContainer {
        agent(&format!(
            r#"{{"duration": "12h", {extra}
                "config": {{"container": {{"uri": "http://169.254.170.23/v1/credentials",
                           "auth": {{"token_file": "{EKS_TOKEN_FILE}"}}}}}}}}"#
        ))
    }

    fn get(path: &str, authorization: Option<&str>) -> SimRequest {
        SimRequest {
            id: 0,
            method: Method::Get,
            path: path.into(),
            headers: authorization
                .map(|t| vec![(AUTHORIZATION_HEADER.to_string(), t.to_string())])
                .unwrap_or_default(),
            timeout: Duration::from_secs(2),
        }
    }

    fn respond(answer: ImdsAnswer) -> Response {
        match answer {
            ImdsAnswer::Respond(response) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn token_at(agent: &mut SimContainer, ms: u64) -> String {
        String::from_utf8(agent.read_file(EKS_TOKEN_FILE, ms).unwrap()).unwrap()
    }

    #[test]
    fn the_agent_serves_container_json_without_a_code_field() {
        let mut agent = agent(
            r#"{"duration": "1h", "config": {"container": {"uri": "http://169.254.170.2/v2/credentials/abc?x=1"}}}"#,
        );
        let response = respond(agent.handle(&get("/v2/credentials/abc?x=1", None), 0));
        assert_eq!(response.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert!(body.get("Code").is_none(), "{body}");
        assert_eq!(body["RoleArn"], ROLE_ARN);
        assert_eq!(body["AccountId"], ACCOUNT_ID);
        let credentials = credstate::parse_credentials(&response.body, 65_536).unwrap();
        assert_eq!(
            credentials.expiration,
            SIM_EPOCH.shifted_by_millis(6 * 60 * MINUTE as i64)
        );
        let elsewhere = respond(agent.handle(&get("/v2/credentials/other", None), 0));
        assert_eq!(elsewhere.status, 404);
    }

    #[test]
    fn a_configured_token_is_checked_and_a_missing_one_is_unauthorized() {
        let mut agent = agent(
            r#"{"duration": "1h", "config": {"container": {"uri": "http://127.0.0.1:8080/creds",
                "auth": {"token": "Bearer configured"}}}}"#,
        );
        assert_eq!(
            respond(agent.handle(&get("/creds", Some("Bearer configured")), 0)).status,
            200
        );
        let missing = respond(agent.handle(&get("/creds", None), 0));
        assert_eq!(missing.status, 401);
        let body: serde_json::Value = serde_json::from_slice(&missing.body).unwrap();
        assert_eq!(body["Code"], "Unauthorized");
        assert_eq!(
            respond(agent.handle(&get("/creds", Some("Bearer other")), 0)).status,
            403
        );
        let stats = agent.stats();
        assert_eq!(
            (stats.missing_token, stats.wrong_token, stats.stale_token),
            (1, 1, 0)
        );
    }

    #[test]
    fn the_token_file_rotates_and_the_agent_wants_the_current_token() {
        let mut agent = eks(r#""container": {"token_rotation": "10m", "token_grace": "0s"},"#);
        let first = token_at(&mut agent, 0);
        assert_eq!(token_at(&mut agent, 10 * MINUTE - 1), first);
        let second = token_at(&mut agent, 10 * MINUTE);
        assert_ne!(first, second);
        assert!(!second.contains(['\r', '\n']));
        assert_eq!(
            respond(agent.handle(&get("/v1/credentials", Some(&second)), 10 * MINUTE)).status,
            200
        );
        let stale = respond(agent.handle(&get("/v1/credentials", Some(&first)), 10 * MINUTE));
        assert_eq!(stale.status, 403);
        let stats = agent.stats();
        assert_eq!(
            (
                stats.stale_token,
                stats.token_rotations,
                stats.token_file_reads
            ),
            (1, 1, 3)
        );
    }

    #[test]
    fn within_the_grace_period_the_previous_token_still_works() {
        let mut agent = eks(r#""container": {"token_rotation": "10m", "token_grace": "1m"},"#);
        let first = token_at(&mut agent, 0);
        let request = get("/v1/credentials", Some(&first));
        assert_eq!(
            respond(agent.handle(&request, 10 * MINUTE + MINUTE - 1)).status,
            200
        );
        assert_eq!(respond(agent.handle(&request, 11 * MINUTE)).status, 403);
    }

    #[test]
    fn a_missing_token_file_fault_fails_reads_only_within_its_span() {
        let mut agent =
            eks(r#""faults": [{"from": "10m", "to": "20m", "kind": "token_file_missing"}],"#);
        assert!(agent.read_file(EKS_TOKEN_FILE, 0).is_ok());
        assert_eq!(
            agent.read_file(EKS_TOKEN_FILE, 10 * MINUTE),
            Err(FileError::NotFound)
        );
        let token = token_at(&mut agent, 20 * MINUTE);
        // Requests are not affected by it.
        let request = get("/v1/credentials", Some(&token));
        assert_eq!(respond(agent.handle(&request, 15 * MINUTE)).status, 200);
        assert_eq!(agent.read_file("/etc/passwd", 0), Err(FileError::NotFound));
        assert_eq!(agent.stats().faulted, 1);
    }

    #[test]
    fn http_faults_act_on_the_agent_with_json_bodies() {
        let mut agent = agent(
            r#"{"duration": "1h", "faults": [
                {"from": "0s", "to": "1m", "kind": "http_503"},
                {"from": "1m", "to": "2m", "kind": "timeout"},
                {"from": "2m", "to": "3m", "kind": "bad_json"},
                {"from": "3m", "to": "4m", "kind": "expired_credentials"}],
                "config": {"container": {"uri": "http://169.254.170.2/v2/credentials/abc"}}}"#,
        );
        let path = "/v2/credentials/abc";
        let throttled = respond(agent.handle(&get(path, None), 0));
        assert_eq!(throttled.status, 503);
        assert!(serde_json::from_slice::<serde_json::Value>(&throttled.body).is_ok());
        assert_eq!(agent.handle(&get(path, None), MINUTE), ImdsAnswer::Hang);
        let truncated = respond(agent.handle(&get(path, None), 2 * MINUTE));
        assert!(credstate::parse_credentials(&truncated.body, 65_536).is_err());
        let stale = respond(agent.handle(&get(path, None), 3 * MINUTE));
        let stale = credstate::parse_credentials(&stale.body, 65_536).unwrap();
        assert!(stale.expiration < SIM_EPOCH.shifted_by_millis(3 * MINUTE as i64));
        assert_eq!(agent.stats().faulted, 4);
    }

    #[test]
    fn debug_output_hides_the_configured_token() {
        let agent = agent(
            r#"{"duration": "1h", "config": {"container": {"uri": "http://localhost/creds",
                "auth": {"token": "sim-configured-secret"}}}}"#,
        );
        assert!(!format!("{agent:?}").contains("sim-configured-secret"));
    }
}
