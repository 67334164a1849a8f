//! Interruption and resume. With `-o FILE`, every finished block is appended, as one JSON line,
//! to `FILE.partial.json` next to the output (a header line first), and flushed to disk;
//! appending keeps the cost per block flat however long the article. A `kill -9` can at worst
//! cut the last line short, and a cut last line is ignored on resume. `--resume` continues
//! without redoing the saved blocks. Ctrl-C or SIGTERM stops the run
//! after the block in progress; a second Ctrl-C stops at once (the checkpoint is still whole).

use crate::error::{Error, Result};
use crate::translate::TranslatedBlock;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs::{File, OpenOptions};
use std::io::Write;
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

/// The first line of a checkpoint: what the run was.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// sha256 of the article's blocks: a resumed run must translate the same article.
    article_sha256: String,
    /// Model and generation settings: a resumed run must continue as it began.
    settings: String,
}

pub fn article_hash(blocks: &[crate::input::Block]) -> String {
    let mut h = sha2::Sha256::new();
    for b in blocks {
        h.update(b.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An open checkpoint file that finished blocks are appended to.
pub struct Checkpoint {
    path: PathBuf,
    file: File,
}

impl Checkpoint {
    /// Starts a new checkpoint at `path`, replacing any old one.
    pub fn create(path: &Path, article_sha256: &str, settings: &str) -> Result<Checkpoint> {
        let header = Header {
            article_sha256: article_sha256.to_string(),
            settings: settings.to_string(),
        };
        let mut line = serde_json::to_string(&header).expect("header serializes");
        line.push('\n');
        crate::output::write_atomic(path, &line)?;
        Self::open_append(path)
    }

    fn open_append(path: &Path) -> Result<Checkpoint> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| Error::WriteOutput {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Checkpoint {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Saves one finished block.
    pub fn push(&mut self, block: &TranslatedBlock) -> Result<()> {
        let mut line = serde_json::to_string(block).expect("block serializes");
        line.push('\n');
        let err = |source| Error::WriteOutput {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }

    /// Reopens the checkpoint of an unfinished run of the same article with the same settings,
    /// and returns it with the blocks it holds.
    pub fn resume(
        path: &Path,
        article_sha256: &str,
        settings: &str,
    ) -> Result<(Checkpoint, Vec<TranslatedBlock>)> {
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
        let mut lines = text.split_inclusive('\n');
        let header: Header = lines
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| resume_error("unreadable; delete it and run without --resume".into()))?;
        if header.article_sha256 != article_sha256 {
            return Err(resume_error(
                "was made from a different article; run without --resume to start over".into(),
            ));
        }
        if header.settings != settings {
            return Err(resume_error(format!(
                "was made with other settings ({}); resume with the same ones, or run without --resume to start over",
                header.settings
            )));
        }
        let mut blocks = Vec::new();
        let mut good = text.len();
        let mut offset = text.find('\n').map_or(text.len(), |i| i + 1);
        for line in lines {
            match serde_json::from_str::<TranslatedBlock>(line) {
                Ok(b) if line.ends_with('\n') => blocks.push(b),
                // A line cut short by a hard kill: drop it, and everything after it.
                _ => {
                    good = offset;
                    break;
                }
            }
            offset += line.len();
        }
        let cp = Self::open_append(path)?;
        cp.file
            .set_len(good as u64)
            .map_err(|source| Error::WriteOutput {
                path: path.to_path_buf(),
                source,
            })?;
        Ok((cp, blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::BlockKind;

    fn block(text: &str) -> TranslatedBlock {
        TranslatedBlock {
            kind: BlockKind::Paragraph,
            source: "kaynak".into(),
            text: text.into(),
            pieces: vec![],
            flags: vec![],
        }
    }

    #[test]
    fn a_line_cut_short_is_dropped_and_appending_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt.partial.json");
        let mut cp = Checkpoint::create(&path, "abc", "s").unwrap();
        cp.push(&block("one")).unwrap();
        cp.push(&block("two")).unwrap();
        drop(cp);
        // What a kill -9 in the middle of the third write leaves.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"kind\":\"paragraph\",\"sou").unwrap();
        drop(f);
        let (mut cp, blocks) = Checkpoint::resume(&path, "abc", "s").unwrap();
        assert_eq!(
            blocks.iter().map(|b| b.text.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        cp.push(&block("three")).unwrap();
        let (_, blocks) = Checkpoint::resume(&path, "abc", "s").unwrap();
        assert_eq!(blocks.len(), 3);
        assert!(Checkpoint::resume(&path, "abd", "s").is_err());
        assert!(Checkpoint::resume(&path, "abc", "t").is_err());
    }
}
