//! Table-driven configuration resolution (FIELD-GUIDE §5) and container URI
//! rules (§2): the cases live in `tests/data/*.json`, so adding one is adding
//! a line of data. Every failing case is reported, not just the first.

use std::collections::BTreeMap;

use credstate::{
    resolve_config, Demand, Environment, Machine, Output, ProfileFile, ResolveError, Settings,
    Timestamp,
};
use serde::Deserialize;
use serde_json::Value;

const CONFIG_CASES: &str = include_str!("../data/config_cases.json");
const CONTAINER_URI_CASES: &str = include_str!("../data/container_uri_cases.json");

#[derive(Deserialize)]
struct ConfigTable {
    profile_path: String,
    cases: Vec<ConfigCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigCase {
    name: String,
    #[serde(default)]
    explicit: Option<Value>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Lines of the profile file; absent means no file.
    #[serde(default)]
    profile: Option<Vec<String>>,
    #[serde(default)]
    expect: Option<Value>,
    /// Each must be contained in some warning; `[]` means no warnings at all.
    #[serde(default)]
    warnings: Option<Vec<String>>,
    #[serde(default)]
    error: Option<ExpectedError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    /// The setting's name, or null for a syntax error.
    key: Option<String>,
    origin: String,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    not_contains: Option<String>,
}

/// Whether `actual` has everything `expected` has: objects key by key (and
/// recursively), anything else exactly.
fn mismatches(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, want_value) in want {
                let here = format!("{path}.{key}");
                match got.get(key) {
                    Some(got_value) => mismatches(&here, want_value, got_value, out),
                    None => out.push(format!("{here}: missing (expected {want_value})")),
                }
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

fn run_config_case(case: &ConfigCase, profile_path: &str) -> Result<(), String> {
    let settings: Settings = match &case.explicit {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|err| format!("bad explicit settings in the case: {err}"))?,
        None => Settings::default(),
    };
    let env: Environment = case.env.clone();
    let text = case.profile.as_ref().map(|lines| lines.join("\n"));
    let file = text.as_deref().map(|text| ProfileFile {
        path: profile_path,
        text,
    });
    let outcome = resolve_config(&settings, &env, file);
    match (&case.error, outcome) {
        (Some(want), Err(err)) => check_error(want, &err),
        (Some(_), Ok(resolved)) => Err(format!(
            "expected an error, got {}",
            serde_json::to_string(&resolved.report()).unwrap()
        )),
        (None, Err(err)) => Err(format!("unexpected error: {err}")),
        (None, Ok(resolved)) => {
            let report = serde_json::to_value(resolved.report()).unwrap();
            let mut problems = Vec::new();
            if let Some(expect) = &case.expect {
                mismatches("", expect, &report, &mut problems);
            }
            match &case.warnings {
                Some(want) if want.is_empty() && !resolved.warnings.is_empty() => {
                    problems.push(format!("expected no warnings, got {:?}", resolved.warnings))
                }
                Some(want) => {
                    for text in want {
                        if !resolved.warnings.iter().any(|w| w.contains(text.as_str())) {
                            problems.push(format!(
                                "no warning contains {text:?}: {:?}",
                                resolved.warnings
                            ));
                        }
                    }
                }
                None => {}
            }
            // The resolution must always make a machine configuration that
            // the machine accepts.
            if let Err(err) = resolved.machine_config().validate() {
                problems.push(format!("machine config rejected: {err}"));
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        }
    }
}

fn check_error(want: &ExpectedError, err: &ResolveError) -> Result<(), String> {
    let message = err.to_string();
    let mut problems = Vec::new();
    if err.key() != want.key.as_deref() {
        problems.push(format!("key {:?}, expected {:?}", err.key(), want.key));
    }
    if err.origin().to_string() != want.origin {
        problems.push(format!("origin {}, expected {}", err.origin(), want.origin));
    }
    if let Some(text) = &want.contains {
        if !message.contains(text.as_str()) {
            problems.push(format!("message lacks {text:?}"));
        }
    }
    if let Some(text) = &want.not_contains {
        if message.contains(text.as_str()) || format!("{err:?}").contains(text.as_str()) {
            problems.push(format!("message contains {text:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {message}", problems.join(", ")))
    }
}

/// Runs every case, and fails naming each case that failed and why.
fn assert_every_case_passes<Case>(
    cases: &[Case],
    name: impl Fn(&Case) -> &str,
    run: impl Fn(&Case) -> Result<(), String>,
) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run(case).err().map(|why| format!("{}: {why}", name(case))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn configuration_resolution_follows_every_case_of_the_table() {
    let table: ConfigTable = serde_json::from_str(CONFIG_CASES).expect("config_cases.json parses");
    assert!(table.cases.len() >= 30, "at least 30 cases");
    assert_every_case_passes(
        &table.cases,
        |case| &case.name,
        |case| run_config_case(case, &table.profile_path),
    );
}

#[test]
fn the_table_covers_every_rejected_kind_of_value() {
    let table: ConfigTable = serde_json::from_str(CONFIG_CASES).unwrap();
    let error_keys: Vec<&str> = table
        .cases
        .iter()
        .filter_map(|c| c.error.as_ref()?.key.as_deref())
        .collect();
    for key in [
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "ec2_metadata_service_endpoint_mode",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_METADATA_SERVICE_TIMEOUT",
        "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
        "AWS_EC2_METADATA_DISABLED",
        "ec2_metadata_v1_disabled",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        assert!(error_keys.contains(&key), "no error case for {key}");
    }
}

#[derive(Deserialize)]
struct UriTable {
    cases: Vec<UriCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UriCase {
    name: String,
    #[serde(default)]
    relative: Option<String>,
    #[serde(default)]
    full: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    warning: Option<String>,
    /// The variable the error must name.
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    contains: Option<String>,
}

/// The URL of the machine's first request under this configuration.
fn first_request_url(config: credstate::Config) -> Result<String, String> {
    let now = Timestamp::from_unix_secs(1_795_910_400);
    let mut machine = Machine::new(config, 1).map_err(|err| err.to_string())?;
    if !matches!(machine.demand(now), Demand::Pending) {
        return Err("the demand did not start a fetch".into());
    }
    for _ in 0..16 {
        match machine.poll(now) {
            Output::Send(request) => return Ok(request.url),
            Output::Event(_) => {}
            other => return Err(format!("expected a request, got {other:?}")),
        }
    }
    Err("no request".into())
}

fn run_uri_case(case: &UriCase) -> Result<(), String> {
    let mut env = Environment::new();
    if let Some(relative) = &case.relative {
        env.insert(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".into(),
            relative.clone(),
        );
    }
    if let Some(full) = &case.full {
        env.insert("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), full.clone());
    }
    match (
        resolve_config(&Settings::default(), &env, None),
        &case.error,
    ) {
        (Ok(resolved), None) => {
            let want = case.uri.as_deref().ok_or("case needs `uri` or `error`")?;
            let got = resolved.container.as_ref().map(|c| c.uri.as_str());
            if got != Some(want) {
                return Err(format!("resolved {got:?}, expected {want:?}"));
            }
            if let Some(text) = &case.warning {
                if !resolved.warnings.iter().any(|w| w.contains(text.as_str())) {
                    return Err(format!(
                        "no warning contains {text:?}: {:?}",
                        resolved.warnings
                    ));
                }
            }
            let url = first_request_url(resolved.machine_config())?;
            if url != want {
                return Err(format!("the machine requested {url}, expected {want}"));
            }
            Ok(())
        }
        (Ok(resolved), Some(_)) => Err(format!(
            "expected an error, resolved {:?}",
            resolved.container.map(|c| c.uri)
        )),
        (Err(err), None) => Err(format!("unexpected error: {err}")),
        (Err(err), Some(key)) => {
            let message = err.to_string();
            if err.key() != Some(key.as_str()) {
                return Err(format!(
                    "error names {:?}, expected {key}: {message}",
                    err.key()
                ));
            }
            if err.origin().to_string() != format!("env:{key}") {
                return Err(format!("error origin {}: {message}", err.origin()));
            }
            match &case.contains {
                Some(text) if !message.contains(text.as_str()) => {
                    Err(format!("message lacks {text:?}: {message}"))
                }
                _ => Ok(()),
            }
        }
    }
}

#[test]
fn container_uris_follow_every_case_of_the_table() {
    let table: UriTable =
        serde_json::from_str(CONTAINER_URI_CASES).expect("container_uri_cases.json parses");
    assert!(table.cases.len() >= 15, "at least 15 cases");
    assert_every_case_passes(&table.cases, |case| &case.name, run_uri_case);
}
