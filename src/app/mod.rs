//! The application: what each subcommand does, built from the library's stages.
//! [`run_cli`] takes the parsed command line and dispatches on it: a translate/summarize job
//! ([`plan`] resolves its arguments, [`run`] carries it out), `models` ([`models`]), `bench`
//! ([`bench`]).

pub mod bench;
pub mod models;
pub mod plan;
pub mod run;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs what the command line asks.
pub fn run_cli(cli: Cli) -> Result<()> {
    match &cli.command {
        Some(Command::Models { command }) => return models::run(command),
        Some(Command::Bench(args)) => return bench::run(args),
        _ => {}
    }
    let (job, args) = cli
        .job_and_args()
        .expect("not a models or bench subcommand");
    if let Some(threads) = args.threads {
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
