//! The resolved plan of a translate/summarize run: what the user typed ([`crate::cli`]) with
//! every default filled in and every check that needs no file or model done. Building a plan
//! has no side effects.

use crate::chat::generate::Params;
use crate::cli::{Job, RunArgs};
use crate::error::{Error, Result};
use crate::hub::card::{self, Task};
use crate::hub::spec::ModelSpec;
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
}

impl Plan {
    /// The plan of a translate/summarize run from its arguments.
    pub fn new(job: Job, a: RunArgs) -> Result<Plan> {
        let input = a.input.expect("clap requires ARTICLE");
        if let Some(out) = &a.output {
            if input != Path::new("-") && same_file(&input, out) {
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
        Ok(Plan {
            job,
            resume: a.resume,
            encoding: a.encoding,
            offline: a.decoding.offline,
            format: a.format.unwrap_or(Format::for_path(a.output.as_deref())),
            input,
            model: a.model,
            summary_model: a.summary_model,
            beams: a.decoding.beams.map(usize::from),
            batch_size: a
                .decoding
                .batch_size
                .map_or(DEFAULT_BATCH_SIZE, usize::from),
            output: a.output,
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
        })
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
        format!(
            "{:?}, model {}, beams {}, temperature {}, seed {}, max new tokens {}, context {}",
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

fn default_card(task: Task) -> ModelSpec {
    ModelSpec::Card(Box::new(card::default_for(task)))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
