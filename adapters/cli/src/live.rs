//! The live commands: `credstate get`, `credstate credential-process` and
//! `credstate watch`, each a blocking provider from credstate-blocking.
//!
//! A failure prints one line naming the cause (the core's `SourceError`
//! display) and exits with status 1; a configuration that cannot be used
//! exits with status 2. Secrets are printed only where asked for: by
//! `--show-secrets`, and by `credential-process`, whose whole point is to hand
//! them to an AWS SDK.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credstate::{format_duration, parse_duration, Config, Credentials, Event, Settings, Timestamp};
use credstate_blocking::{Clock, Provider, SystemClock};
use serde_json::json;

use credstate_adapter_support::resolve_process_config;

const REDACTED: &str = "<redacted>";

/// Sees every event of the provider (`watch` prints them).
type EventHook = Box<dyn Fn(&Event) + Send + Sync>;

/// Where the credentials come from.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    /// IMDS endpoint, e.g. `http://127.0.0.1:1338` (default: from
    /// AWS_EC2_METADATA_SERVICE_ENDPOINT, the AWS config file, or
    /// http://169.254.169.254).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
}

/// Arguments of `credstate get`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print the secret access key and session token instead of redacting them.
    #[arg(long)]
    show_secrets: bool,
}

/// Arguments of `credstate credential-process`.
#[derive(clap::Args, Debug)]
pub struct CredentialProcessArgs {
    #[command(flatten)]
    source: SourceArgs,
}

/// Arguments of `credstate watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Ask for credentials this often, as an application would, e.g. `30s`.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = positive_duration)]
    every: Duration,
    /// Stop after this long (default: run until interrupted).
    #[arg(long = "for", value_name = "DURATION", value_parser = positive_duration)]
    run_for: Option<Duration>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text).map_err(|err| err.to_string())?;
    if duration.is_zero() {
        return Err(String::from("must be more than zero"));
    }
    Ok(duration)
}

/// The configuration of the live commands: `--endpoint`, then the
/// environment and the AWS config file, resolved by the core. This is the one
/// place they read their configuration from.
fn resolve(source: &SourceArgs) -> Result<Config, String> {
    let mut settings = Settings::default();
    settings.endpoint = source.endpoint.clone();
    let resolved = resolve_process_config(&settings).map_err(|err| err.to_string())?;
    for warning in &resolved.warnings {
        eprintln!("credstate: warning: {warning}");
    }
    let mut config = Config::default();
    resolved.apply_to(&mut config);
    Ok(config)
}

/// A provider for the resolved configuration; on failure, the exit code
/// after the message has been printed.
fn provider(source: &SourceArgs, hook: Option<EventHook>) -> Result<Provider, ExitCode> {
    let config = resolve(source).map_err(|message| {
        eprintln!("credstate: {message}");
        ExitCode::from(2)
    })?;
    let mut builder = Provider::builder().config(config);
    if let Some(hook) = hook {
        builder = builder.on_event(hook);
    }
    builder.build().map_err(|err| {
        eprintln!("credstate: {err}");
        ExitCode::from(2)
    })
}

fn fetch(provider: &Provider) -> Result<Arc<Credentials>, ExitCode> {
    provider.credentials().map_err(|cause| {
        eprintln!("credstate: {cause}");
        ExitCode::FAILURE
    })
}

/// "in 5h59m" or "3m10s ago", to the second.
fn time_left(credentials: &Credentials, now: Timestamp) -> String {
    let whole_seconds = |d: Duration| format_duration(Duration::from_secs(d.as_secs()));
    if credentials.expiration > now {
        format!(
            "in {}",
            whole_seconds(credentials.expiration.saturating_since(now))
        )
    } else {
        format!(
            "{} ago",
            whole_seconds(now.saturating_since(credentials.expiration))
        )
    }
}

/// `credstate get`.
pub fn get(args: GetArgs) -> ExitCode {
    let credentials = match provider(&args.source, None).and_then(|provider| fetch(&provider)) {
        Ok(credentials) => credentials,
        Err(code) => return code,
    };
    let secret = |value: &credstate::Secret| {
        if args.show_secrets {
            value.expose().to_owned()
        } else {
            REDACTED.to_owned()
        }
    };
    if args.json {
        let value = json!({
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": secret(&credentials.secret_access_key),
            "SessionToken": secret(&credentials.session_token),
            "Expiration": credentials.expiration.to_rfc3339(),
            "AccountId": credentials.account_id,
        });
        println!("{value:#}");
    } else {
        let hint = if args.show_secrets {
            ""
        } else {
            " (--show-secrets to print)"
        };
        println!("AccessKeyId:     {}", credentials.access_key_id);
        println!(
            "SecretAccessKey: {}{hint}",
            secret(&credentials.secret_access_key)
        );
        println!(
            "SessionToken:    {}{hint}",
            secret(&credentials.session_token)
        );
        println!(
            "Expiration:      {} ({})",
            credentials.expiration,
            time_left(&credentials, SystemClock.now())
        );
        if let Some(account_id) = &credentials.account_id {
            println!("AccountId:       {account_id}");
        }
    }
    ExitCode::SUCCESS
}

/// `credstate credential-process`: the JSON an AWS SDK expects from a
/// `credential_process` in `~/.aws/config`.
pub fn credential_process(args: CredentialProcessArgs) -> ExitCode {
    let credentials = match provider(&args.source, None).and_then(|provider| fetch(&provider)) {
        Ok(credentials) => credentials,
        Err(code) => return code,
    };
    let value = json!({
        "Version": 1,
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key.expose(),
        "SessionToken": credentials.session_token.expose(),
        "Expiration": credentials.expiration.to_rfc3339(),
    });
    println!("{value}");
    ExitCode::SUCCESS
}

/// One line of `credstate watch` output.
fn print_line(json: bool, kind: &str, message: &str) {
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    let written = if json {
        writeln!(
            out,
            "{}",
            json!({"at": now.to_rfc3339(), "event": kind, "message": message})
        )
    } else {
        writeln!(out, "{now} {kind}: {message}")
    };
    // A closed pipe (`watch | head`) is not worth a panic.
    let _ = written.and_then(|()| out.flush());
}

/// `credstate watch`: every event of the provider as it happens, and the
/// outcome of each periodic request for credentials when it changes.
pub fn watch(args: WatchArgs) -> ExitCode {
    let json = args.json;
    let hook = Box::new(move |event: &Event| print_line(json, event.name(), &event.to_string()));
    let provider = match provider(&args.source, Some(hook)) {
        Ok(provider) => provider,
        Err(code) => return code,
    };
    let stop_at = args.run_for.map(|run_for| Instant::now() + run_for);
    let mut last_identity = String::new();
    loop {
        // Report changes, not every tick: new credentials or a new error.
        let (kind, identity, outcome) = match provider.credentials() {
            Ok(credentials) => (
                "credentials",
                format!("{} {}", credentials.access_key_id, credentials.expiration),
                format!(
                    "{} expiring {} ({})",
                    credentials.access_key_id,
                    credentials.expiration,
                    time_left(&credentials, SystemClock.now())
                ),
            ),
            Err(cause) => ("error", cause.to_string(), cause.to_string()),
        };
        if identity != last_identity {
            print_line(json, kind, &outcome);
            last_identity = identity;
        }
        let pause = match stop_at {
            Some(stop_at) => {
                let left = stop_at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return ExitCode::SUCCESS;
                }
                left.min(args.every)
            }
            None => args.every,
        };
        std::thread::sleep(pause);
    }
}
