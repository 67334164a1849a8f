//! Interruption and resume. With `-o FILE`, every finished block is appended, as one JSON line,
//! to `FILE.partial.json` next to the output (a header line first), and flushed to disk;
//! appending keeps the cost per block flat however long the article. A `kill -9` can at worst
//! cut the last line short, and a cut last line is ignored on resume. `--resume` continues
//! without redoing the saved blocks. (Ctrl-C and SIGTERM are heard in [`crate::cancel`]; the
//! checkpoint is whole whenever they stop the run.)

use crate::error::{Error, Result};
use crate::translate::TranslatedBlock;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

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

pub fn article_hash(blocks: &[crate::text::Block]) -> String {
    let mut h = sha2::Sha256::new();
    for b in blocks {
        h.update(b.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An open checkpoint file that finished blocks are appended to, and read back from when the
/// output is assembled, so that finished blocks are held on disk, not in memory.
pub struct Checkpoint {
    path: PathBuf,
    file: File,
    blocks: usize,
    /// A spool with no output file to sit next to: deleted when dropped.
    _temp: Option<tempfile::TempPath>,
}

impl Checkpoint {
    /// Starts a new checkpoint at `path`, replacing any old one.
    pub fn create(path: &Path, article_sha256: &str, settings: &str) -> Result<Checkpoint> {
        super::atomic::write_atomic(path, &header_line(article_sha256, settings))?;
        Self::open_append(path, 0, None)
    }

    /// A checkpoint in a temporary file that is deleted when it is dropped: where a run with
    /// no output file keeps its finished blocks until the output is assembled.
    pub fn spool(article_sha256: &str, settings: &str) -> Result<Checkpoint> {
        let err = |source| Error::WriteOutput {
            path: std::env::temp_dir(),
            source,
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".tercuman-spool-")
            .tempfile()
            .map_err(err)?;
        temp.write_all(header_line(article_sha256, settings).as_bytes())
            .map_err(err)?;
        let temp = temp.into_temp_path();
        let path = temp.to_path_buf();
        Self::open_append(&path, 0, Some(temp))
    }

    fn open_append(
        path: &Path,
        blocks: usize,
        temp: Option<tempfile::TempPath>,
    ) -> Result<Checkpoint> {
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
            blocks,
            _temp: temp,
        })
    }

    /// How many blocks it holds.
    pub fn len(&self) -> usize {
        self.blocks
    }

    pub fn is_empty(&self) -> bool {
        self.blocks == 0
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
        if self._temp.is_none() {
            // Only a checkpoint that a later --resume reads must survive a crash.
            self.file.sync_data().map_err(err)?;
        }
        self.blocks += 1;
        Ok(())
    }

    /// Calls `f` on each saved block in order, reading them back one at a time.
    pub fn for_each(&self, mut f: impl FnMut(&TranslatedBlock) -> Result<()>) -> Result<()> {
        let err = |source| Error::ReadCheckpoint {
            path: self.path.clone(),
            source,
        };
        let mut reader = BufReader::new(File::open(&self.path).map_err(err)?);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(err)?;
        for _ in 0..self.blocks {
            line.clear();
            reader.read_line(&mut line).map_err(err)?;
            let block: TranslatedBlock = serde_json::from_str(&line)
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            f(&block)?;
        }
        Ok(())
    }

    /// Reopens the checkpoint of an unfinished run of the same article with the same settings,
    /// reading it line by line; a line cut short by a hard kill, and anything after it, is
    /// dropped.
    pub fn resume(path: &Path, article_sha256: &str, settings: &str) -> Result<Checkpoint> {
        let resume_error = |message: String| Error::Resume {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| {
            resume_error(if e.kind() == std::io::ErrorKind::NotFound {
                "no unfinished run to resume (the file is missing); run without --resume".into()
            } else {
                e.to_string()
            })
        })?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let unreadable = || resume_error("unreadable; delete it and run without --resume".into());
        reader.read_line(&mut line).map_err(|_| unreadable())?;
        let header: Header = serde_json::from_str(&line).map_err(|_| unreadable())?;
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
        let mut good = line.len() as u64;
        let mut blocks = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {}
                _ => break,
            }
            if serde_json::from_str::<TranslatedBlock>(&line).is_err() {
                break;
            }
            good += line.len() as u64;
            blocks += 1;
        }
        let cp = Self::open_append(path, blocks, None)?;
        cp.file.set_len(good).map_err(|source| Error::WriteOutput {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(cp)
    }
}

fn header_line(article_sha256: &str, settings: &str) -> String {
    let header = Header {
        article_sha256: article_sha256.to_string(),
        settings: settings.to_string(),
    };
    let mut line = serde_json::to_string(&header).expect("header serializes");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::BlockKind;

    fn block(text: &str) -> TranslatedBlock {
        TranslatedBlock {
            kind: BlockKind::Paragraph,
            source: "kaynak".into(),
            text: text.into(),
            pieces: vec![],
            flags: vec![],
            findings: vec![],
        }
    }

    fn texts(cp: &Checkpoint) -> Vec<String> {
        let mut out = Vec::new();
        cp.for_each(|b| {
            out.push(b.text.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), cp.len());
        out
    }

    #[test]
    fn a_spool_reads_back_in_order_and_is_deleted_when_dropped() {
        let mut cp = Checkpoint::spool("abc", "s").unwrap();
        for t in ["bir", "iki", "üç"] {
            cp.push(&block(t)).unwrap();
        }
        assert_eq!(texts(&cp), ["bir", "iki", "üç"]);
        let path = cp.path.clone();
        assert!(path.exists());
        drop(cp);
        assert!(!path.exists(), "spool left behind");
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
        let mut cp = Checkpoint::resume(&path, "abc", "s").unwrap();
        assert_eq!(texts(&cp), ["one", "two"]);
        cp.push(&block("three")).unwrap();
        let cp = Checkpoint::resume(&path, "abc", "s").unwrap();
        assert_eq!(texts(&cp), ["one", "two", "three"]);
        assert!(Checkpoint::resume(&path, "abd", "s").is_err());
        assert!(Checkpoint::resume(&path, "abc", "t").is_err());
    }
}
