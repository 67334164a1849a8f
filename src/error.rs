//! The library's error type: every failure a user can meet, with the context needed to act on it
//! (the file, the model, the paragraph) and, where there is one, the next step to take.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read {path}")]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read standard input")]
    ReadStdin(#[source] std::io::Error),
    #[error("{what} is not valid {encoding} (first bad byte at offset {offset}); name its encoding with --encoding (e.g. windows-1254, iso-8859-9, utf-16le)")]
    Undecodable {
        what: String,
        encoding: &'static str,
        offset: usize,
    },
    #[error("{what} is not text but {looks_like}: {advice}")]
    NotText {
        what: String,
        looks_like: &'static str,
        advice: &'static str,
    },
    #[error(
        "unknown encoding `{label}`; try utf-8, windows-1254, iso-8859-9, utf-16le or utf-16be"
    )]
    UnknownEncoding { label: String },
    #[error("{0} holds no text to translate")]
    EmptyInput(String),
    #[error("{what} has {words} words, more than --max-words {max}; raise the limit, or split the file into articles")]
    TooLong {
        what: String,
        words: usize,
        max: usize,
    },
    #[error("model file {path} not found; pass the path of a .gguf file, or a model name from `tercuman models list`")]
    ModelNotFound { path: PathBuf },
    #[error("model `{name}` is not known; `tercuman models list` shows the known ones (or pass a .gguf path, or hf:OWNER/REPO/FILE.gguf)")]
    UnknownModel { name: String },
    #[error("`{spec}` is not a hub model: write hf:OWNER/REPO/FILE.gguf, optionally followed by @REVISION")]
    BadModelSpec { spec: String },
    #[error("model `{name}` is a {kind} model, and the {kind} backend is not built yet; use opus-mt-tc-big-tr-en, or a gguf-chat model such as qwen2.5-1.5b-instruct (`tercuman models list`)")]
    BackendNotBuilt { name: String, kind: &'static str },
    #[error("--quantize int8 holds a Marian (OPUS-MT) model's weights as int8; `{model}` is not a Marian model (a GGUF file's weights are quantized in the file, a remote engine's on its server): drop --quantize, or pick a quantized GGUF file")]
    QuantizeNotMarian { model: String },
    #[error("model card {origin}: {message}")]
    Card { origin: String, message: String },
    #[error("cannot resume from {path}: {message}")]
    Resume { path: PathBuf, message: String },
    #[error("could not read back the finished blocks from {path}")]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The user asked the run to stop (Ctrl-C, SIGTERM); the runner turns it into
    /// [`Error::Interrupted`], saying what was kept.
    #[error("stopped by the user")]
    Stopped,
    /// What a run stopped by the user kept, and how to go on.
    #[error("interrupted {0}")]
    Interrupted(String),
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error("could not read the model file {path}")]
    ModelRead {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: model architecture `{arch}` is not supported; supported GGUF architectures: {supported}")]
    UnsupportedArchitecture {
        path: PathBuf,
        arch: String,
        supported: String,
    },
    #[error("{path}: {message}")]
    InvalidModel { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("prompt template {name}: {message}")]
    Prompt { name: String, message: String },
    #[error("the prompt needs {needed} tokens but the model's context holds {context}")]
    ContextOverflow { needed: usize, context: usize },
    #[error("block {paragraph}: {message}")]
    Paragraph { paragraph: usize, message: String },
    #[error("model computation failed")]
    Candle(#[from] candle_core::Error),
    #[error("could not write {path}")]
    WriteOutput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name} has {source_blocks} blocks but {translation_name} has {translation_blocks}; they stop matching at block {first} ({why}); align them (one block per paragraph, blank lines between, or one line each) and run again")]
    Misaligned {
        source_name: String,
        source_blocks: usize,
        translation_name: String,
        translation_blocks: usize,
        first: usize,
        why: String,
    },
    #[error("{path} is being written by another tercuman run (process {holder}); wait for it to finish, or choose another output file")]
    OutputBusy { path: PathBuf, holder: String },
    #[error("{0}")]
    Batch(String),
    #[error("the server at {url} {message}")]
    Remote { url: String, message: String },
    #[error("test set `{name}` is not known; the built-in ones are {known} (`tercuman eval --testset` lists them), or pass --source and --reference")]
    UnknownTestset { name: String, known: String },
    #[error("eval: {0}")]
    Eval(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether this is a write to a reader that went away (`tercuman ... | head`), which is
    /// not a failure of the run.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e.to_string())
    }
}
