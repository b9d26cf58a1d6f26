//! Throughput of the whole simulation harness (simulated IMDS with faults,
//! callers, timeline) in simulated hours per second, next to the Java v1
//! model on the same scenario as the same-run baseline.
//!
//! `cargo bench -p credstate-tests --bench simulator`

use std::hint::black_box;

use credstate_tests::scenario::{Scenario, DEFAULT_SCENARIO};
use credstate_tests::sim::{simulate, PolicyKind};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Three days with an outage per day and a caller every 30 s.
const THREE_DAYS: &str = r#"{
  "duration": "3d", "seed": 3,
  "callers": [{"every": "30s"}],
  "imds": {"credential_lifetime": "6h", "rotation": "late"},
  "faults": [{"from": "5h50m", "to": "6h20m", "kind": "http_503"},
             {"from": "1d11h", "to": "1d12h", "kind": "timeout"},
             {"from": "2d17h", "to": "2d18h", "kind": "http_429", "percent": 50}]
}"#;

fn harness(c: &mut Criterion) {
    for (name, json) in [
        ("default_scenario_12h", DEFAULT_SCENARIO),
        ("three_days_with_outages", THREE_DAYS),
    ] {
        let scenario = Scenario::from_json(json).unwrap();
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        // Throughput in simulated seconds, so criterion reports simulated
        // seconds per wall second ("elem/s").
        group.throughput(Throughput::Elements(scenario.duration.as_secs()));
        for policy in [PolicyKind::Default, PolicyKind::JavaV1] {
            group.bench_function(format!("{policy}"), |b| {
                b.iter(|| black_box(simulate(black_box(&scenario), policy).unwrap().metrics))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, harness);
criterion_main!(benches);
