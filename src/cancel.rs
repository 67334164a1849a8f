//! The process-wide stop flag: Ctrl-C or SIGTERM asks the run to stop after the block (or the
//! batch of sentences) in progress, and every long loop calls [`check`] between units of work;
//! a second Ctrl-C exits at once with status 130.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches Ctrl-C and SIGTERM: the first asks the run to stop after the current block, the
/// second exits at once with status 130.
pub fn install_handler(quiet: bool) {
    let _ = ctrlc::set_handler(move || {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        if !quiet {
            eprintln!("\ntercuman: stopping; finished blocks are kept (Ctrl-C again stops now)");
        }
    });
}

/// Whether the user asked the run to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Error::Stopped)` once the user asked the run to stop.
pub fn check() -> Result<()> {
    match interrupted() {
        true => Err(Error::Stopped),
        false => Ok(()),
    }
}
