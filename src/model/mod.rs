//! Model: loads a GGUF chat model (weights, tokenizer, chat template) and runs it one step at a
//! time. The architecture is taken from the file's `general.architecture`; each supported one is
//! a variant of [`Network`].

pub(crate) mod attention;
pub mod card;
pub(crate) mod decoder;
pub mod gemma3;
pub mod hub;
pub(crate) mod kernel;
pub mod marian;
pub mod packed;
pub mod q8;
pub mod qwen2;
pub mod requant;
pub mod source;
pub mod spm;
pub mod tokenizer;

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

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

    /// Keeps the first `len` positions of the KV cache. Both architectures can; the bool is
    /// for one that cannot (the caller then starts over).
    pub fn truncate_kv_cache(&mut self, len: usize) -> Result<bool> {
        match self {
            Network::Gemma3(m) => {
                m.truncate_kv_cache(len)?;
                Ok(true)
            }
            Network::Qwen2(m) => {
                m.truncate_kv_cache(len);
                Ok(true)
            }
        }
    }

    pub fn clear_kv_cache(&mut self) {
        match self {
            Network::Gemma3(m) => m.clear_kv_cache(),
            Network::Qwen2(m) => m.clear_kv_cache(),
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
    pub tokenizer: Tokenizer,
    pub info: ModelInfo,
}

fn meta_str(ct: &gguf_file::Content, key: &str) -> Option<String> {
    match ct.metadata.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn meta_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// Reads the GGUF header of `path`: metadata and tensor index, no weights.
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, std::fs::File)> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ModelNotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::ModelRead {
                path: path.to_path_buf(),
                source: Box::new(e),
            }
        }
    })?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::InvalidModel {
            path: path.to_path_buf(),
            message: "is a directory; pass the .gguf file inside it".into(),
        });
    }
    // Buffered: the header is hundreds of thousands of small values (a 262k-token vocabulary
    // is 2.2 s of single read calls unbuffered). Tensors are read later by absolute offset.
    let ct = gguf_file::Content::read(&mut std::io::BufReader::with_capacity(1 << 20, &mut file))
        .map_err(|e| Error::InvalidModel {
        path: path.to_path_buf(),
        message: format!("not a readable GGUF file ({e}); download it again or pass another file"),
    })?;
    Ok((ct, file))
}

/// Checks that every tensor the header lists lies within the file, so that a truncated
/// download is named as such instead of failing deep inside a layer.
fn check_complete(
    ct: &gguf_file::Content,
    file: &std::fs::File,
) -> std::result::Result<(), String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let needed = ct
        .tensor_infos
        .values()
        .map(|t| {
            let blocks = t.shape.elem_count() / t.ggml_dtype.block_size();
            ct.tensor_data_offset + t.offset + (blocks * t.ggml_dtype.type_size()) as u64
        })
        .max()
        .unwrap_or(ct.tensor_data_offset);
    if needed > len {
        return Err(format!(
            "the file is truncated: {len} bytes, but its tensors need {needed}; download it again (for a model named by card: `tercuman models fetch NAME`)"
        ));
    }
    Ok(())
}

/// Loads a GGUF model file: checks its architecture, builds its tokenizer, loads the weights.
pub fn load_gguf(path: &Path) -> Result<LoadedModel> {
    let (ct, mut file) = read_header(path)?;
    let arch = meta_str(&ct, "general.architecture").unwrap_or_default();
    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        return Err(Error::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch,
            supported: SUPPORTED_ARCHITECTURES.join(", "),
        });
    }
    let invalid = |message: String| Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    };
    check_complete(&ct, &file).map_err(invalid)?;
    let tokenizer = tokenizer::from_gguf(&ct)?;
    // Every token id the tokenizer can produce must have a row in the embedding table.
    if let Some(embd) = ct.tensor_infos.get("token_embd.weight") {
        let rows = embd.shape.dims().first().copied().unwrap_or(0);
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > rows {
            return Err(invalid(format!(
                "its tokenizer has {vocab} tokens but the model embeds only {rows}; the tokenizer does not belong to this model: download the file again or use another"
            )));
        }
    }
    let context_length = meta_u32(&ct, &format!("{arch}.context_length"))
        .ok_or_else(|| invalid(format!("missing metadata {arch}.context_length")))?
        as usize;
    let bos = meta_u32(&ct, "tokenizer.ggml.bos_token_id");
    let add_bos = ct
        .metadata
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        // llama.cpp adds BOS for SentencePiece vocabularies unless told otherwise.
        .unwrap_or(meta_str(&ct, "tokenizer.ggml.model").as_deref() == Some("llama"));
    let mut stop_tokens: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| meta_u32(&ct, k))
        .collect();
    for marker in ["<end_of_turn>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
        if let Some(id) = tokenizer.token_to_id(marker) {
            stop_tokens.push(id);
        }
    }
    stop_tokens.sort_unstable();
    stop_tokens.dedup();
    let chat_template = meta_str(&ct, "tokenizer.chat_template");
    let name = meta_str(&ct, "general.name").unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
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

    let device = Device::Cpu;
    let network = match arch.as_str() {
        "gemma3" => Network::Gemma3(Box::new(
            gemma3::Model::from_gguf(&ct, &mut file, &device)
                .map_err(|e| invalid(e.to_string()))?,
        )),
        "qwen2" => Network::Qwen2(Box::new(
            qwen2::Model::from_gguf(&ct, &mut file, &device).map_err(|e| invalid(e.to_string()))?,
        )),
        _ => unreachable!("checked against SUPPORTED_ARCHITECTURES"),
    };
    Ok(LoadedModel {
        network,
        tokenizer,
        info: ModelInfo {
            path: path.to_path_buf(),
            architecture: arch,
            name,
            context_length,
            bos,
            add_bos,
            stop_tokens,
            chat_template,
            instruction_tuned,
        },
    })
}
