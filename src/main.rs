//! The `gatehouse` binary: parse the command line, start logging, dispatch.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = gatehouse::cli::Cli::parse();
    gatehouse::telemetry::init();
    gatehouse::cli::run(cli)
}
