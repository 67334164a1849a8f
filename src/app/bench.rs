//! `tercuman bench`: speed and memory on a fixed workload, in a form other engines can run too
//! (scripts/bench_*.py run the same workload through llama.cpp and CTranslate2).
//!
//! A GGUF chat model: the prompt file's text tokenized as-is after the model's BOS, one
//! prefill, then a fixed number of greedy tokens with end-of-sequence ignored. A Marian model:
//! the article translated end to end through the same sentence batching as `translate`, every
//! sentence decoding a fixed number of tokens (or as many as its source has).

use crate::cli::BenchArgs;
use crate::error::{Error, Result};
use crate::hub::spec::{self, ModelFiles, ModelSpec};
use crate::hub::Hub;
use crate::model::marian::ForcedLength;
use crate::model::marian::Quantize;
use crate::translate::marian::{Block, MarianEngine};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// The article benchmarks translate when none is given: the sample news article.
const SAMPLE: &str = include_str!("../../tests/fixtures/pekin-zirvesi.tr.txt");

#[derive(Debug, Default, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub kind: &'static str,
    pub threads: usize,
    pub load_s: f64,
    pub prompt_tokens: usize,
    pub prefill_tps: f64,
    pub gen_tokens: usize,
    pub decode_tps: f64,
    pub peak_rss_bytes: u64,
    /// GGUF: of the resident memory after decoding, what is mapped files' pages: the model
    /// file's (shared with every process that maps the same file; counted in the peak too) and
    /// the program's own.
    pub file_rss_bytes: u64,
    /// GGUF: bytes of weights one decoded token reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_bytes_per_token: Option<usize>,
    /// `--bandwidth`: bytes read and written per second by a large copy (STREAM's count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_bandwidth_bytes_per_s: Option<f64>,
    /// `--bandwidth`: decode speed as a share of bandwidth / weight_bytes_per_token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_share_of_bound: Option<f64>,
    /// `--bandwidth`: bytes read per second by a large read-only scan (what decoding does to
    /// the weights; a copy's count adds its writes, which go on in parallel with its reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_bandwidth_bytes_per_s: Option<f64>,
    /// `--bandwidth`: decode speed as a share of read bandwidth / weight_bytes_per_token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_share_of_read_bound: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beams: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentences: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_words: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words_per_s: Option<f64>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    super::set_threads(threads);
    let hub = Hub::from_env(args.offline, true);
    let resolved = spec::resolve(&ModelSpec::parse(&args.model)?, &hub)?;
    let mut report = match &resolved.files {
        ModelFiles::Gguf(path) => gguf(args, path)?,
        ModelFiles::Marian(dir) => marian(args, dir)?,
        ModelFiles::Remote(_) => {
            return Err(Error::Remote {
                url: resolved.label,
                message: "runs the model, not tercuman: bench measures local models (time a batch run with --concurrency for a served one)".into(),
            })
        }
    };
    report.model = resolved.label;
    report.threads = threads;
    report.peak_rss_bytes = peak_rss_bytes();
    if let (true, Some(bytes)) = (args.bandwidth, report.weight_bytes_per_token) {
        let bw = copy_bandwidth(threads);
        report.copy_bandwidth_bytes_per_s = Some(bw);
        report.decode_share_of_bound = Some(report.decode_tps / (bw / bytes as f64));
        let read = read_bandwidth(threads);
        report.read_bandwidth_bytes_per_s = Some(read);
        report.decode_share_of_read_bound = Some(report.decode_tps / (read / bytes as f64));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "model        {} ({}, {} threads)",
            report.model, report.kind, threads
        )?;
        writeln!(out, "load         {:.2} s", report.load_s)?;
        writeln!(
            out,
            "prefill      {} tokens, {:.1} tok/s",
            report.prompt_tokens, report.prefill_tps
        )?;
        writeln!(
            out,
            "decode       {} tokens, {:.1} tok/s",
            report.gen_tokens, report.decode_tps
        )?;
        if let (Some(s), Some(w), Some(wall), Some(wps)) = (
            report.sentences,
            report.source_words,
            report.wall_s,
            report.words_per_s,
        ) {
            writeln!(
                out,
                "article      {s} sentences, {w} source words in {wall:.2} s: {wps:.1} words/s (beams {}, batch {})",
                report.beams.unwrap_or(1),
                report.batch_size.unwrap_or(1)
            )?;
        }
        if let Some(bytes) = report.weight_bytes_per_token {
            writeln!(
                out,
                "weights      {:.1} MB read per token",
                bytes as f64 / 1e6
            )?;
        }
        if let (Some(bw), Some(share)) = (
            report.copy_bandwidth_bytes_per_s,
            report.decode_share_of_bound,
        ) {
            writeln!(
                out,
                "bandwidth    {:.2} GB/s (copy, {threads} threads): decode at {:.0}% of its bound",
                bw / 1e9,
                share * 100.0
            )?;
        }
        if let (Some(bw), Some(share)) = (
            report.read_bandwidth_bytes_per_s,
            report.decode_share_of_read_bound,
        ) {
            writeln!(
                out,
                "             {:.2} GB/s (read, {threads} threads): decode at {:.0}% of its bound",
                bw / 1e9,
                share * 100.0
            )?;
        }
        writeln!(
            out,
            "peak RSS     {:.1} MB (after decoding, {:.1} MB of it mapped files' pages, the model's and the program's)",
            report.peak_rss_bytes as f64 / 1e6,
            report.file_rss_bytes as f64 / 1e6
        )?;
    }
    Ok(())
}

fn gguf(args: &BenchArgs, path: &std::path::Path) -> Result<BenchReport> {
    let text = match &args.prompt_file {
        Some(p) => std::fs::read_to_string(p).map_err(|source| Error::ReadInput {
            path: p.clone(),
            source,
        })?,
        None => crate::text::input::parse(SAMPLE).blocks[1].text.clone(),
    };
    let t = Instant::now();
    let mut model = crate::model::load_gguf(path)?;
    let load_s = t.elapsed().as_secs_f64();
    // BOS only where the model asks for it (`tokenizer.ggml.add_bos_token`), as llama.cpp
    // does: Qwen GGUFs name a BOS token but do not add it.
    let bos = model.info.bos.filter(|_| model.info.add_bos);
    let mut ids: Vec<u32> = bos.into_iter().collect();
    ids.extend(crate::model::gguf_tokenizer::encode(
        &mut model.tokenizer,
        text.as_str(),
        false,
    )?);
    if ids.is_empty() {
        let file = args
            .prompt_file
            .as_deref()
            .unwrap_or(std::path::Path::new("the prompt"));
        return Err(Error::EmptyInput(file.display().to_string()));
    }
    let gen = args.gen_tokens.unwrap_or(64);
    if ids.len() + gen > model.info.context_length {
        return Err(Error::ContextOverflow {
            needed: ids.len() + gen,
            context: model.info.context_length,
        });
    }
    let t = Instant::now();
    let mut logits = model.network.forward(&ids, 0)?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for pos in ids.len()..ids.len() + gen {
        let next = logits.argmax(0)?.to_scalar::<u32>()?;
        logits = model.network.forward(&[next], pos)?;
    }
    let decode = t.elapsed().as_secs_f64();
    Ok(BenchReport {
        kind: "gguf",
        // While the model still holds its mapped weights.
        file_rss_bytes: file_rss_bytes(),
        load_s,
        prompt_tokens: ids.len(),
        prefill_tps: ids.len() as f64 / prefill.max(1e-9),
        gen_tokens: gen,
        decode_tps: gen as f64 / decode.max(1e-9),
        weight_bytes_per_token: Some(model.network.weight_bytes_per_token()),
        ..BenchReport::default()
    })
}

/// Memory bandwidth as STREAM's copy counts it (bytes read plus bytes written per second):
/// `threads` threads copying their share of a 256 MiB buffer, far larger than the caches;
/// the best of five rounds (the first also faults the destination's pages in).
fn copy_bandwidth(threads: usize) -> f64 {
    const BYTES: usize = 256 << 20;
    let n = BYTES / 8;
    let src: Vec<u64> = (0..n as u64).collect();
    let mut dst = vec![0u64; n];
    let share = n.div_ceil(threads.max(1));
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for (d, from) in dst.chunks_mut(share).zip(src.chunks(share)) {
                s.spawn(move || d.copy_from_slice(from));
            }
        });
        best = best.max(2.0 * BYTES as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(&dst);
    }
    best
}

/// Memory bandwidth of reading alone: `threads` threads each summing their share of a
/// 256 MiB buffer, far larger than the caches, as the product kernels read weights
/// ([`tercuman_kernels::read_sum`]); the best of five rounds. Decoding reads the weights and writes next to nothing,
/// so this, not the copy, is the rate it can reach: on the 2-vCPU Xeon of round 11, 15-17
/// GB/s read against a copy count of 22-31 GB/s.
fn read_bandwidth(threads: usize) -> f64 {
    const BYTES: usize = 256 << 20;
    let n = BYTES / 8;
    let src: Vec<u64> = (0..n as u64).collect();
    let share = n.div_ceil(threads.max(1));
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let parts: Vec<_> = src
                .chunks(share)
                .map(|part| s.spawn(move || tercuman_kernels::read_sum(part)))
                .collect();
            parts
                .into_iter()
                .map(|p| p.join().unwrap_or(0))
                .fold(0, u64::wrapping_add)
        });
        best = best.max(BYTES as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(total);
    }
    best
}

fn marian(args: &BenchArgs, dir: &std::path::Path) -> Result<BenchReport> {
    let text = match &args.article {
        Some(p) => crate::text::read_article(p)?,
        None => crate::text::input::parse(SAMPLE),
    };
    let t = Instant::now();
    let mut mt = MarianEngine::load(
        dir,
        args.beams.map(usize::from),
        args.batch_size
            .map_or(super::plan::DEFAULT_BATCH_SIZE, usize::from),
        args.quantize.unwrap_or_default(),
    )?;
    let load_s = t.elapsed().as_secs_f64();
    let positions = mt.model.config.max_position_embeddings;
    mt.model.generation.forced_length = Some(match args.gen_tokens {
        Some(n) if n + 1 > positions => {
            return Err(Error::ContextOverflow {
                needed: n + 1,
                context: positions,
            })
        }
        Some(n) => ForcedLength::Tokens(n),
        None => ForcedLength::SourceLength,
    });
    let blocks: Vec<Block> = text
        .blocks
        .iter()
        .enumerate()
        .map(|(index, b)| Block {
            index,
            kind: b.kind,
            text: &b.text,
        })
        .collect();
    let t = Instant::now();
    let mut start = 0;
    let mut sentences = Vec::new();
    while start < blocks.len() {
        let end = start + mt.window_len(blocks[start..].iter().map(|b| b.text));
        for b in mt.translate(&blocks[start..end])? {
            sentences.extend(b.pieces.into_iter().map(|p| p.source.replace('\n', " ")));
        }
        start = end;
    }
    let wall = t.elapsed().as_secs_f64();
    if let Some(path) = &args.dump_sentences {
        let mut text = sentences.join("\n");
        text.push('\n');
        crate::output::write_atomic(path, &text)?;
    }
    let words: usize = text
        .blocks
        .iter()
        .map(|b| b.text.split_whitespace().count())
        .sum();
    let s = &mt.stats;
    Ok(BenchReport {
        kind: match args.quantize.unwrap_or_default() {
            Quantize::None => "marian",
            Quantize::Int8 => "marian int8",
        },
        load_s,
        prompt_tokens: s.prompt_tokens,
        prefill_tps: s.prefill_tps(),
        gen_tokens: s.generated_tokens,
        decode_tps: s.decode_tps(),
        beams: Some(mt.beams),
        batch_size: Some(mt.batch_size),
        sentences: Some(sentences.len()),
        source_words: Some(words),
        wall_s: Some(wall),
        words_per_s: Some(words as f64 / wall.max(1e-9)),
        ..BenchReport::default()
    })
}

/// The process's peak resident memory (VmHWM), 0 where the system does not say.
pub fn peak_rss_bytes() -> u64 {
    status_kb("VmHWM:").map_or(0, |kb| kb * 1024)
}

/// The resident pages of mapped files (RssFile: the model's weights, and the program), 0 where
/// the system does not say.
fn file_rss_bytes() -> u64 {
    status_kb("RssFile:").map_or(0, |kb| kb * 1024)
}

/// A kB figure from /proc/self/status (Linux), by its label.
fn status_kb(label: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(label))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
