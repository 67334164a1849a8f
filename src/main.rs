//! The `tercuman` binary: parses arguments, runs the library, reports errors as one chain.

use clap::Parser;
use std::process::ExitCode;
use tercuman::app::Outcome;
use tercuman::error::Error;

fn main() -> ExitCode {
    tercuman::sys::keep_freed_memory();
    let cli = tercuman::cli::Cli::parse();
    match tercuman::app::run_cli(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            let code = if matches!(err, Error::Interrupted(_)) {
                130
            } else {
                2
            };
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::from(code)
        }
    }
}
