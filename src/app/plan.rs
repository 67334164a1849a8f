//! The resolved plan of a translate/summarize run: what the user typed ([`crate::cli`]) with
//! every default filled in and every check that needs no file or model done. Building a plan
//! has no side effects.

use crate::chat::generate::Params;
use crate::cli::{Job, RunArgs, Shard};
use crate::error::{Error, Result};
use crate::hub::card::{self, Task};
use crate::hub::spec::ModelSpec;
use crate::model::marian::Quantize;
use crate::output::Format;
use crate::summarize::SummaryFrom;
use std::path::{Path, PathBuf};

/// Sentences a Marian model decodes at once (`--batch-size`).
pub const DEFAULT_BATCH_SIZE: usize = 16;
/// Summary bullets (`--bullets`).
pub const DEFAULT_BULLETS: usize = 5;
/// Most tokens generated for one chunk (`--max-new-tokens`).
pub const DEFAULT_MAX_NEW_TOKENS: usize = 512;
/// Sampling seed (`--seed`): the speed of light in m/s.
pub const DEFAULT_SEED: u64 = 299_792_458;
/// Requests in flight to a remote engine (`--concurrency`).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Largest prompt context (`--context`), and the least a prompt is given.
pub const DEFAULT_CONTEXT: usize = 4096;
pub const MIN_CONTEXT: usize = 256;
/// What a summary is made from when the run also translates (`--summary-from`): the English
/// translation, which gave fewer findings with the test model (README, "Fidelity checks").
pub const DEFAULT_SUMMARY_FROM: SummaryFrom = SummaryFrom::Translation;

/// The resolved plan of a run: what the library needs, nothing the user has still to decide.
#[derive(Debug, Clone)]
pub struct Plan {
    pub job: Job,
    /// The article (`-`: stdin); empty in the plan of a batch, whose articles get plans of
    /// their own ([`Plan::for_article`]).
    pub input: PathBuf,
    /// Many articles in one run: several inputs, a directory, or `-o` a directory.
    pub batch: Option<Batch>,
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
    /// How a Marian model holds its weights.
    pub quantize: Quantize,
    pub offline: bool,
    pub resume: bool,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub bullets: usize,
    pub params: Params,
    pub context: usize,
    pub quiet: bool,
    /// What the summary is made from when the run also translates.
    pub summary_from: SummaryFrom,
    /// Citations in text and Markdown output (`--no-cite` turns them off).
    pub cite: bool,
    /// Exit 1 when any flag or finding remains (`--strict`).
    pub strict: bool,
    /// `--max-words`: longer articles are refused.
    pub max_words: Option<usize>,
    /// Requests in flight to a remote engine.
    pub concurrency: usize,
}

/// The articles of a batch and where their outputs go.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Files and directories, as given.
    pub inputs: Vec<PathBuf>,
    pub out_dir: PathBuf,
    pub shard: Option<Shard>,
}

impl Plan {
    /// The plan of a translate/summarize run from its arguments.
    pub fn new(job: Job, mut a: RunArgs) -> Result<Plan> {
        let batch = batch(&a)?;
        let input = match batch {
            Some(_) => PathBuf::new(),
            None => a.input.pop().expect("clap requires ARTICLE"),
        };
        if a.shard.is_some() && batch.is_none() {
            return Err(Error::Batch(
                "--shard splits a batch: give several articles or a directory, and -o OUTDIR"
                    .into(),
            ));
        }
        let format = match &batch {
            Some(_) => a.format.unwrap_or(Format::Text),
            None => a.format.unwrap_or(Format::for_path(a.output.as_deref())),
        };
        let output = match batch {
            Some(_) => None,
            None => a.output,
        };
        if let Some(out) = &output {
            if input != Path::new("-") && same_file(&input, out) {
                return Err(Error::WriteOutput {
                    path: out.clone(),
                    source: std::io::Error::other("is the input file; choose another output path"),
                });
            }
        }
        if job == Job::Summarize && a.decoding.quantize.is_some_and(|q| q != Quantize::None) {
            // Only a translating Marian model holds int8 weights; the summarizer is a chat model.
            return Err(Error::QuantizeNotMarian {
                model: a
                    .summary_model
                    .clone()
                    .or_else(|| a.model.clone())
                    .unwrap_or_else(|| "the summarizer".into()),
            });
        }
        if a.resume && output.is_none() && batch.is_none() {
            return Err(Error::Resume {
                path: PathBuf::from("-"),
                message: "--resume needs -o FILE: an interrupted run keeps its finished blocks next to its output file".into(),
            });
        }
        Ok(Plan {
            job,
            resume: a.resume,
            encoding: a.encoding,
            offline: a.decoding.offline,
            format,
            input,
            batch,
            model: a.model,
            summary_model: a.summary_model,
            beams: a.decoding.beams.map(usize::from),
            quantize: a.decoding.quantize.unwrap_or_default(),
            batch_size: a
                .decoding
                .batch_size
                .map_or(DEFAULT_BATCH_SIZE, usize::from),
            output,
            bullets: a.bullets.map_or(DEFAULT_BULLETS, usize::from),
            params: Params {
                max_new_tokens: a
                    .decoding
                    .max_new_tokens
                    .unwrap_or(DEFAULT_MAX_NEW_TOKENS)
                    .max(1),
                temperature: a.temperature.unwrap_or(0.0),
                seed: a.seed.unwrap_or(DEFAULT_SEED),
            },
            context: a
                .decoding
                .context
                .unwrap_or(DEFAULT_CONTEXT)
                .max(MIN_CONTEXT),
            quiet: a.quiet,
            summary_from: a.summary_from.unwrap_or(DEFAULT_SUMMARY_FROM),
            cite: !a.no_cite,
            strict: a.strict,
            max_words: a.max_words.map(|n| n as usize),
            concurrency: a
                .decoding
                .concurrency
                .map_or(DEFAULT_CONCURRENCY, usize::from),
        })
    }

    /// The plan of one article of a batch, written to `output`; `resume` continues its
    /// checkpoint. Its own progress and stats lines are left to the batch.
    pub fn for_article(&self, input: &Path, output: &Path, resume: bool) -> Plan {
        Plan {
            input: input.to_path_buf(),
            output: Some(output.to_path_buf()),
            batch: None,
            resume,
            quiet: true,
            ..self.clone()
        }
    }

    /// Whether the job translates (`translate`, or the default job).
    pub fn translates(&self) -> bool {
        matches!(self.job, Job::Translate | Job::Both)
    }

    /// Whether the job summarizes (`summarize`, or the default job).
    pub fn summarizes(&self) -> bool {
        matches!(self.job, Job::Summarize | Job::Both)
    }

    /// The model that translates: as `--model` names it, else the default translator.
    pub fn model_spec(&self) -> Result<ModelSpec> {
        match &self.model {
            Some(m) => ModelSpec::parse(m),
            None => Ok(default_card(Task::Translate)),
        }
    }

    /// The model that summarizes, when it is not the translating chat model: `--summary-model`;
    /// for `summarize` alone, `--model`; else the default summarizer. `None`: the chat model
    /// that translated summarizes too (`translation_is_chat`).
    pub fn summary_model_spec(&self, translation_is_chat: bool) -> Result<Option<ModelSpec>> {
        let named = match (&self.summary_model, self.job) {
            (Some(m), _) => Some(m),
            (None, Job::Summarize) => self.model.as_ref(),
            (None, _) if translation_is_chat => return Ok(None),
            (None, _) => None,
        };
        Ok(Some(match named {
            Some(m) => ModelSpec::parse(m)?,
            None => default_card(Task::Summarize),
        }))
    }

    /// What a resumed run must share with the run it continues: model and generation settings.
    pub fn settings(&self) -> String {
        // Said only when set, so that a checkpoint of an f32 run written before `--quantize`
        // existed still resumes.
        let quantize = match self.quantize {
            Quantize::None => String::new(),
            q => format!(", weights {q:?}"),
        };
        format!(
            "{:?}, model {}, beams {}, temperature {}, seed {}, max new tokens {}, context {}{quantize}",
            self.job,
            self.model.as_deref().unwrap_or("(default)"),
            self.beams
                .map_or("(model's)".to_string(), |b| b.to_string()),
            self.params.temperature,
            self.params.seed,
            self.params.max_new_tokens,
            self.context
        )
    }
}

/// The batch that the arguments ask for, if any: several inputs, a directory among them, or
/// `-o` naming a directory (one that exists, or a path ending in `/`).
fn batch(a: &RunArgs) -> Result<Option<Batch>> {
    let out_is_dir = a.output.as_ref().is_some_and(|o| {
        o.is_dir()
            || o.as_os_str()
                .to_string_lossy()
                .ends_with(std::path::MAIN_SEPARATOR)
    });
    if a.input.len() < 2 && !a.input.iter().any(|i| i.is_dir()) && !out_is_dir {
        return Ok(None);
    }
    let Some(out_dir) = a.output.clone() else {
        return Err(Error::Batch(format!(
            "{} articles: give -o OUTDIR, the directory their outputs go to",
            match a.input.len() {
                1 => "a directory of".to_string(),
                n => format!("{n} inputs, "),
            }
        )));
    };
    if a.input.iter().any(|i| i == Path::new("-")) {
        return Err(Error::Batch(
            "stdin (-) cannot be one article of a batch: translate it on its own".into(),
        ));
    }
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Error::Batch(format!(
            "-o {} is a file; a batch writes one output per article into a directory",
            out_dir.display()
        )));
    }
    Ok(Some(Batch {
        inputs: a.input.clone(),
        out_dir,
        shard: a.shard,
    }))
}

fn default_card(task: Task) -> ModelSpec {
    ModelSpec::Card(Box::new(card::default_for(task)))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
