//! `credstate mock-imds`: run the mock IMDS on loopback until Ctrl-C, so
//! credstate, an AWS SDK or curl can be pointed at a misbehaving metadata
//! service.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use credstate::{format_duration, parse_duration};
use credstate_tests::mock_imds::{FaultSchedule, MockImds, MockImdsOptions};
use credstate_tests::scenario::{Rotation, Scenario};

/// Arguments of `credstate mock-imds`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one). The server never listens
    /// beyond loopback.
    #[arg(long, default_value_t = 1338)]
    port: u16,
    /// Scenario file: its `imds` model, seed and faults (timed from the
    /// server's start) set the behaviour; the flags below override it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Lifetime of each set of credentials, e.g. `6h` or `15m`.
    #[arg(long, value_name = "DURATION", value_parser = lifetime)]
    credential_lifetime: Option<Duration>,
    /// Rotation: `late` (same credentials until 5 min before expiry, as EC2)
    /// or `fresh` (new ones on every fetch).
    #[arg(long, value_parser = ["late", "fresh"])]
    rotation: Option<String>,
    /// Role attached to the instance.
    #[arg(long, value_name = "NAME", conflicts_with = "no_role")]
    role: Option<String>,
    /// Attach no role (the role list answers 404).
    #[arg(long)]
    no_role: bool,
    /// Refuse token-less GETs with 401 (IMDSv1 disabled).
    #[arg(long)]
    v1_disabled: bool,
    /// Answer 404 on `…/security-credentials-extended/` (no account id).
    #[arg(long)]
    no_extended_api: bool,
    /// `Authorization` value the container endpoint requires.
    #[arg(long, value_name = "VALUE")]
    container_authorization: Option<String>,
    /// Do not print a line per request on stderr.
    #[arg(long)]
    quiet: bool,
}

fn lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = parse_duration(text).map_err(|err| err.to_string())?;
    if lifetime < Duration::from_secs(1) {
        return Err(String::from("must be at least 1s"));
    }
    Ok(lifetime)
}

/// Run `credstate mock-imds`.
pub fn run(args: Args) -> ExitCode {
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("credstate mock-imds: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("credstate mock-imds: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(options))
}

fn options(args: &Args) -> Result<MockImdsOptions, String> {
    let mut options = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read scenario {}: {err}", path.display()))?;
            let scenario = Scenario::from_json(&text).map_err(|err| err.to_string())?;
            if !scenario.callers.is_empty() || !scenario.config.is_empty() {
                eprintln!(
                    "credstate mock-imds: note: the scenario's callers and config are ignored: \
                     clients bring their own"
                );
            }
            MockImdsOptions::from_scenario(&scenario)
        }
        None => MockImdsOptions::default(),
    };
    options.port = args.port;
    options.log_requests = !args.quiet;
    if let Some(lifetime) = args.credential_lifetime {
        options.credential_lifetime = lifetime;
    }
    match args.rotation.as_deref() {
        Some("fresh") => options.rotation = Rotation::Fresh,
        Some("late") => options.rotation = Rotation::Late,
        _ => {}
    }
    if let Some(role) = &args.role {
        options.role = Some(role.clone());
    }
    if args.no_role {
        options.role = None;
    }
    if args.v1_disabled {
        options.v1_disabled = true;
    }
    if args.no_extended_api {
        options.extended_api = false;
    }
    if let Some(value) = &args.container_authorization {
        options.container_authorization = Some(value.clone());
    }
    Ok(options)
}

/// Print to stdout; a closed stdout (`| head -1`) must not stop the server.
fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `writeln!` into a `String`, which cannot fail.
macro_rules! push_line {
    ($text:expr, $($arg:tt)*) => {{
        let _ = writeln!($text, $($arg)*);
    }};
}

async fn serve(options: MockImdsOptions) -> ExitCode {
    let port = options.port;
    let mock = match MockImds::spawn(options.clone()).await {
        Ok(mock) => mock,
        Err(err) => {
            eprintln!("credstate mock-imds: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    say(&banner(&mock, &options));
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("credstate mock-imds: cannot wait for Ctrl-C: {err}");
        return ExitCode::FAILURE;
    }
    let stats = mock.stats();
    say(&format!(
        "\nstopped after {} requests ({} token, {} credentials)\n",
        stats.total,
        stats.token_requests(),
        stats.credential_requests()
    ));
    ExitCode::SUCCESS
}

/// What to tell the user once the server listens.
fn banner(mock: &MockImds, options: &MockImdsOptions) -> String {
    let mut text = String::new();
    let endpoint = mock.endpoint();
    let rotation = match options.rotation {
        Rotation::Fresh => "fresh (new on every fetch)",
        _ => "late (same until 5m before expiry)",
    };
    push_line!(text, "mock IMDS listening on {endpoint} (loopback only)");
    push_line!(
        text,
        "  role: {} | credentials live {} | rotation {rotation} | IMDSv1 {} | extended API {}",
        options.role.as_deref().unwrap_or("(none attached)"),
        format_duration(options.credential_lifetime),
        if options.v1_disabled {
            "disabled"
        } else {
            "allowed"
        },
        if options.extended_api { "on" } else { "off" },
    );
    if options.credential_lifetime <= options.rotate_before && options.rotation == Rotation::Late {
        push_line!(text, "  note: credentials live no longer than the rotation window: every fetch gets new ones");
    }
    for rule in &options.faults {
        let span = match rule.schedule {
            FaultSchedule::Between { from, to: Some(to) } => format!(
                "from {} to {} after start",
                format_duration(from),
                format_duration(to)
            ),
            FaultSchedule::Between { from, to: None } => {
                format!("from {} after start on", format_duration(from))
            }
            _ => String::from("always"),
        };
        push_line!(
            text,
            "  fault: {} {span} ({}% of requests)",
            rule.kind.name(),
            rule.percent
        );
    }
    push_line!(
        text,
        "  container endpoint: {} ({})",
        mock.container_url(),
        if options.container_authorization.is_some() {
            "Authorization required"
        } else {
            "no Authorization required"
        }
    );
    text.push('\n');
    push_line!(text, "Point credstate or an AWS SDK at it:");
    push_line!(
        text,
        "  export AWS_EC2_METADATA_SERVICE_ENDPOINT={endpoint}"
    );
    push_line!(text, "or, for container credentials:");
    push_line!(
        text,
        "  export AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
        mock.container_url()
    );
    if options.container_authorization.is_some() {
        push_line!(
            text,
            "  export AWS_CONTAINER_AUTHORIZATION_TOKEN='<the --container-authorization value>'"
        );
    }
    push_line!(
        text,
        "Request counts: curl {endpoint}/_stats   (reset: curl -X POST {endpoint}/_reset)"
    );
    push_line!(text, "Press Ctrl-C to stop.");
    text
}
