//! The manifest of a batch: `OUTDIR/tercuman-manifest.jsonl` (a shard's own part:
//! `tercuman-manifest.shard-I-of-N.jsonl`), one JSON line appended per article finished or
//! failed. A later run of the same command reads every part and skips the articles whose
//! latest line says done for the same input bytes; a changed input is done again.
//!
//! Lines are only ever appended, each with one write to a file opened for appending, so that a
//! run killed mid-way leaves at most a partial last line, which readers skip. Other processes
//! (shards, workers) append to their own parts or to the same one; [`Manifest::refresh`] reads
//! what they added since, so that a worker does not redo an article another one finished.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What a batch did with one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The article's path relative to its input directory: its key in the manifest.
    pub article: String,
    /// The path as given on the command line (or found in a directory).
    pub input: String,
    /// SHA-256 of the input file's bytes.
    pub input_sha256: String,
    pub status: Status,
    pub output: String,
    /// Seconds since the Unix epoch when the article was started.
    pub started: u64,
    pub seconds: f64,
    #[serde(default)]
    pub blocks: usize,
    #[serde(default)]
    pub flagged_blocks: usize,
    #[serde(default)]
    pub flagged_bullets: usize,
    /// Flags and findings that remain, by kind.
    #[serde(default)]
    pub findings: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    Failed,
}

/// The manifest parts of an output directory, read, and the part this run appends to.
pub struct Manifest {
    dir: PathBuf,
    part: PathBuf,
    /// Bytes of each part already read.
    read_to: HashMap<PathBuf, u64>,
    /// The latest entry per article.
    latest: HashMap<String, Entry>,
}

/// The name of the manifest part a run writes: its shard's, or the one of an unsharded run.
pub fn part_name(shard: Option<(u64, u64)>) -> String {
    match shard {
        Some((index, count)) => format!("tercuman-manifest.shard-{}-of-{count}.jsonl", index + 1),
        None => "tercuman-manifest.jsonl".into(),
    }
}

impl Manifest {
    /// Reads every manifest part in `dir` (which must exist); this run appends to `part`.
    pub fn open(dir: &Path, part: &str) -> Result<Manifest> {
        let mut m = Manifest {
            dir: dir.to_path_buf(),
            part: dir.join(part),
            read_to: HashMap::new(),
            latest: HashMap::new(),
        };
        m.refresh()?;
        Ok(m)
    }

    /// Reads what was appended to any part since the last read, and any new part.
    pub fn refresh(&mut self) -> Result<()> {
        let io = |path: &Path, source| Error::ReadInput {
            path: path.to_path_buf(),
            source,
        };
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| io(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_part(p))
            .collect();
        parts.sort();
        for path in parts {
            let from = self.read_to.get(&path).copied().unwrap_or(0);
            let mut file = File::open(&path).map_err(|e| io(&path, e))?;
            file.seek(SeekFrom::Start(from)).map_err(|e| io(&path, e))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(|e| io(&path, e))?;
            // Only whole lines: another process may be writing the last one.
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in bytes[..whole].split(|&b| b == b'\n') {
                // A line cut by a crash, or not ours, is skipped: the article is redone.
                if let Ok(e) = serde_json::from_slice::<Entry>(line) {
                    self.latest.insert(e.article.clone(), e);
                }
            }
            self.read_to.insert(path, from + whole as u64);
        }
        Ok(())
    }

    /// Whether `article` was finished from input bytes with this hash.
    pub fn finished(&self, article: &str, sha256: &str) -> bool {
        self.latest
            .get(article)
            .is_some_and(|e| e.status == Status::Done && e.input_sha256 == sha256)
    }

    /// Appends an entry to this run's part.
    pub fn append(&mut self, entry: Entry) -> Result<()> {
        let mut line = serde_json::to_vec(&entry).expect("an entry serializes");
        line.push(b'\n');
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.part)
            .and_then(|mut f| f.write_all(&line).and_then(|()| f.sync_data()));
        written.map_err(|source| Error::WriteOutput {
            path: self.part.clone(),
            source,
        })?;
        self.latest.insert(entry.article.clone(), entry);
        Ok(())
    }

    /// This run's part.
    pub fn path(&self) -> &Path {
        &self.part
    }
}

fn is_part(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with("tercuman-manifest") && name.ends_with(".jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(article: &str, sha: &str, status: Status) -> Entry {
        Entry {
            article: article.into(),
            input: format!("in/{article}"),
            input_sha256: sha.into(),
            status,
            output: format!("out/{article}"),
            started: 0,
            seconds: 1.5,
            blocks: 3,
            flagged_blocks: 1,
            flagged_bullets: 0,
            findings: BTreeMap::from([("number".to_string(), 1)]),
            error: None,
        }
    }

    #[test]
    fn the_latest_entry_per_article_decides_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path(), &part_name(None)).unwrap();
        m.append(entry("a.txt", "1", Status::Failed)).unwrap();
        m.append(entry("a.txt", "1", Status::Done)).unwrap();
        m.append(entry("b.txt", "2", Status::Done)).unwrap();
        m.append(entry("b.txt", "2", Status::Failed)).unwrap();
        // A crash mid-line, by another process.
        let mut f = OpenOptions::new().append(true).open(m.path()).unwrap();
        f.write_all(br#"{"article":"c.txt","inp"#).unwrap();

        let read = Manifest::open(dir.path(), &part_name(None)).unwrap();
        assert!(read.finished("a.txt", "1"));
        assert!(!read.finished("a.txt", "other bytes"));
        assert!(!read.finished("b.txt", "2"));
        assert!(!read.finished("c.txt", "3"));
    }

    #[test]
    fn refresh_reads_what_other_parts_added() {
        let dir = tempfile::tempdir().unwrap();
        let mut mine = Manifest::open(dir.path(), &part_name(Some((0, 2)))).unwrap();
        let mut other = Manifest::open(dir.path(), &part_name(Some((1, 2)))).unwrap();
        assert_ne!(mine.path(), other.path());
        other.append(entry("x.txt", "9", Status::Done)).unwrap();
        assert!(!mine.finished("x.txt", "9"));
        mine.refresh().unwrap();
        assert!(mine.finished("x.txt", "9"));
        // Read once: a second refresh adds nothing twice.
        other.append(entry("x.txt", "9", Status::Failed)).unwrap();
        mine.refresh().unwrap();
        mine.refresh().unwrap();
        assert!(!mine.finished("x.txt", "9"));
        let text = std::fs::read_to_string(other.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains(r#""status":"done""#), "{text}");
    }
}
