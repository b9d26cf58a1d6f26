//! `credstate simulate`: run a scenario on simulated time against credstate
//! and the seed policy, and show what each did and what it cost.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use credstate::{format_duration, Config, ContainerAuth, ContainerSource};
use credstate_tests::scenario::{
    Caller, ContainerModel, Fault, FaultKind, Rotation, Scenario, TokenSupport, DEFAULT_SCENARIO,
};
use credstate_tests::sim::timeline::{clock_time, format_signed_ms};
use credstate_tests::sim::{digest, simulate, PolicyKind, Run};

/// Arguments of `credstate simulate`.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario file (JSON); without it the built-in scenario runs: 12 h, a
    /// caller every minute, a token blip and an IMDS outage across expiry.
    #[arg(long, value_name = "FILE.json")]
    scenario: Option<PathBuf>,
    /// Run only this policy: default, strict, java-v1 or java-v1-async.
    /// Without it, default and java-v1 run side by side (java-v1 only where
    /// the seed system can serve the scenario's source).
    #[arg(long, value_name = "POLICY")]
    policy: Option<PolicyKind>,
    /// Output: a condensed timeline and a summary table, or one JSON object
    /// per event and one summary object per policy.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Use this seed instead of the scenario's.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Readable timeline and table.
    Text,
    /// JSON lines.
    Jsonl,
}

/// Usage problems (bad scenario, unreadable file) exit with this.
const USAGE: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    let (label, text) = match &args.scenario {
        None => (
            String::from("built-in scenario"),
            DEFAULT_SCENARIO.to_string(),
        ),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (path.display().to_string(), text),
            Err(err) => {
                eprintln!(
                    "credstate simulate: cannot read scenario file {}: {err}",
                    path.display()
                );
                return ExitCode::from(USAGE);
            }
        },
    };
    let mut scenario = match Scenario::from_json(&text) {
        Ok(scenario) => scenario,
        Err(err) => {
            eprintln!("credstate simulate: {label}: {err}");
            return ExitCode::from(USAGE);
        }
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let config = match scenario.credstate_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("credstate simulate: {label}: {err}");
            return ExitCode::from(USAGE);
        }
    };
    let (policies, skipped) = match args.policy {
        Some(policy) => match policy.cannot_run(&config) {
            None => (vec![policy], Vec::new()),
            Some(reason) => {
                eprintln!(
                    "credstate simulate: {label}: the {policy} policy cannot run this scenario: {reason}"
                );
                return ExitCode::from(USAGE);
            }
        },
        None => {
            let (run, skipped): (Vec<_>, Vec<_>) = [PolicyKind::Default, PolicyKind::JavaV1]
                .into_iter()
                .map(|policy| (policy, policy.cannot_run(&config)))
                .partition(|(_, reason)| reason.is_none());
            let skipped: Vec<(PolicyKind, String)> = skipped
                .into_iter()
                .filter_map(|(policy, reason)| Some((policy, reason?)))
                .collect();
            (run.into_iter().map(|(policy, _)| policy).collect(), skipped)
        }
    };
    let mut runs = Vec::new();
    for policy in policies {
        match simulate(&scenario, policy) {
            Ok(run) => runs.push(run),
            Err(err) => {
                eprintln!("credstate simulate: {label}: {err}");
                return ExitCode::from(USAGE);
            }
        }
    }

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Text => write_text(&mut out, &label, &scenario, &config, &skipped, &runs),
        Format::Jsonl => {
            // Keep stdout pure JSON lines; say what did not run on stderr.
            for (policy, reason) in &skipped {
                eprintln!("credstate simulate: note: {policy} not run: {reason}");
            }
            write_jsonl(&mut out, &runs)
        }
    }
    .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("credstate simulate: cannot write output: {err}");
            return ExitCode::FAILURE;
        }
    }
    let truncated: Vec<&str> = runs
        .iter()
        .filter(|run| run.truncated)
        .map(|run| run.policy.name())
        .collect();
    if truncated.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "credstate simulate: the run of {} hit the harness's step cap and stopped early",
            truncated.join(", ")
        );
        ExitCode::FAILURE
    }
}

fn write_jsonl(out: &mut impl Write, runs: &[Run]) -> io::Result<()> {
    for run in runs {
        for entry in &run.timeline {
            writeln!(out, "{}", entry.to_json_line(Some(run.policy.name())))?;
        }
        writeln!(out, "{}", run.summary_json_line())?;
    }
    Ok(())
}

fn write_text(
    out: &mut impl Write,
    label: &str,
    scenario: &Scenario,
    config: &Config,
    skipped: &[(PolicyKind, String)],
    runs: &[Run],
) -> io::Result<()> {
    write!(out, "{}", describe(label, scenario, config))?;
    for (policy, reason) in skipped {
        writeln!(out, "  {policy}: not run — {reason}")?;
    }
    for run in runs {
        writeln!(out)?;
        writeln!(
            out,
            "── {}: {} ──",
            run.policy.name(),
            run.policy.description_for(config)
        )?;
        let lines = digest(&run.timeline);
        if lines.is_empty() {
            writeln!(out, "  (nothing happened)")?;
        }
        for line in lines {
            let mark = if line.warning { '!' } else { ' ' };
            writeln!(out, "{mark} {line}")?;
        }
    }
    writeln!(out)?;
    write!(out, "{}", summary_table(runs))
}

fn describe(label: &str, scenario: &Scenario, config: &Config) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Scenario: {label} — {} simulated, seed {}",
        format_duration(scenario.duration),
        scenario.seed
    );
    let callers: Vec<String> = scenario.callers.iter().map(describe_caller).collect();
    let _ = writeln!(
        text,
        "  callers: {}",
        if callers.is_empty() {
            String::from("none")
        } else {
            callers.join("; ")
        }
    );
    match &config.container {
        Some(source) => {
            let _ = writeln!(
                text,
                "  agent:   {}",
                describe_agent(source, &scenario.container_model())
            );
        }
        None => {
            let _ = writeln!(text, "  IMDS:    {}", describe_imds(scenario));
        }
    }
    let faults: Vec<String> = scenario.faults.iter().map(describe_fault).collect();
    let _ = writeln!(
        text,
        "  faults:  {}",
        if faults.is_empty() {
            String::from("none")
        } else {
            faults.join("; ")
        }
    );
    if !scenario.config.is_empty() {
        let overrides: Vec<String> = scenario
            .config
            .iter()
            .map(|(key, value)| format!("{key}={}", describe_override(key, value)))
            .collect();
        let _ = writeln!(text, "  config:  {}", overrides.join(", "));
    }
    text
}

/// A configuration override as shown: the container source without its
/// token, which is a secret.
fn describe_override(key: &str, value: &serde_json::Value) -> String {
    let mut value = value.clone();
    if key == "container" {
        if let Some(token) = value.pointer_mut("/auth/token") {
            *token = serde_json::Value::from("<redacted>");
        }
    }
    value.to_string()
}

fn describe_rotation(rotation: Rotation) -> String {
    match rotation {
        Rotation::Late => String::from("rotated late (5 min before expiry)"),
        Rotation::Fresh => String::from("new on every fetch"),
    }
}

fn describe_agent(source: &ContainerSource, model: &ContainerModel) -> String {
    let mut traits = vec![
        format!("container credentials agent at {}", source.uri),
        match &source.auth {
            ContainerAuth::TokenFile(path) => match model.token_rotation {
                Some(every) => format!(
                    "token file {path} rotated every {} (previous token accepted for {})",
                    format_duration(every),
                    format_duration(model.token_grace())
                ),
                None => format!("token file {path}"),
            },
            ContainerAuth::Token(_) => String::from("a configured authorization token"),
            _ => String::from("no authorization"),
        },
        format!("{} credentials", format_duration(model.credential_lifetime)),
        describe_rotation(model.rotation),
    ];
    traits.push(format!("latency {}", format_duration(model.latency)));
    traits.join(", ")
}

fn describe_imds(scenario: &Scenario) -> String {
    let imds = &scenario.imds;
    let mut traits = vec![
        format!("{} credentials", format_duration(imds.credential_lifetime)),
        describe_rotation(imds.rotation),
        match imds.token {
            TokenSupport::Supported => String::from("IMDSv2 tokens"),
            TokenSupport::Unsupported => String::from("no IMDSv2 (token PUT answers 404)"),
        },
    ];
    if imds.v1_disabled {
        traits.push(String::from("IMDSv1 disabled"));
    }
    if !imds.extended_api {
        traits.push(String::from("no extended API"));
    }
    traits.push(format!("latency {}", format_duration(imds.latency)));
    traits.join(", ")
}

fn describe_caller(caller: &Caller) -> String {
    let at = caller.at.map_or(String::from("0s"), format_duration);
    match (caller.every, caller.burst) {
        (Some(every), _) => format!("one call every {} from {at}", format_duration(every)),
        (None, Some(burst)) => format!("{burst} simultaneous calls at {at}"),
        (None, None) => String::from("none"),
    }
}

fn describe_fault(fault: &Fault) -> String {
    let from = clock_time(fault.from.as_millis() as u64);
    if fault.kind == FaultKind::ClockJump {
        return format!(
            "wall clock jumps {} at {from}",
            format_signed_ms(fault.by.unwrap_or_default())
        );
    }
    let span = match fault.to {
        Some(to) => format!("{from}–{}", clock_time(to.as_millis() as u64)),
        None => format!("from {from}"),
    };
    match fault.percent.filter(|p| *p < 100) {
        Some(percent) => format!("{} {span} ({percent}% of requests)", fault.kind),
        None => format!("{} {span}", fault.kind),
    }
}

const SUMMARY_ROWS: [&str; 5] = [
    "requests sent",
    "calls served",
    "served expired",
    "rejected",
    "longest gap",
];

fn summary_values(run: &Run) -> [String; 5] {
    let metrics = run.metrics;
    [
        metrics.requests.to_string(),
        metrics.served.to_string(),
        metrics.served_expired.to_string(),
        metrics.rejected.to_string(),
        format_gap(metrics.max_gap_ms),
    ]
}

fn summary_table(runs: &[Run]) -> String {
    let rows = SUMMARY_ROWS;
    let label_width = rows.iter().map(|label| label.len()).max().unwrap_or(0);
    let cells: Vec<[String; 5]> = runs.iter().map(summary_values).collect();
    let widths: Vec<usize> = runs
        .iter()
        .zip(&cells)
        .map(|(run, column)| {
            column
                .iter()
                .map(String::len)
                .chain([run.policy.name().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = String::new();
    let _ = write!(table, "{:label_width$}", "");
    for (run, width) in runs.iter().zip(&widths) {
        let _ = write!(table, "  {:>width$}", run.policy.name());
    }
    table.push('\n');
    for (row, label) in rows.iter().enumerate() {
        let _ = write!(table, "{label:label_width$}");
        for (column, width) in cells.iter().zip(&widths) {
            let _ = write!(table, "  {:>width$}", column[row]);
        }
        table.push('\n');
    }
    let unanswered: Vec<String> = runs
        .iter()
        .filter(|run| run.metrics.unanswered > 0)
        .map(|run| format!("{}: {}", run.policy.name(), run.metrics.unanswered))
        .collect();
    if !unanswered.is_empty() {
        let _ = writeln!(
            table,
            "calls still waiting when the run ended — {}",
            unanswered.join(", ")
        );
    }
    table
}

/// Whole seconds, unless the gap is shorter than one.
fn format_gap(ms: u64) -> String {
    let rounded = if ms >= 1000 {
        (ms + 500) / 1000 * 1000
    } else {
        ms
    };
    format_duration(std::time::Duration::from_millis(rounded))
}
