//! The `tercuman` binary: parses arguments, runs the library, reports errors as one chain.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tercuman::cli::Cli::parse();
    match tercuman::run_cli(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            let code = if matches!(err, tercuman::error::Error::Interrupted(_)) {
                130
            } else {
                2
            };
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::from(code)
        }
    }
}
