//! tercuman: Turkish news articles into English, on the user's own machine.
//!
//! The pipeline, one module per stage:
//! [`input`] (decode, structure) → [`chunk`] (paragraphs, sentences) → [`model`] (load, tokenize)
//! → [`prompt`] → [`generate`] → [`translate`] / [`summarize`] → [`output`] (text, Markdown,
//! JSON). [`run`] wires them together for the command line.

pub mod bench;
pub mod catalog;
pub mod checkpoint;
pub mod chunk;
pub mod cli;
pub mod error;
pub mod generate;
pub mod input;
pub mod model;
pub mod mt;
pub mod output;
pub mod prompt;
pub mod summarize;
pub mod translate;

use cli::{Cli, Job};
use error::{Error, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

/// The resolved plan of a run: what the library needs, nothing the user has still to decide.
#[derive(Debug, Clone)]
pub struct Plan {
    pub job: Job,
    pub input: PathBuf,
    /// `--encoding`, when given.
    pub encoding: Option<String>,
    /// What `--model` named (`None`: the job's default card). Parsed, and the files found or
    /// fetched, only after the article is read and the output checked, so that those cheaper
    /// errors come first.
    pub model: Option<String>,
    /// What `--summary-model` named.
    pub summary_model: Option<String>,
    /// `--beams` (Marian models; `None`: the model's own).
    pub beams: Option<usize>,
    /// Sentences a Marian model decodes at once.
    pub batch_size: usize,
    pub offline: bool,
    pub resume: bool,
    pub format: output::Format,
    pub output: Option<PathBuf>,
    pub bullets: usize,
    pub params: generate::Params,
    pub context: usize,
    pub quiet: bool,
}

impl Plan {
    /// The plan of a translate/summarize run (`None` for the `models` subcommand).
    pub fn from_cli(cli: Cli) -> Result<Option<Plan>> {
        let Some((job, a)) = cli.job_and_args() else {
            return Ok(None);
        };
        let input = a.input.expect("clap requires ARTICLE");
        let model = a.model.clone();
        if let Some(threads) = a.threads {
            // candle's CPU kernels run on rayon's global pool and on its own barrier pool,
            // sized from these variables when first used.
            std::env::set_var("RAYON_NUM_THREADS", threads.max(1).to_string());
            std::env::set_var("CANDLE_NUM_THREADS", threads.max(1).to_string());
        }
        if let Some(out) = &a.output {
            if input != std::path::Path::new("-") && same_file(&input, out) {
                return Err(Error::WriteOutput {
                    path: out.clone(),
                    source: std::io::Error::other("is the input file; choose another output path"),
                });
            }
        }
        if a.resume && a.output.is_none() {
            return Err(Error::Resume {
                path: PathBuf::from("-"),
                message: "--resume needs -o FILE: an interrupted run keeps its finished blocks next to its output file".into(),
            });
        }
        Ok(Some(Plan {
            job,
            resume: a.resume,
            encoding: a.encoding.clone(),
            offline: a.offline,
            format: a
                .format
                .unwrap_or(output::Format::for_path(a.output.as_deref())),
            input,
            model,
            summary_model: a.summary_model.clone(),
            beams: a.beams.map(usize::from),
            batch_size: a.batch_size.map_or(16, usize::from),
            output: a.output,
            bullets: a.bullets.unwrap_or(5) as usize,
            params: generate::Params {
                max_new_tokens: a.max_new_tokens.unwrap_or(512).max(1),
                temperature: a.temperature.unwrap_or(0.0),
                seed: a.seed.unwrap_or(299_792_458),
            },
            context: a.context.unwrap_or(4096).max(256),
            quiet: a.quiet,
        }))
    }
}

impl Plan {
    /// The model that translates: as `--model` names it, else the default translator.
    pub fn model_spec(&self) -> Result<model::source::ModelSpec> {
        match &self.model {
            Some(m) => model::source::ModelSpec::parse(m),
            None => Ok(default_card(model::card::Task::Translate)),
        }
    }

    /// The model that summarizes, when it is not the translating chat model: `--summary-model`;
    /// for `summarize` alone, `--model`; else the default summarizer. `None`: the chat model
    /// that translated summarizes too (`translation_is_chat`).
    pub fn summary_model_spec(
        &self,
        translation_is_chat: bool,
    ) -> Result<Option<model::source::ModelSpec>> {
        let named = match (&self.summary_model, self.job) {
            (Some(m), _) => Some(m),
            (None, Job::Summarize) => self.model.as_ref(),
            (None, _) if translation_is_chat => return Ok(None),
            (None, _) => None,
        };
        Ok(Some(match named {
            Some(m) => model::source::ModelSpec::parse(m)?,
            None => default_card(model::card::Task::Summarize),
        }))
    }
}

fn default_card(task: model::card::Task) -> model::source::ModelSpec {
    model::source::ModelSpec::Card(Box::new(model::card::default_for(task)))
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Reads and parses the article named by `path` (`-` is stdin), in its detected encoding.
pub fn read_article(path: &std::path::Path) -> Result<input::Article> {
    read_article_as(path, None, true)
}

/// Reads and parses the article named by `path` (`-` is stdin); `encoding` forces one, and a
/// guessed legacy encoding is mentioned on stderr unless `quiet`.
pub fn read_article_as(
    path: &std::path::Path,
    encoding: Option<&str>,
    quiet: bool,
) -> Result<input::Article> {
    let (bytes, what) = if path == std::path::Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(Error::ReadStdin)?;
        (buf, "standard input".to_string())
    } else {
        if path.is_dir() {
            return Err(Error::ReadInput {
                path: path.to_path_buf(),
                source: std::io::Error::other("it is a directory; pass an article's text file"),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::ReadInput {
            path: path.to_path_buf(),
            source,
        })?;
        (bytes, path.display().to_string())
    };
    let decoded = input::decode_with(&bytes, &what, encoding)?;
    if decoded.guessed && !quiet {
        eprintln!(
            "tercuman: {what} is not UTF-8; read it as {} (detected); pass --encoding to override",
            decoded.encoding
        );
    }
    let article = input::parse(&decoded.text);
    if article.blocks.is_empty() {
        return Err(Error::EmptyInput(what));
    }
    Ok(article)
}

/// Runs what the command line asks: a translate/summarize job, or a `models` subcommand.
pub fn run_cli(cli: Cli) -> Result<()> {
    if let Some(cli::Command::Models { command }) = &cli.command {
        return catalog::run(command);
    }
    if let Some(cli::Command::Bench(args)) = &cli.command {
        return bench::run(args);
    }
    let plan = Plan::from_cli(cli)?.expect("not the models subcommand");
    run(&plan)
}

/// Runs the whole job of a plan and writes its output.
pub fn run(plan: &Plan) -> Result<()> {
    Runner::new(plan)?.run()
}

/// A loaded chat model with its prompts.
struct Chat {
    engine: generate::Engine,
    style: prompt::Style,
    context: usize,
    report: output::ModelReport,
}

/// The model side of a run, once loaded: a Marian model or a chat model to translate, and a
/// chat model to summarize (the translating one, or another).
struct Loaded {
    marian: Option<mt::MarianEngine>,
    /// The Marian model's report, kept when the model itself is dropped.
    marian_report: Option<output::ModelReport>,
    chat: Option<Chat>,
    summary_chat: Option<Chat>,
    /// Figures of models already dropped.
    dropped_stats: generate::Stats,
    /// The summary model, found but not loaded yet.
    pending_summary: Option<model::source::Resolved>,
}

impl Loaded {
    fn summarizer(&mut self) -> &mut Chat {
        self.summary_chat
            .as_mut()
            .or(self.chat.as_mut())
            .expect("a summarizing run loads a chat model")
    }

    /// The report of the model that did the main work, and of the summarizer when another.
    fn reports(&self) -> (output::ModelReport, Option<output::ModelReport>) {
        let main = match (&self.marian_report, &self.chat, &self.summary_chat) {
            (Some(r), _, _) => r,
            (None, Some(c), _) | (None, None, Some(c)) => &c.report,
            (None, None, None) => unreachable!("a run loads a model"),
        };
        let summary = match (&self.marian_report, &self.chat) {
            (None, None) => None,
            _ => self.summary_chat.as_ref().map(|c| c.report.clone()),
        };
        (main.clone(), summary)
    }

    fn stats(&self) -> generate::Stats {
        let mut s = self.dropped_stats.clone();
        if let Some(m) = &self.marian {
            s.add(&m.stats);
        }
        for c in self.chat.iter().chain(&self.summary_chat) {
            s.add(&c.engine.stats);
        }
        s
    }
}

/// One run of a plan, from the article read to the output written. Finished blocks go to a
/// checkpoint file as they finish (the `-o` sidecar, or a temporary spool for JSON on stdout)
/// or straight to stdout (text and Markdown), and are read back from there when the output is
/// assembled: memory does not grow with the translation.
struct Runner<'p> {
    plan: &'p Plan,
    started: Instant,
    article: input::Article,
    /// `FILE.partial.json` next to `-o FILE`.
    sidecar: Option<PathBuf>,
    /// Where finished blocks are kept; `None` when they are only printed.
    saved: Option<checkpoint::Checkpoint>,
    /// Text or Markdown on stdout, printed block by block as they finish.
    streaming: bool,
    /// Parts printed so far when streaming.
    printed: usize,
    /// Blocks translated so far (including those a resumed run found saved).
    done: usize,
    /// Blocks that kept a flag after their retry.
    flagged: usize,
}

impl<'p> Runner<'p> {
    /// Reads the article, checks the output can be written, and opens (or resumes) the
    /// checkpoint: every error that needs no model comes from here.
    fn new(plan: &'p Plan) -> Result<Self> {
        let started = Instant::now();
        let article = read_article_as(&plan.input, plan.encoding.as_deref(), plan.quiet)?;
        if let Some(out) = &plan.output {
            output::check_writable(out)?;
        }
        let settings = format!(
            "{:?}, model {}, beams {}, temperature {}, seed {}, max new tokens {}, context {}",
            plan.job,
            plan.model.as_deref().unwrap_or("(default)"),
            plan.beams
                .map_or("(model's)".to_string(), |b| b.to_string()),
            plan.params.temperature,
            plan.params.seed,
            plan.params.max_new_tokens,
            plan.context
        );
        let article_sha = checkpoint::article_hash(&article.blocks);
        let sidecar = plan.output.as_deref().map(checkpoint::sidecar);
        let translates = matches!(plan.job, Job::Translate | Job::Both);
        let streaming = plan.output.is_none() && plan.format != output::Format::Json;
        let saved = match &sidecar {
            Some(sidecar) if plan.resume && translates => {
                let cp = checkpoint::Checkpoint::resume(sidecar, &article_sha, &settings)?;
                if !plan.quiet {
                    eprintln!(
                        "tercuman: resuming: {} of {} blocks already done",
                        cp.len(),
                        article.blocks.len()
                    );
                }
                Some(cp)
            }
            Some(sidecar) => {
                if translates && sidecar.exists() && !plan.quiet {
                    eprintln!(
                        "tercuman: note: {} holds an unfinished run; it is replaced (pass --resume to continue it instead)",
                        sidecar.display()
                    );
                }
                match translates {
                    true => Some(checkpoint::Checkpoint::create(
                        sidecar,
                        &article_sha,
                        &settings,
                    )?),
                    false => None,
                }
            }
            None if translates && !streaming => {
                Some(checkpoint::Checkpoint::spool(&article_sha, &settings)?)
            }
            None => None,
        };
        Ok(Runner {
            plan,
            started,
            article,
            done: saved.as_ref().map_or(0, |cp| cp.len()),
            sidecar: if translates { sidecar } else { None },
            saved,
            streaming,
            printed: 0,
            flagged: 0,
        })
    }

    fn translates(&self) -> bool {
        matches!(self.plan.job, Job::Translate | Job::Both)
    }

    fn run(mut self) -> Result<()> {
        checkpoint::install_handler(self.plan.quiet);
        let progress = progress_bar(self.plan.quiet);
        let mut m = self.load(&progress)?;
        if self.translates() {
            if let Err(e) = self.translate(&mut m, &progress) {
                progress.finish_and_clear();
                return self.stopped(e, &m, None);
            }
            // The translation model is not needed for the summary: its memory goes back now.
            if let Some(mt) = m.marian.take() {
                m.dropped_stats.add(&mt.stats);
            }
        }
        let mut summary = None;
        if matches!(self.plan.job, Job::Summarize | Job::Both) {
            if let Some(resolved) = m.pending_summary.take() {
                progress.set_message(format!("loading {}", resolved.label));
                m.summary_chat = Some(self.load_chat(&resolved)?);
            }
            progress.set_message("summarizing");
            let chat = m.summarizer();
            let s = checkpoint::check().and_then(|()| {
                summarize::summarize(
                    &mut chat.engine,
                    &chat.style,
                    &self.article,
                    self.plan.bullets,
                    chat.context,
                )
            });
            match s {
                Ok(s) => {
                    self.flagged += usize::from(!s.flags.is_empty());
                    summary = Some(s);
                }
                Err(e) => {
                    progress.finish_and_clear();
                    return self.stopped(e, &m, Some("while summarizing"));
                }
            }
        }
        progress.finish_and_clear();
        self.finish(&m, summary)
    }

    /// Finds (or fetches) the models the job needs and loads them.
    fn load(&self, progress: &ProgressBar) -> Result<Loaded> {
        let hub = model::hub::Hub::from_env(self.plan.offline, self.plan.quiet);
        let mut loaded = Loaded {
            marian: None,
            marian_report: None,
            chat: None,
            summary_chat: None,
            dropped_stats: generate::Stats::default(),
            pending_summary: None,
        };
        if self.translates() {
            let resolved = model::source::resolve(&self.plan.model_spec()?, &hub)?;
            progress.set_message(format!("loading {}", resolved.label));
            match &resolved.weights {
                model::source::Weights::Marian(dir) => {
                    let engine =
                        mt::MarianEngine::load(dir, self.plan.beams, self.plan.batch_size)?;
                    let report = output::ModelReport {
                        source: resolved.label.clone(),
                        name: dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        architecture: "marian".into(),
                        path: dir.display().to_string(),
                    };
                    loaded.marian = Some(engine);
                    loaded.marian_report = Some(report);
                }
                model::source::Weights::Gguf(_) => loaded.chat = Some(self.load_chat(&resolved)?),
            }
        }
        if matches!(self.plan.job, Job::Summarize | Job::Both) {
            if let Some(spec) = self.plan.summary_model_spec(loaded.chat.is_some())? {
                // Found (or downloaded) and checked now, so that a wrong summary model is
                // reported before the translation; loaded only when the summary starts, after
                // a Marian translator has given its memory back.
                let resolved = model::source::resolve(&spec, &hub)?;
                chat_weights(&resolved)?;
                if loaded.marian.is_some() {
                    loaded.pending_summary = Some(resolved);
                } else {
                    progress.set_message(format!("loading {}", resolved.label));
                    loaded.summary_chat = Some(self.load_chat(&resolved)?);
                }
            }
        }
        Ok(loaded)
    }

    /// Loads a GGUF chat model with its prompt style.
    fn load_chat(&self, resolved: &model::source::Resolved) -> Result<Chat> {
        let path = chat_weights(resolved)?;
        let model = model::load_gguf(path)?;
        let bos_token = model
            .info
            .bos
            .and_then(|id| model.tokenizer.id_to_token(id))
            .unwrap_or_default();
        let style = match resolved.card.as_ref().and_then(|c| c.prompts.as_ref()) {
            Some(prompts) => prompt::Style::for_card(prompts, Some(&model.info), &bos_token)?,
            None => prompt::Style::for_model(&model.info, &bos_token),
        };
        let report = output::ModelReport {
            source: resolved.label.clone(),
            name: model.info.name.clone(),
            architecture: model.info.architecture.clone(),
            path: path.display().to_string(),
        };
        Ok(Chat {
            context: self.plan.context.min(model.info.context_length),
            engine: generate::Engine::new(model, self.plan.params.clone()),
            style,
            report,
        })
    }

    /// Translates the blocks not done yet, saving or printing each as it finishes. A Marian
    /// model takes a few blocks at a time, about one batch of sentences.
    fn translate(&mut self, m: &mut Loaded, progress: &ProgressBar) -> Result<()> {
        let total = self.article.blocks.len();
        progress.set_length(total as u64);
        progress.set_position(self.done as u64);
        progress.set_message("translating");
        let markdown = self.plan.format == output::Format::Markdown;
        while self.done < total {
            checkpoint::check()?;
            let finished = match (&mut m.marian, &mut m.chat) {
                (Some(mt), _) => {
                    let rest = &self.article.blocks[self.done..];
                    let n = mt.window_len(rest.iter().map(|b| b.text.as_str()));
                    let window: Vec<mt::Block> = rest[..n]
                        .iter()
                        .enumerate()
                        .map(|(i, block)| mt::Block {
                            index: self.done + i,
                            kind: block.kind,
                            text: &block.text,
                        })
                        .collect();
                    mt.translate(&window)?
                }
                (None, Some(chat)) => {
                    let block = &self.article.blocks[self.done];
                    vec![translate::translate_block(
                        &mut chat.engine,
                        &chat.style,
                        self.done,
                        block.kind,
                        &block.text,
                        chat.context,
                    )?]
                }
                (None, None) => unreachable!("a translating run loads a translator"),
            };
            for t in finished {
                if let Some(cp) = &mut self.saved {
                    cp.push(&t)?;
                }
                if self.streaming {
                    let index = self.printed;
                    progress.suspend(|| print_part(index, &output::render_block(&t, markdown)))?;
                    self.printed += 1;
                }
                self.flagged += usize::from(!t.flags.is_empty());
                self.done += 1;
                progress.inc(1);
            }
        }
        Ok(())
    }

    /// The report of the run so far.
    fn report<'a>(&'a self, m: &Loaded, summary: Option<summarize::Summary>) -> output::Report<'a> {
        let (model, summary_model) = m.reports();
        output::Report {
            model,
            summary_model,
            blocks: match &self.saved {
                Some(cp) => Some(output::Blocks::Saved(cp)),
                None if self.translates() => Some(output::Blocks::Printed(self.printed)),
                None => None,
            },
            summary,
            stats: m.stats(),
            wall_seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    /// Writes the output (the rest of it, when streaming), removes the checkpoint, and prints
    /// the stats line.
    fn finish(mut self, m: &Loaded, summary: Option<summarize::Summary>) -> Result<()> {
        let format = self.plan.format;
        {
            let report = self.report(m, summary);
            match &self.plan.output {
                Some(path) => {
                    output::write_atomic_with(path, &mut |w| output::write(&report, format, w))?
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    output::write(&report, format, &mut stdout)?;
                    stdout.flush()?;
                }
            }
        }
        if let Some(sidecar) = &self.sidecar {
            drop(self.saved.take());
            let _ = std::fs::remove_file(sidecar);
        }
        if !self.plan.quiet {
            let s = &m.stats();
            let flagged = match self.flagged {
                0 => String::new(),
                n => format!(", {n} flagged (details with --format json)"),
            };
            eprintln!(
                "tercuman: {} prompt tokens ({:.1} tok/s), {} generated ({:.1} tok/s), {:.1} s wall{flagged}",
                s.prompt_tokens,
                s.prefill_tps(),
                s.generated_tokens,
                s.decode_tps(),
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Turns a stop asked by the user into [`Error::Interrupted`], saying what was kept and
    /// how to go on; any other error passes through.
    fn stopped(&self, e: Error, m: &Loaded, during: Option<&str>) -> Result<()> {
        if !matches!(e, Error::Stopped) {
            return Err(e);
        }
        let total = self.article.blocks.len();
        let what = match during {
            Some(during) if self.translates() => {
                format!("{during}, after all {total} blocks were translated")
            }
            Some(during) => format!("{during}; the summary was not finished"),
            None => format!("after {} of {total} blocks", self.done),
        };
        let kept = match (&self.sidecar, self.streaming) {
            (_, _) if !self.translates() => String::new(),
            (Some(s), _) => format!(
                "; the finished blocks are saved in {}; run the same command with --resume to continue",
                s.display()
            ),
            (None, true) => "; the finished blocks were written to stdout".into(),
            (None, false) => {
                // JSON on stdout: the finished blocks are written out, so that none is lost.
                let mut stdout = std::io::stdout().lock();
                output::write(&self.report(m, None), self.plan.format, &mut stdout)?;
                stdout.flush()?;
                "; the finished blocks were written to stdout; use -o FILE to be able to --resume"
                    .into()
            }
        };
        Err(Error::Interrupted(format!("{what}{kept}")))
    }
}

/// The GGUF file of a model that is to summarize; a translation model cannot.
fn chat_weights(resolved: &model::source::Resolved) -> Result<&std::path::Path> {
    match &resolved.weights {
        model::source::Weights::Gguf(path) => Ok(path),
        other => Err(Error::InvalidModel {
            path: other.path().to_path_buf(),
            message: format!(
                "`{}` is a translation model; the summary needs a chat model (GGUF): pass one with --summary-model, or leave it out for the default",
                resolved.label
            ),
        }),
    }
}

/// Prints part number `index` of streamed text or Markdown output.
fn print_part(index: usize, part: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    output::write_part(&mut stdout, index, part)?;
    stdout.flush()?;
    Ok(())
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} blocks {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
