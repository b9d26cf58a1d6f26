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
        // Java v1 runs wherever the seed system can serve the source; where
        // it cannot, a note on stderr says so.
        let expected = if stderr(&jsonl).contains("java-v1 not run") {
            1
        } else {
            2
        };
        assert_eq!(summaries(&stdout(&jsonl)).len(), expected, "{path}");
    }
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn summary_of<'a>(summaries: &'a [serde_json::Value], policy: &str) -> &'a serde_json::Value {
    summaries
        .iter()
        .find(|s| s["policy"] == policy)
        .unwrap_or_else(|| panic!("no summary for {policy}: {summaries:?}"))
}

#[test]
fn the_ecs_task_role_scenario_runs_credstate_and_java_v1_against_the_agent() {
    let path = shipped("ecs-task-role.json");
    let text = simulate(&["--scenario", &path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(
        text.contains(
            "agent:   container credentials agent at http://169.254.170.2/v2/credentials/"
        ),
        "{text}"
    );
    assert!(!text.contains("IMDS:"), "{text}");
    assert!(
        text.contains("── java-v1: AWS SDK for Java v1 ContainerCredentialsProvider ──"),
        "{text}"
    );
    assert!(text.contains("static stability"), "{text}");
    let jsonl = simulate(&["--scenario", &path, "--format", "jsonl"]);
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    let summaries = summaries(&stdout(&jsonl));
    assert_eq!(summary_of(&summaries, "default")["rejected"], 0);
    assert!(
        summary_of(&summaries, "java-v1")["rejected"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn the_eks_pod_identity_scenario_runs_credstate_and_says_why_java_v1_cannot() {
    let path = shipped("eks-pod-identity.json");
    let text = simulate(&["--scenario", &path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(
        text.contains("http://169.254.170.23/v1/credentials"),
        "{text}"
    );
    assert!(text.contains("rotated every 1h"), "{text}");
    assert!(text.contains("java-v1: not run — "), "{text}");
    assert!(text.contains("reads no token file"), "{text}");
    assert!(!text.contains("── java-v1"), "{text}");
    // The missing token file shows with its cause, and costs no call.
    assert!(text.contains("could not be read: no such file"), "{text}");
    let jsonl = simulate(&["--scenario", &path, "--format", "jsonl"]);
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    let summaries = summaries(&stdout(&jsonl));
    assert_eq!(summaries.len(), 1);
    assert_eq!(summary_of(&summaries, "default")["rejected"], 0);
    assert!(stderr(&jsonl).contains("note: java-v1 not run"));
    assert!(stdout(&jsonl).contains(r#""cause":"TokenFileUnreadable""#));
}

#[test]
fn asking_java_v1_for_a_source_it_cannot_serve_exits_2_naming_the_policy_and_why() {
    let path = shipped("eks-pod-identity.json");
    for policy in ["java-v1", "java-v1-async"] {
        let output = simulate(&["--scenario", &path, "--policy", policy]);
        assert_eq!(output.status.code(), Some(2), "{policy}");
        let message = stderr(&output);
        assert!(
            message.contains(&format!("the {policy} policy cannot run this scenario")),
            "{message}"
        );
        assert!(message.contains("token file"), "{message}");
        assert!(stdout(&output).is_empty());
    }
    let strict = simulate(&[
        "--scenario",
        &path,
        "--policy",
        "strict",
        "--format",
        "jsonl",
    ]);
    assert!(strict.status.success(), "{}", stderr(&strict));
}

#[test]
fn a_configured_container_token_never_reaches_the_output() {
    let file = TempScenario::new(
        "container-token",
        r#"{"duration": "2h", "callers": [{"every": "5m"}],
            "faults": [{"from": "30m", "to": "40m", "kind": "http_500"}],
            "config": {"container": {"uri": "http://127.0.0.1:9911/creds",
                       "auth": {"token": "sim-cli-secret-token"}}}}"#,
    );
    for format in ["text", "jsonl"] {
        let output = simulate(&["--scenario", file.path(), "--format", format]);
        assert!(output.status.success(), "{}", stderr(&output));
        let printed = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!printed.contains("sim-cli-secret-token"), "{printed}");
        assert_eq!(
            summaries_or_table_policies(&stdout(&output), format),
            ["default", "java-v1"]
        );
    }
}

/// The policies a run printed, from the jsonl summaries or the text headers.
fn summaries_or_table_policies(out: &str, format: &str) -> Vec<String> {
    if format == "jsonl" {
        return summaries(out)
            .iter()
            .map(|s| s["policy"].as_str().unwrap().to_string())
            .collect();
    }
    out.lines()
        .filter_map(|line| line.strip_prefix("── "))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_bad_container_scenario_exits_2_naming_the_field() {
    let cases = [
        (
            r#"{"duration": "1h", "container": {"token_rotation": "1h"}}"#,
            "`container`",
        ),
        (
            r#"{"duration": "1h", "faults": [{"from": "0s", "kind": "token_file_missing"}],
                "config": {"container": {"uri": "http://169.254.170.2/v2/credentials/a"}}}"#,
            "faults[0].kind",
        ),
        (
            r#"{"duration": "1h", "config": {"container": {"uri": "http://169.254.170.9/creds"}}}"#,
            "config.container.uri",
        ),
    ];
    for (index, (text, field)) in cases.into_iter().enumerate() {
        let file = TempScenario::new(&format!("bad-container{index}"), text);
        let output = simulate(&["--scenario", file.path()]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let message = stderr(&output);
        assert!(message.contains(field), "{text}: {message}");
        assert!(stdout(&output).is_empty());
    }
}
