//! The `rollout-router` binary: parses the command line and runs it.

use std::process::ExitCode;

use clap::Parser;
use rollout_router::cli::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
