//! A Marian model's `config.json` and `generation_config.json`: the network's shape, and the
//! decoding defaults the reference `generate` would use.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

fn default_true() -> bool {
    true
}

/// `config.json` of a Marian model. The keys that shape the network are required (every
/// OPUS-MT config has them); the generation keys older configs keep here are optional.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub activation_function: candle_nn::Activation,
    pub max_position_embeddings: usize,
    pub scale_embedding: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default)]
    pub forced_eos_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub share_encoder_decoder_embeddings: bool,
    /// Keys of the original Marian configs that change the network; only their Marian
    /// defaults are supported.
    #[serde(default)]
    pub normalize_before: bool,
    #[serde(default)]
    pub normalize_embedding: bool,
    #[serde(default = "default_true")]
    pub static_position_embeddings: bool,
    /// Old configs keep the generation settings here.
    #[serde(default)]
    pub num_beams: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
}

/// `generation_config.json`, where a model has one. Its keys win over `config.json`'s.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct GenerationFile {
    num_beams: Option<usize>,
    max_length: Option<usize>,
    length_penalty: Option<f32>,
    bad_words_ids: Option<Vec<Vec<u32>>>,
    eos_token_id: Option<TokenIds>,
    forced_eos_token_id: Option<u32>,
    decoder_start_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    renormalize_logits: Option<bool>,
}

/// A token id, or a list of them (transformers accepts both for `eos_token_id`; a Marian
/// model has one, the first).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn first(&self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(*id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

/// A decode length fixed in advance, for benchmarks: `</s>` is banned until the last step
/// and forced there, so that runs do the same work whatever the weights prefer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedLength {
    /// Every sentence generates this many tokens (`</s>` included).
    Tokens(usize),
    /// Every sentence generates as many tokens as its source has.
    SourceLength,
}

/// How the model's reference generation is set up.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Benchmarks only; `None` in normal use.
    pub forced_length: Option<ForcedLength>,
    pub num_beams: usize,
    /// Longest output, decoder start token included.
    pub max_length: usize,
    pub length_penalty: f32,
    /// Tokens never generated (single-token `bad_words_ids`: `<pad>`).
    pub banned: Vec<u32>,
    pub forced_eos: Option<u32>,
    pub eos: u32,
    pub decoder_start: u32,
    /// Log-softmax again after banning and forcing tokens (transformers'
    /// `renormalize_logits`), so that a beam's score is a true log-probability. It changes
    /// which beams win, not greedy's choice.
    pub renormalize: bool,
}

/// Reads `config.json` (required) and `generation_config.json` (optional) from `dir`, checks
/// that the network is one this module runs, and settles the decoding defaults.
pub fn read(dir: &Path) -> Result<(Config, Generation)> {
    let config_path = dir.join("config.json");
    let config: Config = match read_json(dir, "config.json")? {
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| invalid(config_path.clone(), format!("not a Marian config: {e}")))?,
        None => {
            return Err(invalid(
                config_path,
                "missing; a Marian model directory holds config.json, the weights, source.spm, target.spm and vocab.json".into(),
            ))
        }
    };
    config.check().map_err(|m| invalid(config_path, m))?;
    let gen_file: GenerationFile = match read_json(dir, "generation_config.json")? {
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| invalid(dir.join("generation_config.json"), e.to_string()))?,
        None => GenerationFile::default(),
    };
    let generation = Generation::new(&config, gen_file);
    Ok((config, generation))
}

/// The text of `dir/name`, `None` when there is no such file.
fn read_json(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadInput { path, source }),
    }
}

fn invalid(path: PathBuf, message: String) -> Error {
    Error::InvalidModel { path, message }
}

impl Config {
    /// Why this module cannot run the network `config.json` describes, if it cannot.
    fn check(&self) -> std::result::Result<(), String> {
        if self.normalize_before || self.normalize_embedding || !self.static_position_embeddings {
            return Err("pre-norm layers, embedding normalisation and learned positions are not supported (OPUS-MT models use none of them)".into());
        }
        if self
            .decoder_vocab_size
            .is_some_and(|v| v != self.vocab_size)
            || !self.share_encoder_decoder_embeddings
        {
            return Err("separate source and target vocabularies are not supported".into());
        }
        for (heads, side) in [
            (self.encoder_attention_heads, "encoder"),
            (self.decoder_attention_heads, "decoder"),
        ] {
            if self.d_model == 0 || heads == 0 || !self.d_model.is_multiple_of(heads) {
                return Err(format!(
                    "d_model {} does not split into {heads} {side} attention heads",
                    self.d_model
                ));
            }
        }
        Ok(())
    }
}

impl Generation {
    /// The decoding settings: `generation_config.json` first, then the keys older configs
    /// keep in `config.json`, then transformers' defaults.
    fn new(config: &Config, file: GenerationFile) -> Generation {
        let banned = file
            .bad_words_ids
            .or(config.bad_words_ids.clone())
            .unwrap_or_else(|| vec![vec![config.pad_token_id]])
            .into_iter()
            .filter(|w| w.len() == 1)
            .map(|w| w[0])
            .collect();
        let eos = file
            .eos_token_id
            .as_ref()
            .and_then(TokenIds::first)
            .unwrap_or(config.eos_token_id);
        Generation {
            forced_length: None,
            num_beams: file.num_beams.or(config.num_beams).unwrap_or(4).max(1),
            max_length: file
                .max_length
                .or(config.max_length)
                .unwrap_or(512)
                .min(config.max_position_embeddings)
                .max(2),
            length_penalty: file.length_penalty.unwrap_or(1.0),
            banned,
            // transformers' MarianConfig defaults forced_eos_token_id to 0, which is the eos id
            // of the older OPUS-MT models whose configs lack the key.
            forced_eos: file
                .forced_eos_token_id
                .or(config.forced_eos_token_id)
                .or(Some(eos)),
            eos,
            decoder_start: file
                .decoder_start_token_id
                .or(config.decoder_start_token_id)
                .or(file.pad_token_id)
                .unwrap_or(config.pad_token_id),
            renormalize: file.renormalize_logits.unwrap_or(false),
        }
    }
}
