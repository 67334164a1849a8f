//! Tokenizer from the GGUF file's own `tokenizer.ggml.*` metadata, so that a lone .gguf file is
//! a complete model.
//!
//! Byte-level BPE vocabularies (`gpt2`: Qwen, Llama 3) come with merges and are built by
//! candle-core's `TokenizerFromGguf`. SentencePiece vocabularies (`llama`: Gemma, Llama 2) store
//! pieces and scores but no merges; they are converted here into a `tokenizers` BPE model whose
//! merges are derived from the scores, which is the merge order SentencePiece's BPE (and
//! llama.cpp's SPM tokenizer) follows: the adjacent pair whose merged piece scores highest merges
//! first. `tests/tokenizer_parity.rs` checks the result id for id against llama.cpp.

use super::gguf::{Meta, MetaError};
use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace};
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, Tokenizer};

/// llama.cpp's `llama_token_type` values stored in `tokenizer.ggml.token_type`.
const TOKEN_NORMAL: u32 = 1;
const TOKEN_UNKNOWN: u32 = 2;
const TOKEN_CONTROL: u32 = 3;
const TOKEN_USER_DEFINED: u32 = 4;

/// The SentencePiece word-boundary marker.
const SPACE: &str = "\u{2581}";

/// Token ids of `text`, no BOS. With `parse_special`, control tokens written in the text (such
/// as `<start_of_turn>`) become their ids; without it they are tokenized as plain text, which
/// is how article text must be read.
pub fn encode(tokenizer: &mut Tokenizer, text: &str, parse_special: bool) -> Result<Vec<u32>> {
    tokenizer.set_encode_special_tokens(!parse_special);
    let ids = tokenizer
        .encode_fast(text, false)
        .map(|e| e.get_ids().to_vec());
    // Back to the safe default for `count` and any other reader: specials are text.
    tokenizer.set_encode_special_tokens(true);
    Ok(ids?)
}

/// Number of tokens `text` takes as article text (special-token markers read as text).
pub fn count(tokenizer: &Tokenizer, text: &str) -> usize {
    debug_assert!(tokenizer.get_encode_special_tokens());
    tokenizer
        .encode_fast(text, false)
        .map(|e| e.len())
        .unwrap_or(usize::MAX)
}

pub fn from_gguf(ct: &Content) -> Result<Tokenizer> {
    match Meta(ct).str("tokenizer.ggml.model")? {
        "gpt2" => {
            let mut t =
                Tokenizer::from_gguf(ct).map_err(|e| Error::Tokenizer(e.to_string()))?;
            t.set_encode_special_tokens(true);
            Ok(t)
        }
        "llama" => sentencepiece_bpe(ct),
        other => Err(Error::Tokenizer(format!(
            "tokenizer model `{other}` is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))"
        ))),
    }
}

/// The vocabulary of a SentencePiece GGUF: pieces, their scores and their llama.cpp token
/// types (normal when the file has none).
struct Pieces {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<u32>,
}

/// A SentencePiece BPE tokenizer (Gemma's, Llama's) from the pieces and scores in the GGUF,
/// as llama.cpp tokenizes: merges ranked by the merged piece's score, byte fallback, and
/// control tokens matched only where a prompt asks for them.
fn sentencepiece_bpe(ct: &Content) -> Result<Tokenizer> {
    let pieces = read_pieces(ct)?;
    let mut tokenizer = Tokenizer::new(bpe_model(ct, &pieces)?);
    let add_space_prefix = Meta(ct)
        .opt_bool("tokenizer.ggml.add_space_prefix")
        .unwrap_or(true);
    space_handling(&mut tokenizer, add_space_prefix)?;
    add_special_tokens(&mut tokenizer, &pieces)?;
    Ok(tokenizer)
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
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        return Err(Error::Tokenizer(
            "tokens, scores and token types differ in length".into(),
        ));
    }
    Ok(Pieces {
        tokens,
        scores,
        types,
    })
}

/// The BPE model: every way to build a normal piece from two normal pieces is a merge.
fn bpe_model(ct: &Content, pieces: &Pieces) -> Result<BPE> {
    let Pieces {
        tokens,
        scores,
        types,
    } = pieces;
    let mut vocab = Vocab::default();
    for (id, tok) in tokens.iter().enumerate() {
        vocab.entry(tok.clone()).or_insert(id as u32);
    }

    // Every way to build a normal piece from two pieces, ranked by the merged piece's score.
    // Only normal pieces are merge results, so article text can never merge into a control token.
    let mut merges: Vec<(f32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types[id] != TOKEN_NORMAL || vocab[piece] != id as u32 {
            continue;
        }
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) else {
                continue;
            };
            if types[l as usize] == TOKEN_NORMAL && types[r as usize] == TOKEN_NORMAL {
                merges.push((scores[id], id as u32, left.to_string(), right.to_string()));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let merges: Vec<(String, String)> = merges.into_iter().map(|(_, _, l, r)| (l, r)).collect();

    let unk = Meta(ct)
        .opt_u32("tokenizer.ggml.unknown_token_id")
        .and_then(|id| tokens.get(id as usize).cloned());
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    builder.build().map_err(|e| Error::Tokenizer(e.to_string()))
}

/// SentencePiece's word-boundary marker for spaces (and the leading space it adds), and back.
fn space_handling(tokenizer: &mut Tokenizer, add_space_prefix: bool) -> Result<()> {
    let replace = Replace::new(" ", SPACE).map_err(|e| Error::Tokenizer(e.to_string()))?;
    let normalizer: NormalizerWrapper = if add_space_prefix {
        tokenizers::normalizers::Sequence::new(vec![
            Prepend::new(SPACE.into()).into(),
            replace.into(),
        ])
        .into()
    } else {
        replace.into()
    };
    tokenizer.with_normalizer(Some(normalizer))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        tokenizers::decoders::DecoderWrapper::Replace(
            Replace::new(SPACE, " ").map_err(|e| Error::Tokenizer(e.to_string()))?,
        ),
        ByteFallback::default().into(),
        Fuse::default().into(),
    ];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(())
}

/// Control tokens are matched in prompt templates only (see `encode_special_tokens`);
/// user-defined pieces (runs of newlines and spaces in Gemma) are always matched, as in
/// llama.cpp.
fn add_special_tokens(tokenizer: &mut Tokenizer, pieces: &Pieces) -> Result<()> {
    let (tokens, types) = (&pieces.tokens, &pieces.types);
    let mut special = Vec::new();
    let mut user = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        match types[id] {
            TOKEN_CONTROL | TOKEN_UNKNOWN => special.push(AddedToken::from(tok.clone(), true)),
            TOKEN_USER_DEFINED => user.push(AddedToken::from(tok.clone(), false).normalized(false)),
            _ => {}
        }
    }
    tokenizer.add_special_tokens(special)?;
    tokenizer.add_tokens(user)?;
    tokenizer.set_encode_special_tokens(true);
    Ok(())
}
