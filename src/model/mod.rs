//! Inference: the networks and their tokenizers, and nothing else (downloading and model cards
//! are in [`crate::hub`], the SIMD products in the `tercuman-kernels` crate).
//!
//! - GGUF chat models: [`gguf`] reads the file's header and metadata, [`gguf_tokenizer`] builds
//!   the tokenizer it describes, [`layers`] holds the decoder blocks that [`gemma3`] and
//!   [`qwen2`] are made of; [`load_gguf`] picks the architecture from `general.architecture`,
//!   one variant of [`Network`] each.
//! - [`marian`]: OPUS-MT encoder-decoder translation models (safetensors or PyTorch files), with
//!   their SentencePiece tokenizer.

pub mod gemma3;
pub mod gguf;
pub mod gguf_tokenizer;
pub(crate) mod layers;
pub mod marian;
pub mod qwen2;
pub mod spm;

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use gguf::Meta;
use gguf_tokenizer::GgufTokenizer;
use layers::Precision;
use std::path::{Path, PathBuf};

/// Architectures this build can run, as spelled in `general.architecture`.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["gemma3", "qwen2"];

/// The network of a loaded model; one variant per supported architecture.
pub enum Network {
    Gemma3(Box<gemma3::Model>),
    Qwen2(Box<qwen2::Model>),
}

impl Network {
    /// Feeds `tokens` at positions `pos..` and returns the next-token logits `(vocab,)`.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        Ok(match self {
            Network::Gemma3(m) => m.forward(tokens, pos)?,
            Network::Qwen2(m) => m.forward(tokens, pos)?,
        })
    }

    /// Keeps the first `len` positions of the KV cache (a shared prompt prefix, or a rewind)
    /// and returns how many it kept: `len`, or fewer where a sliding-window cache had dropped
    /// what position `len` needs (the caller runs the tokens from there again).
    pub fn truncate_kv_cache(&mut self, len: usize) -> usize {
        match self {
            Network::Gemma3(m) => m.truncate_kv_cache(len),
            Network::Qwen2(m) => m.truncate_kv_cache(len),
        }
    }

    /// Bytes of weights one decoded token reads (the bound on decode speed is memory
    /// bandwidth divided by this).
    pub fn weight_bytes_per_token(&self) -> usize {
        match self {
            Network::Gemma3(m) => m.weight_bytes_per_token(),
            Network::Qwen2(m) => m.weight_bytes_per_token(),
        }
    }

    pub fn clear_kv_cache(&mut self) {
        match self {
            Network::Gemma3(m) => m.clear_kv_cache(),
            Network::Qwen2(m) => m.clear_kv_cache(),
        }
    }

    /// Empties the KV caches and has them hold `dtype` (f16 by default, as llama.cpp's).
    pub fn set_kv_dtype(&mut self, dtype: candle_core::DType) {
        match self {
            Network::Gemma3(m) => m.set_kv_dtype(dtype),
            Network::Qwen2(m) => m.set_kv_dtype(dtype),
        }
    }
}

/// What the rest of the pipeline needs to know about a model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub architecture: String,
    pub name: String,
    /// The context the model was trained for (`<arch>.context_length`).
    pub context_length: usize,
    pub bos: Option<u32>,
    pub add_bos: bool,
    /// Tokens that end a turn or the text; generation stops on any of them.
    pub stop_tokens: Vec<u32>,
    /// The Jinja chat template shipped in the file, if any.
    pub chat_template: Option<String>,
    /// Whether the model follows instructions (has a chat template, or says it is tuned).
    pub instruction_tuned: bool,
}

pub struct LoadedModel {
    pub network: Network,
    pub tokenizer: GgufTokenizer,
    pub info: ModelInfo,
}

/// From this size of model file on, the tokenizer is built while the weights load.
const PARALLEL_TOKENIZER_BYTES: u64 = 512 << 20;

/// Loads a GGUF model file (or the first part of a split model, whose other parts lie beside
/// it): checks its architecture, builds its tokenizer, loads the weights.
pub fn load_gguf(path: &Path) -> Result<LoadedModel> {
    let (ct, mut file) = gguf::open(path)?;
    let meta = Meta(&ct);
    let arch = meta.opt_str("general.architecture").unwrap_or_default();
    if !SUPPORTED_ARCHITECTURES.contains(&arch) {
        return Err(Error::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch: arch.to_string(),
            supported: SUPPORTED_ARCHITECTURES.join(", "),
        });
    }
    let invalid = |message: String| Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    };
    // On a large file the tokenizer is built on a thread of its own while the weights are
    // read. It matters for byte-level BPE (Qwen's 151k merges go through the `tokenizers`
    // crate); a SentencePiece vocabulary (Gemma's) builds in a fraction of that since it needs
    // no merge table (`spm.rs`). A small file builds it first, so that what the build holds
    // for a moment never lies on the weights' peak.
    let parallel = std::fs::metadata(path).is_ok_and(|m| m.len() >= PARALLEL_TOKENIZER_BYTES);
    let (tokenizer, network) = std::thread::scope(|s| {
        let tokenizer = parallel.then(|| s.spawn(|| gguf_tokenizer::from_gguf(&ct)));
        let tokenizer = match tokenizer {
            Some(handle) => Err(handle),
            None => Ok(gguf_tokenizer::from_gguf(&ct)),
        };
        let device = Device::Cpu;
        let network = match arch {
            "gemma3" => gemma3::Model::load(&ct, &mut file, &device, Precision::Quantized)
                .map(|m| Network::Gemma3(Box::new(m))),
            "qwen2" => qwen2::Model::load(&ct, &mut file, &device, Precision::Quantized)
                .map(|m| Network::Qwen2(Box::new(m))),
            _ => unreachable!("checked against SUPPORTED_ARCHITECTURES"),
        };
        let tokenizer = tokenizer.unwrap_or_else(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (tokenizer, network)
    });
    let tokenizer = tokenizer?;
    check_vocabulary(&ct, &tokenizer).map_err(invalid)?;
    let info = model_info(meta, path, &tokenizer).map_err(invalid)?;
    let network = network.map_err(|e| invalid(e.to_string()))?;
    Ok(LoadedModel {
        network,
        tokenizer,
        info,
    })
}

/// Every token id the tokenizer can produce must have a row in the embedding table.
fn check_vocabulary(
    ct: &gguf_file::Content,
    tokenizer: &GgufTokenizer,
) -> std::result::Result<(), String> {
    if let Some(embd) = ct.tensor_infos.get("token_embd.weight") {
        let rows = embd.shape.dims().first().copied().unwrap_or(0);
        let vocab = tokenizer.vocab_size();
        if vocab > rows {
            return Err(format!(
                "its tokenizer has {vocab} tokens but the model embeds only {rows}; the tokenizer does not belong to this model: download the file again or use another"
            ));
        }
    }
    Ok(())
}

/// What the pipeline needs to know of the model at `path`, from its metadata.
fn model_info(
    meta: Meta,
    path: &Path,
    tokenizer: &GgufTokenizer,
) -> std::result::Result<ModelInfo, String> {
    let arch = meta.opt_str("general.architecture").unwrap_or_default();
    let context_length =
        meta.arch(arch, "context_length")
            .ok()
            .and_then(|v| v.to_u32().ok())
            .ok_or_else(|| format!("missing metadata {arch}.context_length"))? as usize;
    let add_bos = meta
        .opt_bool("tokenizer.ggml.add_bos_token")
        // llama.cpp adds BOS for SentencePiece vocabularies unless told otherwise.
        .unwrap_or(meta.opt_str("tokenizer.ggml.model") == Some("llama"));
    let mut stop_tokens: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| meta.opt_u32(k))
        .collect();
    for marker in ["<end_of_turn>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
        if let Some(id) = tokenizer.token_to_id(marker) {
            stop_tokens.push(id);
        }
    }
    stop_tokens.sort_unstable();
    stop_tokens.dedup();
    let chat_template = meta.opt_str("tokenizer.chat_template").map(str::to_string);
    let name = meta.opt_str("general.name").map_or_else(
        || {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        },
        str::to_string,
    );
    let lower = format!(
        "{} {}",
        name.to_lowercase(),
        path.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_lowercase()
    );
    let instruction_tuned = chat_template.is_some()
        || lower.contains("instruct")
        || lower.contains("-it")
        || lower.contains(" it ")
        || lower.contains("chat");
    Ok(ModelInfo {
        path: path.to_path_buf(),
        architecture: arch.to_string(),
        name,
        context_length,
        bos: meta.opt_u32("tokenizer.ggml.bos_token_id"),
        add_bos,
        stop_tokens,
        chat_template,
        instruction_tuned,
    })
}
