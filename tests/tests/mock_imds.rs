//! The mock IMDS over real HTTP on loopback: the IMDS and container
//! protocols, rotation, every fault kind, stats. Each request has a client
//! timeout; nothing leaves 127.0.0.1.

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use credstate::{parse_credentials, parse_role_list, parse_token, Timestamp};
use credstate_tests::mock_imds::{
    CredentialSource, FaultRule, FaultSchedule, MockImds, MockImdsOptions,
};
use credstate_tests::scenario::{FaultKind, Rotation, Scenario, TokenSupport};

const ROLE: &str = "credstate-demo-role";
const TOKEN_PATH: &str = "/latest/api/token";
const LIST: &str = "/latest/meta-data/iam/security-credentials/";
const EXTENDED_LIST: &str = "/latest/meta-data/iam/security-credentials-extended/";
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";
const BODY_LIMIT: usize = 64 * 1024;

fn credentials_path() -> String {
    format!("{LIST}{ROLE}")
}

fn extended_credentials_path() -> String {
    format!("{EXTENDED_LIST}{ROLE}")
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    ttl_header: Option<String>,
    body: String,
}

/// A blocking client with one overall timeout per request.
struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(mock: &MockImds) -> Client {
        Client::with_timeout(mock, Duration::from_secs(5))
    }

    fn with_timeout(mock: &MockImds, timeout: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            base: mock.endpoint(),
        }
    }

    fn finish(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ureq::Error> {
        let mut response = response?;
        Ok(Answer {
            status: response.status().as_u16(),
            ttl_header: response
                .headers()
                .get(TTL)
                .map(|value| value.to_str().unwrap().to_string()),
            body: response.body_mut().read_to_string()?,
        })
    }

    fn try_put_token(&self, ttl: Option<&str>) -> Result<Answer, ureq::Error> {
        let mut request = self.agent.put(format!("{}{TOKEN_PATH}", self.base));
        if let Some(ttl) = ttl {
            request = request.header(TTL, ttl);
        }
        Client::finish(request.send_empty())
    }

    fn put_token(&self, ttl: Option<&str>) -> Answer {
        self.try_put_token(ttl).expect("token PUT answered")
    }

    fn token(&self) -> String {
        let answer = self.put_token(Some("21600"));
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body
    }

    fn try_get(
        &self,
        path: &str,
        token: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Answer, ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header(TOKEN, token);
        }
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        Client::finish(request.call())
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.try_get(path, token, None).expect("GET answered")
    }
}

fn mock_with(options: MockImdsOptions) -> (MockImds, Client) {
    let mock = MockImds::start(options);
    let client = Client::new(&mock);
    (mock, client)
}

fn now_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn expiration_of(body: &str) -> Timestamp {
    parse_credentials(body.as_bytes(), BODY_LIMIT)
        .expect("credentials parse")
        .expiration
}

#[test]
fn a_token_put_answers_a_token_and_echoes_its_ttl() {
    let (_mock, client) = mock_with(MockImdsOptions::default());
    let answer = client.put_token(Some("21600"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.ttl_header.as_deref(), Some("21600"));
    let token = parse_token(answer.body.as_bytes(), BODY_LIMIT).expect("a valid token");
    assert!(token.expose().len() >= 40);
    assert_eq!(client.get(LIST, Some(token.expose())).status, 200);
}

#[test]
fn a_token_put_without_a_valid_ttl_is_a_bad_request() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    for ttl in [
        None,
        Some("0"),
        Some("21601"),
        Some("abc"),
        Some("-5"),
        Some(""),
    ] {
        assert_eq!(client.put_token(ttl).status, 400, "ttl {ttl:?}");
    }
    for ttl in ["1", "21600"] {
        assert_eq!(client.put_token(Some(ttl)).status, 200, "ttl {ttl}");
    }
    assert_eq!(mock.stats().token_requests(), 8);
}

#[test]
fn tokens_repeat_for_a_seed_and_differ_between_seeds() {
    let first_token = |seed| {
        let (_mock, client) = mock_with(MockImdsOptions {
            seed,
            ..MockImdsOptions::default()
        });
        (client.token(), client.token())
    };
    let (one, two) = first_token(7);
    assert_ne!(one, two);
    assert_eq!(first_token(7), (one.clone(), two));
    assert_ne!(first_token(8).0, one);
}

#[test]
fn a_token_is_refused_once_its_ttl_has_passed() {
    let (_mock, client) = mock_with(MockImdsOptions::default());
    let token = client.put_token(Some("1")).body;
    assert_eq!(client.get(LIST, Some(&token)).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client.get(LIST, Some(&token)).status, 401);
}

#[test]
fn a_get_with_an_unknown_or_revoked_token_is_unauthorized() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    assert_eq!(client.get(LIST, Some("AQAEAMockmadeup")).status, 401);
    let token = client.token();
    assert_eq!(client.get(LIST, Some(&token)).status, 200);
    mock.expire_tokens();
    assert_eq!(client.get(LIST, Some(&token)).status, 401);
}

#[test]
fn token_less_gets_are_served_unless_v1_is_disabled() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    assert_eq!(client.get(LIST, None).status, 200);
    mock.set_v1_disabled(true);
    assert_eq!(client.get(LIST, None).status, 401);
    assert_eq!(client.get(&credentials_path(), None).status, 401);
    let token = client.token();
    assert_eq!(client.get(&credentials_path(), Some(&token)).status, 200);

    let (_strict, strict_client) = mock_with(MockImdsOptions {
        v1_disabled: true,
        ..MockImdsOptions::default()
    });
    assert_eq!(strict_client.get(LIST, None).status, 401);
}

#[test]
fn an_imds_without_tokens_answers_the_put_with_not_found_and_serves_v1() {
    let (_mock, client) = mock_with(MockImdsOptions {
        token: TokenSupport::Unsupported,
        ..MockImdsOptions::default()
    });
    assert_eq!(client.put_token(Some("21600")).status, 404);
    assert_eq!(client.get(&credentials_path(), None).status, 200);
}

#[test]
fn the_role_list_names_the_role_and_its_credentials_parse() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    let token = client.token();
    let list = client.get(LIST, Some(&token));
    assert_eq!(list.status, 200);
    assert_eq!(
        parse_role_list(list.body.as_bytes(), BODY_LIMIT).unwrap(),
        ROLE
    );
    // The path without its trailing slash lists the role too.
    assert_eq!(
        client.get(LIST.trim_end_matches('/'), Some(&token)).body,
        ROLE
    );

    let answer = client.get(&credentials_path(), Some(&token));
    assert_eq!(answer.status, 200);
    let credentials = parse_credentials(answer.body.as_bytes(), BODY_LIMIT).unwrap();
    let issued = mock.issued_credentials();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].source, CredentialSource::Imds);
    assert_eq!(credentials.access_key_id, "ASIAMOCK000000000001");
    assert_eq!(credentials.access_key_id, issued[0].access_key_id);
    assert_eq!(
        credentials.secret_access_key.expose(),
        issued[0].secret_access_key.expose()
    );
    assert_eq!(credentials.session_token.expose(), issued[0].token.expose());
    assert_eq!(
        credentials.account_id, None,
        "the legacy path carries no account id"
    );
    let lifetime_ms = credentials.expiration.unix_millis() - now_millis();
    assert!(
        (6 * 3600 - 5) * 1000 < lifetime_ms && lifetime_ms <= (6 * 3600 + 1) * 1000,
        "{lifetime_ms}"
    );
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["Code"], "Success");
    assert_eq!(json["Type"], "AWS-HMAC");
    assert!(json["LastUpdated"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn an_unknown_role_or_no_role_answers_not_found() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    assert_eq!(client.get(&format!("{LIST}someone-else"), None).status, 404);
    assert_eq!(
        client.get("/latest/meta-data/instance-id", None).status,
        404
    );
    assert_eq!(client.get("/elsewhere", None).status, 404);
    mock.set_role(None);
    assert_eq!(client.get(LIST, None).status, 404);
    assert_eq!(client.get(EXTENDED_LIST, None).status, 404);
    assert_eq!(client.get(&credentials_path(), None).status, 404);
    mock.set_role(Some(String::from("another-role")));
    assert_eq!(client.get(LIST, None).body, "another-role");
    assert_eq!(client.get(&format!("{LIST}another-role"), None).status, 200);

    let (_roleless, roleless_client) = mock_with(MockImdsOptions {
        role: None,
        ..MockImdsOptions::default()
    });
    assert_eq!(roleless_client.get(LIST, None).status, 404);
}

#[test]
fn the_extended_api_adds_the_account_id_and_can_be_switched_off() {
    let (_mock, client) = mock_with(MockImdsOptions::default());
    assert_eq!(client.get(EXTENDED_LIST, None).body, ROLE);
    let answer = client.get(&extended_credentials_path(), None);
    let credentials = parse_credentials(answer.body.as_bytes(), BODY_LIMIT).unwrap();
    assert_eq!(credentials.account_id.as_deref(), Some("123456789012"));

    let (_legacy, legacy_client) = mock_with(MockImdsOptions {
        extended_api: false,
        ..MockImdsOptions::default()
    });
    assert_eq!(legacy_client.get(EXTENDED_LIST, None).status, 404);
    assert_eq!(
        legacy_client.get(&extended_credentials_path(), None).status,
        404
    );
    assert_eq!(legacy_client.get(&credentials_path(), None).status, 200);
}

#[test]
fn fresh_rotation_issues_new_credentials_on_every_fetch() {
    let (mock, client) = mock_with(MockImdsOptions {
        rotation: Rotation::Fresh,
        ..MockImdsOptions::default()
    });
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let body = client.get(&credentials_path(), None).body;
            parse_credentials(body.as_bytes(), BODY_LIMIT)
                .unwrap()
                .access_key_id
        })
        .collect();
    assert_eq!(
        ids,
        [
            "ASIAMOCK000000000001",
            "ASIAMOCK000000000002",
            "ASIAMOCK000000000003"
        ]
    );
    let issued = mock.issued_credentials();
    assert_ne!(issued[0].secret_access_key, issued[1].secret_access_key);
    assert_ne!(issued[0].token, issued[1].token);
}

#[test]
fn late_rotation_keeps_credentials_until_shortly_before_they_expire() {
    let (mock, client) = mock_with(MockImdsOptions {
        credential_lifetime: Duration::from_millis(3000),
        rotate_before: Duration::from_millis(2000),
        ..MockImdsOptions::default()
    });
    let first = client.get(&credentials_path(), None).body;
    let again = client.get(&credentials_path(), None).body;
    assert_eq!(
        first, again,
        "the same credentials before the rotation window"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = client.get(&credentials_path(), None).body;
    assert_ne!(first, rotated);
    assert_eq!(mock.issued_credentials().len(), 2);
    // Whole seconds, rounded up: 1.1 s later may still be the same second.
    assert!(expiration_of(&rotated) >= expiration_of(&first));
}

#[test]
fn rotating_on_demand_issues_new_credentials_on_the_next_fetch() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    let first = client.get(&credentials_path(), None).body;
    assert_eq!(client.get(&credentials_path(), None).body, first);
    mock.rotate_credentials();
    assert_ne!(client.get(&credentials_path(), None).body, first);
    assert_eq!(mock.issued_credentials().len(), 2);
}

#[test]
fn status_faults_answer_their_status_until_cleared() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    for (kind, status) in [
        (FaultKind::Http500, 500),
        (FaultKind::Http503, 503),
        (FaultKind::Http429, 429),
    ] {
        mock.set_fault(Some(kind));
        assert_eq!(client.put_token(Some("21600")).status, status);
        assert_eq!(client.get(LIST, None).status, status);
        assert_eq!(client.get(&credentials_path(), None).status, status);
        assert_eq!(mock.stats().faults_of(kind), 3);
    }
    mock.set_fault(None);
    assert_eq!(client.get(&credentials_path(), None).status, 200);
}

#[test]
fn a_timeout_fault_never_answers() {
    let mock = MockImds::start(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::Timeout));
    let client = Client::with_timeout(&mock, Duration::from_millis(300));
    let error = client.try_get(&credentials_path(), None, None).unwrap_err();
    assert!(matches!(error, ureq::Error::Timeout(_)), "{error:?}");
    assert_eq!(mock.stats().requests("GET", &credentials_path()), 1);
    assert_eq!(mock.stats().faults_of(FaultKind::Timeout), 1);
}

#[test]
fn a_hung_request_is_closed_after_the_hang_limit() {
    let (mock, client) = mock_with(MockImdsOptions {
        hang_limit: Duration::from_millis(100),
        ..MockImdsOptions::default()
    });
    mock.set_fault(Some(FaultKind::Timeout));
    let error = client.try_get(LIST, None, None).unwrap_err();
    assert!(
        !matches!(error, ureq::Error::Timeout(_)),
        "closed, not timed out: {error:?}"
    );
}

#[test]
fn a_refused_fault_closes_the_connection_without_an_answer() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::Refused));
    let error = client.try_get(LIST, None, None).unwrap_err();
    assert!(
        !matches!(error, ureq::Error::Timeout(_)),
        "closed at once: {error:?}"
    );
    assert!(client.try_put_token(Some("21600")).is_err());
    mock.set_fault(None);
    assert_eq!(client.get(LIST, None).status, 200);
    assert_eq!(mock.stats().faults_of(FaultKind::Refused), 2);
}

#[test]
fn a_bad_json_fault_spoils_only_credentials_bodies() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::BadJson));
    let token = client.token();
    assert_eq!(client.get(LIST, Some(&token)).body, ROLE);
    let answer = client.get(&credentials_path(), Some(&token));
    assert_eq!(answer.status, 200);
    assert!(parse_credentials(answer.body.as_bytes(), BODY_LIMIT).is_err());
    let issued = &mock.issued_credentials()[0];
    assert!(!answer.body.contains(issued.secret_access_key.expose()));
}

#[test]
fn an_expired_credentials_fault_sends_an_expiration_in_the_past() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::ExpiredCredentials));
    let body = client.get(&credentials_path(), None).body;
    assert!(expiration_of(&body).unix_millis() < now_millis());
    mock.set_fault(None);
    let body = client.get(&credentials_path(), None).body;
    assert!(expiration_of(&body).unix_millis() > now_millis());
}

#[test]
fn a_token_unsupported_fault_answers_the_put_with_not_found() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    let token = client.token();
    mock.set_fault(Some(FaultKind::TokenUnsupported));
    assert_eq!(client.put_token(Some("21600")).status, 404);
    assert_eq!(client.get(LIST, Some(&token)).status, 200);
    assert_eq!(client.get(LIST, None).status, 200);
}

#[test]
fn a_token_timeout_fault_hangs_the_put_while_v1_gets_still_work() {
    let mock = MockImds::start(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::TokenTimeout));
    let client = Client::with_timeout(&mock, Duration::from_millis(300));
    let error = client.try_put_token(Some("21600")).unwrap_err();
    assert!(matches!(error, ureq::Error::Timeout(_)), "{error:?}");
    assert_eq!(client.get(&credentials_path(), None).status, 200);
}

#[test]
fn a_fault_can_cover_a_range_of_requests_to_one_path() {
    let (mock, client) = mock_with(MockImdsOptions {
        faults: vec![FaultRule::requests(FaultKind::Http500, 2..=3).on_path(credentials_path())],
        ..MockImdsOptions::default()
    });
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            assert_eq!(
                client.get(LIST, None).status,
                200,
                "other paths are not counted"
            );
            client.get(&credentials_path(), None).status
        })
        .collect();
    assert_eq!(statuses, [200, 500, 500, 200]);

    // Installed at run time, counted from then on; prefixes end in `*`.
    mock.add_fault(FaultRule::requests(FaultKind::Http503, 1..=1).on_path("/latest/meta-data/*"));
    assert_eq!(client.get(LIST, None).status, 503);
    assert_eq!(client.get(LIST, None).status, 200);
    assert_eq!(client.put_token(Some("60")).status, 200);
}

#[test]
fn a_fault_scheduled_by_time_covers_only_its_span() {
    let hour = Duration::from_secs(3600);
    let (_now, now_client) = mock_with(MockImdsOptions {
        faults: vec![FaultRule::between(
            FaultKind::Http500,
            Duration::ZERO,
            Some(hour),
        )],
        ..MockImdsOptions::default()
    });
    assert_eq!(now_client.get(LIST, None).status, 500);
    let (later, later_client) = mock_with(MockImdsOptions {
        faults: vec![FaultRule::between(FaultKind::Http500, hour, None)],
        ..MockImdsOptions::default()
    });
    assert_eq!(later_client.get(LIST, None).status, 200);
    later.clear_faults();
    assert!(later.uptime() < hour);
}

#[test]
fn a_fault_affecting_no_percent_never_fires() {
    let (_mock, client) = mock_with(MockImdsOptions {
        faults: vec![FaultRule::always(FaultKind::Http500).with_percent(0)],
        ..MockImdsOptions::default()
    });
    for _ in 0..5 {
        assert_eq!(client.get(LIST, None).status, 200);
    }
}

#[test]
fn an_added_delay_holds_every_answer() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    mock.set_delay(Duration::from_millis(250));
    let started = Instant::now();
    assert_eq!(client.get(LIST, None).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn clock_jumps_mean_nothing_to_a_real_server() {
    let scenario = Scenario::from_json(
        r#"{"duration": "1h", "seed": 3,
            "imds": {"credential_lifetime": "15m", "rotation": "fresh", "v1_disabled": true,
                     "latency": "0s", "extended_api": false},
            "faults": [{"from": "0s", "kind": "clock_jump", "by": "+1d"},
                       {"from": "10m", "to": "20m", "kind": "http_503", "percent": 40}]}"#,
    )
    .unwrap();
    let options = MockImdsOptions::from_scenario(&scenario);
    assert_eq!(options.seed, 3);
    assert_eq!(options.credential_lifetime, Duration::from_secs(15 * 60));
    assert_eq!(options.rotation, Rotation::Fresh);
    assert!(options.v1_disabled && !options.extended_api);
    assert_eq!(options.role.as_deref(), Some(ROLE));
    assert_eq!(options.faults.len(), 1, "the clock jump is left out");
    assert_eq!(
        options.faults[0].schedule,
        FaultSchedule::Between {
            from: Duration::from_secs(600),
            to: Some(Duration::from_secs(1200))
        }
    );
    assert_eq!(options.faults[0].percent, 40);

    let (mock, client) = mock_with(options);
    mock.set_fault(Some(FaultKind::ClockJump));
    let token = client.token();
    assert_eq!(client.get(LIST, Some(&token)).status, 200);
}

#[test]
fn stats_count_requests_per_path_and_method_and_are_served_as_json() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    let token = client.token();
    client.get(LIST, Some(&token));
    client.get(&credentials_path(), Some(&token));
    client.get(&extended_credentials_path(), Some(&token));
    client.get(TOKEN_PATH, None);

    let stats = mock.stats();
    assert_eq!(stats.total, 5);
    assert_eq!(stats.token_requests(), 1);
    assert_eq!(stats.requests("GET", TOKEN_PATH), 1);
    assert_eq!(stats.requests_to(TOKEN_PATH), 2);
    assert_eq!(stats.role_list_requests(), 1);
    assert_eq!(stats.credential_requests(), 2);

    let served: serde_json::Value =
        serde_json::from_str(&client.get("/_stats", None).body).unwrap();
    assert_eq!(served["total"], 5, "reading the stats is not counted");
    assert_eq!(served["by_path"][TOKEN_PATH], 2);
    assert_eq!(served["by_method_and_path"][format!("PUT {TOKEN_PATH}")], 1);

    let reset = client
        .agent
        .post(format!("{}/_reset", client.base))
        .send_empty()
        .unwrap();
    assert_eq!(reset.status().as_u16(), 200);
    assert_eq!(mock.stats().total, 0);
}

#[test]
fn the_container_endpoint_checks_the_authorization_header() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    let path = "/container/credentials";
    assert_eq!(mock.container_url(), format!("{}{path}", mock.endpoint()));
    let open = client.try_get(path, None, None).unwrap();
    assert_eq!(open.status, 200, "no authorization required by default");

    mock.set_container_authorization(Some(String::from("Bearer first")));
    let missing = client.try_get(path, None, None).unwrap();
    assert_eq!(missing.status, 401);
    let wrong = client.try_get(path, None, Some("Bearer other")).unwrap();
    assert_eq!(wrong.status, 403);
    for refusal in [&missing, &wrong] {
        let json: serde_json::Value = serde_json::from_str(&refusal.body).unwrap();
        assert!(
            json["Code"].is_string() && json["Message"].is_string(),
            "{json}"
        );
    }

    let answer = client.try_get(path, None, Some("Bearer first")).unwrap();
    assert_eq!(answer.status, 200);
    let credentials = parse_credentials(answer.body.as_bytes(), BODY_LIMIT).unwrap();
    assert_eq!(credentials.account_id.as_deref(), Some("123456789012"));
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        json["RoleArn"],
        format!("arn:aws:iam::123456789012:role/{ROLE}")
    );
    let issued = mock.issued_credentials();
    assert_eq!(issued.last().unwrap().source, CredentialSource::Container);
    assert_eq!(
        credentials.access_key_id,
        issued.last().unwrap().access_key_id
    );

    mock.set_container_authorization(Some(String::from("Bearer rotated")));
    assert_eq!(
        client
            .try_get(path, None, Some("Bearer first"))
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        client
            .try_get(path, None, Some("Bearer rotated"))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn container_faults_answer_with_json_errors() {
    let (mock, client) = mock_with(MockImdsOptions {
        container_path: String::from("/v2/credentials/abc"),
        ..MockImdsOptions::default()
    });
    mock.add_fault(FaultRule::always(FaultKind::Http503).on_path("/v2/*"));
    let answer = client.get("/v2/credentials/abc", None);
    assert_eq!(answer.status, 503);
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert!(json["Code"].is_string(), "{json}");
    assert_eq!(client.get(LIST, None).status, 200, "IMDS paths untouched");
}

#[test]
fn issued_credentials_redact_their_secrets_in_debug() {
    let (mock, client) = mock_with(MockImdsOptions::default());
    client.get(&credentials_path(), None);
    let issued = &mock.issued_credentials()[0];
    let debug = format!("{issued:?} {mock:?}");
    assert!(debug.contains("ASIAMOCK000000000001"));
    assert!(!debug.contains(issued.secret_access_key.expose()));
    assert!(!debug.contains(issued.token.expose()));
}

#[test]
fn dropping_the_mock_stops_the_server() {
    let mock = MockImds::start(MockImdsOptions::default());
    let address = mock.address();
    assert!(address.ip().is_loopback());
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok());
    drop(mock);
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err());
}

#[test]
fn the_mock_runs_on_a_callers_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mock = MockImds::spawn(MockImdsOptions::default()).await.unwrap();
        let endpoint = mock.endpoint();
        let status = tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            agent
                .get(format!("{endpoint}{LIST}"))
                .call()
                .map(|response| response.status().as_u16())
        })
        .await
        .unwrap();
        assert_eq!(status.unwrap(), 200);
        assert_eq!(mock.stats().role_list_requests(), 1);
    });
}
