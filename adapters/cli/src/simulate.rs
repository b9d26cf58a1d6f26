//! `credstate simulate` (being written).

use std::process::ExitCode;

/// Arguments of `credstate simulate`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("credstate simulate: not built yet");
    ExitCode::from(2)
}
