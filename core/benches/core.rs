//! Costs of the core's operations, each next to a baseline measured in the
//! same run so the figures survive a noisy, shared machine:
//!
//! - hot path (`credentials(now)` and the adapters' `Snapshot` check) vs
//!   cloning an `Arc` — the floor of handing out shared credentials;
//! - one `poll` with nothing due vs the same baseline;
//! - parsing a credentials body vs `serde_json` into a generic `Value`;
//! - simulated hours per second of a whole day with a caller every minute.
//!
//! `cargo bench -p credstate --bench core`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use credstate::{parse_credentials, Config, Demand, Machine, Output, Request, Response, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion};

const T0: Timestamp = Timestamp::from_unix_secs(1_795_910_400);
const BODY: &str = r#"{"Code":"Success","LastUpdated":"2026-11-29T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Token":"IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6m1+3oMvNRxDnJ4xPwKb1m6yVyQFl8xGbNsaLdcxPbyhL","Expiration":"2026-11-29T06:00:00Z"}"#;

/// Answers like a healthy IMDS whose credentials last six hours from `now`.
fn answer(request: &Request, now: Timestamp) -> Response {
    match request.path() {
        "/latest/api/token" => Response::new(200, "token"),
        path if path.ends_with('/') => Response::new(200, "web"),
        _ => {
            let expiration = (now + Duration::from_secs(6 * 3600)).to_rfc3339();
            Response::new(200, BODY.replace("2026-11-29T06:00:00Z", &expiration))
        }
    }
}

fn drive(machine: &mut Machine, now: Timestamp) {
    loop {
        match machine.poll(now) {
            Output::Send(request) => {
                let response = answer(&request, now);
                machine.handle_response(request.id, response, now).unwrap();
            }
            Output::Event(event) => {
                black_box(event);
            }
            _ => return,
        }
    }
}

fn warm_machine() -> Machine {
    let mut machine = Machine::new(Config::default(), 1).unwrap();
    let _ = machine.demand(T0);
    drive(&mut machine, T0);
    assert!(matches!(machine.demand(T0), Demand::Ready(_)));
    drive(&mut machine, T0);
    machine
}

fn hot_path(c: &mut Criterion) {
    let machine = warm_machine();
    let snapshot = machine.snapshot().unwrap();
    let now = T0 + Duration::from_secs(60);
    let arc = Arc::new(BODY.to_string());
    let mut group = c.benchmark_group("hot_path");
    group.bench_function("baseline_arc_clone", |b| {
        b.iter(|| black_box(Arc::clone(black_box(&arc))))
    });
    group.bench_function("machine_credentials_query", |b| {
        b.iter(|| black_box(machine.credentials(black_box(now)).unwrap()))
    });
    group.bench_function("snapshot_check_and_clone", |b| {
        b.iter(|| {
            let snapshot = black_box(&snapshot);
            assert!(snapshot.is_servable_at(black_box(now)));
            black_box(Arc::clone(&snapshot.credentials))
        })
    });
    group.finish();
}

fn idle_poll(c: &mut Criterion) {
    let mut machine = warm_machine();
    let now = T0 + Duration::from_secs(60);
    c.bench_function("poll_with_nothing_due", |b| {
        b.iter(|| match machine.poll(black_box(now)) {
            Output::WakeAt(at) => black_box(at),
            other => panic!("{other:?}"),
        })
    });
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_credentials");
    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(BODY)).unwrap()))
    });
    group.bench_function("credstate_parse_credentials", |b| {
        b.iter(|| black_box(parse_credentials(black_box(BODY.as_bytes()), 65_536).unwrap()))
    });
    group.finish();
}

/// One simulated day: a caller every minute, healthy IMDS, 6 h credentials.
/// Returns the calls served, so the work cannot be optimised away.
fn simulate_day(seed: u64) -> usize {
    let mut machine = Machine::new(Config::default(), seed).unwrap();
    let mut served = 0;
    for minute in 0..(24 * 60) {
        let now = T0 + Duration::from_secs(60 * minute);
        machine.handle_timeout(now);
        drive(&mut machine, now);
        if let Demand::Pending = machine.demand(now) {
            drive(&mut machine, now);
        }
        if let Demand::Ready(_) = machine.demand(now) {
            served += 1;
        }
    }
    assert_eq!(served, 24 * 60);
    served
}

fn simulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("simulate");
    group.sample_size(20);
    group.bench_function("one_day_caller_every_minute", |b| {
        b.iter(|| black_box(simulate_day(black_box(7))))
    });
    group.finish();
}

criterion_group!(benches, hot_path, idle_poll, parsing, simulator);
criterion_main!(benches);
