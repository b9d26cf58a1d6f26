//! Properties of credstate under random fault schedules, caller patterns,
//! seeds and clock jumps, checked on the simulation harness.
//!
//! Each case is a scenario file; a failure prints it, so it can be replayed
//! with `credstate simulate --scenario`.

use std::time::Duration;

use credstate::{format_duration, Event};
use credstate_tests::scenario::Scenario;
use credstate_tests::sim::container::ContainerStats;
use credstate_tests::sim::{simulate, CallOutcome, PolicyKind, Run};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use proptest::test_runner::TestCaseError;

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
/// credstate's default: credentials are usable until `Expiration` minus this.
const EXPIRY_BUFFER_MS: i64 = 10_000;

fn text(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

fn caller() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(vec![15u64, 30, 60, 300]), 0u64..30)
            .prop_map(|(every, at)| format!(
                r#"{{"every": "{}", "at": "{}"}}"#,
                text(every * SECOND),
                text(at * MINUTE)
            )),
        1 => (1u32..40, 0u64..360)
            .prop_map(|(burst, at)| format!(
                r#"{{"burst": {burst}, "at": "{}"}}"#,
                text(at * MINUTE)
            )),
    ]
}

const OUTAGE_KINDS: [&str; 7] = [
    "http_500",
    "http_503",
    "http_429",
    "timeout",
    "refused",
    "bad_json",
    "expired_credentials",
];
const ALL_KINDS: [&str; 9] = [
    "http_500",
    "http_503",
    "http_429",
    "timeout",
    "refused",
    "bad_json",
    "expired_credentials",
    "token_unsupported",
    "token_timeout",
];

/// A fault over `[from, from + length)` minutes, maybe on a share of requests.
fn fault(kinds: &'static [&'static str], within_minutes: u64) -> impl Strategy<Value = String> {
    (
        prop::sample::select(kinds),
        0..within_minutes,
        1u64..45 * 60,
        prop::option::weighted(0.3, 20u8..100),
    )
        .prop_map(|(kind, from, length_secs, percent)| {
            let percent = percent.map_or(String::new(), |p| format!(r#", "percent": {p}"#));
            format!(
                r#"{{"from": "{}", "to": "{}", "kind": "{kind}"{percent}}}"#,
                text(from * MINUTE),
                text(from * MINUTE + length_secs * SECOND)
            )
        })
}

fn clock_jump(within_minutes: u64) -> impl Strategy<Value = String> {
    (0..within_minutes, any::<bool>(), 2u64..8 * 3600).prop_map(|(at, forward, secs)| {
        format!(
            r#"{{"from": "{}", "kind": "clock_jump", "by": "{}{}"}}"#,
            text(at * MINUTE),
            if forward { "+" } else { "-" },
            text(secs * SECOND)
        )
    })
}

fn lifetime() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["5m", "15m", "1h", "3h", "6h"])
}

fn rotation() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["late", "fresh"])
}

#[allow(clippy::too_many_arguments)]
fn scenario_json(
    duration_minutes: u64,
    seed: u64,
    lifetime: &str,
    rotation: &str,
    latency_ms: u64,
    callers: &[String],
    faults: &[String],
    config: &str,
) -> String {
    format!(
        r#"{{"duration": "{}", "seed": {seed},
  "callers": [{}],
  "imds": {{"credential_lifetime": "{lifetime}", "rotation": "{rotation}", "latency": "{}"}},
  "faults": [{}],
  "config": {config}}}"#,
        text(duration_minutes * MINUTE),
        callers.join(", "),
        text(latency_ms),
        faults.join(", ")
    )
}

/// Anything goes: faults of every kind, clock jumps either way, either
/// stability mode.
fn any_scenario() -> impl Strategy<Value = String> {
    (60u64..360).prop_flat_map(|duration| {
        (
            any::<u64>(),
            lifetime(),
            rotation(),
            0u64..40,
            prop::collection::vec(caller(), 1..4),
            prop::collection::vec(fault(&ALL_KINDS, duration), 0..5),
            prop::collection::vec(clock_jump(duration), 0..3),
            prop::sample::select(vec![r#"{}"#, r#"{"stability": "strict"}"#]),
        )
            .prop_map(
                move |(seed, lifetime, rotation, latency, callers, mut faults, jumps, config)| {
                    faults.extend(jumps);
                    scenario_json(
                        duration, seed, lifetime, rotation, latency, &callers, &faults, config,
                    )
                },
            )
    })
}

/// Outages that end well before the run does, no clock jumps, a caller at
/// least every 30 s.
fn outage_scenario() -> impl Strategy<Value = String> {
    (120u64..360).prop_flat_map(|duration| {
        (
            any::<u64>(),
            lifetime(),
            rotation(),
            0u64..40,
            prop::collection::vec(caller(), 0..3),
            prop::collection::vec(fault(&OUTAGE_KINDS, duration - 60), 1..4),
        )
            .prop_map(
                move |(seed, lifetime, rotation, latency, mut callers, faults)| {
                    callers.push(r#"{"every": "30s"}"#.to_string());
                    scenario_json(
                        duration, seed, lifetime, rotation, latency, &callers, &faults, "{}",
                    )
                },
            )
    })
}

/// One full outage of a retryable kind that starts once credentials are held
/// and ends well within static stability's bound (1 h past expiry).
fn bridgeable_outage_scenario() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        lifetime(),
        rotation(),
        0u64..40,
        prop::sample::select(&OUTAGE_KINDS[..5]),
        10u64..300,
        1u64..50,
    )
        .prop_map(|(seed, lifetime, rotation, latency, kind, from, length)| {
            let fault = format!(
                r#"{{"from": "{}", "to": "{}", "kind": "{kind}"}}"#,
                text(from * MINUTE),
                text((from + length) * MINUTE)
            );
            scenario_json(
                from + length + 60,
                seed,
                lifetime,
                rotation,
                latency,
                &[r#"{"every": "20s"}"#.to_string()],
                &[fault],
                "{}",
            )
        })
}

/// A healthy IMDS that rotates late, so most refreshes bring unchanged
/// credentials.
fn late_rotation_scenario() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        prop::sample::select(vec!["15m", "1h", "3h", "6h"]),
        0u64..40,
        prop::collection::vec(caller(), 1..4),
    )
        .prop_map(|(seed, lifetime, latency, callers)| {
            let hours = match lifetime {
                "15m" | "1h" => 4,
                _ => 13,
            };
            scenario_json(
                hours * 60,
                seed,
                lifetime,
                "late",
                latency,
                &callers,
                &[],
                "{}",
            )
        })
}

fn run(json: &str, policy: PolicyKind) -> Run {
    let scenario = Scenario::from_json(json).unwrap_or_else(|err| panic!("{err}"));
    let run = simulate(&scenario, policy).unwrap();
    assert!(!run.truncated, "{policy} hit the harness cap");
    run
}

/// 64 cases keep the file fast in debug builds; `PROPTEST_CASES` asks for
/// more when hunting.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64)
}

fn credstate_policy(json: &str) -> PolicyKind {
    if json.contains("strict") {
        PolicyKind::Strict
    } else {
        PolicyKind::Default
    }
}

/// Expired credentials reach a caller only under static stability, each
/// call announced by a `serving_expired` event.
fn check_expired_only_when_announced(run: &Run) -> Result<(), TestCaseError> {
    for call in &run.calls {
        if let CallOutcome::Served {
            expiration,
            marked_expired,
            ..
        } = &call.outcome
        {
            let wall = call.answered_wall.unwrap();
            let past_usable = wall.millis_since(*expiration) >= -EXPIRY_BUFFER_MS;
            prop_assert!(
                !past_usable || *marked_expired,
                "call at {} ms served credentials expiring {expiration} at {wall} unannounced",
                call.asked_ms
            );
        }
    }
    Ok(())
}

/// Static stability extends only credentials that really expired, never in
/// strict mode, and always into the future.
fn check_extensions_only_of_expired(run: &Run, policy: PolicyKind) -> Result<(), TestCaseError> {
    for (entry, event) in run.credstate_events() {
        if let Event::StaticStabilityExtended { expired_at, until }
        | Event::ServingExpired { expired_at, until } = event
        {
            prop_assert_eq!(policy, PolicyKind::Default, "strict mode extended");
            prop_assert!(
                entry.wall.millis_since(*expired_at) >= -EXPIRY_BUFFER_MS,
                "{} at {}: credentials still usable",
                event,
                entry.wall
            );
            prop_assert!(*until > entry.wall, "{} at {}", event, entry.wall);
        }
    }
    Ok(())
}

/// No fetch sequence starts while another runs; returns how many started.
fn check_one_fetch_at_a_time(run: &Run) -> Result<u64, TestCaseError> {
    let mut open: Option<u64> = None;
    let mut starts = 0;
    for (entry, event) in run.credstate_events() {
        match event {
            Event::FetchStarted { .. } => {
                prop_assert!(
                    open.is_none(),
                    "a fetch started at {} while one from {:?} ran",
                    entry.t_ms,
                    open
                );
                open = Some(entry.t_ms);
                starts += 1;
            }
            Event::CredentialsReceived { .. } | Event::FetchFailed { .. } => open = None,
            _ => {}
        }
    }
    Ok(starts)
}

/// Fetch sequences start at least a second apart.
fn check_fetch_starts_a_second_apart(run: &Run) -> Result<(), TestCaseError> {
    let starts: Vec<_> = run
        .credstate_events()
        .filter(|(_, event)| matches!(event, Event::FetchStarted { .. }))
        .map(|(entry, _)| (entry.t_ms, entry.wall))
        .collect();
    for pair in starts.windows(2) {
        let (t0, wall0) = pair[0];
        let (t1, wall1) = pair[1];
        // A forward jump of the wall clock in between may legitimately
        // make a second pass by the host's clock.
        let apart = (t1 - t0).max(wall1.millis_since(wall0).max(0) as u64);
        prop_assert!(apart >= SECOND, "fetches at {} and {} ms", t0, t1);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn expired_credentials_are_served_only_with_a_serving_expired_event(json in any_scenario()) {
        check_expired_only_when_announced(&run(&json, credstate_policy(&json)))?;
    }

    #[test]
    fn static_stability_never_extends_unexpired_credentials(json in any_scenario()) {
        let policy = credstate_policy(&json);
        check_extensions_only_of_expired(&run(&json, policy), policy)?;
    }

    #[test]
    fn at_most_one_fetch_sequence_is_in_flight(json in any_scenario()) {
        let run = run(&json, credstate_policy(&json));
        // On the wire too — unless the wall clock leaps forward, which makes
        // the machine give up on a request before the transport does (a late
        // answer is then ignored).
        if !json.contains(r#""by": "+"#) {
            prop_assert!(run.max_in_flight <= 1, "{} requests in flight at once", run.max_in_flight);
        }
        check_one_fetch_at_a_time(&run)?;
    }

    #[test]
    fn at_most_one_fetch_sequence_starts_per_second(json in any_scenario()) {
        check_fetch_starts_a_second_apart(&run(&json, credstate_policy(&json)))?;
    }

    #[test]
    fn unchanged_credentials_cost_a_bounded_number_of_fetches_per_lifetime(json in late_rotation_scenario()) {
        let run = run(&json, PolicyKind::Default);
        let mut fetches_since_new = 0u32;
        for (entry, event) in run.credstate_events() {
            match event {
                Event::FetchStarted { .. } => {
                    fetches_since_new += 1;
                    prop_assert!(fetches_since_new <= 24, "25 fetch sequences for one credential (at {} ms)", entry.t_ms);
                }
                Event::CredentialsReceived { unchanged: false, .. } => fetches_since_new = 0,
                _ => {}
            }
        }
        prop_assert_eq!(run.metrics.rejected, 0);
        prop_assert_eq!(run.metrics.served_expired, 0);
    }

    #[test]
    fn usable_credentials_return_within_the_backoff_cap_after_an_outage(json in outage_scenario()) {
        let scenario = Scenario::from_json(&json).unwrap();
        let outage_end = scenario
            .faults
            .iter()
            .filter_map(|fault| fault.to)
            .max()
            .map_or(0, |to| to.as_millis() as u64);
        // The 5 min backoff cap, plus one fetch's attempts (3 × 1 s timeout
        // and ≤ 1 s pauses).
        let deadline = outage_end + 5 * MINUTE + 6 * SECOND;
        let run = run(&json, PolicyKind::Default);
        for call in run.calls.iter().filter(|call| call.asked_ms >= deadline) {
            match &call.outcome {
                CallOutcome::Served { marked_expired, expired, .. } => prop_assert!(
                    !marked_expired && !expired,
                    "call at {} ms (outage ended at {} ms) got expired credentials", call.asked_ms, outage_end
                ),
                CallOutcome::Rejected { cause } => prop_assert!(
                    false,
                    "call at {} ms (outage ended at {} ms) rejected: {}", call.asked_ms, outage_end, cause
                ),
                CallOutcome::Unanswered => {}
            }
        }
    }

    #[test]
    fn every_policy_runs_any_scenario_to_the_end(json in any_scenario()) {
        for policy in PolicyKind::ALL {
            let run = run(&json, policy);
            let metrics = run.metrics;
            prop_assert_eq!(
                metrics.served + metrics.rejected + metrics.unanswered,
                run.calls.len() as u64
            );
            prop_assert_eq!(metrics.requests, run.imds.requests);
            prop_assert!(metrics.served_expired <= metrics.served);
            prop_assert!(
                !run.timeline.iter().any(|entry| entry.entry.name() == "client_misuse"),
                "{policy} refused an input"
            );
        }
    }

    #[test]
    fn static_stability_bridges_any_outage_shorter_than_its_bound(json in bridgeable_outage_scenario()) {
        let run = run(&json, PolicyKind::Default);
        prop_assert_eq!(run.metrics.rejected, 0);
    }
}

// ----- the container source (ECS, EKS Pod Identity) ----------------------

const CONTAINER_KINDS: [&str; 8] = [
    "http_500",
    "http_503",
    "http_429",
    "timeout",
    "refused",
    "bad_json",
    "expired_credentials",
    "token_file_missing",
];

/// A container source, as configured, and the token file's rotation period
/// when it reads one.
#[derive(Debug, Clone)]
struct ContainerSource {
    config: &'static str,
    token_rotation: Option<&'static str>,
}

const EKS_SOURCE: &str = r#""container": {"uri": "http://169.254.170.23/v1/credentials",
    "auth": {"token_file": "/var/run/secrets/eks-pod-identity-token"}}"#;
const ECS_SOURCE: &str = r#""container": {"uri": "http://169.254.170.2/v2/credentials/3f1c9a52"}"#;
const LOOPBACK_SOURCE: &str =
    r#""container": {"uri": "http://127.0.0.1:9911/creds", "auth": {"token": "tok"}}"#;

/// EKS with a rotating token file, ECS without authorization, or a loopback
/// agent with a configured token.
fn container_source() -> impl Strategy<Value = ContainerSource> {
    prop_oneof![
        prop::sample::select(vec!["5m", "20m", "1h"]).prop_map(|every| ContainerSource {
            config: EKS_SOURCE,
            token_rotation: Some(every),
        }),
        prop::sample::select(vec![ECS_SOURCE, LOOPBACK_SOURCE]).prop_map(|config| {
            ContainerSource {
                config,
                token_rotation: None,
            }
        }),
    ]
}

/// Anything a container scenario can hold: faults of every kind that acts
/// on an agent or a token file, clock jumps either way, either stability.
fn any_container_scenario() -> impl Strategy<Value = String> {
    (60u64..240).prop_flat_map(|duration| {
        (
            any::<u64>(),
            lifetime(),
            rotation(),
            0u64..40,
            prop::collection::vec(caller(), 1..4),
            prop::collection::vec(fault(&CONTAINER_KINDS, duration), 0..5),
            prop::collection::vec(clock_jump(duration), 0..3),
            container_source(),
            prop::sample::select(vec!["", r#""stability": "strict", "#]),
        )
            .prop_map(
                move |(seed, lifetime, rotation, latency, callers, faults, jumps, source, stability)| {
                    let reads_file = source.token_rotation.is_some();
                    let token_rotation = source
                        .token_rotation
                        .map_or(String::new(), |every| format!(r#", "token_rotation": "{every}""#));
                    let mut faults: Vec<String> = faults
                        .into_iter()
                        .filter(|fault| reads_file || !fault.contains("token_file_missing"))
                        .collect();
                    faults.extend(jumps);
                    format!(
                        r#"{{"duration": "{}", "seed": {seed},
  "callers": [{}],
  "container": {{"credential_lifetime": "{lifetime}", "rotation": "{rotation}", "latency": "{}"{token_rotation}}},
  "faults": [{}],
  "config": {{{stability}{}}}}}"#,
                        text(duration * MINUTE),
                        callers.join(", "),
                        text(latency),
                        faults.join(", "),
                        source.config
                    )
                },
            )
    })
}

fn container_stats(run: &Run) -> ContainerStats {
    run.container
        .expect("a container scenario runs against the agent")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn container_scenarios_keep_the_core_invariants(json in any_container_scenario()) {
        let policy = credstate_policy(&json);
        let run = run(&json, policy);
        let agent = container_stats(&run);
        prop_assert_eq!(run.metrics.requests, agent.requests);
        prop_assert_eq!(run.imds.requests, 0);
        // The token is read afresh for every fetch, so the agent never
        // refuses it (its grace period outlasts any one fetch's retries).
        prop_assert_eq!(agent.auth_refusals(), 0, "{:?}", agent);
        let starts = check_one_fetch_at_a_time(&run)?;
        check_fetch_starts_a_second_apart(&run)?;
        check_extensions_only_of_expired(&run, policy)?;
        check_expired_only_when_announced(&run)?;
        if json.contains("token_file") {
            prop_assert_eq!(agent.token_file_reads, starts);
        } else {
            prop_assert_eq!(agent.token_file_reads, 0);
        }
    }

    #[test]
    fn every_policy_that_can_runs_any_container_scenario_to_the_end(json in any_container_scenario()) {
        let scenario = Scenario::from_json(&json).unwrap();
        let config = scenario.credstate_config().unwrap();
        for policy in PolicyKind::ALL {
            if let Some(reason) = policy.cannot_run(&config) {
                prop_assert!(!policy.is_credstate(), "{}", reason);
                prop_assert!(simulate(&scenario, policy).is_err());
                continue;
            }
            let run = run(&json, policy);
            let metrics = run.metrics;
            prop_assert_eq!(
                metrics.served + metrics.rejected + metrics.unanswered,
                run.calls.len() as u64
            );
            prop_assert_eq!(metrics.requests, container_stats(&run).requests);
            prop_assert!(metrics.served_expired <= metrics.served);
            prop_assert!(
                !run.timeline.iter().any(|entry| entry.entry.name() == "client_misuse"),
                "{policy} refused an input"
            );
        }
    }
}
