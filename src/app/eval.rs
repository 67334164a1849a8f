//! `tercuman eval`: which model translates best on this machine, in sacreBLEU's numbers.
//!
//! Each model translates the test set through the same pipeline as `translate` (each line one
//! block: same sentence cutting, batching, retries and fidelity checks), and is scored with
//! corpus BLEU, chrF++ and chrF computed as sacreBLEU computes them ([`crate::eval::score`]),
//! beside its speed (sentences/s, source words/s), peak memory and the share of sentences
//! the checks flagged, by kind. With `-o FILE` the finished sentences of each model are kept
//! in `FILE.<model>.partial.json` as they finish, and `--resume` continues after Ctrl-C; the
//! hypotheses are written to `FILE.<model>.hyp.txt` for sacreBLEU to re-score.

use super::load::{self, Settings, Translator};
use crate::check::Kind;
use crate::cli::EvalArgs;
use crate::error::{Error, Result};
use crate::eval::score::{self, ChrfVariant, Corpus};
use crate::eval::{self as sets, TESTSETS};
use crate::hub::spec::{self, ModelSpec};
use crate::hub::Hub;
use crate::model::marian::Quantize;
use crate::output::resume::{self, Checkpoint};
use crate::text::{Block, BlockKind};
use crate::translate::TranslatedBlock;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The scores and figures of one model (or one hypothesis file).
#[derive(Debug, Serialize)]
pub struct ModelScore {
    pub model: String,
    /// `int8` for a Marian model run with `--quantize int8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<&'static str>,
    pub sentences: usize,
    pub bleu: f64,
    pub chrf_pp: f64,
    pub chrf: f64,
    /// sacreBLEU's BLEU line (`BLEU = 27.31 60.2/33.5/...`).
    pub bleu_detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentences_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Share of sentences with at least one finding of the checks, by kind.
    pub flagged: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    testset: String,
    signatures: BTreeMap<&'static str, &'static str>,
    models: Vec<ModelScore>,
}

/// Runs `tercuman eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    if args.testset.as_deref() == Some("") {
        return list_testsets();
    }
    let (name, sources, references) = inputs(args)?;
    // One evaluation at a time writes FILE and its side files.
    let _lock = match &args.output {
        Some(out) => Some(crate::output::lock::acquire(out)?),
        None => None,
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let sources: Vec<String> = sources.into_iter().take(limit).collect();
    let references: Vec<String> = references.into_iter().take(limit).collect();
    let mut models = Vec::new();
    if let Some(hyp) = &args.hypothesis {
        let hyps = read_lines(hyp)?;
        same_length(&hyps, &references, hyp)?;
        let mut s = scores(&hyp.display().to_string(), &hyps, &references);
        s.flagged = flagged_shares(&sources, &hyps);
        models.push(s);
    }
    if let Some(threads) = args.decoding.threads {
        super::set_threads(threads);
    }
    crate::cancel::install_handler(args.quiet);
    for m in &args.model {
        models.push(evaluate(args, m, &sources, &references)?);
    }
    let report = Report {
        testset: name,
        signatures: BTreeMap::from([
            ("bleu", score::BLEU_SIGNATURE),
            ("chrf", score::CHRF_SIGNATURE),
            ("chrf++", score::CHRF_PP_SIGNATURE),
        ]),
        models,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report)?;
    }
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
        crate::output::write_atomic(path, &(json + "\n"))?;
    }
    Ok(())
}

fn list_testsets() -> Result<()> {
    let mut out = std::io::stdout().lock();
    for t in TESTSETS {
        writeln!(out, "{:20} {}", t.name, t.description)?;
    }
    Ok(())
}

/// The test set's name, sources and references.
fn inputs(args: &EvalArgs) -> Result<(String, Vec<String>, Vec<String>)> {
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
    if let Some(name) = &args.testset {
        let t = sets::testset(name).ok_or_else(|| Error::UnknownTestset {
            name: name.clone(),
            known: TESTSETS
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        return Ok((
            t.name.to_string(),
            owned(sets::lines(t.source)),
            owned(sets::lines(t.reference)),
        ));
    }
    let reference = args.reference.as_ref().expect("clap requires --reference");
    let references = read_lines(reference)?;
    let sources = match &args.source {
        Some(s) => {
            let sources = read_lines(s)?;
            same_length(&sources, &references, s)?;
            sources
        }
        None => Vec::new(),
    };
    Ok((reference.display().to_string(), sources, references))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = crate::text::read_text(path)?;
    Ok(sets::lines(&text).into_iter().map(str::to_string).collect())
}

fn same_length(lines: &[String], references: &[String], path: &Path) -> Result<()> {
    if lines.len() != references.len() {
        return Err(Error::Misaligned {
            source_name: path.display().to_string(),
            source_blocks: lines.len(),
            translation_name: "the references".into(),
            translation_blocks: references.len(),
            first: lines.len().min(references.len()) + 1,
            why: "one side has more lines".into(),
        });
    }
    Ok(())
}

/// BLEU, chrF++ and chrF of `hyps` against `references`.
fn scores(model: &str, hyps: &[String], references: &[String]) -> ModelScore {
    let mut corpus = Corpus::new();
    for (h, r) in hyps.iter().zip(references) {
        corpus.add(h, r);
    }
    let bleu = corpus.bleu();
    ModelScore {
        model: model.to_string(),
        weights: None,
        sentences: hyps.len(),
        bleu: bleu.score,
        chrf_pp: corpus.chrf(ChrfVariant::ChrfPlusPlus),
        chrf: corpus.chrf(ChrfVariant::Chrf),
        bleu_detail: bleu.to_string(),
        sentences_per_s: None,
        words_per_s: None,
        peak_rss_bytes: None,
        flagged: BTreeMap::new(),
    }
}

/// The share of lines the fidelity checks flag, per kind (empty without sources).
fn flagged_shares(sources: &[String], hyps: &[String]) -> BTreeMap<&'static str, f64> {
    if sources.is_empty() {
        return BTreeMap::new();
    }
    let findings: Vec<Vec<Kind>> = sources
        .iter()
        .zip(hyps)
        .map(|(s, h)| {
            crate::check::check_block(s, h)
                .iter()
                .map(|f| f.kind)
                .collect()
        })
        .collect();
    shares(&findings)
}

fn shares(findings: &[Vec<Kind>]) -> BTreeMap<&'static str, f64> {
    let n = findings.len().max(1) as f64;
    Kind::ALL
        .iter()
        .map(|k| {
            let hit = findings.iter().filter(|f| f.contains(k)).count();
            (k.as_str(), hit as f64 / n)
        })
        .collect()
}

/// Translates the test set with `model` and scores it.
fn evaluate(
    args: &EvalArgs,
    model: &str,
    sources: &[String],
    references: &[String],
) -> Result<ModelScore> {
    if sources.is_empty() {
        return Err(Error::Eval(
            "a model needs sources to translate: pass --testset NAME, or --source with --reference"
                .into(),
        ));
    }
    reset_peak_rss();
    let hub = Hub::from_env(args.decoding.offline, args.quiet);
    let resolved = spec::resolve(&ModelSpec::parse(model)?, &hub)?;
    let settings = Settings {
        beams: args.decoding.beams.map(usize::from),
        quantize: args.decoding.quantize.unwrap_or_default(),
        batch_size: args
            .decoding
            .batch_size
            .map_or(super::plan::DEFAULT_BATCH_SIZE, usize::from),
        context: args
            .decoding
            .context
            .unwrap_or(super::plan::DEFAULT_CONTEXT),
        params: crate::chat::generate::Params {
            max_new_tokens: args
                .decoding
                .max_new_tokens
                .unwrap_or(super::plan::DEFAULT_MAX_NEW_TOKENS),
            temperature: 0.0,
            seed: super::plan::DEFAULT_SEED,
        },
        concurrency: args
            .decoding
            .concurrency
            .map_or(super::plan::DEFAULT_CONCURRENCY, usize::from),
    };
    let (mut translator, _) = load::translator(&resolved, &settings)?;
    let blocks: Vec<Block> = sources
        .iter()
        .map(|s| Block {
            kind: BlockKind::Paragraph,
            text: s.clone(),
        })
        .collect();
    let mut saved = checkpoint(args, &resolved.label, &blocks, &settings)?;
    let hyps = translate_all(args, &mut translator, &blocks, saved.as_mut())?;
    let mut s = scores(
        &resolved.label,
        &hyps.iter().map(|b| b.text.clone()).collect::<Vec<_>>(),
        references,
    );
    let stats = translator.stats();
    let seconds = (stats.prefill_time + stats.decode_time)
        .as_secs_f64()
        .max(1e-9);
    let translated = hyps.len() - hyps.iter().filter(|b| b.pieces.is_empty()).count();
    let words: usize = sources.iter().map(|s| s.split_whitespace().count()).sum();
    s.sentences_per_s = Some(translated as f64 / seconds);
    s.words_per_s = Some(words as f64 * translated as f64 / hyps.len().max(1) as f64 / seconds);
    s.peak_rss_bytes = Some(super::bench::peak_rss_bytes());
    if matches!(translator, Translator::Marian(_)) && settings.quantize == Quantize::Int8 {
        s.weights = Some("int8");
    }
    let kinds: Vec<Vec<Kind>> = hyps
        .iter()
        .map(|b| b.findings.iter().map(|f| f.kind).collect())
        .collect();
    s.flagged = shares(&kinds);
    if let Some(out) = &args.output {
        let text: String = hyps
            .iter()
            .map(|b| b.text.replace('\n', " ") + "\n")
            .collect();
        crate::output::write_atomic(&side_file(out, &resolved.label, "hyp.txt"), &text)?;
        if let Some(sidecar) = saved.map(|_| side_file(out, &resolved.label, "partial.json")) {
            let _ = std::fs::remove_file(sidecar);
        }
    }
    Ok(s)
}

/// `FILE.<model>.<what>` next to `-o FILE`, the model's label made a safe file name.
fn side_file(out: &Path, label: &str, what: &str) -> PathBuf {
    let slug: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{slug}.{what}"));
    out.with_file_name(name)
}

/// The checkpoint of a model's translation when `-o` is given: resumed with `--resume`.
fn checkpoint(
    args: &EvalArgs,
    label: &str,
    blocks: &[Block],
    settings: &Settings,
) -> Result<Option<Checkpoint>> {
    let Some(out) = &args.output else {
        return Ok(None);
    };
    let path = side_file(out, label, "partial.json");
    let sha = resume::article_hash(blocks);
    let what = format!("eval, model {label}, {settings:?}");
    Ok(Some(match args.resume && path.exists() {
        true => Checkpoint::resume(&path, &sha, &what)?,
        false => Checkpoint::create(&path, &sha, &what)?,
    }))
}

/// Every block translated, the saved ones read back; a stop asked by the user keeps what is
/// saved and says how to go on.
fn translate_all(
    args: &EvalArgs,
    translator: &mut Translator,
    blocks: &[Block],
    mut saved: Option<&mut Checkpoint>,
) -> Result<Vec<TranslatedBlock>> {
    let mut done: Vec<TranslatedBlock> = Vec::with_capacity(blocks.len());
    if let Some(cp) = &saved {
        cp.for_each(|b| {
            done.push(b.clone());
            Ok(())
        })?;
    }
    let bar = progress(args.quiet, blocks.len(), done.len());
    let started = Instant::now();
    while done.len() < blocks.len() {
        if crate::cancel::check().is_err() {
            bar.finish_and_clear();
            let how = match &args.output {
                Some(_) => "; the finished sentences are saved: run the same command with --resume to continue",
                None => "; pass -o FILE to keep finished sentences for --resume",
            };
            return Err(Error::Interrupted(format!(
                "after {} of {} sentences{how}",
                done.len(),
                blocks.len()
            )));
        }
        for b in translator.translate_next(blocks, done.len())? {
            if let Some(cp) = saved.as_deref_mut() {
                cp.push(&b)?;
            }
            done.push(b);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if !args.quiet {
        eprintln!(
            "tercuman: {} sentences in {:.1} s",
            blocks.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(done)
}

fn progress(quiet: bool, total: usize, done: usize) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} translating [{bar:30}] {pos}/{len} sentences {elapsed} (ETA {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(done as u64);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Starts a new peak for VmHWM (Linux: writing 5 to clear_refs) after handing the previous
/// model's freed memory back, so that each model's peak is its own.
fn reset_peak_rss() {
    crate::sys::release_freed_memory();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn write_table(out: &mut impl Write, r: &Report) -> Result<()> {
    writeln!(out, "test set: {}", r.testset)?;
    writeln!(
        out,
        "{:32} {:>6} {:>7} {:>6} {:>8} {:>8} {:>9}  flagged by the checks",
        "model", "BLEU", "chrF++", "chrF", "sent/s", "words/s", "peak RSS"
    )?;
    for m in &r.models {
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        let flagged: Vec<String> = m
            .flagged
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v))
            .collect();
        // A model given as a path is named by its file (the JSON has the whole path).
        let mut name = Path::new(&m.model)
            .file_name()
            .map_or(m.model.clone(), |n| n.to_string_lossy().into_owned());
        if let Some(w) = m.weights {
            name = format!("{name} ({w})");
        }
        writeln!(
            out,
            "{:32} {:>6.2} {:>7.2} {:>6.2} {:>8} {:>8} {:>9}  {}",
            name,
            m.bleu,
            m.chrf_pp,
            m.chrf,
            opt(m.sentences_per_s, 2),
            opt(m.words_per_s, 1),
            m.peak_rss_bytes
                .map_or("-".to_string(), |b| format!("{:.0} MB", b as f64 / 1e6)),
            if flagged.is_empty() {
                "-".to_string()
            } else {
                flagged.join(", ")
            }
        )?;
    }
    writeln!(out, "BLEU|{}", score::BLEU_SIGNATURE)?;
    writeln!(out, "chrF2++|{}", score::CHRF_PP_SIGNATURE)?;
    writeln!(out, "chrF2|{}", score::CHRF_SIGNATURE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_sit_next_to_the_report_with_a_safe_model_name() {
        let p = side_file(Path::new("out/r.json"), "hf:a/b/c.gguf", "hyp.txt");
        assert_eq!(p, Path::new("out/r.json.hf_a_b_c.gguf.hyp.txt"));
    }

    #[test]
    fn shares_count_sentences_not_findings() {
        let s = shares(&[vec![Kind::Number, Kind::Number], vec![], vec![Kind::Name]]);
        assert!((s["number"] - 1.0 / 3.0).abs() < 1e-12);
        assert!((s["name"] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s["quote"], 0.0);
    }
}
