//! Marian (OPUS-MT) translation models: the encoder-decoder network and its decoding, greedy
//! and beam search, over batches of sentences.
//!
//! Written after candle-transformers 0.11.1's `marian` module, with what that module gets wrong
//! for this use fixed (each fix marked "Fix:" below):
//! - its encoder self-attention appends to a KV cache, so a second input attends to the first
//!   unless the cache is reset: here the encoder has no cache at all;
//! - it has no padding mask, so a batch of sentences of different lengths is wrong: here
//!   nothing is padded, and each token's attention reads its own sentence only;
//! - nothing stops it generating `<pad>`: here the generation config's `bad_words_ids` (pad, in
//!   every OPUS-MT model) are banned, as the reference `generate` does;
//! - it has no beam search and no way to reorder its cache for one: here the decoder state is a
//!   set of rows that [`DecoderState::select`] picks, repeats and drops.
//!
//! The network runs on plain row-major f32 buffers, through the hand-written products of
//! `packed` and `attention`: at these sizes candle's tensor operations (padding, head
//! splits, masks, concatenated caches, each a pass over memory, several on a second thread
//! pool) cost more than the arithmetic around them.
//!
//! Decoding follows transformers' `generate` for these models step for step (log-softmax,
//! banned tokens, `</s>` forced at the last allowed position, the beam search's top-2k
//! candidates, length-normalised finished hypotheses and its early-stop rule), so that the
//! output matches the reference ids exactly (tests/marian_parity.rs).

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

use super::packed::PackedLinear;
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

/// `generation_config.json`, where a model has one.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct GenerationFile {
    num_beams: Option<usize>,
    max_length: Option<usize>,
    length_penalty: Option<f32>,
    bad_words_ids: Option<Vec<Vec<u32>>>,
    forced_eos_token_id: Option<u32>,
    decoder_start_token_id: Option<u32>,
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
}

/// Multi-head attention's projections.
struct Attention {
    /// Of the layer's input: q, k and v as one product, `(3d, d)`, for self-attention; q
    /// alone, `(d, d)`, for cross-attention.
    in_proj: PackedLinear,
    /// Cross-attention only: k and v of the encoder states as one product, `(2d, d)`.
    kv_proj: Option<PackedLinear>,
    o: PackedLinear,
    heads: usize,
    head_dim: usize,
    scale: f32,
}

impl Attention {
    fn load(w: &mut Weights, prefix: &str, d: usize, heads: usize, cross: bool) -> Result<Self> {
        let name = |n: &str| format!("{prefix}.{n}");
        let (in_proj, kv_proj) = if cross {
            (
                w.linear(&name("q_proj"), d, d)?,
                Some(w.fused_linear(&[&name("k_proj"), &name("v_proj")], d, d)?),
            )
        } else {
            let names = [&name("q_proj"), &name("k_proj"), &name("v_proj")];
            (w.fused_linear(&names.map(String::as_str), d, d)?, None)
        };
        Ok(Attention {
            in_proj,
            kv_proj,
            o: w.linear(&name("out_proj"), d, d)?,
            heads,
            head_dim: d / heads,
            scale: ((d / heads) as f64).powf(-0.5) as f32,
        })
    }

    /// Attention from rows of `queries` (each row `stride` floats, the query first) over
    /// `len(r)` keys per row, key `j` of row `r` being the rows `kv(r, j)` (key, value), then
    /// the output projection: `(rows, d)`.
    fn attend<'a>(
        &self,
        queries: &[f32],
        stride: usize,
        len: impl Fn(usize) -> usize + Sync,
        kv: impl Fn(usize, usize) -> (&'a [f32], &'a [f32]) + Sync,
    ) -> Vec<f32> {
        let rows = queries.len() / stride;
        let a = super::attention::attend(
            queries,
            stride,
            rows,
            self.heads,
            self.head_dim,
            self.scale,
            len,
            kv,
        );
        self.o.apply(&a)
    }
}

struct FeedForward {
    fc1: PackedLinear,
    fc2: PackedLinear,
    act: candle_nn::Activation,
}

impl FeedForward {
    fn load(
        w: &mut Weights,
        prefix: &str,
        d: usize,
        ffn: usize,
        act: candle_nn::Activation,
    ) -> Result<Self> {
        Ok(FeedForward {
            fc1: w.linear(&format!("{prefix}.fc1"), d, ffn)?,
            fc2: w.linear(&format!("{prefix}.fc2"), ffn, d)?,
            act,
        })
    }

    fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        let h = activate(self.act, self.fc1.apply(x))?;
        Ok(self.fc2.apply(&h))
    }
}

/// `act` on every value: ReLU and swish (the activations of OPUS-MT models) here, any other
/// through candle's own.
fn activate(act: candle_nn::Activation, mut h: Vec<f32>) -> Result<Vec<f32>> {
    use candle_nn::Activation::{Relu, Silu, Swish};
    match act {
        Relu => h.iter_mut().for_each(|v| *v = v.max(0.0)),
        // As candle computes it: x / (1 + e^-x).
        Silu | Swish => h.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp()),
        _ => {
            let n = h.len();
            h = Tensor::from_vec(h, n, &Device::Cpu)?
                .apply(&act)?
                .to_vec1::<f32>()?;
        }
    }
    Ok(h)
}

/// Layer normalisation of rows of `d` values, after adding the residual.
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// `x = norm(x + h)`, row by row.
    fn add_forward(&self, x: &mut [f32], h: &[f32]) {
        let d = self.weight.len();
        for (x, h) in x.chunks_exact_mut(d).zip(h.chunks_exact(d)) {
            x.iter_mut().zip(h).for_each(|(x, h)| *x += h);
            let mean = x.iter().sum::<f32>() / d as f32;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in x.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

struct EncoderLayer {
    attn: Attention,
    attn_norm: Norm,
    ffn: FeedForward,
    ffn_norm: Norm,
}

struct DecoderLayer {
    self_attn: Attention,
    self_norm: Norm,
    cross_attn: Attention,
    cross_norm: Norm,
    ffn: FeedForward,
    ffn_norm: Norm,
}

/// A loaded Marian model.
pub struct Marian {
    pub config: Config,
    pub generation: Generation,
    /// The output layer, with the final logits bias; its weight is also the embedding table
    /// of encoder and decoder inputs (`PackedLinear::row_into`).
    output: PackedLinear,
    /// `(max_position_embeddings, d)`.
    positions: Vec<f32>,
    embed_scale: f32,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
}

/// Encoder output for a batch of sentences.
///
/// The sentences' states lie one after another, `(tokens, d)`, with no padding: every layer
/// but attention works token by token, and attention reads each sentence's own keys, so a
/// batch of mixed lengths costs what its tokens cost (the sample article: 942 tokens, which
/// padded to the longest would be 13 x 197 = 2561 rows). CTranslate2 does the same.
pub struct Encoded {
    states: Vec<f32>,
    /// First token and length of each sentence.
    spans: Vec<(usize, usize)>,
}

/// The decoder's state for a set of rows, each decoding one sentence (or one beam of one).
///
/// Nothing is copied when rows are picked ([`DecoderState::select`]): each row keeps, for
/// every step so far, which row of that step's keys and values it descends from, and the
/// encoder keys and values are held once for the whole batch, each row reading its own
/// sentence's span. (Gathering the self-attention cache and the encoder side per beam at every
/// step was 4% of a beam-4 run in memory copies alone.)
pub struct DecoderState {
    /// For each decoder layer and each step so far, the keys and values of the rows fed at
    /// that step, `(rows then, 2d)`. Rows dropped since (finished sentences, beams not taken)
    /// stay until the state is dropped: at most what a cache gathered per step would have
    /// held at its largest.
    self_kv: Vec<Vec<Vec<f32>>>,
    /// For each row, for each step so far, its row in that step's keys and values.
    history: Vec<Vec<u32>>,
    /// For each decoder layer, the encoder keys and values of the batch, `(tokens, 2d)`.
    cross_kv: Vec<Vec<f32>>,
    /// For each row, the first token and length of its sentence in `cross_kv`.
    spans: Vec<(usize, usize)>,
    /// Position of the next token fed.
    pos: usize,
}

impl DecoderState {
    /// Keeps the rows `rows` (in that order; a row may be taken more than once).
    pub fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.history.len()) {
            return Err(candle_core::Error::Msg(format!(
                "decoder state: row {bad} of {}",
                self.history.len()
            ))
            .into());
        }
        self.history = rows
            .iter()
            .map(|&r| self.history[r as usize].clone())
            .collect();
        self.spans = rows.iter().map(|&r| self.spans[r as usize]).collect();
        Ok(())
    }

    /// Rows being decoded.
    pub fn rows(&self) -> usize {
        self.history.len()
    }
}

/// The model's tensors by name, each taken out as the layer that uses it is built, so that a
/// weight matrix's original is freed as soon as its packed copy exists (peak: the weights
/// plus the largest matrix, the output layer's, or q/k/v's three fused).
/// Tensors by name: values (f32, row-major) and shape.
type TensorMap = std::collections::HashMap<String, (Vec<f32>, Vec<usize>)>;

struct Weights(TensorMap);

impl Weights {
    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn take_vec(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (v, dims) = self
            .0
            .remove(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("cannot find tensor {name}")))?;
        if dims != shape {
            return Err(candle_core::Error::Msg(format!(
                "{name} has shape {dims:?}, expected {shape:?}"
            ))
            .into());
        }
        Ok(v)
    }

    /// `prefix.weight` `(out, in)` and `prefix.bias` `(out,)`, packed.
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize) -> Result<PackedLinear> {
        self.fused_linear(&[prefix], d_in, d_out)
    }

    /// Linear layers of the same shape that read the same input, as one: their outputs one
    /// after another in each row (one pass over the input and one hand-off to the threads
    /// instead of one per layer).
    fn fused_linear(
        &mut self,
        prefixes: &[&str],
        d_in: usize,
        d_out: usize,
    ) -> Result<PackedLinear> {
        let mut w = Vec::with_capacity(prefixes.len() * d_out * d_in);
        let mut b = Vec::with_capacity(prefixes.len() * d_out);
        for prefix in prefixes {
            w.extend(self.take_vec(&format!("{prefix}.weight"), &[d_out, d_in])?);
            b.extend(self.take_vec(&format!("{prefix}.bias"), &[d_out])?);
        }
        Ok(PackedLinear::from_rows(
            w,
            prefixes.len() * d_out,
            d_in,
            Some(&b),
        )?)
    }

    fn layer_norm(&mut self, prefix: &str, d: usize) -> Result<Norm> {
        Ok(Norm {
            weight: self.take_vec(&format!("{prefix}.weight"), &[d])?,
            bias: self.take_vec(&format!("{prefix}.bias"), &[d])?,
            eps: 1e-5,
        })
    }
}

impl Marian {
    /// Loads a Marian model directory as the hub ships it: `config.json`, optional
    /// `generation_config.json`, and `model.safetensors` or `pytorch_model.bin`.
    pub fn load(dir: &Path) -> Result<Marian> {
        let read_json = |name: &str| -> Result<Option<String>> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(Error::ReadInput { path, source }),
            }
        };
        let invalid = |path: PathBuf, message: String| Error::InvalidModel { path, message };
        let config_path = dir.join("config.json");
        let config: Config = match read_json("config.json")? {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| invalid(config_path.clone(), format!("not a Marian config: {e}")))?,
            None => {
                return Err(invalid(
                    config_path,
                    "missing; a Marian model directory holds config.json, the weights, source.spm, target.spm and vocab.json".into(),
                ))
            }
        };
        if config.normalize_before
            || config.normalize_embedding
            || !config.static_position_embeddings
        {
            return Err(invalid(
                config_path,
                "pre-norm layers, embedding normalisation and learned positions are not supported (OPUS-MT models use none of them)".into(),
            ));
        }
        if config
            .decoder_vocab_size
            .is_some_and(|v| v != config.vocab_size)
            || !config.share_encoder_decoder_embeddings
        {
            return Err(invalid(
                config_path,
                "separate source and target vocabularies are not supported".into(),
            ));
        }
        for (heads, side) in [
            (config.encoder_attention_heads, "encoder"),
            (config.decoder_attention_heads, "decoder"),
        ] {
            if config.d_model == 0 || heads == 0 || !config.d_model.is_multiple_of(heads) {
                return Err(invalid(
                    config_path,
                    format!(
                        "d_model {} does not split into {heads} {side} attention heads",
                        config.d_model
                    ),
                ));
            }
        }
        let gen_file: GenerationFile = match read_json("generation_config.json")? {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| invalid(dir.join("generation_config.json"), e.to_string()))?,
            None => GenerationFile::default(),
        };
        let banned = gen_file
            .bad_words_ids
            .clone()
            .or(config.bad_words_ids.clone())
            .unwrap_or_else(|| vec![vec![config.pad_token_id]])
            .into_iter()
            .filter(|w| w.len() == 1)
            .map(|w| w[0])
            .collect();
        let generation = Generation {
            forced_length: None,
            num_beams: gen_file.num_beams.or(config.num_beams).unwrap_or(4).max(1),
            max_length: gen_file
                .max_length
                .or(config.max_length)
                .unwrap_or(512)
                .min(config.max_position_embeddings)
                .max(2),
            length_penalty: gen_file.length_penalty.unwrap_or(1.0),
            banned,
            // transformers' MarianConfig defaults forced_eos_token_id to 0, which is the eos id
            // of the older OPUS-MT models whose configs lack the key.
            forced_eos: gen_file
                .forced_eos_token_id
                .or(config.forced_eos_token_id)
                .or(Some(config.eos_token_id)),
            eos: config.eos_token_id,
            decoder_start: gen_file
                .decoder_start_token_id
                .or(config.decoder_start_token_id)
                .unwrap_or(config.pad_token_id),
        };

        let device = Device::Cpu;
        let safetensors = dir.join("model.safetensors");
        let weights = if safetensors.exists() {
            read_safetensors(&safetensors, &device)?
        } else {
            let bin = dir.join("pytorch_model.bin");
            if !bin.exists() {
                return Err(invalid(
                    safetensors,
                    "missing (and no pytorch_model.bin either): the model's weights are not there"
                        .into(),
                ));
            }
            let mut weights = std::collections::HashMap::new();
            for (name, t) in candle_core::pickle::read_all(&bin)? {
                let dims = t.dims().to_vec();
                let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                weights.insert(name, (v, dims));
            }
            weights
        };
        Self::build(config, generation, Weights(weights)).map_err(|e| match e {
            Error::Candle(e) => invalid(
                dir.to_path_buf(),
                format!("weights do not fit config.json: {e}"),
            ),
            e => e,
        })
    }

    fn build(config: Config, generation: Generation, mut w: Weights) -> Result<Self> {
        let d = config.d_model;
        let vocab = config.vocab_size;
        let embed_w = if w.has("model.shared.weight") {
            w.take_vec("model.shared.weight", &[vocab, d])?
        } else {
            w.take_vec("model.encoder.embed_tokens.weight", &[vocab, d])?
        };
        let final_bias = if w.has("final_logits_bias") {
            Some(w.take_vec("final_logits_bias", &[1, vocab])?)
        } else {
            None
        };
        let output = PackedLinear::from_rows(embed_w, vocab, d, final_bias.as_deref())?;
        let act = config.activation_function;
        let mut encoder = Vec::with_capacity(config.encoder_layers);
        for i in 0..config.encoder_layers {
            let l = format!("model.encoder.layers.{i}");
            encoder.push(EncoderLayer {
                attn: Attention::load(
                    &mut w,
                    &format!("{l}.self_attn"),
                    d,
                    config.encoder_attention_heads,
                    false,
                )?,
                attn_norm: w.layer_norm(&format!("{l}.self_attn_layer_norm"), d)?,
                ffn: FeedForward::load(&mut w, &l, d, config.encoder_ffn_dim, act)?,
                ffn_norm: w.layer_norm(&format!("{l}.final_layer_norm"), d)?,
            });
        }
        let mut decoder = Vec::with_capacity(config.decoder_layers);
        for i in 0..config.decoder_layers {
            let l = format!("model.decoder.layers.{i}");
            let heads = config.decoder_attention_heads;
            decoder.push(DecoderLayer {
                self_attn: Attention::load(&mut w, &format!("{l}.self_attn"), d, heads, false)?,
                self_norm: w.layer_norm(&format!("{l}.self_attn_layer_norm"), d)?,
                cross_attn: Attention::load(&mut w, &format!("{l}.encoder_attn"), d, heads, true)?,
                cross_norm: w.layer_norm(&format!("{l}.encoder_attn_layer_norm"), d)?,
                ffn: FeedForward::load(&mut w, &l, d, config.decoder_ffn_dim, act)?,
                ffn_norm: w.layer_norm(&format!("{l}.final_layer_norm"), d)?,
            });
        }
        Ok(Marian {
            positions: sinusoidal_positions(config.max_position_embeddings, d),
            embed_scale: if config.scale_embedding {
                (d as f32).sqrt()
            } else {
                1.0
            },
            output,
            encoder,
            decoder,
            generation,
            config,
        })
    }

    /// The embeddings of `ids`, scaled, plus that of the position `pos(i)` of each `ids[i]`,
    /// appended to `x`.
    fn embed(&self, ids: &[u32], pos: impl Fn(usize) -> usize, x: &mut Vec<f32>) -> Result<()> {
        let d = self.config.d_model;
        for (i, &id) in ids.iter().enumerate() {
            if id as usize >= self.config.vocab_size {
                return Err(candle_core::Error::Msg(format!(
                    "token {id} is outside the vocabulary of {}",
                    self.config.vocab_size
                ))
                .into());
            }
            let at = x.len();
            x.resize(at + d, 0.0);
            let row = &mut x[at..];
            self.output.row_into(id as usize, row);
            let pos = &self.positions[pos(i) * d..][..d];
            for (v, p) in row.iter_mut().zip(pos) {
                *v = *v * self.embed_scale + p;
            }
        }
        Ok(())
    }

    /// Runs the encoder on a batch of sentences (ids ending in `</s>`).
    pub fn encode(&self, batch: &[Vec<u32>]) -> Result<Encoded> {
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
        if longest > self.config.max_position_embeddings {
            return Err(Error::ContextOverflow {
                needed: longest,
                context: self.config.max_position_embeddings,
            });
        }
        let d = self.config.d_model;
        let tokens: usize = batch.iter().map(Vec::len).sum();
        let mut x = Vec::with_capacity(tokens * d);
        let mut spans = Vec::with_capacity(batch.len());
        // The span of each token's sentence.
        let mut span_of = Vec::with_capacity(tokens);
        for s in batch {
            let span = (x.len() / d, s.len());
            self.embed(s, |i| i, &mut x)?;
            spans.push(span);
            span_of.extend(std::iter::repeat_n(span, s.len()));
        }
        for l in &self.encoder {
            // Fix: no KV cache in the encoder (candle's appends to one across calls), and
            // each token attends to its own sentence only (candle's has no padding mask).
            let qkv = l.attn.in_proj.apply(&x);
            let h = l.attn.attend(
                &qkv,
                3 * d,
                |r| span_of[r].1,
                |r, j| {
                    let t = (span_of[r].0 + j) * 3 * d;
                    (&qkv[t + d..t + 2 * d], &qkv[t + 2 * d..t + 3 * d])
                },
            );
            l.attn_norm.add_forward(&mut x, &h);
            let h = l.ffn.forward(&x)?;
            l.ffn_norm.add_forward(&mut x, &h);
        }
        Ok(Encoded { states: x, spans })
    }

    /// A decoder state with one row per entry of `rows`, each attending to that encoded
    /// sentence.
    pub fn start(&self, enc: &Encoded, rows: &[u32]) -> Result<DecoderState> {
        let spans = rows
            .iter()
            .map(|&r| {
                enc.spans.get(r as usize).copied().ok_or_else(|| {
                    candle_core::Error::Msg(format!("sentence {r} of {}", enc.spans.len())).into()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| {
                l.cross_attn
                    .kv_proj
                    .as_ref()
                    .expect("cross-attention is loaded with its k/v projection")
                    .apply(&enc.states)
            })
            .collect();
        Ok(DecoderState {
            self_kv: vec![Vec::new(); self.decoder.len()],
            history: vec![Vec::new(); rows.len()],
            cross_kv,
            spans,
            pos: 0,
        })
    }

    /// Feeds one token per row and returns the next-token logits, `(rows, vocab)`.
    pub fn step(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let rows = tokens.len();
        let logits = self.step_logits(state, tokens)?;
        Ok(Tensor::from_vec(
            logits,
            (rows, self.config.vocab_size),
            &Device::Cpu,
        )?)
    }

    /// [`Marian::step`], the logits row after row.
    fn step_logits(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.len() != state.rows() {
            return Err(candle_core::Error::Msg(format!(
                "{} tokens for {} decoder rows",
                tokens.len(),
                state.rows()
            ))
            .into());
        }
        if state.pos >= self.config.max_position_embeddings {
            return Err(Error::ContextOverflow {
                needed: state.pos + 1,
                context: self.config.max_position_embeddings,
            });
        }
        let d = self.config.d_model;
        let mut x = Vec::with_capacity(tokens.len() * d);
        let step = state.pos;
        self.embed(tokens, |_| step, &mut x)?;
        for (r, h) in state.history.iter_mut().enumerate() {
            h.push(r as u32);
        }
        match self.decoder_layers(state, x) {
            Ok(x) => {
                state.pos += 1;
                Ok(self.output.apply(&x))
            }
            Err(e) => {
                // The state as it was before this step, so that it is never left half a
                // step ahead.
                state.self_kv.iter_mut().for_each(|kv| kv.truncate(step));
                state.history.iter_mut().for_each(|h| h.truncate(step));
                Err(e)
            }
        }
    }

    /// The decoder layers on `x` `(rows, d)`, the embedded tokens of step `state.pos`, whose
    /// rows `history` already lists; each layer's keys and values of this step are kept.
    fn decoder_layers(&self, state: &mut DecoderState, mut x: Vec<f32>) -> Result<Vec<f32>> {
        let d = self.config.d_model;
        let len = state.pos + 1;
        for (i, l) in self.decoder.iter().enumerate() {
            let qkv = l.self_attn.in_proj.apply(&x);
            // This step's keys and values, kept for the steps after.
            let kv: Vec<f32> = qkv
                .chunks_exact(3 * d)
                .flat_map(|row| &row[d..])
                .copied()
                .collect();
            state.self_kv[i].push(kv);
            let (past, history) = (&state.self_kv[i], &state.history);
            let h = l.self_attn.attend(
                &qkv,
                3 * d,
                |_| len,
                |r, j| {
                    let at = history[r][j] as usize * 2 * d;
                    (&past[j][at..at + d], &past[j][at + d..at + 2 * d])
                },
            );
            l.self_norm.add_forward(&mut x, &h);
            let q = l.cross_attn.in_proj.apply(&x);
            let (enc, spans) = (&state.cross_kv[i], &state.spans);
            let h = l.cross_attn.attend(
                &q,
                d,
                |r| spans[r].1,
                |r, j| {
                    let at = (spans[r].0 + j) * 2 * d;
                    (&enc[at..at + d], &enc[at + d..at + 2 * d])
                },
            );
            l.cross_norm.add_forward(&mut x, &h);
            let h = l.ffn.forward(&x)?;
            l.ffn_norm.add_forward(&mut x, &h);
        }
        Ok(x)
    }

    /// The longest output for a source of `n` ids (decoder start included): twice the source
    /// plus 10, within the model's limit.
    pub fn max_length_for(&self, n: usize) -> usize {
        match self.generation.forced_length {
            None => (1 + 2 * n + 10).min(self.generation.max_length),
            Some(ForcedLength::Tokens(t)) => 1 + t.max(1),
            Some(ForcedLength::SourceLength) => 1 + n.max(1),
        }
    }

    /// Translates a batch of encoded sentences; each output starts with the decoder start
    /// token and ends with `</s>`. `beams` 1 is greedy. Each sentence's output is what it
    /// gets alone: its length limit is its own, and it attends to its own tokens only.
    pub fn generate(&self, batch: &[Vec<u32>], beams: usize) -> Result<Vec<Vec<u32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self.encode(batch)?;
        self.decode(&enc, batch, beams)
    }

    /// The decoding half of [`Marian::generate`], from the encoder output of `batch`.
    pub fn decode(&self, enc: &Encoded, batch: &[Vec<u32>], beams: usize) -> Result<Vec<Vec<u32>>> {
        if beams <= 1 {
            self.greedy(enc, batch)
        } else {
            self.beam_search(enc, batch, beams)
        }
    }

    /// The longest source a sentence may have so that its whole translation fits the model's
    /// length limit.
    pub fn max_source_tokens(&self) -> usize {
        (self.generation.max_length.saturating_sub(11) / 2)
            .min(self.config.max_position_embeddings)
            .max(8)
    }

    /// Log-probabilities of one row of logits after the reference's processors: banned
    /// tokens, and `</s>` forced at the last position (`cur_len` tokens so far).
    fn scores(&self, s: &mut [f32], cur_len: usize, max_length: usize, log: bool) {
        if log {
            log_softmax(s);
        }
        for &b in &self.generation.banned {
            if let Some(x) = s.get_mut(b as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
        if self.generation.forced_length.is_some() && cur_len < max_length - 1 {
            s[self.generation.eos as usize] = f32::NEG_INFINITY;
        }
        if let Some(eos) = self
            .generation
            .forced_eos
            .or(self.generation.forced_length.map(|_| self.generation.eos))
        {
            if cur_len == max_length - 1 {
                s.iter_mut().for_each(|x| *x = f32::NEG_INFINITY);
                s[eos as usize] = 0.0;
            }
        }
    }

    fn greedy(&self, enc: &Encoded, batch: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        let g = &self.generation;
        let limits: Vec<usize> = batch.iter().map(|s| self.max_length_for(s.len())).collect();
        let mut outs: Vec<Vec<u32>> = vec![vec![g.decoder_start]; batch.len()];
        let mut active: Vec<usize> = (0..batch.len()).collect();
        let rows: Vec<u32> = (0..batch.len() as u32).collect();
        let mut state = self.start(enc, &rows)?;
        while !active.is_empty() {
            let tokens: Vec<u32> = active.iter().map(|&i| *outs[i].last().unwrap()).collect();
            let mut logits = self.step_logits(&mut state, &tokens)?;
            let mut keep = Vec::with_capacity(active.len());
            let mut still = Vec::with_capacity(active.len());
            let vocab = self.config.vocab_size;
            for ((row, &i), s) in active
                .iter()
                .enumerate()
                .zip(logits.chunks_exact_mut(vocab))
            {
                let cur_len = outs[i].len();
                self.scores(s, cur_len, limits[i], false);
                let next = argmax(s);
                outs[i].push(next);
                if next != g.eos && outs[i].len() < limits[i] {
                    keep.push(row as u32);
                    still.push(i);
                }
            }
            if still.len() < active.len() && !still.is_empty() {
                state.select(&keep)?;
            }
            active = still;
        }
        Ok(outs)
    }

    fn beam_search(
        &self,
        enc: &Encoded,
        batch: &[Vec<u32>],
        beams: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let g = &self.generation;
        let mut searches: Vec<BeamSearch> = batch
            .iter()
            .map(|s| {
                BeamSearch::new(
                    g.decoder_start,
                    beams,
                    self.max_length_for(s.len()),
                    g.length_penalty,
                )
            })
            .collect();
        // Every beam of a sentence starts the same, so the first step runs one row each.
        let rows: Vec<u32> = (0..batch.len() as u32).collect();
        let mut state = self.start(enc, &rows)?;
        let mut active: Vec<usize> = (0..batch.len()).collect();
        // The sentence each row of the state decodes.
        let mut row_sentence: Vec<usize> = active.clone();
        while !active.is_empty() {
            let tokens: Vec<u32> = active
                .iter()
                .flat_map(|&i| {
                    searches[i]
                        .running
                        .iter()
                        .map(|h| *h.tokens.last().unwrap())
                })
                .collect();
            let mut logits = self.step_logits(&mut state, &tokens)?;
            // Each row's log-probabilities, rows in parallel (57000 exponentials a row on
            // tc-big).
            let vocab = self.config.vocab_size;
            let limits: Vec<(usize, usize)> = row_sentence
                .iter()
                .map(|&i| {
                    let s = &searches[i];
                    (s.running[0].tokens.len(), s.max_length)
                })
                .collect();
            super::kernel::par_chunks(
                &mut logits,
                vocab,
                || (),
                |_, r, row| self.scores(row, limits[r].0, limits[r].1, true),
            );
            let mut next_rows = Vec::new();
            let mut next_sentence = Vec::new();
            let mut still = Vec::new();
            let mut base = 0usize;
            for &i in &active {
                let search = &mut searches[i];
                let n = search.running.len();
                let scores: Vec<&[f32]> = logits[base * vocab..(base + n) * vocab]
                    .chunks_exact(vocab)
                    .collect();
                let sources = search.advance(&scores, g.eos);
                if !search.done {
                    next_rows.extend(sources.iter().map(|&b| (base + b) as u32));
                    next_sentence.extend(sources.iter().map(|_| i));
                    still.push(i);
                }
                base += n;
            }
            if !still.is_empty() {
                state.select(&next_rows)?;
            }
            row_sentence = next_sentence;
            active = still;
        }
        Ok(searches.into_iter().map(BeamSearch::best).collect())
    }
}

/// A hypothesis of the beam search: its tokens and summed log-probability.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    score: f32,
}

/// The beam search of one sentence, as transformers runs it (`_beam_search`, length penalty
/// on finished hypotheses, `early_stopping=False`).
struct BeamSearch {
    beams: usize,
    max_length: usize,
    length_penalty: f32,
    running: Vec<Hypothesis>,
    /// Best first, at most `beams`; scores length-normalised.
    finished: Vec<Hypothesis>,
    /// Whether a running beam may still beat the worst finished one.
    improvable: bool,
    done: bool,
}

impl BeamSearch {
    fn new(start: u32, beams: usize, max_length: usize, length_penalty: f32) -> Self {
        BeamSearch {
            beams,
            max_length,
            length_penalty,
            running: vec![Hypothesis {
                tokens: vec![start],
                score: 0.0,
            }],
            finished: Vec::new(),
            improvable: true,
            done: false,
        }
    }

    /// One step: `scores[b]` are the processed log-probabilities after running beam `b`.
    /// Returns, for each new running beam, the running beam it continues.
    fn advance<S: AsRef<[f32]>>(&mut self, scores: &[S], eos: u32) -> Vec<usize> {
        let vocab = scores[0].as_ref().len();
        let k = 2 * self.beams;
        let cur_len = self.running[0].tokens.len();
        // The top 2k continuations over all beams, best first (ties: lower beam, then lower
        // token, as torch.topk on the flattened scores). One pass that keeps the 2k best
        // seen so far: nearly every candidate is rejected by one comparison with the worst
        // kept, where collecting and partially sorting all beams x vocab candidates was 6%
        // of a beam-4 run.
        let by_score = |a: &(f32, usize), b: &(f32, usize)| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        };
        let mut cands: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (b, s) in scores.iter().enumerate() {
            let base = self.running[b].score;
            for (t, &lp) in s.as_ref().iter().enumerate() {
                let c = (lp + base, b * vocab + t);
                // Candidates come in increasing index order, so one that only ties the
                // worst kept ranks after it.
                let beats_worst = c.0.partial_cmp(&cands.last().map_or(f32::NAN, |w| w.0))
                    == Some(std::cmp::Ordering::Greater);
                if cands.len() == k && !beats_worst {
                    continue;
                }
                let at = cands.partition_point(|x| by_score(x, &c) == std::cmp::Ordering::Less);
                cands.insert(at, c);
                cands.truncate(k);
            }
        }
        let hits = |token: u32| token == eos || cur_len + 1 >= self.max_length;

        // Finished: those among the top `beams` candidates that end here, length-normalised.
        if self.improvable {
            let norm = (cur_len as f32).powf(self.length_penalty);
            for &(score, flat) in cands.iter().take(self.beams) {
                let (b, t) = (flat / vocab, (flat % vocab) as u32);
                if hits(t) && score > f32::NEG_INFINITY {
                    let mut tokens = self.running[b].tokens.clone();
                    tokens.push(t);
                    self.finished.push(Hypothesis {
                        tokens,
                        score: score / norm,
                    });
                }
            }
            self.finished.sort_by(|a, b| {
                b.score
                    .partial_cmp(&a.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            self.finished.truncate(self.beams);
        }

        // Running: the best `beams` candidates that do not end here.
        let mut running = Vec::with_capacity(self.beams);
        let mut sources = Vec::with_capacity(self.beams);
        for &(score, flat) in &cands {
            let (b, t) = (flat / vocab, (flat % vocab) as u32);
            if hits(t) || score == f32::NEG_INFINITY || running.len() == self.beams {
                continue;
            }
            let mut tokens = self.running[b].tokens.clone();
            tokens.push(t);
            running.push(Hypothesis { tokens, score });
            sources.push(b);
        }
        let all_hit = running.is_empty();
        self.running = running;

        // The early-stop rule: stop once every finished slot is taken and the best running
        // beam, normalised by its length, cannot beat the worst of them.
        if self.improvable && self.finished.len() == self.beams {
            if let Some(best) = self.running.first() {
                let len = (cur_len as f32).powf(self.length_penalty);
                let worst = self.finished.last().map_or(f32::NEG_INFINITY, |h| h.score);
                self.improvable = best.score / len > worst;
            }
        }
        self.done = all_hit || !self.improvable;
        sources
    }

    fn best(self) -> Vec<u32> {
        self.finished
            .into_iter()
            .next()
            .map(|h| h.tokens)
            .unwrap_or_default()
    }
}

/// Index of the largest value, the first of equals (as `torch.argmax`).
fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

/// `(x - max) - ln(sum(exp(x - max)))` in place, in the order torch computes it, so that
/// rounding matches on near-ties.
fn log_softmax(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = xs.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    xs.iter_mut().for_each(|x| *x = (*x - max) - log_sum);
}

/// Reads a safetensors file tensor by tensor straight into f32 buffers. candle's mmapped
/// loader copies every tensor out of the mapping while the mapping stays resident, so the
/// process peaks at twice the weights (1.89 GB for tc-big's 0.94 GB); read this way it peaks
/// at the weights plus one tensor.
fn read_safetensors(path: &Path, device: &Device) -> Result<TensorMap> {
    use std::os::unix::fs::FileExt;
    let err = |source: std::io::Error| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |message: String| Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let file_len = file.metadata().map_err(err)?.len();
    let mut len = [0u8; 8];
    file.read_exact_at(&mut len, 0).map_err(err)?;
    let header_len = u64::from_le_bytes(len);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(invalid("not a safetensors file (bad header length)".into()));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact_at(&mut header, 8).map_err(err)?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let mut tensors = std::collections::HashMap::new();
    for (name, info) in meta.tensors() {
        let (start, end) = info.data_offsets;
        if data_start + end as u64 > file_len {
            return Err(invalid(format!(
                "tensor {name} lies past the end of the file: the download is incomplete; delete it and fetch it again"
            )));
        }
        let offset = data_start + start as u64;
        let bytes = end - start;
        let tensor = match info.dtype {
            safetensors::Dtype::F32 if cfg!(target_endian = "little") => {
                let mut data = vec![0f32; bytes / 4];
                file.read_exact_at(bytemuck::cast_slice_mut(&mut data), offset)
                    .map_err(err)?;
                data
            }
            dtype => {
                let mut data = vec![0u8; bytes];
                file.read_exact_at(&mut data, offset).map_err(err)?;
                let dtype = DType::try_from(dtype)?;
                Tensor::from_raw_buffer(&data, dtype, &info.shape, device)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
            }
        };
        tensors.insert(name, (tensor, info.shape.clone()));
    }
    Ok(tensors)
}

/// Marian's fixed positional embeddings: sines in the first half of each vector, cosines in
/// the second (not interleaved), computed in f64 as the reference does.
fn sinusoidal_positions(n: usize, d: usize) -> Vec<f32> {
    let half = d.div_ceil(2);
    let mut data = vec![0f32; n * d];
    for pos in 0..n {
        for j in 0..d {
            let i = if j < half { 2 * j } else { 2 * (j - half) + 1 };
            let angle = pos as f64 / 10000f64.powf((2 * (i / 2)) as f64 / d as f64);
            data[pos * d + j] = if j < half { angle.sin() } else { angle.cos() } as f32;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny Marian fixture's directory, and a temporary directory holding a copy of its
    /// `files`.
    fn fixture_copy(files: &[&str]) -> (PathBuf, tempfile::TempDir) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-marian");
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
        }
        (fixture, dir)
    }

    #[test]
    fn positions_are_sines_then_cosines() {
        let table = sinusoidal_positions(3, 4);
        let p: Vec<&[f32]> = table.chunks(4).collect();
        assert_eq!(p[0], [0.0, 0.0, 1.0, 1.0]);
        let f = 1.0f64 / 10000f64.powf(0.5);
        let want = [2f64.sin(), (2.0 * f).sin(), 2f64.cos(), (2.0 * f).cos()];
        for (a, b) in p[2].iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{:?}", p[2]);
        }
    }

    #[test]
    fn activations_match_candles() {
        use candle_nn::Activation::*;
        let x: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.37).collect();
        for act in [Relu, Swish, Silu, Gelu, NewGelu] {
            let want = Tensor::new(x.as_slice(), &Device::Cpu)
                .unwrap()
                .apply(&act)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let got = activate(act, x.clone()).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{act:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn heads_that_do_not_split_the_model_width_are_a_clear_error() {
        let (fixture, dir) = fixture_copy(&["generation_config.json", "model.safetensors"]);
        let config = std::fs::read_to_string(fixture.join("config.json")).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
        // d_model is 32.
        config["decoder_attention_heads"] = 5.into();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let err = Marian::load(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("d_model 32 does not split into 5 decoder attention heads"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_safetensors_file_is_named_as_incomplete() {
        let (fixture, dir) = fixture_copy(&["config.json", "generation_config.json"]);
        let weights = std::fs::read(fixture.join("model.safetensors")).unwrap();
        let cut = dir.path().join("model.safetensors");
        std::fs::write(&cut, &weights[..weights.len() / 2]).unwrap();
        let err = Marian::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("download is incomplete"), "{err}");
        assert!(err.contains("model.safetensors"), "{err}");
        std::fs::write(&cut, b"not safetensors at all").unwrap();
        let err = Marian::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
    }

    #[test]
    fn a_forced_length_is_kept_by_greedy_and_beam_search() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-marian");
        let mut m = Marian::load(&dir).unwrap();
        // Short and long sources; the fixture's model often ends at once on its own.
        let batch = vec![
            vec![5, 9, m.generation.eos],
            (10..60).chain([m.generation.eos]).collect(),
        ];
        for (force, want) in [
            (ForcedLength::Tokens(7), [8, 8]),
            (ForcedLength::SourceLength, [4, 52]),
        ] {
            m.generation.forced_length = Some(force);
            for beams in [1, 4] {
                let out = m.generate(&batch, beams).unwrap();
                let lens: Vec<usize> = out.iter().map(Vec::len).collect();
                assert_eq!(lens, want, "{force:?}, beams {beams}");
                for o in &out {
                    assert_eq!(*o.last().unwrap(), m.generation.eos);
                    assert!(!o[..o.len() - 1].contains(&m.generation.eos));
                }
            }
        }
    }

    #[test]
    fn beam_search_keeps_finished_hypotheses_length_normalised() {
        // Two tokens and eos (2); eos is likely at once, so the first step finishes a
        // hypothesis of one token while two others run on.
        let mut s = BeamSearch::new(9, 2, 10, 1.0);
        let lp = |p: [f32; 3]| p.iter().map(|x| x.ln()).collect::<Vec<_>>();
        let src = s.advance(&[lp([0.3, 0.2, 0.5])], 2);
        assert_eq!(src, [0, 0]);
        assert_eq!(s.finished.len(), 1);
        assert_eq!(s.finished[0].tokens, [9, 2]);
        assert_eq!(s.running[0].tokens, [9, 0]);
        // Both running beams end next: divided by its two tokens, [9, 0, 2] (0.3 x 0.98)
        // beats [9, 2] (0.5) and [9, 1, 2] drops out; what still runs is far worse, so the
        // search stops.
        let src = s.advance(&[lp([0.01, 0.01, 0.98]), lp([0.01, 0.01, 0.98])], 2);
        assert_eq!(src, [0, 0]);
        let finished: Vec<_> = s.finished.iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(finished, [vec![9, 0, 2], vec![9, 2]]);
        assert!(s.done);
        assert_eq!(s.best(), [9, 0, 2]);
    }
}
