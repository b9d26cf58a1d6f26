//! The IMDS wire protocol: the session token (§4.4), the fallback table
//! (§4.5), role discovery and the extended API (§4.10), bodies (§4.11) and
//! attempts (§4.12).

mod support;

use credstate::{
    BadResponse, Event, Request, Response, SourceError, Step, TokenFailure, TransportFailure,
    V1DisabledBy,
};
use support::*;

const CREDENTIALS_EXTENDED: &str = "/latest/meta-data/iam/security-credentials-extended/web";
const CREDENTIALS_LEGACY: &str = "/latest/meta-data/iam/security-credentials/web";

/// A healthy IMDS except that the token PUT gets `token_reply`.
fn with_token_reply(token_reply: Reply) -> impl FnMut(&Request) -> Reply {
    let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
    move |request: &Request| {
        if request.path() == TOKEN_PATH {
            token_reply.clone()
        } else {
            healthy(request)
        }
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.expose())
}

#[test]
fn the_token_is_requested_with_a_six_hour_ttl_and_sent_on_every_get() {
    let mut sim = Sim::default_config();
    expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 6 * HOUR)));
    let (_, put) = &sim.sent[0];
    assert_eq!(put.method.as_str(), "PUT");
    assert_eq!(
        header(put, "x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    for (_, get) in &sim.sent[1..] {
        assert_eq!(header(get, "x-aws-ec2-metadata-token"), Some(TOKEN));
    }
}

#[test]
fn the_token_is_reused_across_refreshes() {
    let mut sim = warm(Default::default());
    sim.clear_log();
    sim.run_for(6 * HOUR, &mut healthy("ASIA2", T0 + 12 * HOUR));
    assert!(!sim.paths_sent().is_empty());
    assert!(!sim.paths_sent().iter().any(|p| p == TOKEN_PATH));
}

#[test]
fn the_token_is_renewed_when_less_than_120_seconds_of_its_ttl_remain() {
    let mut sim = Sim::new(config_with(|c| c.token_ttl = 10 * MINUTE));
    let mut short_token = move |request: &Request| match request.path() {
        TOKEN_PATH => Reply::Respond(
            Response::new(200, TOKEN).with_header("x-aws-ec2-metadata-token-ttl-seconds", "600"),
        ),
        _ => healthy("ASIA1", T0 + 20 * MINUTE)(request),
    };
    expect_ready(sim.demand_until_settled(&mut short_token));
    sim.clear_log();
    // The refresh at ~15 min comes after the token's renewal point (8 min).
    sim.run_for(17 * MINUTE, &mut short_token);
    assert_eq!(
        sim.paths_sent().first().map(String::as_str),
        Some(TOKEN_PATH)
    );
}

#[test]
fn a_401_drops_the_token_gets_a_new_one_and_retries_the_get_once() {
    let mut sim = warm(Default::default());
    sim.clear_log();
    let mut healthy = healthy("ASIA2", T0 + 12 * HOUR);
    let mut first_get = true;
    let mut imds = move |request: &Request| {
        if request.path() != TOKEN_PATH && std::mem::take(&mut first_get) {
            status(401)
        } else {
            healthy(request)
        }
    };
    sim.run_for(6 * HOUR, &mut imds);
    assert_eq!(
        sim.paths_sent()[..3],
        [EXTENDED_LIST, TOKEN_PATH, EXTENDED_LIST]
    );
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
}

#[test]
fn a_second_401_after_a_fresh_token_fails_the_fetch() {
    let mut sim = Sim::default_config();
    let mut imds = with_token_reply(ok(TOKEN));
    let mut imds = move |request: &Request| {
        if request.path() == TOKEN_PATH {
            imds(request)
        } else {
            status(401)
        }
    };
    let cause = expect_rejected(sim.demand_until_settled(&mut imds));
    assert_eq!(
        cause,
        SourceError::UnexpectedStatus {
            step: Step::ImdsRoleList,
            status: 401
        }
    );
}

// ----- the fallback table (§4.5) -----

#[test]
fn a_400_to_the_token_request_is_a_configuration_error_without_fallback() {
    let mut sim = Sim::default_config();
    let cause = expect_rejected(sim.demand_until_settled(&mut with_token_reply(status(400))));
    assert_eq!(
        cause,
        SourceError::Misconfigured {
            step: Step::ImdsToken
        }
    );
    assert_eq!(sim.paths_sent(), [TOKEN_PATH]);
}

#[test]
fn a_403_404_or_405_to_the_token_request_falls_back_to_imdsv1() {
    for code in [403, 404, 405] {
        let mut sim = Sim::default_config();
        expect_ready(sim.demand_until_settled(&mut with_token_reply(status(code))));
        assert_eq!(
            sim.paths_sent(),
            [TOKEN_PATH, EXTENDED_LIST, CREDENTIALS_EXTENDED]
        );
        assert!(sim.sent[1..]
            .iter()
            .all(|(_, r)| header(r, "x-aws-ec2-metadata-token").is_none()));
        assert!(sim.events.iter().any(|(_, e)| *e
            == Event::FellBackToV1 {
                cause: TokenFailure::Status(code)
            }));
    }
}

#[test]
fn a_token_request_that_times_out_falls_back_to_imdsv1_at_once_without_retrying() {
    let mut sim = Sim::default_config();
    expect_ready(sim.demand_until_settled(&mut with_token_reply(Reply::Hang)));
    assert_eq!(
        sim.paths_sent(),
        [TOKEN_PATH, EXTENDED_LIST, CREDENTIALS_EXTENDED]
    );
    let (put_at, _) = sim.sent[0];
    let (get_at, _) = sim.sent[1];
    assert_eq!(
        get_at.saturating_since(put_at),
        SECOND,
        "the fallback follows the 1 s timeout"
    );
}

#[test]
fn with_v1_disabled_a_403_404_or_405_gives_a_typed_error_naming_the_status() {
    for code in [403, 404, 405] {
        let mut sim = Sim::new(config_with(|c| c.v1_disabled = true));
        let cause = expect_rejected(sim.demand_until_settled(&mut with_token_reply(status(code))));
        assert_eq!(
            cause,
            SourceError::V1Disabled {
                by: V1DisabledBy::Config,
                token_failure: TokenFailure::Status(code)
            }
        );
        assert!(cause.to_string().contains(&format!("HTTP {code}")));
        assert_eq!(sim.paths_sent(), [TOKEN_PATH]);
    }
}

#[test]
fn with_v1_disabled_a_token_timeout_is_reported_as_the_hop_limit() {
    let mut sim = Sim::new(config_with(|c| c.v1_disabled = true));
    let cause = expect_rejected(sim.demand_until_settled(&mut with_token_reply(Reply::Hang)));
    assert_eq!(cause, SourceError::LikelyHopLimit { timeout: SECOND });
    assert_eq!(
        cause.to_string(),
        "IMDS token request timed out after 1s — in a container the instance metadata hop limit may need to be 2"
    );
}

#[test]
fn an_instance_that_requires_tokens_answers_v1_with_401_and_that_is_a_typed_error() {
    let mut sim = Sim::default_config();
    let mut imds = with_token_reply(status(403));
    let mut imds = move |r: &Request| {
        if r.path() == TOKEN_PATH {
            imds(r)
        } else {
            status(401)
        }
    };
    let cause = expect_rejected(sim.demand_until_settled(&mut imds));
    assert_eq!(
        cause,
        SourceError::V1Disabled {
            by: V1DisabledBy::Instance,
            token_failure: TokenFailure::Status(403)
        }
    );
}

#[test]
fn a_token_timeout_then_401_on_v1_is_the_hop_limit() {
    let mut sim = Sim::default_config();
    let mut imds = |r: &Request| {
        if r.path() == TOKEN_PATH {
            Reply::Hang
        } else {
            status(401)
        }
    };
    let cause = expect_rejected(sim.demand_until_settled(&mut imds));
    assert_eq!(cause.name(), "LikelyHopLimit");
}

#[test]
fn throttling_server_errors_and_resets_are_retried_never_a_fallback() {
    let replies = [
        (status(429), "Throttled"),
        (status(503), "Throttled"),
        (status(500), "ServerError"),
        (Reply::Fail(TransportFailure::Reset), "Unreachable"),
        (Reply::Fail(TransportFailure::ConnectRefused), "Unreachable"),
    ];
    for (reply, name) in replies {
        let mut sim = Sim::default_config();
        let cause = expect_rejected(sim.demand_until_settled(&mut with_token_reply(reply)));
        assert_eq!(cause.name(), name);
        assert_eq!(
            sim.paths_sent(),
            [TOKEN_PATH, TOKEN_PATH, TOKEN_PATH],
            "3 attempts, no v1"
        );
        assert_eq!(
            sim.count_events(|e| matches!(e, Event::AttemptFailed { .. })),
            2
        );
        assert_eq!(
            sim.count_events(|e| matches!(e, Event::FellBackToV1 { .. })),
            0
        );
    }
}

#[test]
fn attempts_pause_briefly_and_a_cold_fetch_fails_within_a_few_seconds() {
    let mut sim = Sim::default_config();
    let started = sim.now;
    expect_rejected(sim.demand_until_settled(&mut always(Reply::Hang)));
    // Token PUT (1 s, then v1), then three 1 s GET attempts with pauses ≤ 1 s.
    assert!(
        sim.now.saturating_since(started) <= 6 * SECOND,
        "{:?}",
        sim.now.saturating_since(started)
    );
    let pauses: Vec<_> = sim
        .sent
        .windows(2)
        .map(|p| p[1].0.saturating_since(p[0].0))
        .collect();
    assert!(pauses.iter().all(|p| *p <= 2 * SECOND), "{pauses:?}");
}

#[test]
fn every_request_carries_the_per_attempt_timeout_and_the_body_cap() {
    let mut sim = Sim::new(config_with(|c| {
        c.request_timeout = 250 * std::time::Duration::from_millis(1)
    }));
    expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 6 * HOUR)));
    for (_, request) in &sim.sent {
        assert_eq!(request.timeout, std::time::Duration::from_millis(250));
        assert_eq!(request.max_body_bytes, 65_536);
    }
}

// ----- roles and the extended API (§4.10) -----

#[test]
fn the_role_is_rediscovered_on_every_refresh() {
    let mut sim = warm(Default::default());
    sim.clear_log();
    sim.run_for(6 * HOUR, &mut healthy("ASIA2", T0 + 12 * HOUR));
    assert_eq!(sim.paths_sent()[..2], [EXTENDED_LIST, CREDENTIALS_EXTENDED]);
}

#[test]
fn a_configured_role_skips_discovery() {
    let mut sim = Sim::new(config_with(|c| c.role_name = Some("web".into())));
    expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 6 * HOUR)));
    assert_eq!(sim.paths_sent(), [TOKEN_PATH, CREDENTIALS_EXTENDED]);
}

#[test]
fn a_404_from_the_extended_api_switches_to_the_legacy_paths_for_good() {
    let mut sim = Sim::default_config();
    let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
    let mut imds = move |r: &Request| {
        if r.path().contains("-extended") {
            status(404)
        } else {
            healthy(r)
        }
    };
    expect_ready(sim.demand_until_settled(&mut imds));
    assert_eq!(
        sim.paths_sent(),
        [TOKEN_PATH, EXTENDED_LIST, LEGACY_LIST, CREDENTIALS_LEGACY]
    );
    assert_eq!(sim.count_events(|e| *e == Event::SwitchedToLegacyApi), 1);
    sim.clear_log();
    sim.run_for(6 * HOUR, &mut imds);
    assert!(sim.paths_sent().iter().all(|p| !p.contains("-extended")));
}

#[test]
fn errors_other_than_404_from_the_extended_api_do_not_switch() {
    let mut sim = Sim::default_config();
    let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
    let mut first = true;
    let mut imds = move |r: &Request| {
        if r.path() == EXTENDED_LIST && std::mem::take(&mut first) {
            status(500)
        } else {
            healthy(r)
        }
    };
    expect_ready(sim.demand_until_settled(&mut imds));
    assert_eq!(
        sim.paths_sent(),
        [
            TOKEN_PATH,
            EXTENDED_LIST,
            EXTENDED_LIST,
            CREDENTIALS_EXTENDED
        ]
    );
}

#[test]
fn no_role_attached_is_a_typed_error() {
    let mut sim = Sim::default_config();
    let mut imds = |r: &Request| match r.path() {
        TOKEN_PATH => ok(TOKEN),
        _ => status(404),
    };
    let cause = expect_rejected(sim.demand_until_settled(&mut imds));
    assert_eq!(cause, SourceError::NoRoleAttached);
    assert_eq!(
        cause.to_string(),
        "no IAM role is attached to this instance"
    );
}

#[test]
fn role_names_that_would_change_the_url_path_are_never_requested() {
    for name in [
        "../../latest/api/token",
        "web/../../admin",
        "web?x=1",
        "we b",
    ] {
        let mut sim = Sim::default_config();
        let mut imds = |r: &Request| match r.path() {
            TOKEN_PATH => ok(TOKEN),
            EXTENDED_LIST => ok(name),
            other => panic!("requested {other}"),
        };
        let cause = expect_rejected(sim.demand_until_settled(&mut imds));
        assert!(
            matches!(
                cause,
                SourceError::BadResponse {
                    problem: BadResponse::InvalidRoleName(_),
                    ..
                }
            ),
            "{cause:?}"
        );
        assert!(!cause.to_string().contains(name));
    }
}

// ----- bodies (§4.11) -----

fn with_credentials_body(body: Vec<u8>) -> impl FnMut(&Request) -> Reply {
    let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
    move |r: &Request| {
        if r.path() == CREDENTIALS_EXTENDED {
            Reply::Respond(Response::new(200, body.clone()))
        } else {
            healthy(r)
        }
    }
}

fn rejected_body_problem(body: Vec<u8>) -> BadResponse {
    let mut sim = Sim::default_config();
    match expect_rejected(sim.demand_until_settled(&mut with_credentials_body(body))) {
        SourceError::BadResponse { problem, .. } => problem,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bodies_over_64_kib_are_rejected() {
    let mut body = credentials_json("ASIA1", T0 + 6 * HOUR).into_bytes();
    body.resize(65_537, b' ');
    assert_eq!(
        rejected_body_problem(body),
        BadResponse::BodyTooLarge { limit: 65_536 }
    );
}

#[test]
fn bad_json_is_a_bad_response_and_is_retried() {
    let problem = rejected_body_problem(b"<html>oops</html>".to_vec());
    assert!(matches!(problem, BadResponse::InvalidJson { .. }));
}

#[test]
fn timestamps_that_are_not_rfc3339_are_rejected() {
    let body = credentials_json("ASIA1", T0 + 6 * HOUR)
        .replace("2026-11-29T06:00:00Z", "Sun Nov 29 06:00:00 2026");
    assert_eq!(
        rejected_body_problem(body.into_bytes()),
        BadResponse::InvalidTimestamp {
            field: "Expiration"
        }
    );
}

#[test]
fn a_code_other_than_success_is_surfaced_with_code_and_message() {
    let body = br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 cannot assume the role"}"#;
    let problem = rejected_body_problem(body.to_vec());
    assert_eq!(
        problem,
        BadResponse::NotSuccess {
            code: "AssumeRoleUnauthorizedAccess".into(),
            message: Some("EC2 cannot assume the role".into())
        }
    );
}

#[test]
fn account_id_from_the_extended_api_is_kept() {
    let mut sim = Sim::default_config();
    let body = credentials_json("ASIA1", T0 + 6 * HOUR)
        .replace("\"Code\"", "\"AccountId\":\"123456789012\",\"Code\"");
    let credentials =
        expect_ready(sim.demand_until_settled(&mut with_credentials_body(body.into_bytes())));
    assert_eq!(credentials.account_id.as_deref(), Some("123456789012"));
}

#[test]
fn a_token_request_outlived_by_a_forward_clock_jump_is_sent_again_not_taken_for_the_hop_limit() {
    let mut sim = Sim::new(config_with(|c| c.v1_disabled = true));
    assert!(matches!(sim.demand(), credstate::Demand::Pending));
    let put = sim.outbox.remove(0);
    // The host sleeps for three days with the PUT in flight.
    sim.jump_to(T0 + 72 * HOUR);
    sim.machine.handle_timeout(sim.now);
    let again = sim.collect();
    assert_eq!(again.len(), 1, "the PUT is sent again");
    assert_eq!(again[0].path(), TOKEN_PATH);
    assert_ne!(again[0].id, put.id);
    // The late answer to the first PUT is ignored; the second one is used.
    sim.machine
        .handle_response(put.id, Response::new(200, TOKEN), sim.now)
        .unwrap();
    let credentials = expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 78 * HOUR)));
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::FellBackToV1 { .. })),
        0
    );
}
