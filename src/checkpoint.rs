//! Interruption and resume. With `-o FILE`, every finished block is saved next to the output in
//! `FILE.partial.json` (written atomically, so a `kill -9` leaves the previous good copy), and
//! `--resume` continues from it without redoing those blocks. Ctrl-C or SIGTERM stops the run
//! after the block in progress; a second Ctrl-C stops at once (the checkpoint is still whole).

use crate::error::{Error, Result};
use crate::translate::TranslatedBlock;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};
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
            eprintln!("\ntercuman: stopping after the block in progress (Ctrl-C again stops now)");
        }
    });
}

/// Whether the user asked the run to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Where the unfinished run of `output` keeps its finished blocks.
pub fn sidecar(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial.json");
    output.with_file_name(name)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// sha256 of the decoded article text: a resumed run must translate the same article.
    pub article_sha256: String,
    /// Model and generation settings: a resumed run must continue as it began.
    pub settings: String,
    pub blocks: Vec<TranslatedBlock>,
}

pub fn article_hash(blocks: &[crate::input::Block]) -> String {
    let mut h = sha2::Sha256::new();
    for b in blocks {
        h.update(b.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(self).expect("checkpoint serializes");
        crate::output::write_atomic(path, &json)
    }

    /// The finished blocks of an unfinished run of the same article with the same settings.
    pub fn load(path: &Path, article_sha256: &str, settings: &str) -> Result<Vec<TranslatedBlock>> {
        let resume_error = |message: String| Error::Resume {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            resume_error(if e.kind() == std::io::ErrorKind::NotFound {
                "no unfinished run to resume (the file is missing); run without --resume".into()
            } else {
                e.to_string()
            })
        })?;
        let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| {
            resume_error(format!(
                "unreadable ({e}); delete it and run without --resume"
            ))
        })?;
        if cp.article_sha256 != article_sha256 {
            return Err(resume_error(
                "was made from a different article; run without --resume to start over".into(),
            ));
        }
        if cp.settings != settings {
            return Err(resume_error(format!(
                "was made with other settings ({}); resume with the same ones, or run without --resume to start over",
                cp.settings
            )));
        }
        Ok(cp.blocks)
    }
}
