//! SentencePiece for Marian models, in Rust: reads a `.spm` model file (the protobuf
//! `ModelProto` that SentencePiece writes), normalises text as SentencePiece does (the model's
//! precompiled character map, whitespace rules, the `▁` dummy prefix), segments it with the
//! Unigram pieces and scores, and maps pieces to ids through the model's `vocab.json` as the
//! reference `MarianTokenizer` does (a piece missing from it is `<unk>`).
//!
//! The protobuf is read with prost's derive (only the fields used here are declared, the rest
//! are skipped by the decoder); the character map with `spm_precompiled` and the Viterbi
//! segmentation with `tokenizers`' Unigram model, the same code the Hugging Face fast
//! tokenizers use for these models.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The SentencePiece `ModelProto`, as far as segmentation needs it.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<PieceProto>,
    #[prost(message, optional, tag = "2")]
    trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PieceProto {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
    /// 1 normal, 2 unknown, 3 control, 4 user defined, 5 byte, 6 unused.
    #[prost(int32, optional, tag = "3")]
    kind: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TrainerSpec {
    /// 1 unigram, 2 BPE, 3 word, 4 char.
    #[prost(int32, optional, tag = "3")]
    model_type: Option<i32>,
    #[prost(bool, optional, tag = "35")]
    byte_fallback: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NormalizerSpec {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    remove_extra_whitespaces: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    escape_whitespaces: Option<bool>,
}

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const USER_DEFINED: i32 = 4;

/// One SentencePiece Unigram model: normalisation and segmentation into pieces.
pub struct SentencePiece {
    path: PathBuf,
    charsmap: Option<spm_precompiled::Precompiled>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    unigram: tokenizers::models::unigram::Unigram,
}

impl SentencePiece {
    pub fn load(path: &Path) -> Result<SentencePiece> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadInput {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<SentencePiece> {
        let invalid = |message: String| Error::InvalidModel {
            path: path.to_path_buf(),
            message,
        };
        let proto: ModelProto = prost::Message::decode(bytes).map_err(|e| {
            invalid(format!("not a SentencePiece model ({e}); the file may be damaged: delete it and download it again"))
        })?;
        let trainer = proto.trainer_spec.unwrap_or_default();
        match trainer.model_type.unwrap_or(1) {
            1 => {}
            other => {
                return Err(invalid(format!(
                    "SentencePiece model type {other} is not supported (only Unigram, type 1, as in Marian models)"
                )))
            }
        }
        if trainer.byte_fallback.unwrap_or(false) {
            return Err(invalid(
                "SentencePiece byte fallback is not supported (Marian models do not use it)".into(),
            ));
        }
        // Segmentation sees the pieces text can be made of: normal and user-defined pieces,
        // and the unknown piece for characters none of them covers. Control pieces (<s>,
        // </s>) are never matched in text, so they are left out; ids come from vocab.json,
        // not from positions here.
        let mut vocab = Vec::with_capacity(proto.pieces.len());
        let mut unk = None;
        for p in &proto.pieces {
            let kind = p.kind.unwrap_or(NORMAL);
            let piece = p.piece.clone().unwrap_or_default();
            match kind {
                NORMAL | USER_DEFINED => vocab.push((piece, p.score.unwrap_or(0.0) as f64)),
                UNKNOWN => {
                    unk = Some(vocab.len());
                    vocab.push((piece, 0.0));
                }
                _ => {}
            }
        }
        if unk.is_none() {
            return Err(invalid("SentencePiece model has no unknown piece".into()));
        }
        let unigram = tokenizers::models::unigram::Unigram::from(vocab, unk, false)
            .map_err(|e| invalid(format!("SentencePiece pieces: {e}")))?;
        let spec = proto.normalizer_spec.unwrap_or_default();
        let charsmap = match spec.precompiled_charsmap.as_deref() {
            Some(map) if !map.is_empty() => Some(
                spm_precompiled::Precompiled::from(map)
                    .map_err(|e| invalid(format!("SentencePiece character map: {e}")))?,
            ),
            _ => None,
        };
        if charsmap.is_none() && !matches!(spec.name.as_deref(), None | Some("identity")) {
            return Err(invalid(format!(
                "SentencePiece normalisation `{}` has no precompiled character map",
                spec.name.unwrap_or_default()
            )));
        }
        Ok(SentencePiece {
            path: path.to_path_buf(),
            charsmap,
            add_dummy_prefix: spec.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: spec.remove_extra_whitespaces.unwrap_or(true),
            escape_whitespaces: spec.escape_whitespaces.unwrap_or(true),
            unigram,
        })
    }

    /// The text as SentencePiece normalises it before segmentation.
    pub fn normalize(&self, text: &str) -> String {
        let mapped = match &self.charsmap {
            Some(map) => map.normalize_string(text),
            None => text.to_string(),
        };
        let mut out = String::with_capacity(mapped.len() + 3);
        let mut text = mapped.as_str();
        if self.remove_extra_whitespaces {
            text = text.trim_matches(' ');
        }
        if text.is_empty() {
            return String::new();
        }
        let space = if self.escape_whitespaces { '▁' } else { ' ' };
        if self.add_dummy_prefix {
            out.push(space);
        }
        let mut last_space = false;
        for c in text.chars() {
            if c == ' ' {
                if self.remove_extra_whitespaces && last_space {
                    continue;
                }
                out.push(space);
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        }
        out
    }

    /// The pieces of `text`.
    pub fn pieces(&self, text: &str) -> Result<Vec<String>> {
        let normalized = self.normalize(text);
        if normalized.is_empty() {
            return Ok(Vec::new());
        }
        self.unigram
            .encode(&normalized)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", self.path.display())))
    }
}

/// What `MarianTokenizer` does: source text → source pieces → ids (vocab.json) + `</s>`, and
/// target ids → text.
pub struct MarianTokenizer {
    source: SentencePiece,
    vocab: HashMap<String, u32>,
    pieces: Vec<String>,
    pub unk: u32,
    pub eos: u32,
    pub pad: u32,
}

impl MarianTokenizer {
    /// Loads `source.spm` and `vocab.json` from a Marian model directory. (`target.spm` is
    /// not needed: decoding pieces back to text is the same for every Unigram model.)
    pub fn load(dir: &Path) -> Result<MarianTokenizer> {
        let source = SentencePiece::load(&dir.join("source.spm"))?;
        let vocab_path = dir.join("vocab.json");
        let text = std::fs::read_to_string(&vocab_path).map_err(|source| Error::ReadInput {
            path: vocab_path.clone(),
            source,
        })?;
        let vocab: HashMap<String, u32> =
            serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
                path: vocab_path.clone(),
                message: format!("not a vocabulary (piece → id) JSON object: {e}"),
            })?;
        let mut pieces = vec![String::new(); vocab.len()];
        for (piece, &id) in &vocab {
            match pieces.get_mut(id as usize) {
                Some(slot) => *slot = piece.clone(),
                None => {
                    return Err(Error::InvalidModel {
                        path: vocab_path,
                        message: format!("id {id} of `{piece}` is outside 0..{}", vocab.len()),
                    })
                }
            }
        }
        let special = |name: &str| {
            vocab.get(name).copied().ok_or_else(|| Error::InvalidModel {
                path: vocab_path.clone(),
                message: format!("has no `{name}` entry"),
            })
        };
        Ok(MarianTokenizer {
            unk: special("<unk>")?,
            eos: special("</s>")?,
            pad: special("<pad>")?,
            source,
            vocab,
            pieces,
        })
    }

    /// The source pieces of `text` (after the model's normalisation).
    pub fn pieces(&self, text: &str) -> Result<Vec<String>> {
        self.source.pieces(text)
    }

    /// The encoder input for `text`: piece ids, then `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self
            .pieces(text)?
            .iter()
            .map(|p| self.vocab.get(p).copied().unwrap_or(self.unk))
            .collect();
        ids.push(self.eos);
        Ok(ids)
    }

    /// The text of generated ids, special tokens (`</s>`, `<pad>`, `<unk>`) left out.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids {
            if id == self.eos || id == self.pad || id == self.unk {
                continue;
            }
            if let Some(p) = self.pieces.get(id as usize) {
                out.push_str(p);
            }
        }
        out.replace('▁', " ").trim().to_string()
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SentencePiece {
        SentencePiece::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-marian/source.spm"),
        )
        .unwrap()
    }

    #[test]
    fn whitespace_is_trimmed_collapsed_and_escaped() {
        let sp = tiny();
        assert_eq!(sp.normalize("  bir   iki "), "▁bir▁iki");
        assert_eq!(sp.normalize("   "), "");
        // The fixture's character map turns full-width letters and a no-break space into
        // ASCII, and the space it makes is collapsed like any other.
        assert_eq!(sp.normalize("Ｆｕｌｌ\u{a0} x"), "▁Full▁x");
    }

    #[test]
    fn garbage_is_not_a_model() {
        let err = SentencePiece::from_bytes(b"\xff\xff\xff\xff", Path::new("x.spm"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("x.spm"), "{err}");
    }
}
