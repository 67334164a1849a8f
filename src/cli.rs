//! Command line as the user typed it (clap derive). [`crate::app::plan`] resolves it into a
//! plan.

use crate::model::marian::Quantize;
use crate::output::Format;
use crate::summarize::SummaryFrom;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Examples:
  tercuman makale.txt                                 # default models, downloaded once
  tercuman translate makale.txt --beams 1 -o makale.en.md
  tercuman translate makale.txt --model gemma-3-270m-it
  tercuman summarize makale.txt --model qwen2.5-3b-instruct --bullets 3
  tercuman makale.txt --model ./MODEL.gguf -o makale.en.md
  cat makale.txt | tercuman translate - --model hf:OWNER/REPO/FILE.gguf
  tercuman translate haberler/ -o ceviriler/ --format markdown     # a batch, with a manifest
  tercuman translate arsiv/ -o ceviriler/ --shard 1/4              # this machine's quarter
  tercuman translate haberler/ -o ceviriler/ --model openai:http://gpu:8000/v1 --concurrency 16
  tercuman models list

Models are downloaded from the Hugging Face hub into its standard cache (HF_HOME, HF_HUB_CACHE)
and checked before use; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured.

A batch (several articles, a directory, or -o a directory) writes one output per article and
OUTDIR/tercuman-manifest.jsonl; the same command again skips what is done. --model
openai:URL[#MODEL] (chat) or openai-completions:URL[#MODEL] (base model) uses any
OpenAI-compatible server (vLLM, TGI, llama.cpp); the key comes from TERCUMAN_API_KEY or
OPENAI_API_KEY.

Every translated block is checked: numbers, names, dropped or added sentences, Turkish left
in, loops, quotations (`tercuman check` runs the same checks on any translation). A block that
fails is retried; what still fails is kept and listed in JSON output and in the Review section
of Markdown output. Summary bullets cite the paragraphs they come from.

Exit status: 0 on success (also when the reader of stdout goes away), 1 with --strict when a
finding remains or when articles of a batch failed, 2 on any error, 130 when interrupted (Ctrl-C, SIGTERM; with -o, the finished
blocks are kept for --resume).";

/// Translate Turkish news articles into English and summarize them, with a local model.
///
/// Without a subcommand, tercuman translates the article and then summarizes it.
#[derive(Debug, Parser)]
#[command(
    name = "tercuman",
    version,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub args: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate the article into English, one output block per input block.
    Translate(RunArgs),
    /// Summarize the article as English bullet points.
    Summarize(RunArgs),
    /// Measure a model's speed and memory on a fixed workload: load time, prefill and decode
    /// tokens/s, peak RSS; for a Marian model also the sample article's source words/s.
    Bench(BenchArgs),
    /// Check a Turkish→English translation against its source: numbers, names, dropped or
    /// added sentences, text left in Turkish, loops, quotations.
    ///
    /// Works on any translation (ours, a person's, another engine's). The two files are
    /// aligned block by block: paragraphs separated by blank lines, or, when neither file has a
    /// blank line, line by line. Exit status: 0 when nothing was found, 1 when something was,
    /// 2 on error (the files do not align, cannot be read).
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Score models on a test set as sacreBLEU does (BLEU, chrF++, chrF), with their speed,
    /// memory and the share of sentences the checks flag; or score a translation file.
    #[command(after_help = EVAL_HELP)]
    Eval(EvalArgs),
    /// List, inspect and download the models tercuman knows (its model cards).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the known models: kind, tasks, download size, whether cached, and the defaults.
    List,
    /// Show what a model card says, and where its files are in the cache.
    Info {
        /// A model name from `tercuman models list`.
        name: String,
    },
    /// Download models ahead of time, so that later runs work offline.
    Fetch {
        /// Model names from `tercuman models list`, or hf:OWNER/REPO/FILE[@REVISION].
        #[arg(required = true, value_name = "MODEL")]
        models: Vec<String>,
        /// No download progress on stderr.
        #[arg(short, long)]
        quiet: bool,
    },
}

const CHECK_HELP: &str = "\
Examples:
  tercuman check makale.tr.txt makale.en.txt
  tercuman check --format json haber.tr haber.en > bulgular.json
  tercuman check flores.tr flores.en --quiet || echo 'findings or error'

Kinds of finding: number, name, invented_name, omission, addition, untranslated, repetition,
quote. A summary line (blocks flagged, per kind) goes to stderr unless --quiet.";

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The Turkish source (UTF-8, UTF-16 or a legacy Turkish encoding); `-` reads stdin.
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Its English translation, aligned with the source block by block.
    #[arg(value_name = "TRANSLATION")]
    pub translation: PathBuf,

    /// Output: one line per finding (text), or every block with its findings and their spans
    /// (json) [default: text].
    #[arg(short, long, value_enum)]
    pub format: Option<CheckFormat>,

    /// No summary line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Output format of `tercuman check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

const EVAL_HELP: &str = "\
Examples:
  tercuman eval --model opus-mt-tc-big-tr-en --model qwen2.5-1.5b-instruct --testset flores200-devtest
  tercuman eval --model gemma-3-270m-it --testset newstest2018 --limit 200 -o eval.json
  tercuman eval --hypothesis my.en --reference ref.en [--source src.tr]
  tercuman eval --testset                     # lists the built-in test sets

Scores equal sacreBLEU 2.6 (BLEU: 13a tokenization, exponential smoothing; chrF: 6 character
n-grams, beta 2; chrF++: and 2 word n-grams); the signatures are printed with them.";

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("data").args(["testset", "reference"]).required(true)))]
pub struct EvalArgs {
    /// A model to evaluate, named as for `--model` of translate; repeat it to compare several.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Vec<String>,

    /// A built-in test set: flores200-devtest, newstest2018, newstest2017; without a value,
    /// lists them.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub testset: Option<String>,

    /// Your own test set: Turkish sources, one sentence a line (with --reference).
    #[arg(
        long,
        value_name = "FILE",
        requires = "reference",
        conflicts_with = "testset"
    )]
    pub source: Option<PathBuf>,

    /// English references, line-aligned with the sources (or with --hypothesis).
    #[arg(long, value_name = "FILE", conflicts_with = "testset")]
    pub reference: Option<PathBuf>,

    /// Score this translation (one line per reference) instead of, or beside, the models.
    #[arg(long, value_name = "FILE")]
    pub hypothesis: Option<PathBuf>,

    /// Only the first N sentences.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also write the results (JSON) to FILE, each model's hypotheses to FILE.<model>.hyp.txt,
    /// and keep finished sentences in FILE.<model>.partial.json for --resume.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Continue an interrupted evaluation with the same -o FILE.
    #[arg(long, requires = "output")]
    pub resume: bool,

    #[command(flatten)]
    pub decoding: ModelArgs,

    /// No progress bar and no timing line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Model to measure, named as for `--model` of translate.
    #[arg(short, long, value_name = "MODEL", required = true)]
    pub model: String,

    /// GGUF chat models: a text file whose text, tokenized as-is after the model's BOS (where
    /// the model adds one), is the prompt [default: the sample article's first paragraph].
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,

    /// Tokens to generate, end of sequence ignored; for a Marian model, per sentence
    /// [default: 64; Marian: as many as the sentence's source has].
    #[arg(long, value_name = "N")]
    pub gen_tokens: Option<usize>,

    /// Marian models: the article to translate end to end [default: the sample article].
    #[arg(long, value_name = "FILE")]
    pub article: Option<PathBuf>,

    /// CPU threads [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Marian models: beam width, 1 greedy [default: the model's own].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beams: Option<u16>,

    /// Marian models: sentences decoded at once [default: 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub batch_size: Option<u16>,

    /// Marian models: hold the weights as int8 (`--quantize` of translate).
    #[arg(long, value_name = "WEIGHTS")]
    pub quantize: Option<Quantize>,

    /// Marian models: also write the source sentences translated, one per line, to this file
    /// (so that another engine can run the same workload: scripts/bench_ct2.py).
    #[arg(long, value_name = "FILE")]
    pub dump_sentences: Option<PathBuf>,

    /// Print one JSON line (prefill_tps, decode_tps, load_s, peak_rss_bytes, ...).
    #[arg(long)]
    pub json: bool,

    /// GGUF chat models: also measure the memory bandwidth (a copy of 256 MiB by --threads
    /// threads, counted as STREAM counts it, reads plus writes, and a read-only scan of 256
    /// MiB, after the model's run so that they do not count in its peak RSS), and report
    /// decode speed as a share of each bound: bandwidth / weight bytes read per token.
    #[arg(long)]
    pub bandwidth: bool,

    /// Use only models already in the cache.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Article file (UTF-8 text, paragraphs separated by blank lines); `-` reads stdin.
    /// Several files or directories (walked for *.txt and *.md) make a batch: give -o OUTDIR,
    /// one output per article is written under it, with a manifest.
    #[arg(value_name = "ARTICLE", required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,

    /// Encoding of the article file [default: detected: UTF-8, UTF-16 with a byte-order mark,
    /// else the likeliest legacy Turkish encoding, Windows-1254 / ISO-8859-9].
    #[arg(short, long, value_name = "LABEL")]
    pub encoding: Option<String>,

    /// Model that translates (for `summarize`: that summarizes): a name from `tercuman models
    /// list` (downloaded on first use), the path of a GGUF chat model (Gemma 3, Qwen2.5) or of
    /// a directory holding one, a Marian (OPUS-MT) model directory, any hub file as
    /// hf:OWNER/REPO/FILE.gguf[@REVISION], or a served model as openai:URL[#MODEL] (chat) or
    /// openai-completions:URL[#MODEL] (base) [default: opus-mt-tc-big-tr-en; for
    /// `summarize`, qwen2.5-1.5b-instruct].
    #[arg(short, long, value_name = "MODEL", env = "TERCUMAN_MODEL")]
    pub model: Option<String>,

    /// Chat model that writes the summary, named as for --model [default: the --model chat
    /// model, if one was given; else qwen2.5-1.5b-instruct].
    #[arg(long, value_name = "MODEL", env = "TERCUMAN_SUMMARY_MODEL")]
    pub summary_model: Option<String>,

    /// Output format [default: markdown for `-o *.md`, json for `-o *.json`, else text].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// Write the result to this file (atomically: a complete file or none) instead of stdout.
    /// For a batch, the directory the outputs go to (FILE.en.txt, .en.md or .en.json by
    /// --format, at the same relative paths as the inputs).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Batch: take only share I of N of the articles (1 <= I <= N), chosen by a hash of each
    /// article's path, so that N processes or machines on a shared disk split a corpus with
    /// no coordinator; each writes its share of outputs and its own manifest part.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,

    /// Number of summary bullet points [default: 5].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub bullets: Option<u16>,

    /// Sampling temperature of a chat model; 0 picks the most likely token every time
    /// (reproducible) [default: 0].
    #[arg(short, long, value_name = "T")]
    pub temperature: Option<f64>,

    /// Seed for sampling when the temperature is above 0 [default: 299792458].
    #[arg(long)]
    pub seed: Option<u64>,

    #[command(flatten)]
    pub decoding: ModelArgs,

    /// Continue an interrupted run with `-o FILE`, keeping the blocks it finished (they are
    /// saved in FILE.partial.json as they finish).
    #[arg(long)]
    pub resume: bool,

    /// No progress bar and no closing stats line on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Exit with status 1 when any block or summary bullet keeps a finding of the fidelity
    /// checks (a number or name lost, a sentence dropped, Turkish left in), for pipelines that
    /// would rather have no translation than a wrong one. The output is written either way.
    #[arg(long)]
    pub strict: bool,

    /// Refuse an article of more than N words (whitespace-separated) before any model runs:
    /// in a batch it is recorded as failed with the reason and the others go on, so that one
    /// runaway file (a whole archive pasted into one) does not hold up a day's feed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_words: Option<u64>,

    /// What the summary is made from when the article is also translated: the English
    /// translation, or the Turkish source [default: translation].
    #[arg(long, value_enum, value_name = "FROM")]
    pub summary_from: Option<SummaryFrom>,

    /// No paragraph citations ([¶2, ¶5]) after the summary bullets in text and Markdown
    /// output (JSON always has them).
    #[arg(long)]
    pub no_cite: bool,
}

impl RunArgs {
    /// These arguments, with the ones left unset taken from `outer` (options given before the
    /// subcommand: `tercuman --model M translate ARTICLE`).
    fn or(self, outer: RunArgs) -> RunArgs {
        RunArgs {
            input: match self.input.is_empty() {
                true => outer.input,
                false => self.input,
            },
            encoding: self.encoding.or(outer.encoding),
            model: self.model.or(outer.model),
            summary_model: self.summary_model.or(outer.summary_model),
            decoding: self.decoding.or(outer.decoding),
            format: self.format.or(outer.format),
            output: self.output.or(outer.output),
            shard: self.shard.or(outer.shard),
            bullets: self.bullets.or(outer.bullets),

            temperature: self.temperature.or(outer.temperature),
            seed: self.seed.or(outer.seed),

            resume: self.resume || outer.resume,
            quiet: self.quiet || outer.quiet,
            strict: self.strict || outer.strict,
            max_words: self.max_words.or(outer.max_words),
            summary_from: self.summary_from.or(outer.summary_from),
            no_cite: self.no_cite || outer.no_cite,
        }
    }
}

/// How the models decode and where they come from: the flags `translate`, `summarize` and
/// `eval` share.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Beam width of a Marian model; 1 is greedy decoding, faster and a little less fluent
    /// [default: the model's own, 4 for OPUS-MT].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beams: Option<u16>,

    /// Sentences a Marian model translates at once; the output does not depend on it
    /// [default: 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub batch_size: Option<u16>,

    /// Use only models already in the cache; never contact the hub (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,

    /// Marian models: hold the weights as int8 (a quarter of the memory, faster on CPU; the
    /// translation is close to f32's but not identical) [default: none, f32 as trained].
    #[arg(long, value_name = "WEIGHTS")]
    pub quantize: Option<Quantize>,

    /// Upper limit on tokens generated for one chunk (each chunk also gets a limit from its
    /// length, so a looping model stops early) [default: 512].
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,

    /// CPU threads for the model [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Largest context, in tokens, that a prompt may use (bounded by the model's own)
    /// [default: 4096].
    #[arg(long, value_name = "TOKENS")]
    pub context: Option<usize>,

    /// Remote engines (--model openai:URL): requests in flight at once, pieces of one article
    /// and of several sent together so that the server batches them [default: 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: Option<u16>,
}

impl ModelArgs {
    /// These arguments, with the ones left unset taken from `outer`.
    fn or(self, outer: ModelArgs) -> ModelArgs {
        ModelArgs {
            beams: self.beams.or(outer.beams),
            batch_size: self.batch_size.or(outer.batch_size),
            offline: self.offline || outer.offline,
            quantize: self.quantize.or(outer.quantize),
            max_new_tokens: self.max_new_tokens.or(outer.max_new_tokens),
            threads: self.threads.or(outer.threads),
            context: self.context.or(outer.context),
            concurrency: self.concurrency.or(outer.concurrency),
        }
    }
}

/// `--shard I/N`: the share `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(value: &str) -> Result<Shard, String> {
    let bad = || format!("`{value}` is not a shard: give I/N with 1 <= I <= N, e.g. 2/4");
    let (i, n) = value.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok(Shard {
        index: i - 1,
        count: n,
    })
}

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Translate,
    Summarize,
    Both,
}

impl Cli {
    /// The job and its arguments; `None` for the `models`, `bench` and `check` subcommands.
    pub fn job_and_args(self) -> Option<(Job, RunArgs)> {
        match self.command {
            Some(Command::Translate(a)) => Some((Job::Translate, a.or(self.args))),
            Some(Command::Summarize(a)) => Some((Job::Summarize, a.or(self.args))),
            Some(
                Command::Models { .. } | Command::Bench(_) | Command::Check(_) | Command::Eval(_),
            ) => None,
            None => Some((Job::Both, self.args)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn default_job_is_both() {
        let cli = Cli::try_parse_from(["tercuman", "a.txt", "--model", "m.gguf"]).unwrap();
        let (job, args) = cli.job_and_args().unwrap();
        assert_eq!(job, Job::Both);
        assert_eq!(args.input, [PathBuf::from("a.txt")]);
    }

    #[test]
    fn subcommands_take_the_same_flags() {
        let cli = Cli::try_parse_from([
            "tercuman",
            "summarize",
            "a.txt",
            "-m",
            "m.gguf",
            "--bullets",
            "3",
        ])
        .unwrap();
        let (job, args) = cli.job_and_args().unwrap();
        assert_eq!(job, Job::Summarize);
        assert_eq!(args.bullets, Some(3));
    }

    #[test]
    fn options_may_come_before_the_subcommand() {
        let cli = Cli::try_parse_from([
            "tercuman",
            "--model",
            "gemma-3-270m",
            "-b",
            "2",
            "translate",
            "a.txt",
            "-b",
            "4",
        ])
        .unwrap();
        let (job, args) = cli.job_and_args().unwrap();
        assert_eq!(job, Job::Translate);
        assert_eq!(args.model.as_deref(), Some("gemma-3-270m"));
        assert_eq!(args.input, [PathBuf::from("a.txt")]);
        // The subcommand's own value wins.
        assert_eq!(args.bullets, Some(4));
    }

    #[test]
    fn many_inputs_and_a_shard_parse() {
        let cli = Cli::try_parse_from([
            "tercuman",
            "translate",
            "a.txt",
            "dir/",
            "-o",
            "out/",
            "--shard",
            "2/3",
        ])
        .unwrap();
        let (_, args) = cli.job_and_args().unwrap();
        assert_eq!(args.input.len(), 2);
        assert_eq!(args.shard, Some(Shard { index: 1, count: 3 }));
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn models_subcommands_parse() {
        let cli =
            Cli::try_parse_from(["tercuman", "models", "fetch", "a", "hf:o/r/f.gguf"]).unwrap();
        assert!(cli.job_and_args().is_none());
        assert!(Cli::try_parse_from(["tercuman", "models", "fetch"]).is_err());
        assert!(Cli::try_parse_from(["tercuman", "models", "info", "x"]).is_ok());
    }

    #[test]
    fn every_flag_is_documented() {
        let cmd = Cli::command();
        let models = cmd.find_subcommand("models").unwrap();
        for sub in cmd.get_subcommands().chain(models.get_subcommands()) {
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} --{} has no help",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
