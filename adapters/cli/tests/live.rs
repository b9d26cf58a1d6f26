//! `credstate get`, `credential-process` and `watch` run as processes against
//! the mock IMDS on loopback, with a controlled environment.

mod support;

use std::process::Output;
use std::time::Duration;

use credstate_tests::mock_imds::{MockImds, MockImdsOptions};
use credstate_tests::scenario::{FaultKind, TokenSupport};

use support::{stderr, stdout};

/// `credstate ARGS` with only `env` in its environment (and a HOME with no
/// AWS config file in it).
fn credstate(args: &[&str], env: &[(&str, &str)]) -> Output {
    support::credstate(args, "/nonexistent/credstate-live-test-home", env)
}

fn issued(mock: &MockImds) -> (String, String, String) {
    let issued = mock.issued_credentials();
    let last = issued.last().expect("the mock issued credentials");
    (
        last.access_key_id.clone(),
        last.secret_access_key.expose().to_owned(),
        last.token.expose().to_owned(),
    )
}

#[test]
fn get_prints_the_credentials_with_secrets_redacted() {
    let mock = MockImds::start(MockImdsOptions::default());
    let output = credstate(&["get", "--endpoint", &mock.endpoint()], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let (access_key_id, secret, token) = issued(&mock);
    assert!(text.contains(&access_key_id), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("AccountId:       123456789012"), "{text}");
    assert!(!text.contains(&secret) && !text.contains(&token), "{text}");
}

#[test]
fn get_shows_secrets_only_when_asked_and_speaks_json() {
    let mock = MockImds::start(MockImdsOptions::default());
    let output = credstate(
        &[
            "get",
            "--endpoint",
            &mock.endpoint(),
            "--json",
            "--show-secrets",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let (access_key_id, secret, token) = issued(&mock);
    assert_eq!(json["AccessKeyId"], access_key_id.as_str());
    assert_eq!(json["SecretAccessKey"], secret.as_str());
    assert_eq!(json["SessionToken"], token.as_str());
    assert_eq!(json["AccountId"], "123456789012");
}

#[test]
fn credential_process_prints_version_1_json_an_sdk_accepts() {
    let mock = MockImds::start(MockImdsOptions::default());
    let output = credstate(&["credential-process", "--endpoint", &mock.endpoint()], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let (access_key_id, secret, token) = issued(&mock);
    assert_eq!(json["Version"], 1);
    assert_eq!(json["AccessKeyId"], access_key_id.as_str());
    assert_eq!(json["SecretAccessKey"], secret.as_str());
    assert_eq!(json["SessionToken"], token.as_str());
    let expiration = json["Expiration"].as_str().unwrap();
    assert_eq!(expiration, mock.issued_credentials()[0].expiration);
}

#[test]
fn the_endpoint_comes_from_the_environment_when_not_given() {
    let mock = MockImds::start(MockImdsOptions::default());
    let endpoint = mock.endpoint();
    let output = credstate(
        &["get"],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&issued(&mock).0));
}

/// Runs `credstate ARGS` and checks it failed with exactly one line on
/// stderr that contains `expected`, and nothing on stdout.
fn assert_fails_with_one_line(output: &Output, code: i32, expected: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("credstate: "), "{err}");
    assert!(err.contains(expected), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(output).is_empty());
}

#[test]
fn no_role_attached_is_one_clear_line_and_a_failure_exit() {
    let mock = MockImds::start(MockImdsOptions {
        role: None,
        ..MockImdsOptions::default()
    });
    let output = credstate(&["get", "--endpoint", &mock.endpoint()], &[]);
    assert_fails_with_one_line(&output, 1, "no IAM role is attached to this instance");
}

#[test]
fn a_server_error_names_the_status_and_the_role() {
    let mock = MockImds::start(MockImdsOptions {
        role: Some("web".into()),
        ..MockImdsOptions::default()
    });
    mock.add_fault(
        credstate_tests::mock_imds::FaultRule::always(FaultKind::Http500)
            .on_path("/latest/meta-data/iam/security-credentials-extended/web"),
    );
    let output = credstate(&["credential-process", "--endpoint", &mock.endpoint()], &[]);
    assert_fails_with_one_line(
        &output,
        1,
        "the IMDS request for the credentials of role 'web' failed with HTTP 500",
    );
}

#[test]
fn a_disabled_imdsv1_without_tokens_is_the_typed_error() {
    let mock = MockImds::start(MockImdsOptions {
        token: TokenSupport::Unsupported,
        ..MockImdsOptions::default()
    });
    let endpoint = mock.endpoint();
    let output = credstate(
        &["get"],
        &[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str()),
            ("AWS_EC2_METADATA_V1_DISABLED", "true"),
        ],
    );
    assert_fails_with_one_line(&output, 1, "IMDSv1 is disabled (by configuration)");
}

#[test]
fn a_disabled_metadata_service_is_reported_without_a_request() {
    let mock = MockImds::start(MockImdsOptions::default());
    let output = credstate(
        &["get", "--endpoint", &mock.endpoint()],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_fails_with_one_line(&output, 1, "disabled by configuration");
    assert_eq!(mock.stats().total, 0);
}

#[test]
fn an_unusable_endpoint_is_a_configuration_error() {
    let output = credstate(&["get", "--endpoint", "169.254.169.254"], &[]);
    assert_fails_with_one_line(&output, 2, "endpoint");
}

#[test]
fn watch_prints_the_events_of_the_fetch_and_the_credentials() {
    let mock = MockImds::start(MockImdsOptions {
        latency: Duration::from_millis(5),
        ..MockImdsOptions::default()
    });
    let output = credstate(
        &[
            "watch",
            "--endpoint",
            &mock.endpoint(),
            "--every",
            "200ms",
            "--for",
            "1s",
            "--json",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let events: Vec<String> = stdout(&output)
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            json["event"].as_str().unwrap().to_owned()
        })
        .collect();
    for expected in [
        "fetch_started",
        "token_acquired",
        "credentials_received",
        "refresh_scheduled",
        "credentials",
    ] {
        assert!(events.iter().any(|event| event == expected), "{events:?}");
    }
    let (_, secret, token) = issued(&mock);
    let all = stdout(&output);
    assert!(!all.contains(&secret) && !all.contains(&token));
}
