//! `credstate config [--json]`: the configuration credstate resolves from
//! this process's environment and AWS config file, and where each value came
//! from. The core resolves, the adapters' `resolve_process_config` reads; this only prints.

use std::process::ExitCode;

use credstate::{ConfigReport, Settings};

use credstate_adapter_support::resolve_process_config;

/// Arguments of `credstate config`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let resolved = match resolve_process_config(&Settings::default()) {
        Ok(resolved) => resolved,
        Err(err) => {
            eprintln!("credstate config: {err}");
            return ExitCode::from(2);
        }
    };
    for warning in &resolved.warnings {
        eprintln!("credstate config: warning: {warning}");
    }
    let report = resolved.report();
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("credstate config: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&report));
    }
    ExitCode::SUCCESS
}

/// One row per value: setting, value, origin, in aligned columns.
fn table(report: &ConfigReport) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("source", report.source.as_str().to_string()),
        ("imds.endpoint", report.imds.endpoint.clone()),
        ("imds.v1_disabled", report.imds.v1_disabled.to_string()),
        ("imds.timeout_ms", report.imds.timeout_ms.to_string()),
        ("imds.attempts", report.imds.attempts.to_string()),
        (
            "imds.profile_name",
            report
                .imds
                .profile_name
                .clone()
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if let Some(container) = &report.container {
        rows.push(("container.uri", container.uri.clone()));
        rows.push((
            "container.auth",
            container.auth.clone().unwrap_or_else(|| "none".into()),
        ));
    }
    rows.push(("profile", report.profile.clone()));
    rows.push((
        "config_file",
        report.config_file.clone().unwrap_or_else(|| "-".into()),
    ));

    let header = ("SETTING", "VALUE", "ORIGIN");
    let key_width = rows
        .iter()
        .map(|(k, _)| k.len())
        .chain([header.0.len()])
        .max()
        .unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|(_, v)| v.chars().count())
        .chain([header.1.len()])
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{:<key_width$}  {:<value_width$}  {}\n",
        header.0, header.1, header.2
    );
    for (key, value) in rows {
        let origin = report.origins.get(key).map_or("-", String::as_str);
        out.push_str(&format!(
            "{key:<key_width$}  {value:<value_width$}  {origin}\n"
        ));
    }
    out
}
