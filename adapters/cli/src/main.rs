//! `credstate`: simulate refresh policies; more commands arrive with the adapters.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod config_cmd;
mod live;
mod mock;
mod simulate;

#[derive(Parser)]
#[command(
    name = "credstate",
    version,
    about = "Keep AWS temporary credentials valid"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the configuration resolved from the environment and the AWS config
    /// file, and where each value came from.
    Config(config_cmd::Args),
    /// Run a scenario (default: the built-in one) against credstate and the seed policy.
    Simulate(simulate::Args),
    /// Print the credentials from IMDS or the container endpoint (secrets
    /// redacted unless asked).
    Get(live::GetArgs),
    /// Print credentials as AWS `credential_process` JSON, for ~/.aws/config.
    CredentialProcess(live::CredentialProcessArgs),
    /// Keep a provider running and print each event as it refreshes.
    Watch(live::WatchArgs),
    /// Run a mock IMDS (and container credentials endpoint) on loopback until Ctrl-C.
    MockImds(mock::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => config_cmd::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::MockImds(args) => mock::run(args),
        Command::Get(args) => live::get(args),
        Command::CredentialProcess(args) => live::credential_process(args),
        Command::Watch(args) => live::watch(args),
    }
}
