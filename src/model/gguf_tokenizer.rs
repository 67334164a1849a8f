//! Tokenizer from the GGUF file's own `tokenizer.ggml.*` metadata, so that a lone .gguf file is
//! a complete model.
//!
//! Byte-level BPE vocabularies (`gpt2`: Qwen, Llama 3) come with merges and are built by
//! candle-core's `TokenizerFromGguf`. SentencePiece vocabularies (`llama`: Gemma, Llama 2) store
//! pieces and scores but no merges; they run on [`super::spm`], which merges by the scores as
//! SentencePiece's BPE and llama.cpp's SPM tokenizer do: the adjacent pair whose merged piece
//! scores highest merges first. `tests/it/tokenizer_parity.rs` checks the result id for id
//! against llama.cpp and against the `tokenizers` crate given merges derived from the scores.

use super::gguf::{Meta, MetaError};
use super::spm::{Spm, TOKEN_NORMAL};
use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;

/// A GGUF model's tokenizer.
pub enum GgufTokenizer {
    /// Byte-level BPE, by the `tokenizers` crate.
    Bpe(Box<Tokenizer>),
    /// SentencePiece BPE.
    Spm(Box<Spm>),
}

impl GgufTokenizer {
    /// The text of `ids`; control tokens left out when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        match self {
            GgufTokenizer::Bpe(t) => Ok(t.decode(ids, skip_special)?),
            GgufTokenizer::Spm(t) => Ok(t.decode(ids, skip_special)),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match self {
            GgufTokenizer::Bpe(t) => t.token_to_id(token),
            GgufTokenizer::Spm(t) => t.token_to_id(token),
        }
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            GgufTokenizer::Bpe(t) => t.id_to_token(id),
            GgufTokenizer::Spm(t) => t.id_to_token(id).map(str::to_string),
        }
    }

    /// Number of distinct tokens, added ones included.
    pub fn vocab_size(&self) -> usize {
        match self {
            GgufTokenizer::Bpe(t) => t.get_vocab_size(true),
            GgufTokenizer::Spm(t) => t.vocab_size(),
        }
    }
}

/// Token ids of `text`, no BOS. With `parse_special`, control tokens written in the text (such
/// as `<start_of_turn>`) become their ids; without it they are tokenized as plain text, which
/// is how article text must be read.
pub fn encode(tokenizer: &mut GgufTokenizer, text: &str, parse_special: bool) -> Result<Vec<u32>> {
    match tokenizer {
        GgufTokenizer::Bpe(tokenizer) => {
            tokenizer.set_encode_special_tokens(!parse_special);
            let ids = tokenizer
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec());
            // Back to the safe default for `count` and any other reader: specials are text.
            tokenizer.set_encode_special_tokens(true);
            Ok(ids?)
        }
        GgufTokenizer::Spm(t) => Ok(t.encode(text, parse_special)),
    }
}

/// Number of tokens `text` takes as article text (special-token markers read as text).
pub fn count(tokenizer: &GgufTokenizer, text: &str) -> usize {
    match tokenizer {
        GgufTokenizer::Bpe(tokenizer) => {
            debug_assert!(tokenizer.get_encode_special_tokens());
            tokenizer
                .encode_fast(text, false)
                .map(|e| e.len())
                .unwrap_or(usize::MAX)
        }
        GgufTokenizer::Spm(t) => t.encode(text, false).len(),
    }
}

pub fn from_gguf(ct: &Content) -> Result<GgufTokenizer> {
    match Meta(ct).str("tokenizer.ggml.model")? {
        "gpt2" => {
            let mut t =
                Tokenizer::from_gguf(ct).map_err(|e| Error::Tokenizer(e.to_string()))?;
            t.set_encode_special_tokens(true);
            Ok(GgufTokenizer::Bpe(Box::new(t)))
        }
        "llama" => sentencepiece(ct).map(|t| GgufTokenizer::Spm(Box::new(t))),
        other => Err(Error::Tokenizer(format!(
            "tokenizer model `{other}` is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))"
        ))),
    }
}

/// A SentencePiece BPE tokenizer (Gemma's, Llama's) from the pieces and scores in the GGUF.
fn sentencepiece(ct: &Content) -> Result<Spm> {
    let Pieces {
        tokens,
        scores,
        types,
    } = read_pieces(ct)?;
    let meta = Meta(ct);
    let add_space_prefix = meta
        .opt_bool("tokenizer.ggml.add_space_prefix")
        .unwrap_or(true);
    let unk = meta.opt_u32("tokenizer.ggml.unknown_token_id");
    Spm::new(tokens, scores, types, unk, add_space_prefix)
}

/// The vocabulary of a SentencePiece GGUF: pieces, their scores and their llama.cpp token
/// types (normal when the file has none).
struct Pieces {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<u32>,
}

fn read_pieces(ct: &Content) -> Result<Pieces> {
    let meta = Meta(ct);
    let bad = |key: &str| Error::from(MetaError::WrongType(key.to_string()));
    let tokens: Vec<String> = meta
        .array("tokenizer.ggml.tokens")?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|_| bad("tokenizer.ggml.tokens"))
        })
        .collect::<Result<_>>()?;
    let scores: Vec<f32> = meta
        .array("tokenizer.ggml.scores")?
        .iter()
        .map(|v| v.to_f32().map_err(|_| bad("tokenizer.ggml.scores")))
        .collect::<Result<_>>()?;
    let types: Vec<u32> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::I32(x) => Ok(*x as u32),
                Value::U32(x) => Ok(*x),
                _ => Err(bad("tokenizer.ggml.token_type")),
            })
            .collect::<Result<_>>()?,
        _ => vec![TOKEN_NORMAL; tokens.len()],
    };
    Ok(Pieces {
        tokens,
        scores,
        types,
    })
}
