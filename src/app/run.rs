//! One translate/summarize run of a [`Plan`], from the article read to the output written.
//!
//! Finished blocks go to a checkpoint file as they finish (the `-o` sidecar, or a temporary
//! spool for JSON on stdout) or straight to stdout (text and Markdown), and are read back from
//! there when the output is assembled: memory does not grow with the translation. A stop
//! asked by the user ([`crate::cancel`]) ends the run between blocks with what was kept.

use super::load::{self, ChatModel, Translator};
use super::plan::Plan;
use super::Outcome;
use crate::error::{Error, Result};
use crate::hub::spec::{self, ModelFiles, Resolved};
use crate::hub::Hub;
use crate::output::resume::{self, Checkpoint};
use crate::output::{self, Format, ModelReport};
use crate::remote::Client;
use crate::stats::Stats;
use crate::summarize::cite::Paragraph;
use crate::summarize::remote::RemoteSummarizer;
use crate::summarize::{self, Summary};
use crate::text::Article;
use crate::translate::TranslatedBlock;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs the whole job of a plan and writes its output. [`Outcome::Findings`] when `--strict`
/// and a block or bullet kept a flag or a finding.
pub fn run(plan: &Plan) -> Result<Outcome> {
    if plan.batch.is_some() {
        return super::batch::run(plan);
    }
    Runner::new(plan)?.run()
}

/// What one article's run came to, for a batch's line and manifest.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// Whether `--strict` asks for exit status 1.
    pub strict_failed: bool,
    pub blocks: usize,
    /// Blocks found done in the checkpoint of an earlier run.
    pub resumed: usize,
    pub flagged_blocks: usize,
    pub flagged_bullets: usize,
    /// Flags and findings that remain, by kind.
    pub kinds: std::collections::BTreeMap<String, usize>,
    /// This article's share of the models' figures.
    pub stats: Stats,
}

/// The model that summarizes.
enum Summarizer {
    /// The job does not summarize.
    None,
    /// The chat model that translates summarizes too.
    Translator,
    /// A chat model of its own.
    Own(Box<ChatModel>),
    /// Found (and checked) but not loaded yet: a Marian translator gives its memory back
    /// first.
    Pending(Box<Resolved>),
    /// A served model (the translating one's client, or one of its own).
    Remote(Box<RemoteSummarizer>, ModelReport),
}

/// The model side of a run, once loaded; a batch loads it once for all its articles.
pub struct Models {
    /// `None` when the job does not translate, and once a Marian model was dropped after the
    /// translation.
    translator: Option<Translator>,
    /// The translating model's report, kept when the model itself is dropped.
    translator_report: Option<ModelReport>,
    summarizer: Summarizer,
    /// Figures of models already dropped.
    dropped_stats: Stats,
    /// Wall time spent finding and loading the models, not yet counted in an article's
    /// figures (the article that needed them takes it).
    load_time: Duration,
}

impl Models {
    /// Finds (or fetches) the models the job of `plan` needs and loads them.
    pub fn load(plan: &Plan, progress: &ProgressBar) -> Result<Models> {
        let t = Instant::now();
        let mut models = Self::find_and_load(plan, progress)?;
        models.load_time = t.elapsed();
        Ok(models)
    }

    fn find_and_load(plan: &Plan, progress: &ProgressBar) -> Result<Models> {
        let hub = Hub::from_env(plan.offline, plan.quiet);
        let mut models = Models {
            translator: None,
            translator_report: None,
            summarizer: Summarizer::None,
            dropped_stats: Stats::default(),
            load_time: Duration::ZERO,
        };
        if plan.translates() {
            let resolved = spec::resolve(&plan.model_spec()?, &hub)?;
            progress.set_message(format!("loading {}", resolved.label));
            let (translator, report) = load::translator(&resolved, &settings(plan))?;
            models.translator = Some(translator);
            models.translator_report = Some(report);
        }
        if plan.summarizes() {
            let chat_translates = matches!(
                models.translator,
                Some(Translator::Chat(_) | Translator::Remote(_))
            );
            models.summarizer = match plan.summary_model_spec(chat_translates)? {
                None => match &models.translator {
                    Some(Translator::Remote(r)) => Summarizer::Remote(
                        Box::new(load::remote_summarizer(r.client.clone(), &settings(plan))),
                        models
                            .translator_report
                            .clone()
                            .expect("a loaded translator's report"),
                    ),
                    _ => Summarizer::Translator,
                },
                Some(spec) => {
                    // Found (or downloaded) and checked now, so that a wrong summary model is
                    // reported before the translation; loaded only when the summary starts,
                    // after a Marian translator has given its memory back.
                    let resolved = spec::resolve(&spec, &hub)?;
                    if let ModelFiles::Remote(endpoint) = &resolved.files {
                        let client = Client::connect(endpoint, plan.concurrency)?;
                        let report = load::remote_report(&client, endpoint);
                        let s = load::remote_summarizer(client, &settings(plan));
                        return Ok(Models {
                            summarizer: Summarizer::Remote(Box::new(s), report),
                            ..models
                        });
                    }
                    load::chat_weights(&resolved)?;
                    if matches!(models.translator, Some(Translator::Marian(_))) {
                        Summarizer::Pending(Box::new(resolved))
                    } else {
                        progress.set_message(format!("loading {}", resolved.label));
                        Summarizer::Own(Box::new(load::chat(&resolved, &settings(plan))?))
                    }
                }
            };
        }
        Ok(models)
    }

    /// The chat model that summarizes, once loaded.
    fn summarizer(&mut self) -> Option<&mut ChatModel> {
        match (&mut self.summarizer, &mut self.translator) {
            (Summarizer::Own(c), _) => Some(c),
            (Summarizer::Translator, Some(Translator::Chat(c))) => Some(c),
            _ => None,
        }
    }

    /// The report of the model that did the main work, and of the summarizer when another.
    fn reports(&self) -> (ModelReport, Option<ModelReport>) {
        let own = match &self.summarizer {
            Summarizer::Own(c) => Some(c.report.clone()),
            Summarizer::Remote(_, r) if self.translator_report.as_ref() != Some(r) => {
                Some(r.clone())
            }
            _ => None,
        };
        match (&self.translator_report, own) {
            (Some(t), own) => (t.clone(), own),
            (None, Some(own)) => (own, None),
            (None, None) => unreachable!("a run loads a translator or a summarizer"),
        }
    }

    fn stats(&self) -> Stats {
        let mut s = self.dropped_stats.clone();
        if let Some(t) = &self.translator {
            s.add(t.stats());
        }
        if let Summarizer::Own(c) = &self.summarizer {
            s.add(&c.engine.stats);
        }
        s
    }

    /// A copy for another worker of a batch: only a remote translator with no summary is
    /// shared this way (its clients share one limit on requests in flight).
    pub fn remote_clone(&self) -> Option<Models> {
        let Some(Translator::Remote(r)) = &self.translator else {
            return None;
        };
        if !matches!(self.summarizer, Summarizer::None) {
            return None;
        }
        let mut r = r.clone();
        r.stats = Stats::default();
        Some(Models {
            translator: Some(Translator::Remote(r)),
            translator_report: self.translator_report.clone(),
            summarizer: Summarizer::None,
            dropped_stats: Stats::default(),
            load_time: Duration::ZERO,
        })
    }

    /// Gives a Marian translator's memory back (the summary does not need it).
    fn drop_marian(&mut self) {
        if let Some(Translator::Marian(mt)) = &self.translator {
            self.dropped_stats.add(&mt.stats);
            self.translator = None;
        }
    }
}

/// One run of a plan.
pub struct Runner<'p> {
    plan: &'p Plan,
    started: Instant,
    article: Article,
    /// `FILE.partial.json` next to `-o FILE`.
    sidecar: Option<PathBuf>,
    /// Where finished blocks are kept; `None` when they are only printed.
    saved: Option<Checkpoint>,
    /// Text or Markdown on stdout, printed block by block as they finish.
    streaming: bool,
    /// Parts printed so far when streaming.
    printed: usize,
    /// Blocks translated so far (including those a resumed run found saved).
    done: usize,
    /// The lock on `-o FILE`, held until the run ends.
    _lock: Option<output::lock::OutputLock>,
    /// Blocks that kept a flag or a finding after their retry.
    flagged: usize,
    /// The flagged blocks, for the Review section.
    review: Vec<output::Flagged>,
    /// The translated blocks' text, kept when a summary follows (citations and
    /// `--summary-from translation` read it).
    translations: Vec<String>,
    /// Flags and findings kept, by kind.
    kinds: std::collections::BTreeMap<String, usize>,
    /// Wall time of the loads this article waited for, and of its translation and summary.
    load_time: Duration,
    translate_time: Duration,
    summarize_time: Duration,
    /// The models' figures before this article (a batch's models did other articles).
    stats_before: Stats,
    /// Blocks a resumed run found done.
    resumed: usize,
}

impl<'p> Runner<'p> {
    /// Reads the article, checks the output can be written, and opens (or resumes) the
    /// checkpoint: every error that needs no model comes from here.
    pub fn new(plan: &'p Plan) -> Result<Self> {
        let started = Instant::now();
        let article =
            crate::text::read_article_as(&plan.input, plan.encoding.as_deref(), plan.quiet)?;
        if let Some(max) = plan.max_words {
            let words = article
                .blocks
                .iter()
                .map(|b| b.text.split_whitespace().count())
                .sum::<usize>();
            if words > max {
                return Err(Error::TooLong {
                    what: match plan.input.to_str() {
                        Some("-") => "standard input".to_string(),
                        _ => plan.input.display().to_string(),
                    },
                    words,
                    max,
                });
            }
        }
        let lock = match &plan.output {
            Some(out) => {
                output::check_writable(out)?;
                Some(output::lock::acquire(out)?)
            }
            None => None,
        };
        let sidecar = plan.output.as_deref().map(resume::sidecar);
        let streaming = plan.output.is_none() && plan.format != Format::Json;
        let saved = match plan.translates() {
            true => open_checkpoint(plan, &article, sidecar.as_deref(), streaming)?,
            false => None,
        };
        let mut runner = Runner {
            plan,
            started,
            article,
            done: 0,
            sidecar: if plan.translates() { sidecar } else { None },
            saved: None,
            streaming,
            printed: 0,
            _lock: lock,
            flagged: 0,
            review: Vec::new(),
            translations: Vec::new(),
            kinds: Default::default(),
            stats_before: Stats::default(),
            load_time: Duration::ZERO,
            translate_time: Duration::ZERO,
            summarize_time: Duration::ZERO,
            resumed: 0,
        };
        // Blocks a resumed run finds done count as if just translated.
        if let Some(cp) = &saved {
            cp.for_each(|b| {
                runner.note(b);
                Ok(())
            })?;
        }
        runner.saved = saved;
        runner.resumed = runner.done;
        Ok(runner)
    }

    /// Counts a finished block: flagged, reviewed, its text kept for the summary.
    fn note(&mut self, t: &TranslatedBlock) {
        let kinds = t.flags.iter().map(|f| f.to_string());
        for kind in kinds.chain(t.findings.iter().map(|f| f.kind.to_string())) {
            *self.kinds.entry(kind).or_default() += 1;
        }
        if let Some(f) = output::Flagged::of(self.done, t) {
            self.flagged += 1;
            self.review.push(f);
        }
        if self.plan.summarizes() {
            self.translations.push(t.text.clone());
        }
        self.done += 1;
    }

    fn run(self) -> Result<Outcome> {
        crate::cancel::install_handler(self.plan.quiet);
        let progress = progress_bar(self.plan.quiet);
        let done =
            Models::load(self.plan, &progress).and_then(|mut m| self.work(&mut m, &progress, true));
        progress.finish_and_clear();
        Ok(match done?.strict_failed {
            true => Outcome::Findings,
            false => Outcome::Success,
        })
    }

    /// Translates and/or summarizes the article with loaded models and writes the output.
    /// `alone`: the run's only article, so that a Marian translator may give its memory back
    /// before the summary.
    pub fn work(mut self, m: &mut Models, progress: &ProgressBar, alone: bool) -> Result<Done> {
        self.stats_before = m.stats();
        self.load_time = std::mem::take(&mut m.load_time);
        if self.plan.translates() {
            let t = Instant::now();
            if let Err(e) = self.translate(m, progress) {
                return Err(self.stopped(e, m, None));
            }
            self.translate_time = t.elapsed();
            if alone {
                m.drop_marian();
            }
        }
        let mut summary = None;
        if self.plan.summarizes() {
            let t = Instant::now();
            match self.summarize(m, progress) {
                Ok(s) => summary = Some(s),
                Err(e) => return Err(self.stopped(e, m, Some("while summarizing"))),
            }
            // A summary model loaded only now counts as loading, not summarizing.
            let loaded = std::mem::take(&mut m.load_time);
            self.load_time += loaded;
            self.summarize_time = t.elapsed().saturating_sub(loaded);
        }
        progress.set_message("writing");
        self.finish(m, summary)
    }

    /// Translates the blocks not done yet, saving or printing each as it finishes. A Marian
    /// model takes a few blocks at a time, about one batch of sentences.
    fn translate(&mut self, m: &mut Models, progress: &ProgressBar) -> Result<()> {
        let total = self.article.blocks.len();
        progress.set_length(total as u64);
        progress.set_position(self.done as u64);
        progress.set_message("translating");
        let Some(translator) = &mut m.translator else {
            unreachable!("a translating run loads a translator")
        };
        while self.done < total {
            crate::cancel::check()?;
            let finished = translator.translate_next(&self.article.blocks, self.done)?;
            for t in finished {
                self.keep(&t, progress)?;
            }
        }
        Ok(())
    }

    /// Saves and/or prints a finished block.
    fn keep(&mut self, t: &TranslatedBlock, progress: &ProgressBar) -> Result<()> {
        if let Some(cp) = &mut self.saved {
            cp.push(t)?;
        }
        if self.streaming {
            let index = self.printed;
            let markdown = self.plan.format == Format::Markdown;
            progress.suspend(|| print_part(index, &output::render_block(t, markdown)))?;
            self.printed += 1;
        }
        self.note(t);
        progress.inc(1);
        Ok(())
    }

    /// Loads the summarizer if it waited for the translator to go, and summarizes.
    fn summarize(&self, m: &mut Models, progress: &ProgressBar) -> Result<Summary> {
        if let Summarizer::Pending(resolved) = &m.summarizer {
            progress.set_message(format!("loading {}", resolved.label));
            let t = Instant::now();
            m.summarizer = Summarizer::Own(Box::new(load::chat(resolved, &settings(self.plan))?));
            m.load_time += t.elapsed();
        }
        progress.set_message("summarizing");
        crate::cancel::check()?;
        let paragraphs = self
            .article
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| Paragraph {
                source: &b.text,
                translation: self.translations.get(i).map(String::as_str),
            })
            .collect();
        let mut request = summarize::Request {
            paragraphs,
            from: self.plan.summary_from,
            bullets: self.plan.bullets,
            context: 0,
            cite: self.plan.cite,
        };
        if let Summarizer::Remote(remote, _) = &m.summarizer {
            request.context = remote.context;
            return remote.summarize(&request);
        }
        let Some(chat) = m.summarizer() else {
            unreachable!("a summarizing run loads a summarizer")
        };
        request.context = chat.context;
        summarize::summarize(&mut chat.engine, &chat.style, &request)
    }

    /// The report of the run so far.
    fn report<'a>(&'a self, m: &Models, summary: Option<Summary>) -> output::Report<'a> {
        let (model, summary_model) = m.reports();
        output::Report {
            model,
            summary_model,
            blocks: match &self.saved {
                Some(cp) => Some(output::Blocks::Saved(cp)),
                None if self.plan.translates() => Some(output::Blocks::Printed(self.printed)),
                None => None,
            },
            summary,
            stats: self.stats(m),
            wall_seconds: self.started.elapsed().as_secs_f64(),
            review: self.review.clone(),
        }
    }

    /// Writes the output (the rest of it, when streaming), removes the checkpoint, and prints
    /// the stats line.
    fn finish(mut self, m: &Models, summary: Option<Summary>) -> Result<Done> {
        let format = self.plan.format;
        let flagged_bullets = summary.as_ref().map_or(0, |s| {
            s.bullets.iter().filter(|b| !b.findings.is_empty()).count()
                + usize::from(!s.flags.is_empty())
        });
        if let Some(s) = &summary {
            let kinds = s.flags.iter().map(|f| f.to_string());
            let findings = s.bullets.iter().flat_map(|b| &b.findings);
            for kind in kinds.chain(findings.map(|f| f.kind.to_string())) {
                *self.kinds.entry(kind).or_default() += 1;
            }
        }
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
            let s = &self.stats(m);
            let mut flagged = Vec::new();
            if self.flagged > 0 {
                let total = self.article.blocks.len();
                flagged.push(format!("{} of {total} blocks flagged", self.flagged));
            }
            if flagged_bullets > 0 {
                flagged.push(match flagged_bullets {
                    1 => "1 summary bullet flagged".to_string(),
                    n => format!("{n} summary bullets flagged"),
                });
            }
            let flagged = match flagged.is_empty() {
                true => String::new(),
                false => format!(
                    ", {} (details: --format json, or the Review section of --format markdown)",
                    flagged.join(", ")
                ),
            };
            let parts: Vec<String> = [
                ("load", s.load_time),
                ("translate", s.translate_time),
                ("summarize", s.summarize_time),
            ]
            .iter()
            .filter(|(_, t)| !t.is_zero())
            .map(|(what, t)| format!("{what} {:.1} s", t.as_secs_f64()))
            .collect();
            eprintln!(
                "tercuman: {} prompt tokens ({:.1} tok/s), {} generated ({:.1} tok/s), {:.1} s wall ({}){flagged}",
                s.prompt_tokens,
                s.prefill_tps(),
                s.generated_tokens,
                s.decode_tps(),
                self.started.elapsed().as_secs_f64(),
                parts.join(", ")
            );
        }
        Ok(Done {
            strict_failed: self.plan.strict && self.flagged + flagged_bullets > 0,
            blocks: self.article.blocks.len(),
            resumed: self.resumed,
            flagged_blocks: self.flagged,
            flagged_bullets,
            kinds: std::mem::take(&mut self.kinds),
            stats: self.stats(m),
        })
    }

    /// The models' figures for this article, with its translation and summary times.
    fn stats(&self, m: &Models) -> Stats {
        let mut s = m.stats().since(&self.stats_before);
        s.load_time = self.load_time;
        s.translate_time = self.translate_time;
        s.summarize_time = self.summarize_time;
        s
    }

    /// Turns a stop asked by the user into [`Error::Interrupted`], saying what was kept and
    /// how to go on; any other error passes through.
    fn stopped(&self, e: Error, m: &Models, during: Option<&str>) -> Error {
        if !matches!(e, Error::Stopped) {
            return e;
        }
        let total = self.article.blocks.len();
        let translates = self.plan.translates();
        let what = match during {
            Some(during) if translates => {
                format!("{during}, after all {total} blocks were translated")
            }
            Some(during) => format!("{during}; the summary was not finished"),
            None => format!("after {} of {total} blocks", self.done),
        };
        let kept = match (&self.sidecar, self.streaming) {
            (_, _) if !translates => String::new(),
            (Some(s), _) => format!(
                "; the finished blocks are saved in {}; run the same command with --resume to continue",
                s.display()
            ),
            (None, true) => "; the finished blocks were written to stdout".into(),
            (None, false) => {
                // JSON on stdout: the finished blocks are written out, so that none is lost.
                let mut stdout = std::io::stdout().lock();
                let written = output::write(&self.report(m, None), self.plan.format, &mut stdout)
                    .and_then(|()| stdout.flush().map_err(Error::from));
                if let Err(e) = written {
                    return e;
                }
                "; the finished blocks were written to stdout; use -o FILE to be able to --resume"
                    .into()
            }
        };
        Error::Interrupted(format!("{what}{kept}"))
    }
}

/// The checkpoint of a translating run: the sidecar of `-o FILE` (resumed with `--resume`,
/// else started anew), a temporary spool for JSON on stdout, or none when blocks stream.
fn open_checkpoint(
    plan: &Plan,
    article: &Article,
    sidecar: Option<&Path>,
    streaming: bool,
) -> Result<Option<Checkpoint>> {
    let article_sha = resume::article_hash(&article.blocks);
    let settings = plan.settings();
    Ok(match sidecar {
        Some(sidecar) if plan.resume => {
            let cp = Checkpoint::resume(sidecar, &article_sha, &settings)?;
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
            if sidecar.exists() && !plan.quiet {
                eprintln!(
                    "tercuman: note: {} holds an unfinished run; it is replaced (pass --resume to continue it instead)",
                    sidecar.display()
                );
            }
            Some(Checkpoint::create(sidecar, &article_sha, &settings)?)
        }
        None if !streaming => Some(Checkpoint::spool(&article_sha, &settings)?),
        None => None,
    })
}

/// What loading a model takes from the plan.
fn settings(plan: &Plan) -> load::Settings {
    load::Settings {
        beams: plan.beams,
        batch_size: plan.batch_size,
        quantize: plan.quantize,
        context: plan.context,
        params: plan.params.clone(),
        concurrency: plan.concurrency,
    }
}

/// Prints part number `index` of streamed text or Markdown output.
fn print_part(index: usize, part: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    output::write_part(&mut stdout, index, part)?;
    stdout.flush()?;
    Ok(())
}

pub fn progress_bar(quiet: bool) -> ProgressBar {
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
