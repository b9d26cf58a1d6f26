//! What the mock answers, decided without any IO: a request head and the
//! time come in, a plan (delay, then answer / hang / close) goes out. The
//! server module only carries bytes.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use credstate::{Secret, Timestamp};
use serde::Serialize;

use super::{
    CredentialSource, FaultRule, FaultSchedule, IssuedCredentials, MockImdsOptions, MockStats,
};
use crate::scenario::{FaultKind, FaultTarget, Rotation, TokenSupport};

pub(crate) const TOKEN_PATH: &str = "/latest/api/token";
pub(crate) const LEGACY_PATH: &str = "/latest/meta-data/iam/security-credentials";
pub(crate) const EXTENDED_PATH: &str = "/latest/meta-data/iam/security-credentials-extended";
const STATS_PATH: &str = "/_stats";
const RESET_PATH: &str = "/_reset";

pub(crate) const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub(crate) const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const MAX_TOKEN_TTL_SECONDS: u64 = 21_600;
const KEPT_ISSUED: usize = 1000;

/// The parts of a request the mock looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// `X-aws-ec2-metadata-token` (an unreadable value is passed as "").
    pub(crate) token: Option<&'a str>,
    /// `X-aws-ec2-metadata-token-ttl-seconds`.
    pub(crate) ttl: Option<&'a str>,
    /// `Authorization`.
    pub(crate) authorization: Option<&'a str>,
}

/// An answer to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Respond(Reply),
    /// Never answer; close the connection after this long.
    Hang(Duration),
    /// Close the connection without answering.
    Close,
}

/// Wait `delay`, then act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) delay: Duration,
    pub(crate) action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Token,
    RoleList { extended: bool },
    RoleCredentials { extended: bool, role: String },
    OtherMetadata,
    Container,
    Unknown,
}

impl Route {
    fn of(path: &str, container_path: &str) -> Route {
        if path == TOKEN_PATH {
            return Route::Token;
        }
        if path == container_path {
            return Route::Container;
        }
        // The extended base starts with the legacy one: try it first.
        for (base, extended) in [(EXTENDED_PATH, true), (LEGACY_PATH, false)] {
            if let Some(rest) = path.strip_prefix(base) {
                match rest.strip_prefix('/') {
                    None if rest.is_empty() => return Route::RoleList { extended },
                    Some("") => return Route::RoleList { extended },
                    Some(role) if !role.contains('/') => {
                        return Route::RoleCredentials {
                            extended,
                            role: role.to_string(),
                        }
                    }
                    _ => {}
                }
            }
        }
        if path.starts_with("/latest/") {
            Route::OtherMetadata
        } else {
            Route::Unknown
        }
    }

    fn is_imds(&self) -> bool {
        !matches!(self, Route::Container | Route::Unknown)
    }

    fn fault_target(&self) -> FaultTarget {
        match self {
            Route::Token => FaultTarget::ImdsToken,
            Route::RoleCredentials { .. } | Route::Container => FaultTarget::Credentials,
            Route::RoleList { .. } | Route::OtherMetadata | Route::Unknown => FaultTarget::Other,
        }
    }
}

/// SplitMix64: a fixed, well-mixed function of (seed, n), so everything the
/// mock makes up repeats for a seed.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const TOKEN_SALT: u64 = 0x746F_6B65_6E5F_5F5F;
const SECRET_SALT: u64 = 0x7365_6372_6574_5F5F;
const SESSION_SALT: u64 = 0x7365_7373_696F_6E5F;
const FAULT_SALT: u64 = 0x6661_756C_745F_5F5F;

fn unix_millis(wall: SystemTime) -> i64 {
    match wall.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn rfc3339_seconds(unix_secs: i64) -> String {
    Timestamp::from_unix_secs(unix_secs).to_rfc3339()
}

#[derive(Debug, Clone)]
struct CredentialSet {
    issued: IssuedCredentials,
    last_updated: String,
    /// When late rotation counts them as expired, on the server's clock
    /// (exactly the lifetime; the written `Expiration` is rounded up).
    expires_at: Instant,
}

#[derive(Debug, Clone)]
struct InstalledRule {
    rule: FaultRule,
    eligible_seen: u64,
}

/// The credentials JSON, fields in the order EC2 sends them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsBody<'a> {
    code: &'a str,
    last_updated: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerBody<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    role_arn: &'a str,
    account_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

fn error_json(status: u16, code: &str, message: &str) -> Reply {
    let body =
        serde_json::to_string(&ErrorBody { code, message }).unwrap_or_else(|_| String::from("{}"));
    Reply::json(status, body)
}

/// The mock's whole state, behind one mutex in the server.
#[derive(Debug)]
pub(crate) struct MockState {
    options: MockImdsOptions,
    started: Instant,
    tokens: HashMap<String, Instant>,
    tokens_after_sweep: usize,
    tokens_issued: u64,
    credentials_issued: u64,
    imds_credentials: Option<CredentialSet>,
    container_credentials: Option<CredentialSet>,
    rotate_next: [bool; 2],
    issued: Vec<IssuedCredentials>,
    rules: Vec<InstalledRule>,
    manual_fault: Option<FaultKind>,
    delay: Duration,
    stats: MockStats,
}

impl MockState {
    pub(crate) fn new(mut options: MockImdsOptions, now: Instant) -> MockState {
        let rules = std::mem::take(&mut options.faults)
            .into_iter()
            .filter(|rule| super::is_server_fault(rule.kind))
            .map(|rule| InstalledRule {
                rule,
                eligible_seen: 0,
            })
            .collect();
        MockState {
            options,
            started: now,
            tokens: HashMap::new(),
            tokens_after_sweep: 0,
            tokens_issued: 0,
            credentials_issued: 0,
            imds_credentials: None,
            container_credentials: None,
            rotate_next: [false; 2],
            issued: Vec::new(),
            rules,
            manual_fault: None,
            delay: Duration::ZERO,
            stats: MockStats::default(),
        }
    }

    pub(crate) fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    pub(crate) fn stats(&self) -> &MockStats {
        &self.stats
    }

    pub(crate) fn reset_stats(&mut self) {
        self.stats = MockStats::default();
    }

    pub(crate) fn set_manual_fault(&mut self, kind: Option<FaultKind>) {
        self.manual_fault = kind;
    }

    pub(crate) fn add_fault(&mut self, rule: FaultRule) {
        self.rules.push(InstalledRule {
            rule,
            eligible_seen: 0,
        });
    }

    pub(crate) fn clear_faults(&mut self) {
        self.manual_fault = None;
        self.rules.clear();
    }

    pub(crate) fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    pub(crate) fn set_role(&mut self, role: Option<String>) {
        self.options.role = role;
    }

    pub(crate) fn set_v1_disabled(&mut self, disabled: bool) {
        self.options.v1_disabled = disabled;
    }

    pub(crate) fn set_container_authorization(&mut self, value: Option<String>) {
        self.options.container_authorization = value;
    }

    pub(crate) fn expire_tokens(&mut self) {
        self.tokens.clear();
    }

    pub(crate) fn rotate_credentials(&mut self) {
        self.rotate_next = [true; 2];
    }

    pub(crate) fn issued(&self) -> &[IssuedCredentials] {
        &self.issued
    }

    pub(crate) fn log_requests(&self) -> bool {
        self.options.log_requests
    }

    /// Decide what to do with a request that arrived at `now` (server clock)
    /// / `wall` (the wall clock that `Expiration` is written in).
    pub(crate) fn decide(
        &mut self,
        request: &RequestHead<'_>,
        now: Instant,
        wall: SystemTime,
    ) -> Plan {
        if let Some(reply) = self.control(request) {
            return Plan {
                delay: Duration::ZERO,
                action: Action::Respond(reply),
            };
        }
        self.count(request);
        let route = Route::of(request.path, &self.options.container_path);
        let delay = self.options.latency + self.delay;
        let fault = self.fault_for(&route, request.path, now);
        if let Some(kind) = fault {
            *self
                .stats
                .faults_injected
                .entry(kind.name().to_string())
                .or_insert(0) += 1;
        }
        let action = match fault {
            Some(FaultKind::Timeout | FaultKind::TokenTimeout) => {
                Action::Hang(self.options.hang_limit)
            }
            Some(FaultKind::Refused) => Action::Close,
            Some(kind @ (FaultKind::Http500 | FaultKind::Http503 | FaultKind::Http429)) => {
                Action::Respond(status_fault(kind, &route))
            }
            Some(FaultKind::TokenUnsupported) => Action::Respond(Reply::text(404, "Not Found")),
            other => Action::Respond(self.answer(request, &route, other, now, wall)),
        };
        Plan { delay, action }
    }

    fn control(&mut self, request: &RequestHead<'_>) -> Option<Reply> {
        match (request.method, request.path) {
            ("GET", STATS_PATH) => Some(Reply::json(
                200,
                serde_json::to_string(&self.stats).unwrap_or_else(|_| String::from("{}")),
            )),
            ("POST", RESET_PATH) => {
                self.reset_stats();
                Some(Reply::text(200, "stats reset"))
            }
            (_, STATS_PATH | RESET_PATH) => Some(Reply::text(405, "Method Not Allowed")),
            _ => None,
        }
    }

    fn count(&mut self, request: &RequestHead<'_>) {
        self.stats.total += 1;
        *self
            .stats
            .by_path
            .entry(request.path.to_string())
            .or_insert(0) += 1;
        *self
            .stats
            .by_method_and_path
            .entry(format!("{} {}", request.method, request.path))
            .or_insert(0) += 1;
    }

    /// The fault acting on this request, if any. Every rule the request is
    /// eligible for counts it, whichever fault wins; the runtime fault wins,
    /// then rules in installation order.
    fn fault_for(&mut self, route: &Route, path: &str, now: Instant) -> Option<FaultKind> {
        let elapsed = self.uptime(now);
        let seed = self.options.seed;
        let mut chosen = self
            .manual_fault
            .filter(|kind| kind.acts_on(route.fault_target()));
        for (index, installed) in self.rules.iter_mut().enumerate() {
            let rule = &installed.rule;
            if !rule.kind.acts_on(route.fault_target()) || !rule.matches_path(path) {
                continue;
            }
            installed.eligible_seen += 1;
            let number = installed.eligible_seen;
            let scheduled = match rule.schedule {
                FaultSchedule::Always => true,
                FaultSchedule::Between { from, to } => {
                    elapsed >= from && to.is_none_or(|to| elapsed < to)
                }
                FaultSchedule::Requests { first, last } => {
                    number >= first && last.is_none_or(|last| number <= last)
                }
            };
            let drawn = rule.percent >= 100
                || mix(seed ^ FAULT_SALT ^ index as u64, number) % 100 < u64::from(rule.percent);
            if chosen.is_none() && scheduled && drawn {
                chosen = Some(rule.kind);
            }
        }
        chosen
    }

    fn answer(
        &mut self,
        request: &RequestHead<'_>,
        route: &Route,
        fault: Option<FaultKind>,
        now: Instant,
        wall: SystemTime,
    ) -> Reply {
        match route {
            Route::Token => self.answer_token(request, now),
            Route::Container => self.answer_container(request, fault, now, wall),
            Route::Unknown => Reply::text(404, "Not Found"),
            _ => self.answer_metadata(request, route, fault, now, wall),
        }
    }

    fn answer_token(&mut self, request: &RequestHead<'_>, now: Instant) -> Reply {
        if self.options.token == TokenSupport::Unsupported {
            return Reply::text(404, "Not Found");
        }
        if request.method != "PUT" {
            return Reply::text(405, "Method Not Allowed");
        }
        let ttl = match request.ttl.map(|text| text.trim().parse::<u64>()) {
            Some(Ok(seconds)) if (1..=MAX_TOKEN_TTL_SECONDS).contains(&seconds) => seconds,
            Some(_) => {
                return Reply::text(
                    400,
                    "X-aws-ec2-metadata-token-ttl-seconds must be a whole number in 1..=21600",
                )
            }
            None => return Reply::text(400, "missing X-aws-ec2-metadata-token-ttl-seconds"),
        };
        // Sweep expired tokens whenever the map has doubled: clients that
        // take a token per request (Java v1) stay cheap.
        if self.tokens.len() >= self.tokens_after_sweep.saturating_mul(2).max(1024) {
            self.tokens.retain(|_, expires| *expires > now);
            self.tokens_after_sweep = self.tokens.len();
        }
        self.tokens_issued += 1;
        let n = self.tokens_issued;
        let seed = self.options.seed ^ TOKEN_SALT;
        let token = format!(
            "AQAEAMock{:016x}{:016x}{:016x}",
            mix(seed, 3 * n),
            mix(seed, 3 * n + 1),
            mix(seed, 3 * n + 2)
        );
        self.tokens
            .insert(token.clone(), now + Duration::from_secs(ttl));
        let mut reply = Reply::text(200, token);
        reply.headers.push((TTL_HEADER, ttl.to_string()));
        reply
    }

    /// Session-token rules for metadata GETs; `Some` is the refusal.
    fn check_session(&self, request: &RequestHead<'_>, now: Instant) -> Option<Reply> {
        if self.options.token == TokenSupport::Unsupported {
            return None;
        }
        match request.token {
            Some(token) => match self.tokens.get(token) {
                Some(expires) if *expires > now => None,
                _ => Some(Reply::text(401, "Unauthorized")),
            },
            None if self.options.v1_disabled => Some(Reply::text(401, "Unauthorized")),
            None => None,
        }
    }

    fn answer_metadata(
        &mut self,
        request: &RequestHead<'_>,
        route: &Route,
        fault: Option<FaultKind>,
        now: Instant,
        wall: SystemTime,
    ) -> Reply {
        if request.method != "GET" {
            return Reply::text(405, "Method Not Allowed");
        }
        if let Some(refusal) = self.check_session(request, now) {
            return refusal;
        }
        let extended_missing = matches!(
            route,
            Route::RoleList { extended: true } | Route::RoleCredentials { extended: true, .. }
        ) && !self.options.extended_api;
        if extended_missing {
            return Reply::text(404, "Not Found");
        }
        match route {
            Route::RoleList { .. } => match &self.options.role {
                Some(role) => Reply::text(200, role.clone()),
                None => Reply::text(404, "Not Found"),
            },
            Route::RoleCredentials { extended, role } => {
                if self.options.role.as_deref() != Some(role.as_str()) {
                    return Reply::text(404, "Not Found");
                }
                let set = self.current_credentials(CredentialSource::Imds, now, wall);
                if fault == Some(FaultKind::BadJson) {
                    return Reply::text(200, truncated_json(&set));
                }
                let expiration = match fault {
                    Some(FaultKind::ExpiredCredentials) => already_expired(wall),
                    _ => set.issued.expiration.clone(),
                };
                let body = CredentialsBody {
                    code: "Success",
                    last_updated: &set.last_updated,
                    kind: "AWS-HMAC",
                    access_key_id: &set.issued.access_key_id,
                    secret_access_key: set.issued.secret_access_key.expose(),
                    token: set.issued.token.expose(),
                    expiration: &expiration,
                    account_id: extended.then_some(self.options.account_id.as_str()),
                };
                Reply::text(200, to_json_pretty(&body))
            }
            _ => Reply::text(404, "Not Found"),
        }
    }

    fn answer_container(
        &mut self,
        request: &RequestHead<'_>,
        fault: Option<FaultKind>,
        now: Instant,
        wall: SystemTime,
    ) -> Reply {
        if request.method != "GET" {
            return error_json(405, "MethodNotAllowed", "use GET");
        }
        if let Some(required) = &self.options.container_authorization {
            match request.authorization {
                None => return error_json(401, "Unauthorized", "missing Authorization header"),
                Some(given) if given != required => {
                    return error_json(403, "AccessDenied", "Authorization header not accepted")
                }
                Some(_) => {}
            }
        }
        let set = self.current_credentials(CredentialSource::Container, now, wall);
        if fault == Some(FaultKind::BadJson) {
            return Reply::json(200, truncated_json(&set));
        }
        let expiration = match fault {
            Some(FaultKind::ExpiredCredentials) => already_expired(wall),
            _ => set.issued.expiration.clone(),
        };
        let role = self
            .options
            .role
            .as_deref()
            .unwrap_or("credstate-container-role");
        let role_arn = format!("arn:aws:iam::{}:role/{role}", self.options.account_id);
        let body = ContainerBody {
            access_key_id: &set.issued.access_key_id,
            secret_access_key: set.issued.secret_access_key.expose(),
            token: set.issued.token.expose(),
            expiration: &expiration,
            role_arn: &role_arn,
            account_id: &self.options.account_id,
        };
        Reply::json(200, to_json_pretty(&body))
    }

    /// The credentials this source hands out now, issuing new ones as the
    /// rotation model says.
    fn current_credentials(
        &mut self,
        source: CredentialSource,
        now: Instant,
        wall: SystemTime,
    ) -> CredentialSet {
        let slot = match source {
            CredentialSource::Imds => 0,
            CredentialSource::Container => 1,
        };
        let current = match source {
            CredentialSource::Imds => &self.imds_credentials,
            CredentialSource::Container => &self.container_credentials,
        };
        let keep = match current {
            None => None,
            Some(_) if self.rotate_next[slot] => None,
            Some(set) => match self.options.rotation {
                Rotation::Fresh => None,
                Rotation::Late => {
                    let rotate_at = set
                        .expires_at
                        .checked_sub(self.options.rotate_before)
                        .unwrap_or(self.started);
                    (now < rotate_at).then(|| set.clone())
                }
            },
        };
        if let Some(set) = keep {
            return set;
        }
        self.rotate_next[slot] = false;
        let set = self.issue(source, now, wall);
        match source {
            CredentialSource::Imds => self.imds_credentials = Some(set.clone()),
            CredentialSource::Container => self.container_credentials = Some(set.clone()),
        }
        set
    }

    fn issue(&mut self, source: CredentialSource, now: Instant, wall: SystemTime) -> CredentialSet {
        self.credentials_issued += 1;
        let serial = self.credentials_issued;
        let seed = self.options.seed;
        let wall_ms = unix_millis(wall);
        let lifetime_ms =
            i64::try_from(self.options.credential_lifetime.as_millis()).unwrap_or(i64::MAX);
        // EC2 writes whole seconds; round the expiration up so the written
        // value is never earlier than the lifetime promises.
        let expiration_secs = wall_ms
            .saturating_add(lifetime_ms)
            .saturating_add(999)
            .div_euclid(1000);
        let expires_at = now
            .checked_add(self.options.credential_lifetime)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let issued = IssuedCredentials {
            serial,
            source,
            access_key_id: format!("ASIAMOCK{serial:012}"),
            secret_access_key: Secret::new(format!(
                "mockSecret{serial}x{:016x}{:016x}",
                mix(seed ^ SECRET_SALT, 2 * serial),
                mix(seed ^ SECRET_SALT, 2 * serial + 1)
            )),
            token: Secret::new(format!(
                "MockSessionToken{serial}x{:016x}{:016x}{:016x}",
                mix(seed ^ SESSION_SALT, 3 * serial),
                mix(seed ^ SESSION_SALT, 3 * serial + 1),
                mix(seed ^ SESSION_SALT, 3 * serial + 2)
            )),
            expiration: rfc3339_seconds(expiration_secs),
        };
        if self.issued.len() == KEPT_ISSUED {
            self.issued.remove(0);
        }
        self.issued.push(issued.clone());
        CredentialSet {
            issued,
            last_updated: rfc3339_seconds(wall_ms.div_euclid(1000)),
            expires_at,
        }
    }
}

fn to_json_pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| String::from("{}"))
}

/// A credentials body cut off mid-way, as a dropped connection or a broken
/// proxy would leave it; no secret in it.
fn truncated_json(set: &CredentialSet) -> String {
    format!(
        "{{\n  \"Code\" : \"Success\",\n  \"AccessKeyId\" : \"{}",
        set.issued.access_key_id
    )
}

/// An `Expiration` a minute in the past.
fn already_expired(wall: SystemTime) -> String {
    rfc3339_seconds(unix_millis(wall).div_euclid(1000) - 60)
}

fn status_fault(kind: FaultKind, route: &Route) -> Reply {
    let (status, code, text) = match kind {
        FaultKind::Http503 => (503, "ServiceUnavailable", "Service Unavailable"),
        FaultKind::Http429 => (429, "TooManyRequests", "Too Many Requests"),
        _ => (500, "InternalServerError", "Internal Server Error"),
    };
    if route.is_imds() {
        Reply::text(status, text)
    } else {
        error_json(status, code, &format!("mock fault {}", kind.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> RequestHead<'_> {
        RequestHead {
            method: "GET",
            path,
            token: None,
            ttl: None,
            authorization: None,
        }
    }

    fn status(plan: &Plan) -> u16 {
        match &plan.action {
            Action::Respond(reply) => reply.status,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn routes_tell_the_extended_api_from_the_legacy_one() {
        let c = "/container/credentials";
        assert_eq!(
            Route::of("/latest/meta-data/iam/security-credentials-extended/", c),
            Route::RoleList { extended: true }
        );
        assert_eq!(
            Route::of("/latest/meta-data/iam/security-credentials", c),
            Route::RoleList { extended: false }
        );
        assert_eq!(
            Route::of("/latest/meta-data/iam/security-credentials/r", c),
            Route::RoleCredentials {
                extended: false,
                role: String::from("r")
            }
        );
        assert_eq!(
            Route::of("/latest/meta-data/iam/security-credentials/r/x", c),
            Route::OtherMetadata
        );
        assert_eq!(Route::of(c, c), Route::Container);
        assert_eq!(Route::of("/elsewhere", c), Route::Unknown);
    }

    #[test]
    fn late_rotation_keeps_credentials_until_the_rotation_window() {
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut state = MockState::new(
            MockImdsOptions {
                credential_lifetime: Duration::from_secs(3600),
                ..MockImdsOptions::default()
            },
            start,
        );
        let path = "/latest/meta-data/iam/security-credentials/credstate-demo-role";
        let at = |secs| start + Duration::from_secs(secs);
        let wall_at = |secs| wall + Duration::from_secs(secs);
        assert_eq!(status(&state.decide(&get(path), at(0), wall_at(0))), 200);
        assert_eq!(
            status(&state.decide(&get(path), at(3600 - 301), wall_at(3600 - 301))),
            200
        );
        assert_eq!(state.issued().len(), 1);
        assert_eq!(state.issued()[0].expiration, "2027-01-15T09:00:00Z");
        assert_eq!(
            status(&state.decide(&get(path), at(3600 - 300), wall_at(3600 - 300))),
            200
        );
        assert_eq!(state.issued().len(), 2);
        assert_eq!(state.issued()[1].access_key_id, "ASIAMOCK000000000002");
    }

    #[test]
    fn request_counted_faults_count_only_eligible_requests() {
        let start = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut state = MockState::new(
            MockImdsOptions {
                faults: vec![FaultRule::requests(FaultKind::BadJson, 2..=2)],
                ..MockImdsOptions::default()
            },
            start,
        );
        let creds = "/latest/meta-data/iam/security-credentials/credstate-demo-role";
        let list = "/latest/meta-data/iam/security-credentials/";
        let body = |plan: Plan| match plan.action {
            Action::Respond(reply) => reply.body,
            other => panic!("expected an answer, got {other:?}"),
        };
        for _ in 0..3 {
            state.decide(&get(list), start, wall);
        }
        assert!(credstate::parse_credentials(
            body(state.decide(&get(creds), start, wall)).as_bytes(),
            65536
        )
        .is_ok());
        assert!(credstate::parse_credentials(
            body(state.decide(&get(creds), start, wall)).as_bytes(),
            65536
        )
        .is_err());
        assert!(credstate::parse_credentials(
            body(state.decide(&get(creds), start, wall)).as_bytes(),
            65536
        )
        .is_ok());
        assert_eq!(state.stats().faults_of(FaultKind::BadJson), 1);
    }

    #[test]
    fn fault_percent_draws_repeat_for_a_seed() {
        let draws = |seed| {
            let start = Instant::now();
            let mut state = MockState::new(
                MockImdsOptions {
                    seed,
                    faults: vec![FaultRule::always(FaultKind::Http500).with_percent(50)],
                    ..MockImdsOptions::default()
                },
                start,
            );
            (0..64)
                .map(|_| {
                    status(&state.decide(&get("/latest/meta-data/"), start, SystemTime::UNIX_EPOCH))
                        == 500
                })
                .collect::<Vec<_>>()
        };
        let first = draws(7);
        assert_eq!(first, draws(7));
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at 50%");
    }

    #[test]
    fn a_token_file_fault_is_left_to_the_client() {
        let start = Instant::now();
        let mut state = MockState::new(
            MockImdsOptions {
                faults: vec![FaultRule::always(FaultKind::TokenFileMissing)],
                ..MockImdsOptions::default()
            },
            start,
        );
        let container = state.options.container_path.clone();
        let plan = state.decide(&get(&container), start, SystemTime::UNIX_EPOCH);
        assert_eq!(status(&plan), 200);
        assert_eq!(state.stats().faults_of(FaultKind::TokenFileMissing), 0);
        let fault = crate::scenario::Fault {
            from: Duration::ZERO,
            to: None,
            kind: FaultKind::TokenFileMissing,
            by: None,
            percent: None,
        };
        assert_eq!(FaultRule::from_scenario(&fault), None);
    }
}
