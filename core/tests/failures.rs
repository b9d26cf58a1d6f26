//! What happens when the source fails: static stability (§4.6), strict mode,
//! remembered failures (§4.8) and caller misuse.

mod support;

use credstate::{
    BadResponse, Config, Demand, Event, MisuseError, Request, RequestId, Response, SourceError,
    Stability, TransportFailure,
};
use support::*;

fn imds_down() -> impl FnMut(&Request) -> Reply {
    always(status(500))
}

#[test]
fn serves_cached_credentials_while_imds_is_down() {
    let mut sim = warm(Config::default());
    sim.run_for(3 * HOUR, &mut imds_down());
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
}

#[test]
fn serves_expired_credentials_under_static_stability_when_refresh_fails() {
    let mut sim = warm(Config::default());
    let expiration = T0 + 6 * HOUR;
    sim.run_for(6 * HOUR + 10 * MINUTE, &mut imds_down());
    let credentials = expect_ready(sim.demand());
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(
        credentials.expiration, expiration,
        "the original expiration is reported"
    );
    let served_expired = sim.count_events(|e| matches!(e, Event::ServingExpired { .. }));
    assert_eq!(served_expired, 1);
    expect_ready(sim.demand());
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ServingExpired { .. })),
        2,
        "each time"
    );
}

#[test]
fn each_failed_refresh_extends_by_five_to_ten_minutes() {
    let mut sim = warm(Config::default());
    sim.run_for(6 * HOUR + 5 * MINUTE, &mut imds_down());
    let extensions: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::StaticStabilityExtended { until, .. } => Some(until.saturating_since(*t)),
            _ => None,
        })
        .collect();
    assert!(extensions.len() >= 5);
    assert!(
        extensions
            .iter()
            .all(|d| *d >= 5 * MINUTE && *d <= 10 * MINUTE),
        "{extensions:?}"
    );
}

#[test]
fn static_stability_ends_one_hour_after_the_original_expiration() {
    let mut sim = warm(Config::default());
    sim.run_for(7 * HOUR - MINUTE, &mut imds_down());
    expect_ready(sim.demand());
    sim.run_for(2 * MINUTE, &mut imds_down());
    let cause = expect_rejected(sim.demand());
    match &cause {
        SourceError::CredentialsExpired {
            expired_at,
            failing_for,
            last_cause,
        } => {
            assert_eq!(*expired_at, T0 + 6 * HOUR);
            assert!(*failing_for >= HOUR, "{failing_for:?}");
            assert_eq!(
                last_cause.as_deref().map(SourceError::name),
                Some("ServerError")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        cause.to_string().contains("has been failing for"),
        "{cause}"
    );
}

#[test]
fn static_stability_never_extends_credentials_that_have_not_expired() {
    let mut sim = warm(Config::default());
    sim.run_for(6 * HOUR - 11 * SECOND, &mut imds_down());
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::StaticStabilityExtended { .. })),
        0
    );
    for (at, event) in &sim.events {
        if let Event::StaticStabilityExtended { expired_at, .. } = event {
            assert!(*at >= *expired_at - 10 * SECOND);
        }
    }
}

#[test]
fn strict_mode_rejects_expired_credentials_instead_of_extending() {
    let mut sim = warm(Config::strict());
    sim.run_for(6 * HOUR + MINUTE, &mut imds_down());
    let cause = expect_rejected(sim.demand());
    assert_eq!(cause.name(), "CredentialsExpired");
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ServingExpired { .. })),
        0
    );
    assert_eq!(sim.machine.config().stability, Stability::Strict);
}

#[test]
fn credentials_that_arrive_already_expired_are_served_under_static_stability() {
    let mut sim = Sim::default_config();
    let mut stale = healthy("ASIA0", T0 - MINUTE);
    let credentials = expect_ready(sim.demand_until_settled(&mut stale));
    assert_eq!(credentials.access_key_id, "ASIA0");
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ServingExpired { .. })),
        1
    );
    // ... and the machine keeps trying for good ones.
    sim.run_for(MINUTE, &mut healthy("ASIA1", T0 + 6 * HOUR));
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
}

#[test]
fn credentials_that_arrive_expired_are_rejected_in_strict_mode() {
    let mut sim = Sim::new(Config::strict());
    let cause = expect_rejected(sim.demand_until_settled(&mut healthy("ASIA0", T0 - MINUTE)));
    assert!(matches!(
        cause,
        SourceError::BadResponse {
            problem: BadResponse::AlreadyExpired { .. },
            ..
        }
    ));
    assert!(
        cause.to_string().contains("role 'web'"),
        "the discovered role is named: {cause}"
    );
}

#[test]
fn expired_credentials_never_replace_valid_ones() {
    let mut sim = warm(Config::default());
    sim.run_for(
        6 * HOUR - 20 * MINUTE,
        &mut healthy("ASIA-STALE", T0 - HOUR),
    );
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
}

#[test]
fn a_fetch_brings_credentials_back_after_an_outage_within_the_backoff_cap() {
    let mut sim = warm(Config::default());
    sim.run_for(6 * HOUR + 20 * MINUTE, &mut imds_down());
    let outage_end = sim.now;
    let mut healthy = healthy("ASIA2", T0 + 12 * HOUR);
    sim.run_for(31 * SECOND, &mut healthy);
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
    let received = sim
        .events
        .iter()
        .rev()
        .find(|(_, e)| {
            matches!(
                e,
                Event::CredentialsReceived {
                    unchanged: false,
                    ..
                }
            )
        })
        .unwrap()
        .0;
    assert!(received.saturating_since(outage_end) <= 30 * SECOND);
}

#[test]
fn a_non_recoverable_failure_reaches_callers_at_once_and_is_remembered_for_one_to_five_seconds() {
    let mut sim = Sim::default_config();
    let mut no_role = |r: &Request| {
        if r.path() == TOKEN_PATH {
            ok(TOKEN)
        } else {
            status(404)
        }
    };
    assert_eq!(
        expect_rejected(sim.demand_until_settled(&mut no_role)),
        SourceError::NoRoleAttached
    );
    let failed_at = sim.now;
    sim.clear_log();
    // Callers asking again right away get the remembered cause without IO.
    for _ in 0..100 {
        assert_eq!(expect_rejected(sim.demand()), SourceError::NoRoleAttached);
    }
    assert!(sim.sent.is_empty());
    assert_eq!(
        sim.machine.credentials(sim.now),
        Err(credstate::Unavailable::Failed(SourceError::NoRoleAttached))
    );
    // Within five seconds the next demand tries again.
    sim.jump_to(failed_at + 5 * SECOND);
    assert!(matches!(sim.demand(), Demand::Pending));
}

#[test]
fn a_remembered_failure_is_forgotten_no_sooner_than_one_second() {
    for seed in 0..20 {
        let mut sim = Sim::default_config();
        sim.machine = credstate::Machine::new(Config::default(), seed).unwrap();
        let mut no_role = |r: &Request| {
            if r.path() == TOKEN_PATH {
                ok(TOKEN)
            } else {
                status(404)
            }
        };
        expect_rejected(sim.demand_until_settled(&mut no_role));
        sim.jump_to(sim.now + std::time::Duration::from_millis(999));
        expect_rejected(sim.demand());
    }
}

#[test]
fn a_disabled_source_rejects_without_any_request() {
    let mut sim = Sim::new(config_with(|c| c.disabled = true));
    assert_eq!(expect_rejected(sim.demand()), SourceError::Disabled);
    assert!(sim.sent.is_empty());
}

#[test]
fn the_machine_enforces_each_request_timeout_itself() {
    let mut sim = Sim::default_config();
    assert!(matches!(sim.demand(), Demand::Pending));
    let put = sim.outbox.remove(0);
    sim.jump_to(sim.now + SECOND);
    sim.machine.handle_timeout(sim.now);
    let next = sim.collect();
    assert_eq!(next.len(), 1, "fell back to v1 after the PUT timed out");
    // The transport's own late report of the abandoned PUT is ignored.
    sim.machine
        .handle_response(put.id, Response::new(200, TOKEN), sim.now)
        .unwrap();
    assert!(sim.collect().is_empty());
}

#[test]
fn a_response_for_a_request_never_issued_is_a_misuse_error() {
    let mut sim = Sim::default_config();
    let err = sim
        .machine
        .handle_response(RequestId::from_raw(7), Response::new(200, "x"), sim.now)
        .unwrap_err();
    assert_eq!(err, MisuseError::UnknownRequest(RequestId::from_raw(7)));
    let err = sim
        .machine
        .handle_failure(RequestId::from_raw(0), TransportFailure::Reset, sim.now)
        .unwrap_err();
    assert!(matches!(err, MisuseError::UnknownRequest(_)));
    assert!(
        matches!(sim.demand(), Demand::Pending),
        "the machine is unharmed"
    );
}

#[test]
fn a_duplicate_response_is_ignored() {
    let mut sim = Sim::default_config();
    assert!(matches!(sim.demand(), Demand::Pending));
    let put = sim.outbox.remove(0);
    let reply = Response::new(200, TOKEN);
    sim.machine
        .handle_response(put.id, reply.clone(), sim.now)
        .unwrap();
    sim.machine.handle_response(put.id, reply, sim.now).unwrap();
    assert_eq!(sim.collect().len(), 1, "one role-list request, not two");
}

#[test]
fn bad_input_never_costs_the_credentials_already_held() {
    let mut sim = warm(Config::default());
    let garbage: Vec<Reply> = vec![
        ok("not json"),
        Reply::Respond(Response::new(200, vec![0xff, 0xfe])),
        status(418),
        status(301),
        Reply::Fail(TransportFailure::Reset),
    ];
    for reply in garbage {
        sim.run_for(20 * MINUTE, &mut always(reply));
        assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
    }
}

#[test]
fn an_undrained_event_queue_is_bounded() {
    let mut sim = warm(Config::default());
    sim.run_for(6 * HOUR + 5 * MINUTE, &mut imds_down());
    for _ in 0..5000 {
        let _ = sim.machine.demand(sim.now);
    }
    sim.collect();
    assert!(sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::EventsDropped { .. })));
}

#[test]
fn credentials_expiring_while_a_retry_waits_in_backoff_are_served_under_static_stability() {
    let mut sim = warm(Config::default());
    // The last refresh fails 40 s before expiry; its 30 s-capped retry may
    // land after the credentials stop being usable.
    sim.jump_to(T0 + 6 * HOUR - 40 * SECOND);
    sim.machine.handle_timeout(sim.now);
    sim.answer(&mut imds_down());
    let mut now = sim.now;
    while now < T0 + 6 * HOUR + MINUTE {
        now = now + SECOND;
        sim.jump_to(now);
        if sim.machine.is_fetching() {
            continue;
        }
        let served = sim.machine.demand(now);
        assert!(matches!(served, Demand::Ready(_)), "at {now}: {served:?}");
        sim.answer(&mut imds_down());
    }
}

#[test]
fn a_long_backoff_is_cut_short_when_the_mandatory_window_opens() {
    let mut sim = warm(Config::default());
    let mandatory_at = T0 + 6 * HOUR - MINUTE;
    // Fail repeatedly from the advisory window so the backoff reaches its
    // five-minute cap just before the mandatory window.
    sim.run_for(6 * HOUR - 2 * MINUTE, &mut imds_down());
    let retry_at = sim.machine.next_deadline().unwrap();
    assert!(
        retry_at <= mandatory_at,
        "{retry_at} is after {mandatory_at}"
    );
}

#[test]
fn a_healthy_source_that_keeps_returning_the_same_credentials_causes_no_rejection_at_expiry() {
    let mut sim = warm(Config::default());
    // IMDS never rotates: the same credentials until and past their expiry.
    let mut same = healthy("ASIA1", T0 + 6 * HOUR);
    sim.run_for(6 * HOUR - 20 * SECOND, &mut same);
    let end = T0 + 6 * HOUR + 30 * SECOND;
    while sim.now < end {
        sim.now = sim.now + std::time::Duration::from_millis(100);
        let answer = sim.demand_until_settled(&mut same);
        assert!(
            !matches!(answer, Demand::Rejected(_)),
            "at {}: {answer:?}",
            sim.now
        );
    }
}
