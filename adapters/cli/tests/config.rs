//! `credstate config [--json]` run as a process, with a controlled
//! environment and a temporary config file.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::{stderr, stdout};

/// A scratch directory that is removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "credstate-config-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path.to_string_lossy().into_owned()
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `credstate config ARGS` with only `HOME` and `env` in its environment.
fn credstate_config(args: &[&str], home: &Scratch, env: &[(&str, &str)]) -> Output {
    let args: Vec<&str> = ["config"].iter().chain(args).copied().collect();
    support::credstate(&args, &home.path(), env)
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    serde_json::from_str(&stdout(output)).expect("stdout is JSON")
}

#[test]
fn json_reports_values_and_origins_from_the_environment_and_the_config_file() {
    let home = Scratch::new("json");
    let config = home.write(
        "config",
        "[default]\nmetadata_service_num_attempts = 9\n\n[profile dev]\nmetadata_service_timeout = 2.5\nec2_metadata_v1_disabled = true\n",
    );
    let output = credstate_config(
        &["--json"],
        &home,
        &[
            ("AWS_CONFIG_FILE", &config),
            ("AWS_PROFILE", "dev"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv6"),
        ],
    );
    let report = json(&output);
    assert_eq!(report["source"], "imds");
    assert_eq!(report["imds"]["endpoint"], "http://[fd00:ec2::254]");
    assert_eq!(report["imds"]["timeout_ms"], 2500);
    assert_eq!(report["imds"]["v1_disabled"], true);
    assert_eq!(
        report["imds"]["attempts"], 3,
        "the default profile is not used"
    );
    assert_eq!(report["imds"]["profile_name"], serde_json::Value::Null);
    assert_eq!(report["container"], serde_json::Value::Null);
    let origins = &report["origins"];
    assert_eq!(
        origins["imds.endpoint"],
        "env:AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
    );
    assert_eq!(origins["imds.timeout_ms"], format!("profile:{config}:5"));
    assert_eq!(origins["imds.v1_disabled"], format!("profile:{config}:6"));
    assert_eq!(origins["imds.attempts"], "default");
    assert_eq!(origins["profile"], "env:AWS_PROFILE");
    assert_eq!(origins["config_file"], "env:AWS_CONFIG_FILE");
}

#[test]
fn the_table_shows_every_value_with_its_origin_in_aligned_columns() {
    let home = Scratch::new("table");
    std::fs::create_dir_all(home.0.join(".aws")).unwrap();
    let config = home.write(
        ".aws/config",
        "[default]\nmetadata_service_num_attempts = 2\n",
    );
    let output = credstate_config(
        &[],
        &home,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "table-token-secret"),
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("table-token-secret"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let row = |key: &str| {
        lines
            .iter()
            .find(|line| line.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no row {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("source"),
        [
            "source",
            "container",
            "env:AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        ]
    );
    assert_eq!(
        row("container.uri")[1],
        "http://169.254.170.2/v2/credentials/abc"
    );
    assert_eq!(
        row("container.auth"),
        [
            "container.auth",
            "env",
            "env:AWS_CONTAINER_AUTHORIZATION_TOKEN"
        ]
    );
    assert_eq!(
        row("imds.attempts"),
        ["imds.attempts", "2", &format!("profile:{config}:2")]
    );
    assert_eq!(
        row("imds.timeout_ms"),
        ["imds.timeout_ms", "1000", "default"]
    );
    assert_eq!(row("config_file"), ["config_file", &config, "default"]);
    // Every origin starts in the same column as the header's.
    let origin_column = lines[0].find("ORIGIN").expect("header");
    for line in &lines[1..] {
        let origin = line.split_whitespace().last().unwrap();
        assert_eq!(line.rfind(origin), Some(origin_column), "{line}");
    }
}

#[test]
fn a_configuration_error_exits_2_naming_the_key_and_where_it_came_from() {
    let home = Scratch::new("error");
    let output = credstate_config(
        &["--json"],
        &home,
        &[("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "0")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("AWS_METADATA_SERVICE_NUM_ATTEMPTS")
            && message.contains("environment variable"),
        "{message}"
    );

    let config = home.write(
        "config",
        "[default]\nec2_metadata_service_endpoint_mode = IPv7\n",
    );
    let output = credstate_config(&[], &home, &[("AWS_CONFIG_FILE", &config)]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("ec2_metadata_service_endpoint_mode")
            && message.contains(&format!("{config} line 2")),
        "{message}"
    );
}

#[test]
fn a_missing_config_file_is_fine() {
    let home = Scratch::new("missing");
    let report = json(&credstate_config(&["--json"], &home, &[]));
    assert_eq!(report["source"], "imds");
    assert_eq!(report["imds"]["endpoint"], "http://169.254.169.254");
    assert_eq!(
        report["config_file"],
        format!("{}/.aws/config", home.path())
    );
}

#[test]
fn ignored_settings_are_warned_about_on_stderr() {
    let home = Scratch::new("warn");
    let output = credstate_config(
        &["--json"],
        &home,
        &[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
        ],
    );
    assert_eq!(json(&output)["imds"]["endpoint"], "http://127.0.0.1:1338");
    assert!(stderr(&output).contains("warning"), "{}", stderr(&output));
}
