//! tercuman: Turkish news articles into English, on the user's own machine.
//!
//! The pipeline, one module per stage:
//! [`input`] (decode, structure) → [`chunk`] (paragraphs, sentences) → [`model`] (load, tokenize)
//! → [`prompt`] → [`generate`] → [`translate`] / [`summarize`] → [`output`] (text, Markdown,
//! JSON). [`run`] wires them together for the command line.

pub mod catalog;
pub mod checkpoint;
pub mod chunk;
pub mod cli;
pub mod error;
pub mod generate;
pub mod input;
pub mod model;
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
            // candle's CPU kernels run on rayon's global pool, sized from this variable.
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
    /// The model to run: as `--model` names it, else the job's default card.
    pub fn model_spec(&self) -> Result<model::source::ModelSpec> {
        match &self.model {
            Some(m) => model::source::ModelSpec::parse(m),
            None => {
                let task = match self.job {
                    Job::Summarize => model::card::Task::Summarize,
                    Job::Translate | Job::Both => model::card::Task::Translate,
                };
                Ok(model::source::ModelSpec::Card(Box::new(
                    model::card::default_for(task),
                )))
            }
        }
    }
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
    let plan = Plan::from_cli(cli)?.expect("not the models subcommand");
    run(&plan)
}

/// Runs the whole job of a plan and writes its output.
pub fn run(plan: &Plan) -> Result<()> {
    let started = Instant::now();
    let article = read_article_as(&plan.input, plan.encoding.as_deref(), plan.quiet)?;
    if let Some(out) = &plan.output {
        output::check_writable(out)?;
    }

    let settings = format!(
        "{:?}, model {}, temperature {}, seed {}, max new tokens {}, context {}",
        plan.job,
        plan.model.as_deref().unwrap_or("(default)"),
        plan.params.temperature,
        plan.params.seed,
        plan.params.max_new_tokens,
        plan.context
    );
    let article_sha = checkpoint::article_hash(&article.blocks);
    let sidecar = plan.output.as_deref().map(checkpoint::sidecar);
    let translates = matches!(plan.job, Job::Translate | Job::Both);
    let mut done: Vec<translate::TranslatedBlock> = Vec::new();
    let mut saved = None;
    if let Some(sidecar) = &sidecar {
        if plan.resume && translates {
            let (cp, blocks) = checkpoint::Checkpoint::resume(sidecar, &article_sha, &settings)?;
            saved = Some(cp);
            done = blocks;
            if !plan.quiet {
                eprintln!(
                    "tercuman: resuming: {} of {} blocks already done",
                    done.len(),
                    article.blocks.len()
                );
            }
        } else {
            if sidecar.exists() && !plan.quiet {
                eprintln!(
                    "tercuman: note: {} holds an unfinished run; it is replaced (pass --resume to continue it instead)",
                    sidecar.display()
                );
            }
            if translates {
                saved = Some(checkpoint::Checkpoint::create(
                    sidecar,
                    &article_sha,
                    &settings,
                )?);
            }
        }
    }
    // Text and Markdown on stdout are written block by block as they finish.
    let streaming = plan.output.is_none() && plan.format != output::Format::Json;
    let markdown = plan.format == output::Format::Markdown;
    let mut printed = 0usize;
    let print_part = |part: &str, printed: &mut usize| -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if *printed > 0 {
            stdout.write_all(b"\n")?;
        }
        stdout.write_all(part.as_bytes())?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
        *printed += 1;
        Ok(())
    };
    if streaming {
        for b in &done {
            print_part(&output::render_block(b, markdown), &mut printed)?;
        }
    }
    checkpoint::install_handler(plan.quiet);

    let hub = model::hub::Hub::from_env(plan.offline, plan.quiet);
    let resolved = model::source::resolve(&plan.model_spec()?, &hub)?;

    let progress = progress_bar(plan.quiet);
    progress.set_message(format!("loading {}", resolved.label));
    let model = model::load_gguf(&resolved.gguf)?;
    let bos_token = model
        .info
        .bos
        .and_then(|id| model.tokenizer.id_to_token(id))
        .unwrap_or_default();
    let style = match resolved.card.as_ref().and_then(|c| c.prompts.as_ref()) {
        Some(prompts) => prompt::Style::for_card(prompts, Some(&model.info), &bos_token)?,
        None => prompt::Style::for_model(&model.info, &bos_token),
    };
    let context = plan.context.min(model.info.context_length);
    let report_model = output::ModelReport {
        source: resolved.label.clone(),
        name: model.info.name.clone(),
        architecture: model.info.architecture.clone(),
        path: resolved.gguf.display().to_string(),
    };
    let mut engine = generate::Engine::new(model, plan.params.clone());

    let interrupted = |done: &[translate::TranslatedBlock],
                       engine: &generate::Engine|
     -> Result<()> {
        let kept = match &sidecar {
            Some(s) => format!(
                "the finished blocks are saved in {}; run the same command with --resume to continue",
                s.display()
            ),
            None if streaming => "the finished blocks were written to stdout".into(),
            None => {
                // No output file: the finished blocks go to stdout, so that none is lost.
                let partial = output::Report {
                    model: report_model.clone(),
                    blocks: Some(done.to_vec()),
                    summary: None,
                    stats: engine.stats.clone(),
                    wall_seconds: started.elapsed().as_secs_f64(),
                };
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(output::render(&partial, plan.format).as_bytes())?;
                stdout.flush()?;
                "the finished blocks were written to stdout; use -o FILE to be able to --resume".into()
            }
        };
        Err(Error::Interrupted {
            done: done.len(),
            total: article.blocks.len(),
            kept,
        })
    };

    let mut blocks = None;
    if translates {
        progress.set_length(article.blocks.len() as u64);
        progress.set_position(done.len() as u64);
        progress.set_message("translating");
        for (i, block) in article.blocks.iter().enumerate().skip(done.len()) {
            if checkpoint::interrupted() {
                progress.finish_and_clear();
                return interrupted(&done, &engine);
            }
            let t = translate::translate_block(
                &mut engine,
                &style,
                i,
                block.kind,
                &block.text,
                context,
            )?;
            if let Some(cp) = &mut saved {
                cp.push(&t)?;
            }
            if streaming {
                progress
                    .suspend(|| print_part(&output::render_block(&t, markdown), &mut printed))?;
            }
            done.push(t);
            progress.inc(1);
        }
        blocks = Some(done);
    }
    let mut summary = None;
    if matches!(plan.job, Job::Summarize | Job::Both) {
        if checkpoint::interrupted() {
            progress.finish_and_clear();
            return interrupted(blocks.as_deref().unwrap_or_default(), &engine);
        }
        progress.set_message("summarizing");
        summary = Some(summarize::summarize(
            &mut engine,
            &style,
            &article,
            plan.bullets,
            context,
        )?);
    }
    progress.finish_and_clear();

    let report = output::Report {
        model: report_model,
        blocks,
        summary,
        stats: engine.stats.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let rendered = output::render(&report, plan.format);
    match &plan.output {
        None if streaming => {
            for part in output::render_parts(&report, markdown).iter().skip(printed) {
                print_part(part, &mut printed)?;
            }
        }
        Some(path) => {
            output::write_atomic(path, &rendered)?;
            drop(saved);
            if let Some(sidecar) = &sidecar {
                let _ = std::fs::remove_file(sidecar);
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(rendered.as_bytes())?;
            stdout.flush()?;
        }
    }
    if !plan.quiet {
        let s = &report.stats;
        let flagged = report
            .blocks
            .iter()
            .flatten()
            .filter(|b| !b.flags.is_empty())
            .count()
            + report
                .summary
                .as_ref()
                .map_or(0, |s| usize::from(!s.flags.is_empty()));
        let flagged = match flagged {
            0 => String::new(),
            n => format!(", {n} flagged (details with --format json)"),
        };
        eprintln!(
            "tercuman: {} prompt tokens ({:.1} tok/s), {} generated ({:.1} tok/s), {:.1} s wall{flagged}",
            s.prompt_tokens,
            s.prefill_tps(),
            s.generated_tokens,
            s.decode_tps(),
            report.wall_seconds
        );
    }
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
