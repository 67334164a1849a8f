//! Many articles in one run: `tercuman translate A.txt B.txt DIR/ -o OUTDIR/`.
//!
//! The inputs are expanded (a directory is walked for `*.txt` and `*.md`), each article gets
//! an output under OUTDIR at its relative path (`NAME.en.txt`, `.en.md`, `.en.json` by
//! `--format`), `--shard I/N` keeps a deterministic share of them, and the models are loaded
//! once, when the first article needs them. Each article runs as a single run would (its
//! checkpoint, lock, checks and output) and is recorded in the manifest
//! ([`crate::output::manifest`]); one that fails is recorded with its reason and the batch goes
//! on. A second run of the same command skips what is done, resumes what was half done, and
//! redoes an article whose input changed.

use super::plan::{Batch, Plan};
use super::run::{self, Done, Models, Runner};
use super::Outcome;
use crate::error::{Error, Result};
use crate::output::manifest::{self, Entry, Manifest, Status};
use crate::output::{resume, Format};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// One article of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub input: PathBuf,
    /// Its path relative to the input directory (`/`-separated), or its file name: its key in
    /// the manifest and its place under OUTDIR.
    pub key: String,
    pub output: PathBuf,
}

/// How the articles of a batch ended.
#[derive(Default)]
struct Tally {
    done: usize,
    skipped: usize,
    busy: usize,
    failed: Vec<(String, String)>,
    strict_failed: usize,
}

/// Runs every article of the batch of `plan`.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let batch = plan.batch.as_ref().expect("a batch plan");
    let all = articles(batch, plan.format)?;
    let total = all.len();
    let mine: Vec<Article> = match batch.shard {
        Some(s) => all
            .into_iter()
            .filter(|a| shard_of(&a.key, s.count) == s.index)
            .collect(),
        None => all,
    };
    std::fs::create_dir_all(&batch.out_dir).map_err(|source| Error::WriteOutput {
        path: batch.out_dir.clone(),
        source,
    })?;
    let part = manifest::part_name(batch.shard.map(|s| (s.index, s.count)));
    let manifest = Manifest::open(&batch.out_dir, &part)?;
    crate::cancel::install_handler(plan.quiet);
    let bars = Bars::new(plan.quiet, mine.len());
    if !plan.quiet {
        let share = match batch.shard {
            Some(s) => format!(
                " (shard {} of {}: {} of {total})",
                s.index + 1,
                s.count,
                mine.len()
            ),
            None => String::new(),
        };
        bars.line(format!(
            "tercuman: {} articles{share} into {}; manifest {}",
            mine.len(),
            batch.out_dir.display(),
            manifest.path().display()
        ));
    }
    let started = Instant::now();
    let shared = Shared {
        plan,
        articles: &mine,
        next: AtomicUsize::new(0),
        manifest: Mutex::new(manifest),
        tally: Mutex::new(Tally::default()),
        bars,
    };
    let workers = parallel_workers(plan, mine.len());
    let ended = match workers {
        // A served model: articles go together, each with its own clone of the client, all
        // under one limit of requests in flight.
        Some(n) => match Models::load(plan, &ProgressBar::hidden()) {
            Ok(models) => std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        let mut mine = models.remote_clone();
                        let shared = &shared;
                        s.spawn(move || shared.work(&mut mine, &ProgressBar::hidden()))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a batch worker panicked"))
                    .collect::<Result<Vec<()>>>()
                    .map(|_| ())
            }),
            Err(e) => Err(e),
        },
        None => shared.work(&mut None, &shared.bars.blocks),
    };
    shared.bars.clear();
    let manifest = shared.manifest.into_inner().expect("manifest lock");
    let tally = shared.tally.into_inner().expect("tally lock");
    match ended {
        Err(Error::Stopped) => Err(interrupted(&tally, mine.len())),
        Err(e) => Err(e),
        Ok(()) => finish(plan, &tally, mine.len(), started, &manifest),
    }
}

/// How many articles go at once: several only when a remote engine does all the work (a local
/// model works on one at a time).
fn parallel_workers(plan: &Plan, articles: usize) -> Option<usize> {
    let remote = matches!(
        plan.model_spec(),
        Ok(crate::hub::spec::ModelSpec::Remote(_))
    );
    (remote && !plan.summarizes() && plan.concurrency > 1 && articles > 1)
        .then(|| plan.concurrency.min(articles))
}

/// What the workers of a batch share.
struct Shared<'a> {
    plan: &'a Plan,
    articles: &'a [Article],
    /// The next article to take.
    next: AtomicUsize,
    manifest: Mutex<Manifest>,
    tally: Mutex<Tally>,
    bars: Bars,
}

impl Shared<'_> {
    /// Takes articles until none is left. `Err` only for what ends the whole batch: a stop
    /// asked by the user ([`Error::Stopped`]), models that cannot be loaded, a manifest that
    /// cannot be written.
    fn work(&self, models: &mut Option<Models>, blocks: &ProgressBar) -> Result<()> {
        let count = self.articles.len();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(article) = self.articles.get(i) else {
                return Ok(());
            };
            if crate::cancel::check().is_err() {
                self.next.store(count, Ordering::Relaxed);
                return Err(Error::Stopped);
            }
            let n = format!("[{}/{count}] {}", i + 1, article.key);
            self.bars.articles.set_message(article.key.clone());
            let result = self.article(article, &n, models, blocks);
            self.bars.articles.inc(1);
            if let Err(e) = result {
                self.next.store(count, Ordering::Relaxed);
                if let Error::Interrupted(why) = &e {
                    self.bars.line(format!("tercuman: {n}: {why}"));
                    return Err(Error::Stopped);
                }
                return Err(e);
            }
        }
    }

    /// One article: skipped when done, else run and recorded.
    fn article(
        &self,
        article: &Article,
        n: &str,
        models: &mut Option<Models>,
        blocks: &ProgressBar,
    ) -> Result<()> {
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sha = match hash_file(&article.input) {
            Ok(sha) => sha,
            Err(e) => {
                return self.failed(
                    article,
                    n,
                    Failure {
                        sha: "",
                        started: at,
                        seconds: 0.0,
                    },
                    &e,
                )
            }
        };
        {
            let mut manifest = self.manifest.lock().expect("manifest lock");
            manifest.refresh()?;
            if manifest.finished(&article.key, &sha) && article.output.exists() {
                self.tally.lock().expect("tally lock").skipped += 1;
                return Ok(());
            }
        }
        let t0 = Instant::now();
        let had_models = models.is_some();
        match one(self.plan, article, models, blocks) {
            Ok(done) => {
                let secs = t0.elapsed().as_secs_f64();
                self.bars
                    .line(format!("tercuman: {n}: {}", describe(&done, secs)));
                {
                    let mut tally = self.tally.lock().expect("tally lock");
                    tally.done += 1;
                    tally.strict_failed += usize::from(done.strict_failed);
                }
                let entry = done_entry(article, &sha, at, secs, &done);
                self.manifest.lock().expect("manifest lock").append(entry)
            }
            Err(Error::OutputBusy { holder, .. }) => {
                self.bars.line(format!(
                    "tercuman: {n}: skipped: another tercuman (process {holder}) is writing it"
                ));
                self.tally.lock().expect("tally lock").busy += 1;
                Ok(())
            }
            Err(e @ (Error::Stopped | Error::Interrupted(_))) => Err(e),
            // The models could not be loaded: no article can be done.
            Err(e) if !had_models && models.is_none() && is_model_error(&e) => Err(e),
            Err(e) => {
                let seconds = t0.elapsed().as_secs_f64();
                self.failed(
                    article,
                    n,
                    Failure {
                        sha: &sha,
                        started: at,
                        seconds,
                    },
                    &e,
                )
            }
        }
    }

    /// Records an article that failed; the batch goes on.
    fn failed(&self, article: &Article, n: &str, f: Failure, e: &Error) -> Result<()> {
        let why = message(e);
        self.bars.line(format!("tercuman: {n}: failed: {why}"));
        self.tally
            .lock()
            .expect("tally lock")
            .failed
            .push((article.key.clone(), why.clone()));
        let mut entry = done_entry(article, f.sha, f.started, f.seconds, &Done::default());
        entry.status = Status::Failed;
        entry.error = Some(why);
        self.manifest.lock().expect("manifest lock").append(entry)
    }
}

/// The status lines and exit status at the end of a batch.
fn finish(
    plan: &Plan,
    tally: &Tally,
    count: usize,
    started: Instant,
    manifest: &Manifest,
) -> Result<Outcome> {
    if !plan.quiet {
        let mut parts = vec![format!("{} done", tally.done)];
        if tally.skipped > 0 {
            parts.push(format!("{} already done", tally.skipped));
        }
        if tally.busy > 0 {
            parts.push(format!("{} left to other runs", tally.busy));
        }
        if !tally.failed.is_empty() {
            parts.push(format!("{} failed", tally.failed.len()));
        }
        eprintln!(
            "tercuman: {count} articles: {} in {:.1} s; manifest {}",
            parts.join(", "),
            started.elapsed().as_secs_f64(),
            manifest.path().display()
        );
    }
    if !tally.failed.is_empty() {
        eprintln!("tercuman: these articles failed (run the same command again to retry them):");
        for (key, why) in &tally.failed {
            eprintln!("  {key}: {why}");
        }
        return Ok(Outcome::Findings);
    }
    Ok(match tally.strict_failed > 0 {
        true => Outcome::Findings,
        false => Outcome::Success,
    })
}

/// One article: resumed when its checkpoint is there (started afresh when the checkpoint is
/// of another input or other settings), the models loaded when first needed.
fn one(
    plan: &Plan,
    article: &Article,
    models: &mut Option<Models>,
    blocks: &ProgressBar,
) -> Result<Done> {
    if let Some(dir) = article.output.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::WriteOutput {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let has_checkpoint = resume::sidecar(&article.output).exists();
    let resumed = plan.for_article(&article.input, &article.output, has_checkpoint);
    let fresh = plan.for_article(&article.input, &article.output, false);
    let runner = match Runner::new(&resumed) {
        Err(Error::Resume { .. } | Error::ReadCheckpoint { .. }) if has_checkpoint => {
            Runner::new(&fresh)?
        }
        other => other?,
    };
    let m = match models {
        Some(m) => m,
        None => models.insert(Models::load(plan, blocks)?),
    };
    blocks.reset();
    runner.work(m, blocks, false)
}

/// Errors that come from finding or loading a model rather than from an article.
fn is_model_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ModelNotFound { .. }
            | Error::UnknownModel { .. }
            | Error::BadModelSpec { .. }
            | Error::QuantizeNotMarian { .. }
            | Error::BackendNotBuilt { .. }
            | Error::Card { .. }
            | Error::Hub(_)
            | Error::ModelRead { .. }
            | Error::UnsupportedArchitecture { .. }
            | Error::InvalidModel { .. }
    )
}

fn describe(done: &Done, secs: f64) -> String {
    let mut s = format!("done in {secs:.1} s, {} blocks", done.blocks);
    if done.resumed > 0 {
        s += &format!(
            " ({} resumed from the checkpoint of an earlier run)",
            done.resumed
        );
    }
    if done.flagged_blocks > 0 {
        s += &format!(", {} flagged", done.flagged_blocks);
    }
    if done.flagged_bullets > 0 {
        s += &match done.flagged_bullets {
            1 => ", 1 summary bullet flagged".to_string(),
            n => format!(", {n} summary bullets flagged"),
        };
    }
    s
}

fn done_entry(article: &Article, sha: &str, started: u64, seconds: f64, done: &Done) -> Entry {
    Entry {
        article: article.key.clone(),
        input: article.input.display().to_string(),
        input_sha256: sha.to_string(),
        status: Status::Done,
        output: article.output.display().to_string(),
        started,
        seconds: (seconds * 1000.0).round() / 1000.0,
        blocks: done.blocks,
        flagged_blocks: done.flagged_blocks,
        flagged_bullets: done.flagged_bullets,
        findings: done.kinds.clone(),
        error: None,
    }
}

/// When and on what input an article failed.
struct Failure<'a> {
    sha: &'a str,
    started: u64,
    seconds: f64,
}

/// An error with its causes, on one line.
fn message(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

fn interrupted(tally: &Tally, count: usize) -> Error {
    Error::Interrupted(format!(
        "the batch was stopped after {} of {count} articles; run the same command again to go on (finished articles are skipped, a half-done one resumes)",
        tally.done + tally.skipped + tally.failed.len()
    ))
}

/// The share (0-based) an article falls in when a batch is split `count` ways: from a hash
/// of its key, so that it does not depend on which other files exist.
pub fn shard_of(key: &str, count: u64) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let first: [u8; 8] = digest[..8].try_into().expect("8 bytes");
    u64::from_be_bytes(first) % count
}

fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// The articles of a batch, in a stable order: each file input, and the `*.txt` / `*.md`
/// files under each directory input (sorted; hidden files, and the output directory when it
/// lies inside an input, left out). Two articles that would write the same output are an error.
pub fn articles(batch: &Batch, format: Format) -> Result<Vec<Article>> {
    let out_dir = batch.out_dir.canonicalize().ok();
    let mut found = Vec::new();
    for input in &batch.inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            walk(input, out_dir.as_deref(), &mut files)?;
            files.sort();
            for file in files {
                let rel = file.strip_prefix(input).expect("walked under the input");
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((file, key));
            }
        } else if input.exists() {
            let name = input.file_name().unwrap_or_default().to_string_lossy();
            found.push((input.clone(), name.into_owned()));
        } else {
            return Err(Error::ReadInput {
                path: input.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
    }
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut articles = Vec::with_capacity(found.len());
    for (input, key) in found {
        let output = output_path(&batch.out_dir, &key, format);
        if let Some(first) = seen.insert(output.clone(), input.clone()) {
            return Err(Error::Batch(format!(
                "{} and {} would both be written to {}: rename one, or run them in separate batches",
                first.display(),
                input.display(),
                output.display()
            )));
        }
        articles.push(Article { input, key, output });
    }
    if articles.is_empty() {
        return Err(Error::Batch(
            "no articles found: a directory is searched for *.txt and *.md files".into(),
        ));
    }
    Ok(articles)
}

fn walk(dir: &Path, skip: Option<&Path>, files: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::ReadInput {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // Symbolic links to directories are not followed (no cycles).
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            if skip.is_some_and(|s| path.canonicalize().is_ok_and(|p| p == s)) {
                continue;
            }
            walk(&path, skip, files)?;
        } else if path.is_file() && is_article(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_article(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt") || e.eq_ignore_ascii_case("md"))
}

/// `OUTDIR/KEY` with its extension replaced by `.en.txt`, `.en.md` or `.en.json`.
fn output_path(out_dir: &Path, key: &str, format: Format) -> PathBuf {
    let ext = match format {
        Format::Text => "txt",
        Format::Markdown => "md",
        Format::Json => "json",
    };
    let rel = Path::new(key);
    let stem = rel.file_stem().unwrap_or_default().to_string_lossy();
    out_dir
        .join(rel.parent().unwrap_or(Path::new("")))
        .join(format!("{stem}.en.{ext}"))
}

/// The batch's progress: a bar over articles and one over the blocks of the article at work
/// on a terminal; otherwise a line per article.
struct Bars {
    multi: Option<MultiProgress>,
    articles: ProgressBar,
    blocks: ProgressBar,
    quiet: bool,
}

impl Bars {
    fn new(quiet: bool, count: usize) -> Bars {
        if quiet || !std::io::stderr().is_terminal() {
            return Bars {
                multi: None,
                articles: ProgressBar::hidden(),
                blocks: ProgressBar::hidden(),
                quiet,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let articles = multi.add(ProgressBar::new(count as u64));
        articles.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} articles, ETA {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        articles.set_prefix("batch");
        let blocks = multi.add(run::progress_bar(false));
        Bars {
            multi: Some(multi),
            articles,
            blocks,
            quiet,
        }
    }

    /// A line on stderr above the bars.
    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn clear(&self) {
        self.blocks.finish_and_clear();
        self.articles.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn batch(inputs: &[&Path], out: &Path) -> Batch {
        Batch {
            inputs: inputs.iter().map(|p| p.to_path_buf()).collect(),
            out_dir: out.to_path_buf(),
            shard: None,
        }
    }

    #[test]
    fn directories_are_walked_in_order_and_outputs_mirror_them() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("feed");
        fs::create_dir_all(feed.join("2026/12")).unwrap();
        fs::write(feed.join("b.txt"), "b").unwrap();
        fs::write(feed.join("2026/12/a.md"), "a").unwrap();
        fs::write(feed.join("notes.pdf"), "x").unwrap();
        fs::write(feed.join(".hidden.txt"), "x").unwrap();
        let single = dir.path().join("one.txt");
        fs::write(&single, "1").unwrap();
        // An output directory inside the input is not read as input.
        let out = feed.join("out");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("b.en.txt"), "old").unwrap();

        let found = articles(&batch(&[&feed, &single], &out), Format::Markdown).unwrap();
        let keys: Vec<&str> = found.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["2026/12/a.md", "b.txt", "one.txt"]);
        assert_eq!(found[0].output, out.join("2026/12/a.en.md"));
        assert_eq!(found[1].output, out.join("b.en.md"));
        assert_eq!(found[2].input, single);
    }

    #[test]
    fn two_articles_with_one_output_and_an_empty_batch_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("x.txt"), dir.path().join("x.md"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        let out = dir.path().join("out");
        let err = articles(&batch(&[&a, &b], &out), Format::Text).unwrap_err();
        assert!(
            err.to_string().contains("would both be written to"),
            "{err}"
        );
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let err = articles(&batch(&[&empty], &out), Format::Text).unwrap_err();
        assert!(err.to_string().contains("no articles found"), "{err}");
        let missing = dir.path().join("missing.txt");
        assert!(articles(&batch(&[&missing], &out), Format::Text).is_err());
    }

    #[test]
    fn shards_split_every_article_once_and_evenly() {
        let keys: Vec<String> = (0..3000).map(|i| format!("feed/{i}.txt")).collect();
        let mut sizes = [0usize; 3];
        for key in &keys {
            let s = shard_of(key, 3);
            sizes[s as usize] += 1;
            // Deterministic.
            assert_eq!(s, shard_of(key, 3));
        }
        assert_eq!(sizes.iter().sum::<usize>(), 3000);
        assert!(sizes.iter().all(|&n| (900..1100).contains(&n)), "{sizes:?}");
        assert!(keys.iter().all(|k| shard_of(k, 1) == 0));
    }
}
