//! FIELD-GUIDE §4 rules 1–3, 7 and 9: when credentials are served, refreshed
//! and waited for.

mod support;

use credstate::{Config, Demand, Event, FetchReason, ScheduleReason, Unavailable};
use support::*;

#[test]
fn a_cold_fetch_uses_token_role_and_credentials_requests_only() {
    let mut sim = Sim::default_config();
    let credentials = expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 6 * HOUR)));
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(
        sim.paths_sent(),
        [
            TOKEN_PATH,
            EXTENDED_LIST,
            "/latest/meta-data/iam/security-credentials-extended/web"
        ]
    );
}

#[test]
fn credentials_are_usable_until_ten_seconds_before_expiration() {
    // A mandatory window shorter than the buffer leaves the buffer in charge.
    let mut sim = warm(config_with(|c| c.mandatory_window = 5 * SECOND));
    let expiration = T0 + 6 * HOUR;
    assert!(sim.machine.credentials(expiration - 11 * SECOND).is_ok());
    assert_eq!(
        sim.machine.credentials(expiration - 10 * SECOND),
        Err(Unavailable::Fetching)
    );
    sim.jump_to(expiration - 10 * SECOND);
    assert!(matches!(sim.demand(), Demand::Pending));
}

#[test]
fn concurrent_cold_callers_share_one_fetch_sequence() {
    let mut sim = Sim::default_config();
    for _ in 0..1000 {
        assert!(matches!(sim.demand(), Demand::Pending));
    }
    sim.answer(&mut healthy("ASIA1", T0 + 6 * HOUR));
    for _ in 0..1000 {
        expect_ready(sim.demand());
    }
    assert_eq!(sim.fetch_starts().len(), 1);
    assert_eq!(sim.sent.len(), 3);
}

#[test]
fn six_hour_credentials_are_refreshed_in_a_jittered_advisory_window_of_48_to_60_minutes() {
    for seed in 0..20 {
        let mut sim = Sim::new(Config::default());
        sim.machine = credstate::Machine::new(Config::default(), seed).unwrap();
        expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + 6 * HOUR)));
        let refresh_at = sim.machine.next_deadline().unwrap();
        let expiration = T0 + 6 * HOUR;
        assert!(refresh_at >= expiration - 60 * MINUTE, "seed {seed}");
        assert!(refresh_at <= expiration - 48 * MINUTE, "seed {seed}");
        assert!(sim.events.iter().any(|(_, e)| matches!(
            e,
            Event::RefreshScheduled {
                reason: ScheduleReason::AdvisoryWindow,
                ..
            }
        )));
    }
}

#[test]
fn the_advisory_window_scales_with_lifetime() {
    // (lifetime, window upper bound, lower bound after 20% jitter)
    let table = [
        (15 * MINUTE, 5 * MINUTE, 4 * MINUTE),
        (60 * MINUTE, 15 * MINUTE, 12 * MINUTE),
        (6 * HOUR, 60 * MINUTE, 48 * MINUTE),
    ];
    for (lifetime, high, low) in table {
        let mut sim = Sim::default_config();
        expect_ready(sim.demand_until_settled(&mut healthy("ASIA1", T0 + lifetime)));
        let window = (T0 + lifetime).saturating_since(sim.machine.next_deadline().unwrap());
        assert!(
            window <= high && window >= low,
            "{lifetime:?} gave {window:?}"
        );
    }
}

#[test]
fn short_lived_credentials_are_not_refetched_on_every_call() {
    let mut sim = Sim::default_config();
    let mut imds = healthy("ASIA1", T0 + 4 * MINUTE);
    expect_ready(sim.demand_until_settled(&mut imds));
    for _ in 0..60 {
        sim.now = sim.now + SECOND;
        expect_ready(sim.demand());
    }
    assert_eq!(sim.fetch_starts().len(), 1);
}

#[test]
fn callers_in_the_advisory_window_get_cached_credentials_while_one_refresh_runs() {
    let mut sim = warm(Config::default());
    let refresh_at = sim.machine.next_deadline().unwrap();
    sim.jump_to(refresh_at);
    sim.machine.handle_timeout(sim.now);
    let token_request = sim.collect();
    assert_eq!(
        token_request.len(),
        1,
        "the refresh started in the background"
    );
    for _ in 0..10 {
        assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
    }
    assert_eq!(sim.fetch_starts().len(), 2);
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ServingCachedWhileRefreshing { .. })),
        10
    );
}

#[test]
fn callers_in_the_mandatory_window_wait_for_the_refresh() {
    let mut sim = warm(Config::default());
    sim.clear_log();
    sim.jump_to(T0 + 6 * HOUR - 30 * SECOND);
    assert!(matches!(sim.demand(), Demand::Pending));
    assert_eq!(sim.fetch_starts().len(), 1);
    sim.answer(&mut healthy("ASIA2", T0 + 12 * HOUR));
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
}

#[test]
fn a_failed_refresh_in_the_mandatory_window_still_serves_the_valid_credentials() {
    let mut sim = warm(Config::default());
    sim.jump_to(T0 + 6 * HOUR - 50 * SECOND);
    let served = sim.demand_until_settled(&mut always(status(500)));
    assert_eq!(expect_ready(served).access_key_id, "ASIA1");
}

#[test]
fn never_more_than_one_fetch_sequence_starts_per_second() {
    let mut sim = Sim::default_config();
    let mut imds = always(Reply::Fail(credstate::TransportFailure::ConnectRefused));
    for _ in 0..2000 {
        let _ = sim.demand();
        sim.answer(&mut imds);
        sim.now = sim.now + std::time::Duration::from_millis(10);
        sim.machine.handle_timeout(sim.now);
        sim.answer(&mut imds);
    }
    let starts = sim.fetch_starts();
    assert!(starts.len() >= 2);
    for pair in starts.windows(2) {
        assert!(pair[1].saturating_since(pair[0]) >= SECOND, "{pair:?}");
    }
}

#[test]
fn backoff_grows_and_caps_at_five_minutes_while_valid_credentials_are_held() {
    let mut sim = warm(Config::default());
    let refresh_at = sim.machine.next_deadline().unwrap();
    sim.jump_to(refresh_at);
    sim.clear_log();
    // IMDS stays down for 40 minutes, well before the mandatory window.
    sim.run_for(40 * MINUTE, &mut always(status(500)));
    let starts = sim.fetch_starts();
    let gaps: Vec<_> = starts
        .windows(2)
        .map(|p| p[1].saturating_since(p[0]))
        .collect();
    assert!(gaps.len() >= 5, "{gaps:?}");
    assert!(
        gaps.iter().all(|gap| *gap <= 5 * MINUTE + 3 * SECOND),
        "{gaps:?}"
    );
    assert!(
        gaps.last().unwrap() >= &(2 * MINUTE),
        "the backoff grew: {gaps:?}"
    );
    assert!(gaps[0] < 10 * SECOND, "{gaps:?}");
}

#[test]
fn backoff_caps_at_thirty_seconds_once_the_credentials_have_expired() {
    let mut sim = warm(Config::default());
    sim.jump_to(T0 + 6 * HOUR);
    sim.clear_log();
    sim.run_for(20 * MINUTE, &mut always(status(503)));
    let starts = sim.fetch_starts();
    for pair in starts.windows(2) {
        assert!(pair[1].saturating_since(pair[0]) <= 33 * SECOND, "{pair:?}");
    }
    assert!(starts.len() >= 30);
}

#[test]
fn unchanged_credentials_space_out_the_next_attempt_and_bound_the_fetches() {
    let mut sim = warm(Config::default());
    // IMDS keeps returning the same credentials until five minutes before expiry.
    let mut late = {
        let mut old = healthy("ASIA1", T0 + 6 * HOUR);
        let mut new = healthy("ASIA2", T0 + 12 * HOUR);
        let switch_at = T0 + 6 * HOUR - 5 * MINUTE;
        let clock = std::rc::Rc::new(std::cell::Cell::new(T0));
        let seen = clock.clone();
        (
            move |r: &credstate::Request| {
                if seen.get() < switch_at {
                    old(r)
                } else {
                    new(r)
                }
            },
            clock,
        )
    };
    sim.clear_log();
    for _ in 0..(6 * 60) {
        late.1.set(sim.now);
        sim.run_for(MINUTE, &mut late.0);
        late.1.set(sim.now);
        expect_ready(sim.demand());
    }
    let unchanged = sim.count_events(|e| {
        matches!(
            e,
            Event::CredentialsReceived {
                unchanged: true,
                ..
            }
        )
    });
    assert!(
        unchanged >= 2,
        "late rotation returned the same credentials {unchanged} times"
    );
    assert!(
        sim.fetch_starts().len() <= 24,
        "{} fetches",
        sim.fetch_starts().len()
    );
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
}

#[test]
fn credentials_are_fetched_again_after_a_forward_clock_jump() {
    let mut sim = warm(Config::default());
    sim.clear_log();
    // A laptop or instance suspended for three days.
    sim.jump_to(T0 + 72 * HOUR);
    sim.machine.handle_timeout(sim.now);
    assert_eq!(sim.collect().len(), 1, "the overdue refresh starts at once");
    assert_eq!(sim.machine.credentials(sim.now), Err(Unavailable::Fetching));
}

#[test]
fn a_backward_clock_jump_does_not_freeze_a_pending_retry() {
    let mut sim = warm(Config::default());
    let refresh_at = sim.machine.next_deadline().unwrap();
    sim.jump_to(refresh_at);
    sim.run_for(SECOND * 3, &mut always(status(500)));
    let retry_at = sim.machine.next_deadline().unwrap();
    let wait = retry_at.saturating_since(sim.now);
    assert!(wait <= 5 * MINUTE);
    // NTP steps the clock back by a day.
    sim.jump_to(sim.now - 24 * HOUR);
    sim.machine.handle_timeout(sim.now);
    sim.collect();
    assert!(sim.count_events(|e| matches!(e, Event::ClockJumpedBackwards { .. })) == 1);
    let next = sim.machine.next_deadline().unwrap();
    assert!(
        next.saturating_since(sim.now) <= wait,
        "the retry moved with the clock"
    );
}

#[test]
fn a_backward_clock_jump_reevaluates_the_credentials_at_once() {
    let mut sim = warm(Config::default());
    sim.now = sim.now + HOUR;
    sim.machine.handle_timeout(sim.now);
    sim.clear_log();
    sim.jump_to(sim.now - 2 * HOUR);
    sim.machine.handle_timeout(sim.now);
    sim.answer(&mut healthy("ASIA1", T0 + 6 * HOUR));
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::FetchStarted {
            reason: FetchReason::ClockJump
        }
    )));
}

#[test]
fn small_backward_steps_are_not_treated_as_jumps() {
    let mut sim = warm(Config::default());
    sim.clear_log();
    sim.jump_to(sim.now - std::time::Duration::from_millis(300));
    expect_ready(sim.demand());
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::ClockJumpedBackwards { .. })),
        0
    );
}

#[test]
fn a_clock_flapping_back_and_forth_during_an_outage_keeps_the_backoff() {
    let mut sim = warm(Config::default());
    let refresh_at = sim.machine.next_deadline().unwrap();
    sim.jump_to(refresh_at);
    // Fail long enough for the backoff to reach minutes.
    sim.run_for(20 * MINUTE, &mut always(status(500)));
    sim.clear_log();
    // NTP steps the clock back and forth by ten seconds, ten times, a second apart.
    for flap in 0..10 {
        let step = 10 * SECOND;
        let at = if flap % 2 == 0 {
            sim.now - step
        } else {
            sim.now + step
        };
        sim.jump_to(at + SECOND);
        sim.machine.handle_timeout(sim.now);
        sim.answer(&mut always(status(500)));
    }
    assert!(
        // At most the backoff retry that falls due meanwhile.
        sim.fetch_starts().len() <= 1,
        "{} fetches for ten flaps",
        sim.fetch_starts().len()
    );
}
