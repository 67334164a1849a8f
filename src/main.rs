//! The `tercuman` binary: parses arguments, runs the library, reports errors as one chain.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tercuman::cli::Cli::parse();
    match tercuman::Plan::from_cli(cli).and_then(|plan| tercuman::run(&plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &tercuman::error::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        source = e.source();
    }
    false
}
