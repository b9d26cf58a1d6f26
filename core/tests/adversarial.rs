//! Edge cases found by adversarial review: odd wire answers, clock steps at
//! awkward moments, misuse across machines and configuration edge values.

mod support;

use std::time::Duration;

use credstate::{
    BadResponse, Config, ContainerAuth, Demand, Event, Machine, MisuseError, Output, Request,
    Response, SourceError, Stability, TransportFailure,
};
use support::*;

fn not_success_in_events(sim: &Sim) -> Vec<String> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::AttemptFailed { cause, .. } | Event::FetchFailed { cause, .. } => match cause {
                SourceError::BadResponse {
                    problem: problem @ BadResponse::NotSuccess { .. },
                    ..
                } => Some(problem.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_container_error_code_in_a_200_body_never_echoes_the_authorization_token() {
    let mut sim = Sim::new(container_config(
        EKS_URI,
        ContainerAuth::Token(credstate::Secret::new(ENV_TOKEN)),
    ));
    let echo =
        format!(r#"{{"Code":"Denied {ENV_TOKEN}","Message":"token {ENV_TOKEN} is not valid"}}"#);
    let cause = expect_rejected(sim.demand_until_settled(&mut always(ok(&echo))));
    let texts = not_success_in_events(&sim);
    assert!(!texts.is_empty(), "the Code is surfaced");
    for text in texts
        .iter()
        .cloned()
        .chain([cause.to_string(), format!("{cause:?}")])
    {
        assert!(!text.contains(ENV_TOKEN), "the token leaked: {text}");
    }
    for (_, event) in &sim.events {
        assert!(!format!("{event} {event:?}").contains(ENV_TOKEN));
    }
}

#[test]
fn an_imds_error_message_is_quoted_on_one_short_line_without_the_session_token() {
    let mut sim = Sim::default_config();
    let message = format!(
        "line one\r\nFAKE LOG LINE token={TOKEN} {}",
        "x".repeat(10_000)
    );
    let body =
        serde_json::json!({"Code": "AssumeRoleUnauthorizedAccess", "Message": message}).to_string();
    let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
    let mut imds = |request: &Request| match request.path() {
        TOKEN_PATH | EXTENDED_LIST => healthy(request),
        _ => ok(&body),
    };
    let _ = sim.demand_until_settled(&mut imds);
    let texts = not_success_in_events(&sim);
    assert!(!texts.is_empty());
    for text in texts {
        assert!(text.contains("AssumeRoleUnauthorizedAccess"), "{text}");
        assert!(!text.contains(TOKEN), "the IMDS token leaked");
        assert!(!text.contains(['\r', '\n']), "more than one line");
        assert!(text.len() < 1_000, "{} bytes", text.len());
    }
}

#[test]
fn expired_credentials_older_than_the_ones_served_under_static_stability_never_replace_them() {
    let mut sim = warm(Config::default());
    let expiration = T0 + 6 * HOUR;
    sim.run_for(6 * HOUR + 2 * MINUTE, &mut always(status(500)));
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
    // A stale cache in front of IMDS hands out credentials that expired hours
    // before the ones held.
    let mut stale = healthy("ASIA0", expiration - 3 * HOUR);
    sim.run_for(MINUTE, &mut stale);
    let served = expect_ready(sim.demand());
    assert_eq!(served.access_key_id, "ASIA1");
    assert_eq!(served.expiration, expiration);
}

#[test]
fn an_echoed_token_ttl_longer_than_asked_for_is_capped_at_the_ttl_asked_for() {
    let config = config_with(|c| c.token_ttl = 10 * MINUTE);
    for echoed in ["999999999999", "18446744073709551615"] {
        let mut sim = Sim::new(config.clone());
        let body = credentials_json("ASIA1", T0 + 6 * HOUR);
        let mut imds = |request: &Request| match request.path() {
            TOKEN_PATH => Reply::Respond(
                Response::new(200, TOKEN)
                    .with_header("X-aws-ec2-metadata-token-ttl-seconds", echoed),
            ),
            EXTENDED_LIST => ok(ROLE),
            _ => ok(&body),
        };
        expect_ready(sim.demand_until_settled(&mut imds));
        let ttls: Vec<_> = sim
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::TokenAcquired { ttl } => Some(*ttl),
                _ => None,
            })
            .collect();
        assert_eq!(ttls, [10 * MINUTE], "echoed {echoed}");
        // Fifteen minutes later the token is past the TTL asked for: renewed.
        sim.clear_log();
        sim.jump_to(T0 + 15 * MINUTE);
        sim.machine.handle_timeout(sim.now);
        sim.jump_to(T0 + 6 * HOUR - 30 * SECOND);
        let _ = sim.demand_until_settled(&mut imds);
        assert_eq!(
            sim.paths_sent().first().map(String::as_str),
            Some(TOKEN_PATH)
        );
    }
}

#[test]
fn a_token_ttl_header_that_is_missing_garbage_or_zero_means_the_ttl_asked_for() {
    for echoed in [None, Some("soon"), Some("0"), Some("-5"), Some("")] {
        let mut sim = Sim::default_config();
        let body = credentials_json("ASIA1", T0 + 6 * HOUR);
        let mut imds = |request: &Request| match request.path() {
            TOKEN_PATH => {
                let response = Response::new(200, TOKEN);
                Reply::Respond(match echoed {
                    Some(ttl) => response.with_header("X-aws-ec2-metadata-token-ttl-seconds", ttl),
                    None => response,
                })
            }
            EXTENDED_LIST => ok(ROLE),
            _ => ok(&body),
        };
        expect_ready(sim.demand_until_settled(&mut imds));
        assert!(sim.events.iter().any(|(_, e)| matches!(
            e,
            Event::TokenAcquired { ttl } if *ttl == 6 * HOUR
        )));
    }
}

#[test]
fn a_role_list_with_several_roles_and_crlf_line_endings_uses_the_first() {
    let mut sim = Sim::default_config();
    let body = credentials_json("ASIA1", T0 + 6 * HOUR);
    let mut imds = |request: &Request| match request.path() {
        TOKEN_PATH => ok(TOKEN),
        EXTENDED_LIST => ok("\r\nweb\r\nbatch\r\n"),
        "/latest/meta-data/iam/security-credentials-extended/web" => ok(&body),
        other => panic!("unexpected request to {other}"),
    };
    expect_ready(sim.demand_until_settled(&mut imds));
}

#[test]
fn a_response_from_a_machine_is_a_misuse_error_on_another() {
    // Adapters seed each machine differently (time and process id).
    let mut first = Machine::new(Config::default(), 1).unwrap();
    let mut second = Machine::new(Config::default(), 2).unwrap();
    let _ = first.demand(T0);
    let _ = second.demand(T0);
    let sent = |machine: &mut Machine| loop {
        match machine.poll(T0) {
            Output::Send(request) => return request,
            Output::Event(_) => {}
            other => panic!("{other:?}"),
        }
    };
    let from_first = sent(&mut first);
    let _from_second = sent(&mut second);
    assert_eq!(
        second.handle_response(from_first.id, Response::new(200, TOKEN), T0),
        Err(MisuseError::UnknownRequest(from_first.id))
    );
}

/// Drive a machine whose every request fails at once, on a frozen clock,
/// and count the requests it issues: a fetch storm shows as many.
fn requests_at_one_instant(config: Config) -> usize {
    let mut machine = Machine::new(config, 9).unwrap();
    let mut sent = 0;
    for _ in 0..100 {
        let _ = machine.demand(T0 + HOUR);
        for _ in 0..100 {
            match machine.poll(T0 + HOUR) {
                Output::Send(request) => {
                    sent += 1;
                    machine
                        .handle_failure(request.id, TransportFailure::ConnectRefused, T0 + HOUR)
                        .unwrap();
                }
                Output::WakeAt(_) | Output::Idle => break,
                _ => {}
            }
        }
    }
    sent
}

#[test]
fn a_zero_min_fetch_interval_is_refused_by_name() {
    let config = config_with(|c| {
        c.min_fetch_interval = Duration::ZERO;
        c.backoff_cap_urgent = Duration::ZERO;
    });
    assert_eq!(config.validate().unwrap_err().field, "min_fetch_interval");
}

#[test]
fn edge_configurations_are_refused_by_name_or_never_storm() {
    let edges: Vec<(&str, Config)> = vec![
        ("attempts = 1", config_with(|c| c.attempts = 1)),
        (
            "retry_pause_max = 0",
            config_with(|c| c.retry_pause_max = Duration::ZERO),
        ),
        (
            "extension 0..0",
            config_with(|c| {
                c.extension_min = Duration::ZERO;
                c.extension_max = Duration::ZERO;
            }),
        ),
        (
            "max_degraded = 0",
            config_with(|c| c.max_degraded = Duration::ZERO),
        ),
        (
            "backoff caps = 0",
            config_with(|c| {
                c.backoff_cap = Duration::ZERO;
                c.backoff_cap_urgent = Duration::ZERO;
            }),
        ),
        (
            "failure memory = 0",
            config_with(|c| {
                c.failure_memory_min = Duration::ZERO;
                c.failure_memory_max = Duration::ZERO;
            }),
        ),
        (
            "mandatory window of a day",
            config_with(|c| c.mandatory_window = 24 * HOUR),
        ),
        ("strict", Config::strict()),
    ];
    for (name, config) in edges {
        if config.validate().is_err() {
            continue;
        }
        let sent = requests_at_one_instant(config);
        // Three attempts of one fetch at most: the rest waits for the clock.
        assert!(sent <= 3, "{name}: {sent} requests at one instant");
    }
}

#[test]
fn a_mandatory_window_longer_than_the_shortest_advisory_window_is_refused_by_name() {
    let config = config_with(|c| c.mandatory_window = 10 * MINUTE);
    assert_eq!(config.validate().unwrap_err().field, "mandatory_window");
}

#[test]
fn edge_configurations_still_serve_and_extend_sensibly() {
    let config = config_with(|c| {
        c.attempts = 1;
        c.retry_pause_max = Duration::ZERO;
        c.extension_min = Duration::ZERO;
        c.extension_max = Duration::ZERO;
        c.max_degraded = Duration::ZERO;
        c.stability = Stability::Static;
    });
    let mut sim = warm(config);
    sim.run_for(6 * HOUR + MINUTE, &mut always(status(500)));
    // No extension is possible: expired credentials are rejected, not served.
    let cause = expect_rejected(sim.demand());
    assert!(
        matches!(cause, SourceError::CredentialsExpired { .. }),
        "{cause}"
    );
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ServingExpired { .. })),
        0
    );
}

#[test]
fn a_timeout_reported_earlier_than_a_previous_one_changes_nothing() {
    let mut sim = warm(Config::default());
    sim.clear_log();
    let deadline = sim.machine.next_deadline().unwrap();
    sim.jump_to(T0 + HOUR);
    sim.machine.handle_timeout(sim.now);
    sim.jump_to(T0 + HOUR - Duration::from_millis(500));
    sim.machine.handle_timeout(sim.now);
    sim.collect();
    assert_eq!(sim.machine.next_deadline(), Some(deadline));
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}

#[test]
fn a_demand_storm_after_unchanged_credentials_at_the_edge_of_expiry_is_never_rejected() {
    let mut sim = warm(Config::default());
    let expiration = T0 + 6 * HOUR;
    // IMDS keeps the same credentials until after they stop being usable.
    let mut same = healthy("ASIA1", expiration);
    sim.jump_to(expiration - 12 * SECOND);
    expect_ready(sim.demand_until_settled(&mut same));
    let mut now = sim.now;
    while now < expiration + 5 * SECOND {
        now = now + Duration::from_millis(100);
        sim.jump_to(now);
        sim.machine.handle_timeout(now);
        sim.answer(&mut same);
        for _ in 0..10 {
            if let Demand::Rejected(cause) = sim.demand() {
                panic!("rejected at {now} although IMDS answers: {cause}");
            }
            sim.answer(&mut same);
        }
    }
}
