//! The application: what each subcommand does, built from the library's stages.
//! [`run_cli`] takes the parsed command line and dispatches on it: a translate/summarize job
//! ([`plan`] resolves its arguments, [`run`] carries it out), `check` ([`check`]), `eval` ([`eval`]), `models` ([`models`]),
//! `bench` ([`bench`]).

pub mod batch;
pub mod bench;
pub mod check;
pub mod eval;
pub mod load;
pub mod models;
pub mod plan;
pub mod run;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// How a command that ran ended: its exit status is 0 or 1 (2 is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All done, nothing to report.
    Success,
    /// Done, and something was found that the user asked to fail on (`check`'s findings,
    /// `--strict`), or some articles of a batch failed (each recorded in its manifest).
    Findings,
}

/// Runs what the command line asks.
pub fn run_cli(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Some(Command::Models { command }) => {
            return models::run(command).map(|()| Outcome::Success)
        }
        Some(Command::Bench(args)) => return bench::run(args).map(|()| Outcome::Success),
        Some(Command::Eval(args)) => return eval::run(args).map(|()| Outcome::Success),
        Some(Command::Check(args)) => {
            return Ok(match check::run(args)? {
                check::Verdict::Clean => Outcome::Success,
                check::Verdict::Findings => Outcome::Findings,
            })
        }
        _ => {}
    }
    let (job, args) = cli
        .job_and_args()
        .expect("not a models, bench or check subcommand");
    if let Some(threads) = args.decoding.threads {
        set_threads(threads);
    }
    run::run(&plan::Plan::new(job, args)?)
}

/// Sizes the CPU thread pools: candle's kernels run on rayon's global pool and on its own
/// barrier pool, both sized from these variables when first used, so this must run before
/// any model work.
pub fn set_threads(threads: usize) {
    let n = threads.max(1).to_string();
    std::env::set_var("RAYON_NUM_THREADS", &n);
    std::env::set_var("CANDLE_NUM_THREADS", &n);
}
