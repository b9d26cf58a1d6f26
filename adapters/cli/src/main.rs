//! `credstate`: simulate refresh policies; more commands arrive with the adapters.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod simulate;

#[derive(Parser)]
#[command(name = "credstate", version, about = "Keep AWS temporary credentials valid")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (default: the built-in one) against credstate and the seed policy.
    Simulate(simulate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
    }
}
