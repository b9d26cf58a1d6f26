//! `credstate simulate` end to end, through the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CREDSTATE: &str = env!("CARGO_BIN_EXE_credstate");

fn simulate(args: &[&str]) -> Output {
    Command::new(CREDSTATE)
        .arg("simulate")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A scenario file in the temp dir, removed when dropped.
struct TempScenario(PathBuf);

impl TempScenario {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "credstate-simulate-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        TempScenario(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempScenario {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

fn summaries(jsonl: &str) -> Vec<serde_json::Value> {
    jsonl
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .filter_map(|value| value.get("summary").cloned())
        .collect()
}

fn shipped_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_default_run_prints_a_timeline_and_a_summary_for_both_policies() {
    let output = simulate(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("── default:"), "{text}");
    assert!(text.contains("── java-v1:"), "{text}");
    for row in [
        "requests sent",
        "calls served",
        "served expired",
        "rejected",
        "longest gap",
    ] {
        assert!(text.contains(row), "missing {row:?} in\n{text}");
    }
    // Condensed: far fewer lines than the 720 calls of the scenario.
    assert!(text.lines().count() < 100, "{text}");
    // Java v1's failure shows, with its cause.
    assert!(
        text.contains("call rejected: Fail to retrieve token"),
        "{text}"
    );
    assert!(text.contains("static stability"), "{text}");
}

#[test]
fn jsonl_has_one_json_object_per_line_and_one_summary_per_policy() {
    let output = simulate(&["--format", "jsonl"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let summaries = summaries(&text);
    let policies: Vec<&str> = summaries
        .iter()
        .map(|s| s["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["default", "java-v1"]);
    for summary in &summaries {
        for field in [
            "requests",
            "served",
            "served_expired",
            "rejected",
            "max_gap_ms",
        ] {
            assert!(summary[field].is_u64(), "{field} in {summary}");
        }
    }
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|value| value.get("summary").is_none())
        .collect();
    assert!(!events.is_empty());
    for event in &events {
        assert!(event["t_ms"].is_u64(), "{event}");
        assert!(event["event"].is_string(), "{event}");
        assert!(event["message"].is_string(), "{event}");
    }
}

#[test]
fn one_policy_runs_alone_and_the_seed_can_be_overridden() {
    let a = simulate(&["--policy", "strict", "--format", "jsonl", "--seed", "1"]);
    let b = simulate(&["--policy", "strict", "--format", "jsonl", "--seed", "2"]);
    assert!(a.status.success() && b.status.success());
    let (a, b) = (stdout(&a), stdout(&b));
    let policies: Vec<String> = summaries(&a)
        .iter()
        .map(|s| s["policy"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(policies, ["strict"]);
    assert_ne!(a, b, "a different seed changes the jitter");
    assert_eq!(
        a,
        stdout(&simulate(&[
            "--policy", "strict", "--format", "jsonl", "--seed", "1"
        ]))
    );
}

#[test]
fn a_bad_scenario_exits_2_naming_the_field() {
    let cases = [
        (
            r#"{"duration": "1h", "faults": [{"from": "0s", "kind": "meteor"}]}"#,
            "faults[0].kind",
        ),
        (
            r#"{"duration": "1h", "imds": {"latency": "fast"}}"#,
            "imds.latency",
        ),
        (
            r#"{"duration": "1h", "config": {"request_timeot": "1s"}}"#,
            "config.request_timeot",
        ),
        (r#"{"duration": "1h", "colour": "blue"}"#, "colour"),
        (r#"{"duration": "1h""#, "invalid scenario"),
        (
            r#"{"duration": "3d", "callers": [{"every": "1ms"}]}"#,
            "callers",
        ),
    ];
    for (index, (text, field)) in cases.into_iter().enumerate() {
        let file = TempScenario::new(&format!("bad{index}"), text);
        let output = simulate(&["--scenario", file.path()]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let message = stderr(&output);
        assert!(message.contains(field), "{text}: {message}");
        assert!(!message.contains("panicked"), "{message}");
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn a_missing_scenario_file_exits_2_with_a_clear_message() {
    let output = simulate(&["--scenario", "/nonexistent/credstate/outage.json"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("cannot read scenario file /nonexistent/credstate/outage.json"),
        "{message}"
    );
}

#[test]
fn an_unknown_policy_is_a_usage_error() {
    let output = simulate(&["--policy", "java-v2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("java-v1-async"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_shipped_scenario_runs_in_both_formats() {
    let files = shipped_scenarios();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let path = file.to_str().unwrap();
        let text = simulate(&["--scenario", path]);
        assert!(text.status.success(), "{path}: {}", stderr(&text));
        assert!(stdout(&text).contains("longest gap"), "{path}");
        let jsonl = simulate(&["--scenario", path, "--format", "jsonl"]);
        assert!(jsonl.status.success(), "{path}: {}", stderr(&jsonl));
        assert_eq!(summaries(&stdout(&jsonl)).len(), 2, "{path}");
    }
}
