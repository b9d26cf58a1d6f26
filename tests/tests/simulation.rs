//! Scenario-level behaviour of credstate against the simulated IMDS, side by
//! side with the Java v1 seed system, on simulated time.

use credstate::{Event, FetchReason};
use credstate_tests::scenario::{Scenario, DEFAULT_SCENARIO};
use credstate_tests::sim::harness::planned_calls;
use credstate_tests::sim::java_v1::JavaEvent;
use credstate_tests::sim::{digest, simulate, CallOutcome, Entry, PolicyKind, Run};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

fn scenario(json: &str) -> Scenario {
    Scenario::from_json(json).unwrap_or_else(|err| panic!("{err}\n{json}"))
}

fn run(scenario: &Scenario, policy: PolicyKind) -> Run {
    let run = simulate(scenario, policy).unwrap();
    assert!(!run.truncated, "{policy} hit the harness cap");
    run
}

fn new_credentials_at(run: &Run) -> Vec<u64> {
    run.credstate_events()
        .filter(|(_, event)| {
            matches!(
                event,
                Event::CredentialsReceived {
                    unchanged: false,
                    ..
                }
            )
        })
        .map(|(entry, _)| entry.t_ms)
        .collect()
}

fn fetch_starts(run: &Run) -> Vec<(u64, FetchReason)> {
    run.credstate_events()
        .filter_map(|(entry, event)| match event {
            Event::FetchStarted { reason } => Some((entry.t_ms, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn credstate_bridges_an_outage_across_expiry_that_breaks_java_v1() {
    let scenario = scenario(DEFAULT_SCENARIO);
    let credstate = run(&scenario, PolicyKind::Default);
    let java = run(&scenario, PolicyKind::JavaV1);

    // Java v1 empties its cache on the first failed refresh inside its
    // 15-minute window and throws until IMDS is back.
    assert!(java.metrics.rejected >= 15, "{:?}", java.metrics);
    assert!(java.metrics.max_gap_ms >= 15 * MINUTE, "{:?}", java.metrics);
    // credstate keeps serving: the still-valid credentials, then the expired
    // ones under static stability, each such call announced by an event.
    assert!(
        credstate.metrics.served_expired > 0,
        "{:?}",
        credstate.metrics
    );
    assert!(credstate.metrics.rejected * 4 < java.metrics.rejected);
    assert!(credstate.metrics.max_gap_ms * 4 < java.metrics.max_gap_ms);
    assert!(credstate.metrics.served > java.metrics.served);
    assert_eq!(credstate.metrics.unanswered, 0);
    for call in &credstate.calls {
        if let CallOutcome::Served {
            expired: true,
            marked_expired,
            ..
        } = call.outcome
        {
            assert!(marked_expired, "{call:?} was not announced");
        }
    }
}

#[test]
fn credstate_serves_every_call_of_the_default_scenario() {
    let scenario = scenario(DEFAULT_SCENARIO);
    let credstate = run(&scenario, PolicyKind::Default);
    assert_eq!(credstate.metrics.rejected, 0, "{:?}", credstate.metrics);
    assert_eq!(credstate.metrics.max_gap_ms, 0);
}

#[test]
fn strict_mode_rejects_where_static_stability_serves_expired_credentials() {
    let scenario = scenario(DEFAULT_SCENARIO);
    let static_run = run(&scenario, PolicyKind::Default);
    let strict = run(&scenario, PolicyKind::Strict);
    assert!(static_run.metrics.served_expired > 0);
    assert_eq!(strict.metrics.served_expired, 0);
    assert!(strict.metrics.rejected > static_run.metrics.rejected);
    assert_eq!(strict.entries_named("serving_expired").count(), 0);
    assert_eq!(strict.entries_named("static_stability_extended").count(), 0);
}

#[test]
fn late_rotation_costs_a_bounded_number_of_fetches_per_lifetime() {
    let scenario = scenario(
        r#"{"duration": "3d", "seed": 21, "callers": [{"every": "1m"}],
            "imds": {"credential_lifetime": "6h", "rotation": "late"}}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    let rotations = new_credentials_at(&credstate);
    assert!(rotations.len() >= 11, "{rotations:?}");
    let starts = fetch_starts(&credstate);
    for pair in rotations.windows(2) {
        let fetches = starts
            .iter()
            .filter(|(t, _)| *t > pair[0] && *t <= pair[1])
            .count();
        assert!(
            (2..=24).contains(&fetches),
            "{fetches} fetch sequences between {} and {}",
            pair[0],
            pair[1]
        );
    }
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
    assert_eq!(credstate.metrics.served, 3 * 24 * 60);
}

#[test]
fn token_blip_falls_back_to_v1_and_recovers() {
    let scenario = scenario(
        r#"{"duration": "3h", "seed": 4, "callers": [{"every": "1m"}],
            "imds": {"credential_lifetime": "1h", "rotation": "fresh"},
            "faults": [{"from": "40m", "to": "1h40m", "kind": "token_timeout"}],
            "config": {"token_ttl": "5m"}}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    let fallbacks: Vec<u64> = credstate
        .entries_named("fell_back_to_v1")
        .map(|entry| entry.t_ms)
        .collect();
    assert!(!fallbacks.is_empty(), "no fetch met the blip");
    let blip = 40 * MINUTE..HOUR + 40 * MINUTE;
    assert!(fallbacks.iter().all(|t| blip.contains(t)), "{fallbacks:?}");
    let tokens_after = credstate
        .entries_named("token_acquired")
        .filter(|entry| entry.t_ms >= blip.end)
        .count();
    assert!(tokens_after > 0, "IMDSv2 was not used again after the blip");
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
}

#[test]
fn clock_jump_forward_refreshes_immediately() {
    let scenario = scenario(
        r#"{"duration": "4h", "seed": 8, "callers": [{"every": "1m"}],
            "imds": {"credential_lifetime": "6h", "rotation": "fresh"},
            "faults": [{"from": "1h30m", "kind": "clock_jump", "by": "+5h"}]}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    let jump = 90 * MINUTE;
    let first_after = fetch_starts(&credstate)
        .into_iter()
        .find(|(t, _)| *t >= jump)
        .expect("a fetch after the jump");
    // The first call after the jump finds the credentials expired by the
    // host's clock and a refresh starts right then (the overdue advisory
    // timer may be what names it).
    assert_eq!(first_after.0, jump, "{first_after:?}");
    let call = credstate
        .calls
        .iter()
        .find(|call| call.asked_ms == jump)
        .unwrap();
    assert!(
        matches!(call.outcome, CallOutcome::Served { expired: false, .. }),
        "{call:?}"
    );
    assert!(call.answered_ms.unwrap() - jump < 1_000);
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
}

#[test]
fn clock_jump_backward_does_not_freeze_refresh() {
    let scenario = scenario(
        r#"{"duration": "6h", "seed": 12, "callers": [{"every": "1m"}],
            "imds": {"credential_lifetime": "1h", "rotation": "late"},
            "faults": [{"from": "30m", "kind": "clock_jump", "by": "-2h"}]}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    assert_eq!(credstate.entries_named("clock_jumped_backwards").count(), 1);
    let jump = 30 * MINUTE;
    // The jump triggers a re-evaluation at once, and rotation carries on.
    assert!(fetch_starts(&credstate)
        .iter()
        .any(|(t, reason)| *t == jump && *reason == FetchReason::ClockJump));
    let rotations_after = new_credentials_at(&credstate)
        .into_iter()
        .filter(|t| *t > jump)
        .count();
    // The host now believes each 1 h credential lives 3 h, so it rotates
    // about every 2 h of true time — but it keeps rotating.
    assert!(
        rotations_after >= 3,
        "{rotations_after} rotations after the jump"
    );
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
}

#[test]
fn v1_disabled_instance_with_token_timeout_reports_hop_limit() {
    let scenario = scenario(
        r#"{"duration": "20m", "seed": 3, "callers": [{"every": "1m"}],
            "imds": {"v1_disabled": true},
            "faults": [{"from": "0s", "kind": "token_timeout"}]}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    assert_eq!(credstate.metrics.served, 0);
    assert_eq!(credstate.metrics.rejected, 20);
    for (_, event) in credstate.credstate_events() {
        if let Event::Rejected { cause } = event {
            assert_eq!(cause.name(), "LikelyHopLimit", "{cause}");
            assert!(cause.to_string().contains("hop limit"), "{cause}");
        }
    }
    // Each call learns it within one request timeout, not after retries.
    for call in &credstate.calls {
        assert!(
            call.answered_ms.unwrap() - call.asked_ms <= 1_100,
            "{call:?}"
        );
    }
    // Java v1 waits out its 5 s read timeout on every call and says only
    // that the token could not be had.
    let java = run(&scenario, PolicyKind::JavaV1);
    assert_eq!(java.metrics.rejected, 20);
    for call in &java.calls {
        assert!(
            call.answered_ms.unwrap() - call.asked_ms >= 5_000,
            "{call:?}"
        );
        assert!(
            matches!(&call.outcome, CallOutcome::Rejected { cause } if cause.starts_with("Fail to retrieve token")),
            "{call:?}"
        );
    }
}

#[test]
fn a_burst_of_cold_callers_costs_one_fetch_sequence() {
    let scenario = scenario(
        r#"{"duration": "10m", "seed": 2, "callers": [{"burst": 1000, "at": "0s"}],
            "imds": {"latency": "20ms"}}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    assert_eq!(fetch_starts(&credstate).len(), 1);
    // Token, role list, credentials.
    assert_eq!(credstate.metrics.requests, 3);
    assert_eq!(credstate.metrics.served, 1000);
    assert!(credstate
        .calls
        .iter()
        .all(|call| call.answered_ms == Some(60)));
}

#[test]
fn java_v1_async_throws_away_valid_credentials_on_a_transient_error() {
    let scenario = scenario(
        r#"{"duration": "7h", "seed": 6, "callers": [{"every": "1m", "at": "30s"}],
            "imds": {"credential_lifetime": "6h", "rotation": "late"},
            "faults": [{"from": "5h46m", "to": "5h48m", "kind": "http_500"}]}"#,
    );
    let java_async = run(&scenario, PolicyKind::JavaV1Async);
    let credstate = run(&scenario, PolicyKind::Default);
    // The async thread's failed refresh empties the cache although the
    // credentials were good for another 12 minutes; the next caller then
    // fetches on its own path and fails too.
    assert!(java_async.metrics.rejected > 0, "{:?}", java_async.metrics);
    assert!(java_async.java_events().any(|(entry, event)| {
        matches!(
            event,
            JavaEvent::FetchStarted {
                by_async_thread: true,
                ..
            }
        ) && (5 * HOUR + 46 * MINUTE..5 * HOUR + 48 * MINUTE).contains(&entry.t_ms)
    }));
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
}

#[test]
fn three_simulated_days_with_faults_complete_with_every_call_answered() {
    let scenario = scenario(
        r#"{"duration": "3d", "seed": 99, "callers": [{"every": "1m"}, {"burst": 200, "at": "30h"}],
            "imds": {"credential_lifetime": "6h"},
            "faults": [
              {"from": "5h50m", "to": "6h20m", "kind": "http_500"},
              {"from": "20h", "to": "22h", "kind": "http_429", "percent": 60},
              {"from": "29h", "to": "31h", "kind": "timeout", "percent": 30},
              {"from": "40h", "kind": "clock_jump", "by": "+20m"},
              {"from": "50h", "kind": "clock_jump", "by": "-1h"},
              {"from": "60h", "to": "60h40m", "kind": "expired_credentials"}
            ]}"#,
    );
    for policy in PolicyKind::ALL {
        let run = run(&scenario, policy);
        let metrics = run.metrics;
        assert_eq!(run.calls.len(), 3 * 24 * 60 + 200);
        assert_eq!(
            metrics.served + metrics.rejected + metrics.unanswered,
            run.calls.len() as u64
        );
        assert_eq!(metrics.requests, run.imds.requests);
        if policy.is_credstate() {
            assert_eq!(metrics.unanswered, 0, "{policy}");
            assert!(metrics.served > 4000, "{policy}: {metrics:?}");
        }
    }
}

#[test]
fn runs_are_reproducible_from_the_seed() {
    let scenario = scenario(DEFAULT_SCENARIO);
    let first = run(&scenario, PolicyKind::Default);
    let again = run(&scenario, PolicyKind::Default);
    assert_eq!(first.timeline, again.timeline);
    assert_eq!(first.metrics, again.metrics);
    let mut reseeded = scenario.clone();
    reseeded.seed += 1;
    let other = run(&reseeded, PolicyKind::Default);
    assert_ne!(first.timeline, other.timeline, "the seed drives the jitter");
}

#[test]
fn no_secret_reaches_the_timeline() {
    let scenario = scenario(
        r#"{"duration": "8h", "seed": 5, "callers": [{"every": "5m"}],
            "imds": {"credential_lifetime": "1h", "rotation": "fresh"},
            "faults": [{"from": "2h", "to": "2h20m", "kind": "bad_json"},
                       {"from": "3h", "to": "3h20m", "kind": "expired_credentials"}]}"#,
    );
    for policy in PolicyKind::ALL {
        let run = run(&scenario, policy);
        for entry in &run.timeline {
            let printed = format!("{entry} {entry:?} {}", entry.to_json());
            for secret in [
                "sim-secret-access-key",
                "sim-session-token",
                "sim-imds-token",
            ] {
                assert!(!printed.contains(secret), "{policy}: {printed}");
            }
        }
    }
}

#[test]
fn the_digest_condenses_half_a_day_into_a_screenful() {
    let scenario = scenario(DEFAULT_SCENARIO);
    for policy in [PolicyKind::Default, PolicyKind::JavaV1] {
        let run = run(&scenario, policy);
        let lines = digest(&run.timeline);
        assert!(
            (5..=40).contains(&lines.len()),
            "{policy}: {} lines",
            lines.len()
        );
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert!(text.contains("fault http_500 begins"), "{text}");
        assert!(text.contains("rejected") || policy.is_credstate(), "{text}");
        // Times run forward, and every line stands for at least one entry.
        assert!(lines.iter().all(|l| l.count >= 1 && l.from_ms <= l.to_ms));
    }
    let credstate = run(&scenario, PolicyKind::Default);
    let text: String = digest(&credstate.timeline)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.contains("static stability"), "{text}");
}

#[test]
fn every_timeline_entry_is_a_json_object_with_name_and_message() {
    let scenario = scenario(DEFAULT_SCENARIO);
    let run = run(&scenario, PolicyKind::Default);
    for entry in &run.timeline {
        let json = entry.to_json();
        assert_eq!(json["event"], entry.entry.name());
        assert_eq!(json["message"], entry.entry.to_string());
        assert_eq!(json["t_ms"], entry.t_ms);
    }
    let cause = run
        .timeline
        .iter()
        .find(|entry| matches!(entry.entry, Entry::Credstate(Event::FetchFailed { .. })))
        .map(|entry| entry.to_json()["cause"].clone());
    assert_eq!(cause, Some(serde_json::Value::from("ServerError")));
    for entry in &run.timeline {
        let line: serde_json::Value =
            serde_json::from_str(&entry.to_json_line(Some("default"))).unwrap();
        let mut expected = entry.to_json();
        expected["policy"] = serde_json::Value::from("default");
        assert_eq!(line, expected);
    }
    let line: serde_json::Value = serde_json::from_str(&run.summary_json_line()).unwrap();
    assert_eq!(line, run.summary_json());
    let summary = run.summary_json();
    assert_eq!(summary["summary"]["policy"], "default");
    assert_eq!(summary["summary"]["served"], run.metrics.served);
}

#[test]
fn an_invalid_credstate_config_in_a_scenario_is_refused_by_name() {
    let err = Scenario::from_json(r#"{"duration": "1h", "config": {"backoff_initial": "0s"}}"#)
        .unwrap_err();
    assert_eq!(err.field, "config.backoff_initial");
}

#[test]
fn a_scenario_with_more_calls_than_the_harness_can_hold_is_refused() {
    let flood = scenario(r#"{"duration": "3d", "callers": [{"every": "1ms"}]}"#);
    assert_eq!(planned_calls(&flood), 259_200_000);
    let err = simulate(&flood, PolicyKind::Default).unwrap_err();
    assert_eq!(err.field, "callers");
    let every_minute = scenario(
        r#"{"duration": "1h", "callers": [{"every": "1m", "at": "30s"}, {"burst": 5, "at": "2h"}]}"#,
    );
    assert_eq!(planned_calls(&every_minute), 60);
    assert_eq!(run(&every_minute, PolicyKind::Default).calls.len(), 60);
}

// ----- container source (ECS, EKS Pod Identity) --------------------------

const EKS_TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";

/// An EKS Pod Identity scenario: the agent at 169.254.170.23 and a token file.
fn eks_scenario(body: &str) -> Scenario {
    scenario(&format!(
        r#"{{{body},
            "config": {{"container": {{"uri": "http://169.254.170.23/v1/credentials",
                       "auth": {{"token_file": "{EKS_TOKEN_FILE}"}}}}}}}}"#
    ))
}

/// An ECS scenario: the relative-URI form, no authorization.
fn ecs_scenario(body: &str) -> Scenario {
    scenario(&format!(
        r#"{{{body},
            "config": {{"container": {{"uri": "http://169.254.170.2/v2/credentials/3f1c9a52"}}}}}}"#
    ))
}

fn rejected_cause_names(run: &Run) -> Vec<&'static str> {
    run.credstate_events()
        .filter_map(|(_, event)| match event {
            Event::Rejected { cause } => Some(cause.name()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_container_source_is_served_through_an_outage_across_expiry_by_static_stability() {
    let scenario = eks_scenario(
        r#""duration": "3h", "seed": 17, "callers": [{"every": "20s"}],
           "container": {"credential_lifetime": "1h", "rotation": "late", "token_rotation": "15m"},
           "faults": [{"from": "50m", "to": "1h25m", "kind": "http_503"}]"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    let agent = credstate.container.expect("a container run");
    // Every request went to the container agent, none to IMDS.
    assert_eq!(credstate.metrics.requests, agent.requests);
    assert_eq!(credstate.imds.requests, 0);
    assert!(agent.faulted > 0, "{agent:?}");
    // The 1 h credentials expired 10 min into the outage; static stability
    // kept serving them, each such call announced, and nothing was refused.
    assert_eq!(credstate.metrics.rejected, 0, "{:?}", credstate.metrics);
    assert!(
        credstate.metrics.served_expired > 0,
        "{:?}",
        credstate.metrics
    );
    assert_eq!(credstate.metrics.unanswered, 0);
    for call in &credstate.calls {
        if let CallOutcome::Served {
            expired: true,
            marked_expired,
            ..
        } = call.outcome
        {
            assert!(marked_expired, "{call:?} was not announced");
        }
    }
    // Expired credentials are retried at least every 30 s (the urgent
    // backoff cap), so fresh ones follow the outage's end within that.
    let soon_after = 85 * MINUTE..85 * MINUTE + 35_000;
    assert!(
        new_credentials_at(&credstate)
            .iter()
            .any(|t| soon_after.contains(t)),
        "no fresh credentials soon after the outage's end: {:?}",
        new_credentials_at(&credstate)
    );
    // Strict mode refuses the expired credentials instead.
    let strict = run(&scenario, PolicyKind::Strict);
    assert!(strict.metrics.rejected > 0, "{:?}", strict.metrics);
    assert_eq!(strict.metrics.served_expired, 0);
}

#[test]
fn a_rotating_token_file_is_read_afresh_for_every_fetch() {
    let scenario = eks_scenario(
        r#""duration": "4h", "seed": 29, "callers": [{"every": "30s"}, {"burst": 50, "at": "2h"}],
           "container": {"credential_lifetime": "15m", "rotation": "fresh",
                         "token_rotation": "10m", "token_grace": "0s"}"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    let agent = credstate.container.expect("a container run");
    let fetches = fetch_starts(&credstate);
    // The agent accepts only the file's current token (no grace): had any
    // fetch sent a token read before a rotation, it would have been refused.
    assert!(agent.token_rotations >= 20, "{agent:?}");
    assert_eq!(agent.auth_refusals(), 0, "{agent:?}");
    assert_eq!(agent.stale_token, 0);
    // One read per fetch sequence, in at least as many token generations as
    // the run had rotations.
    assert_eq!(agent.token_file_reads, fetches.len() as u64);
    let generations: std::collections::BTreeSet<u64> =
        fetches.iter().map(|(t, _)| t / (10 * MINUTE)).collect();
    assert!(generations.len() >= 20, "{generations:?}");
    assert_eq!(credstate.metrics.rejected, 0);
    assert_eq!(credstate.metrics.served_expired, 0);
    assert_eq!(credstate.metrics.served, credstate.calls.len() as u64);
}

#[test]
fn a_missing_token_file_gives_the_typed_error_and_never_costs_held_credentials() {
    let scenario = eks_scenario(
        r#""duration": "2h", "seed": 41, "callers": [{"every": "15s"}],
           "container": {"credential_lifetime": "1h", "rotation": "late", "token_rotation": "20m"},
           "faults": [{"from": "0s", "to": "2m", "kind": "token_file_missing"},
                      {"from": "40m", "to": "1h20m", "kind": "token_file_missing"}]"#,
    );
    let credstate = run(&scenario, PolicyKind::Default);
    // Cold, with no file: callers learn why at once, by its typed cause.
    let causes = rejected_cause_names(&credstate);
    assert!(!causes.is_empty());
    assert!(
        causes.iter().all(|name| *name == "TokenFileUnreadable"),
        "{causes:?}"
    );
    for call in &credstate.calls {
        match &call.outcome {
            CallOutcome::Rejected { cause } => {
                assert!(call.asked_ms < 2 * MINUTE + 10_000, "{call:?}");
                assert!(call.answered_ms == Some(call.asked_ms), "{call:?}");
                assert!(
                    cause.contains(EKS_TOKEN_FILE) && cause.contains("no such file"),
                    "{cause}"
                );
            }
            // Later, the refreshes that cannot read the file fail, but the
            // credentials held keep being served: valid ones until they
            // expire, then under static stability, announced.
            CallOutcome::Served {
                expired,
                marked_expired,
                ..
            } => assert!(!expired || *marked_expired, "{call:?}"),
            CallOutcome::Unanswered => panic!("{call:?} unanswered"),
        }
    }
    let unreadable_while_held = credstate
        .credstate_events()
        .filter(|(entry, event)| {
            entry.t_ms >= 40 * MINUTE
                && matches!(event, Event::FetchFailed { cause, .. } if cause.name() == "TokenFileUnreadable")
        })
        .count();
    assert!(unreadable_while_held > 0, "no refresh met the missing file");
    assert!(credstate.metrics.served_expired > 0);
    let agent = credstate.container.unwrap();
    assert!(agent.faulted > 0);
    assert_eq!(agent.auth_refusals(), 0);
}

#[test]
fn java_v1_runs_an_ecs_task_role_but_refuses_an_eks_token_file() {
    let ecs = ecs_scenario(
        r#""duration": "7h", "seed": 5, "callers": [{"every": "1m"}],
           "container": {"credential_lifetime": "6h", "rotation": "late"},
           "faults": [{"from": "5h50m", "to": "6h10m", "kind": "http_500"}]"#,
    );
    let java = run(&ecs, PolicyKind::JavaV1);
    let credstate = run(&ecs, PolicyKind::Default);
    assert_eq!(java.metrics.requests, java.container.unwrap().requests);
    // Within its 15-minute window each caller refetches, retries five times
    // at once and throws; credstate bridges the outage.
    assert!(java.metrics.rejected >= 15, "{:?}", java.metrics);
    assert!(java.entries_named("attempt_failed").count() >= 5 * 15);
    assert_eq!(credstate.metrics.rejected, 0, "{:?}", credstate.metrics);
    // Six requests (one and five retries) per failed fetch.
    let failed_fetches = java.entries_named("fetch_failed").count() as u64;
    assert!(
        java.metrics.requests >= 6 * failed_fetches,
        "{:?}",
        java.metrics
    );

    let eks = eks_scenario(r#""duration": "1h", "callers": [{"every": "1m"}]"#);
    for policy in [PolicyKind::JavaV1, PolicyKind::JavaV1Async] {
        assert!(policy
            .cannot_run(&eks.credstate_config().unwrap())
            .is_some());
        let err = simulate(&eks, policy).unwrap_err();
        assert_eq!(err.field, "config.container");
        assert!(err.problem.contains(policy.name()), "{err}");
        assert!(err.problem.contains("token file"), "{err}");
    }
    let err = simulate(&ecs, PolicyKind::JavaV1Async).unwrap_err();
    assert!(err.problem.contains("no async refresh"), "{err}");
}

#[test]
fn no_container_secret_reaches_the_timeline() {
    let scenarios = [
        eks_scenario(
            r#""duration": "4h", "seed": 13, "callers": [{"every": "5m"}],
               "container": {"credential_lifetime": "1h", "rotation": "fresh", "token_rotation": "20m",
                             "token_grace": "0s"},
               "faults": [{"from": "1h", "to": "1h20m", "kind": "bad_json"},
                          {"from": "2h", "to": "2h20m", "kind": "expired_credentials"},
                          {"from": "3h", "to": "3h10m", "kind": "token_file_missing"}]"#,
        ),
        scenario(
            r#"{"duration": "2h", "seed": 13, "callers": [{"every": "5m"}],
                "faults": [{"from": "1h", "to": "1h20m", "kind": "http_500"}],
                "config": {"container": {"uri": "http://127.0.0.1:9911/creds",
                           "auth": {"token": "sim-configured-container-token"}}}}"#,
        ),
    ];
    for scenario in &scenarios {
        let config = scenario.credstate_config().unwrap();
        for policy in PolicyKind::ALL
            .into_iter()
            .filter(|policy| policy.cannot_run(&config).is_none())
        {
            let run = run(scenario, policy);
            assert!(run.metrics.served > 0, "{policy}: {:?}", run.metrics);
            for entry in &run.timeline {
                let printed = format!("{entry} {entry:?} {}", entry.to_json());
                for secret in [
                    "sim-secret-access-key",
                    "sim-session-token",
                    "sim-container-token",
                    "sim-configured-container-token",
                ] {
                    assert!(!printed.contains(secret), "{policy}: {printed}");
                }
            }
        }
    }
}
