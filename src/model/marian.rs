//! Marian (OPUS-MT) translation models: the encoder-decoder network and its decoding, greedy
//! and beam search, over batches of sentences.
//!
//! Written after candle-transformers 0.11.1's `marian` module, with what that module gets wrong
//! for this use fixed (each fix marked "Fix:" below):
//! - its encoder self-attention appends to a KV cache, so a second input attends to the first
//!   unless the cache is reset: here the encoder has no cache at all;
//! - it has no padding mask, so a batch of sentences of different lengths is wrong: here the
//!   encoder's self-attention and the decoder's cross-attention mask the padding;
//! - nothing stops it generating `<pad>`: here the generation config's `bad_words_ids` (pad, in
//!   every OPUS-MT model) are banned, as the reference `generate` does;
//! - it has no beam search and no way to reorder its cache for one: here the decoder state is a
//!   set of rows that [`DecoderState::select`] picks, copies and drops.
//!
//! Decoding follows transformers' `generate` for these models step for step (log-softmax,
//! banned tokens, `</s>` forced at the last allowed position, the beam search's top-2k
//! candidates, length-normalised finished hypotheses and its early-stop rule), so that the
//! output matches the reference ids exactly (tests/marian_parity.rs).

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{LayerNorm, Module};

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

struct Attention {
    q: PackedLinear,
    k: PackedLinear,
    v: PackedLinear,
    o: PackedLinear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn load(w: &mut Weights, prefix: &str, d: usize, heads: usize) -> Result<Self> {
        let mut lin = |name: &str| w.linear(&format!("{prefix}.{name}"), d, d);
        Ok(Attention {
            q: lin("q_proj")?,
            k: lin("k_proj")?,
            v: lin("v_proj")?,
            o: lin("out_proj")?,
            heads,
            head_dim: d / heads,
            scale: ((d / heads) as f64).powf(-0.5),
        })
    }

    /// `(b, t, d)` → `(b, heads, t, head_dim)`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// Self-attention over unpadded tokens `(tokens, d)` → `(tokens, d)`: the projections run
    /// on the tokens only, attention on them padded.
    fn attend_unpadded(&self, x: &Tensor, padding: &Padding, mask: &Tensor) -> Result<Tensor> {
        let q = self.split(&padding.pad(&(self.q.forward(x)? * self.scale)?)?)?;
        let k = self.split(&padding.pad(&self.k.forward(x)?)?)?;
        let v = self.split(&padding.pad(&self.v.forward(x)?)?)?;
        let out = self.heads_attend(&q, &k, &v, Some(mask))?;
        Ok(self.o.forward(&padding.unpad(&out)?)?)
    }

    /// Scaled queries `(b, h, tq, hd)` against keys and values `(b, h, tk, hd)`, `mask` added
    /// to the scores (`-inf` where a query may not look); the heads merged, `(b, tq, h * hd)`.
    fn heads_attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let (b, _, t, _) = probs.dims4()?;
        Ok(probs
            .matmul(v)?
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?)
    }

    /// Attends from one position per row, `x` `(rows, 1, d)`, to keys and values held once
    /// per sentence, `(rows / per, h, s, hd)`, rows `i * per..` reading sentence `i`: the rows
    /// of a sentence are stacked as the query rows of one product, so the encoder side is not
    /// copied once per beam (0.5 GB at beam 4 on tc-big with 13 sentences).
    fn attend_grouped(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        per: usize,
    ) -> Result<Tensor> {
        let (rows, t, d) = x.dims3()?;
        let sentences = rows / per;
        let q = (self.q.forward(x)? * self.scale)?
            .reshape((sentences, per * t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let out = self
            .heads_attend(&q, k, v, Some(mask))?
            .reshape((rows, t, d))?;
        Ok(self.o.forward(&out)?)
    }

    /// Keys and values of `x`, split into heads.
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.k.forward(x)?)?,
            self.split(&self.v.forward(x)?)?,
        ))
    }

    /// Attends from `x` `(b, tq, d)` to keys and values `(b, h, tk, hd)`; `mask` is added to
    /// the scores (`-inf` where a query may not look).
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.split(&(self.q.forward(x)? * self.scale)?)?;
        let out = self.heads_attend(&q, k, v, mask)?;
        Ok(self.o.forward(&out)?)
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

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.fc2.forward(&self.fc1.forward(x)?.apply(&self.act)?)?)
    }
}

struct EncoderLayer {
    attn: Attention,
    attn_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
}

struct DecoderLayer {
    self_attn: Attention,
    self_norm: LayerNorm,
    cross_attn: Attention,
    cross_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
}

/// A loaded Marian model.
pub struct Marian {
    pub config: Config,
    pub generation: Generation,
    /// The output layer; its weight is also the embedding table of encoder and decoder
    /// inputs (`PackedLinear::rows`).
    output: PackedLinear,
    final_bias: Tensor,
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    device: Device,
}

/// Encoder output for a batch of sentences.
pub struct Encoded {
    /// The sentences' tokens one after another, `(tokens, d)`: no padding.
    tokens: Tensor,
    padding: Padding,
    /// `(b, 1, 1, s)`: 0 for tokens, `-inf` for padding.
    mask: Tensor,
}

/// Where the tokens of a batch of sentences sit once padded to the longest, `(b, s)`.
///
/// The encoder keeps its states unpadded, `(tokens, d)`, and pads them only for attention:
/// every other layer works position by position, and a batch of sentences of mixed lengths is
/// mostly padding (the sample article: 942 tokens padded to 13 x 197 = 2561 rows). Each token's
/// values are the same either way. (CTranslate2 does the same.)
struct Padding {
    batch: usize,
    len: usize,
    /// For each padded position: its token's row, or the number of tokens (a zero row).
    gather: Tensor,
    /// For each token: its padded position.
    scatter: Tensor,
}

impl Padding {
    fn new(lengths: &[usize], len: usize, device: &Device) -> Result<Self> {
        let tokens: usize = lengths.iter().sum();
        let mut gather = Vec::with_capacity(lengths.len() * len);
        let mut scatter = Vec::with_capacity(tokens);
        let mut next = 0u32;
        for (b, &n) in lengths.iter().enumerate() {
            for i in 0..len {
                if i < n {
                    gather.push(next);
                    scatter.push((b * len + i) as u32);
                    next += 1;
                } else {
                    gather.push(tokens as u32);
                }
            }
        }
        Ok(Self {
            batch: lengths.len(),
            len,
            gather: Tensor::new(gather, device)?,
            scatter: Tensor::new(scatter, device)?,
        })
    }

    /// `(tokens, d)` → `(b, s, d)`, zeros at padding.
    fn pad(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(1)?;
        let zero = Tensor::zeros((1, d), x.dtype(), x.device())?;
        Ok(Tensor::cat(&[x, &zero], 0)?
            .index_select(&self.gather, 0)?
            .reshape((self.batch, self.len, d))?)
    }

    /// `(b, s, d)` → `(tokens, d)`.
    fn unpad(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(2)?;
        Ok(x.reshape((self.batch * self.len, d))?
            .index_select(&self.scatter, 0)?)
    }
}

/// The decoder's state for a set of rows, each decoding one sentence (or one beam of one):
/// the self-attention cache of every layer and the encoder keys and values it attends to.
pub struct DecoderState {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    /// Encoder keys and values of each sentence decoded, `(sentences, h, s, hd)`, once per
    /// sentence however many rows (beams) decode it.
    cross_kv: Vec<(Tensor, Tensor)>,
    /// `(sentences, 1, 1, s)`.
    mask: Tensor,
    /// Rows per sentence: rows `i * n .. (i + 1) * n` decode sentence `i`.
    rows_per_sentence: usize,
    /// Position of the next token fed.
    pos: usize,
}

impl DecoderState {
    /// Keeps the rows `rows` (in that order; a row may be taken more than once).
    pub fn select(&mut self, rows: &[u32]) -> Result<()> {
        self.select_rows(rows, false)
    }

    /// As [`DecoderState::select`]; `same_sources` says that every new row attends to the same
    /// encoded sentence as the row it replaces (beams reordered within their sentences), so
    /// the encoder keys and values, the largest part of the state, stay as they are.
    pub fn select_rows(&mut self, rows: &[u32], same_sources: bool) -> Result<()> {
        let idx = Tensor::new(rows, self.mask.device())?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        for kv in self.self_kv.iter_mut().flatten() {
            *kv = (pick(&kv.0)?, pick(&kv.1)?);
        }
        if same_sources {
            return Ok(());
        }
        // The sentence of each new row, and whether they come in equal runs of rows.
        let sentence: Vec<u32> = rows
            .iter()
            .map(|&r| r / self.rows_per_sentence as u32)
            .collect();
        let run = sentence
            .iter()
            .take_while(|&&s| Some(&s) == sentence.first())
            .count()
            .max(1);
        let grouped = sentence.len().is_multiple_of(run)
            && sentence.chunks(run).all(|c| c.iter().all(|&s| s == c[0]));
        let (keep, per): (Vec<u32>, usize) = if grouped {
            (sentence.chunks(run).map(|c| c[0]).collect(), run)
        } else {
            // Rows in no regular order: one copy of the sentence's keys and values per row.
            (sentence, 1)
        };
        let idx = Tensor::new(keep, self.mask.device())?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        for kv in self.cross_kv.iter_mut() {
            *kv = (pick(&kv.0)?, pick(&kv.1)?);
        }
        self.mask = pick(&self.mask)?;
        self.rows_per_sentence = per;
        Ok(())
    }
}

/// The model's tensors by name, each taken out as the layer that uses it is built, so that a
/// weight matrix's original is freed as soon as its packed copy exists (peak: the weights
/// plus one matrix).
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

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let v = self.take_vec(name, shape)?;
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    }

    /// `prefix.weight` `(out, in)` and `prefix.bias` `(out,)`, packed.
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize) -> Result<PackedLinear> {
        let w = self.take_vec(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let b = self.take_vec(&format!("{prefix}.bias"), &[d_out])?;
        Ok(PackedLinear::from_rows(w, d_out, d_in, Some(&b))?)
    }

    fn layer_norm(&mut self, prefix: &str, d: usize) -> Result<LayerNorm> {
        let w = self.take(&format!("{prefix}.weight"), &[d])?;
        let b = self.take(&format!("{prefix}.bias"), &[d])?;
        Ok(LayerNorm::new(w, b, 1e-5))
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
        Self::build(config, generation, Weights(weights), device).map_err(|e| match e {
            Error::Candle(e) => invalid(
                dir.to_path_buf(),
                format!("weights do not fit config.json: {e}"),
            ),
            e => e,
        })
    }

    fn build(
        config: Config,
        generation: Generation,
        mut w: Weights,
        device: Device,
    ) -> Result<Self> {
        let d = config.d_model;
        let vocab = config.vocab_size;
        let embed_w = if w.has("model.shared.weight") {
            w.take_vec("model.shared.weight", &[vocab, d])?
        } else {
            w.take_vec("model.encoder.embed_tokens.weight", &[vocab, d])?
        };
        let output = PackedLinear::from_rows(embed_w, vocab, d, None)?;
        let final_bias = if w.has("final_logits_bias") {
            w.take("final_logits_bias", &[1, vocab])?.reshape(vocab)?
        } else {
            Tensor::zeros(vocab, DType::F32, &device)?
        };
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
                self_attn: Attention::load(&mut w, &format!("{l}.self_attn"), d, heads)?,
                self_norm: w.layer_norm(&format!("{l}.self_attn_layer_norm"), d)?,
                cross_attn: Attention::load(&mut w, &format!("{l}.encoder_attn"), d, heads)?,
                cross_norm: w.layer_norm(&format!("{l}.encoder_attn_layer_norm"), d)?,
                ffn: FeedForward::load(&mut w, &l, d, config.decoder_ffn_dim, act)?,
                ffn_norm: w.layer_norm(&format!("{l}.final_layer_norm"), d)?,
            });
        }
        Ok(Marian {
            positions: sinusoidal_positions(config.max_position_embeddings, d, &device)?,
            embed_scale: if config.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            output,
            final_bias,
            encoder,
            decoder,
            generation,
            config,
            device,
        })
    }

    fn embed(&self, ids: &Tensor, start: usize) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let x = (self.output.rows(ids)? * self.embed_scale)?;
        Ok(x.broadcast_add(&self.positions.narrow(0, start, t)?)?)
    }

    /// Runs the encoder on a batch of sentences (ids ending in `</s>`), padded on the right.
    pub fn encode(&self, batch: &[Vec<u32>]) -> Result<Encoded> {
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
        if longest > self.config.max_position_embeddings {
            return Err(Error::ContextOverflow {
                needed: longest,
                context: self.config.max_position_embeddings,
            });
        }
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for s in batch {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(
                self.config.pad_token_id,
                longest - s.len(),
            ));
            mask.extend(std::iter::repeat_n(0f32, s.len()));
            mask.extend(std::iter::repeat_n(f32::NEG_INFINITY, longest - s.len()));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), longest), &self.device)?;
        // Fix: candle's encoder has no padding mask; every key position is masked here where
        // it is padding, so a sentence reads the same alone or padded in a batch.
        let mask = Tensor::from_vec(mask, (batch.len(), 1, 1, longest), &self.device)?;
        let lengths: Vec<usize> = batch.iter().map(Vec::len).collect();
        let padding = Padding::new(&lengths, longest, &self.device)?;
        let mut x = padding.unpad(&self.embed(&ids, 0)?)?;
        for l in &self.encoder {
            // Fix: no KV cache in the encoder (candle's appends to one across calls).
            let h = (&x + l.attn.attend_unpadded(&x, &padding, &mask)?)?;
            x = l.attn_norm.forward(&h)?;
            let h = (&x + l.ffn.forward(&x)?)?;
            x = l.ffn_norm.forward(&h)?;
        }
        Ok(Encoded {
            tokens: x,
            padding,
            mask,
        })
    }

    /// A decoder state with one row per entry of `rows`, each attending to that encoded
    /// sentence.
    pub fn start(&self, enc: &Encoded, rows: &[u32]) -> Result<DecoderState> {
        let idx = Tensor::new(rows, &self.device)?;
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| {
                let a = &l.cross_attn;
                let kv = |lin: &PackedLinear| -> Result<Tensor> {
                    let padded = enc.padding.pad(&lin.forward(&enc.tokens)?)?;
                    Ok(a.split(&padded)?.index_select(&idx, 0)?)
                };
                Ok((kv(&a.k)?, kv(&a.v)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            self_kv: vec![None; self.decoder.len()],
            cross_kv,
            mask: enc.mask.index_select(&idx, 0)?,
            rows_per_sentence: 1,
            pos: 0,
        })
    }

    /// Feeds one token per row and returns the next-token logits, `(rows, vocab)`.
    pub fn step(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_vec(tokens.to_vec(), (tokens.len(), 1), &self.device)?;
        let mut x = self.embed(&ids, state.pos)?;
        for (i, l) in self.decoder.iter().enumerate() {
            let (k, v) = l.self_attn.keys_values(&x)?;
            let (k, v) = match state.self_kv[i].take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            let h = (&x + l.self_attn.attend(&x, &k, &v, None)?)?;
            state.self_kv[i] = Some((k, v));
            x = l.self_norm.forward(&h)?;
            let (ck, cv) = &state.cross_kv[i];
            let h = (&x
                + l.cross_attn.attend_grouped(
                    &x,
                    ck,
                    cv,
                    &state.mask,
                    state.rows_per_sentence,
                )?)?;
            x = l.cross_norm.forward(&h)?;
            let h = (&x + l.ffn.forward(&x)?)?;
            x = l.ffn_norm.forward(&h)?;
        }
        state.pos += 1;
        let logits = self.output.forward(&x.squeeze(1)?)?;
        Ok(logits.broadcast_add(&self.final_bias)?)
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
    /// gets alone: its length limit is its own, and padding is masked.
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
    fn scores(&self, logits: &[f32], cur_len: usize, max_length: usize, log: bool) -> Vec<f32> {
        let mut s = if log {
            log_softmax(logits)
        } else {
            logits.to_vec()
        };
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
        s
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
            let logits = self.step(&mut state, &tokens)?.to_vec2::<f32>()?;
            let mut keep = Vec::with_capacity(active.len());
            let mut still = Vec::with_capacity(active.len());
            for (row, &i) in active.iter().enumerate() {
                let cur_len = outs[i].len();
                let s = self.scores(&logits[row], cur_len, limits[i], false);
                let next = argmax(&s);
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
            let logits = self.step(&mut state, &tokens)?.to_vec2::<f32>()?;
            let mut next_rows = Vec::new();
            let mut next_sentence = Vec::new();
            let mut still = Vec::new();
            let mut base = 0usize;
            for &i in &active {
                let search = &mut searches[i];
                let n = search.running.len();
                let cur_len = search.running[0].tokens.len();
                let scores: Vec<Vec<f32>> = (0..n)
                    .map(|b| self.scores(&logits[base + b], cur_len, search.max_length, true))
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
                // Beams move within their sentence at almost every step; the encoder side
                // only changes when the first step fans out or a sentence finishes.
                state.select_rows(&next_rows, next_sentence == row_sentence)?;
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
    fn advance(&mut self, scores: &[Vec<f32>], eos: u32) -> Vec<usize> {
        let vocab = scores[0].len();
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
            for (t, &lp) in s.iter().enumerate() {
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

/// `(x - max) - ln(sum(exp(x - max)))`, in the order torch computes it, so that rounding
/// matches on near-ties.
fn log_softmax(xs: &[f32]) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = xs.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    xs.iter().map(|&x| (x - max) - log_sum).collect()
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
fn sinusoidal_positions(n: usize, d: usize, device: &Device) -> Result<Tensor> {
    let half = d.div_ceil(2);
    let mut data = vec![0f32; n * d];
    for pos in 0..n {
        for j in 0..d {
            let i = if j < half { 2 * j } else { 2 * (j - half) + 1 };
            let angle = pos as f64 / 10000f64.powf((2 * (i / 2)) as f64 / d as f64);
            data[pos * d + j] = if j < half { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Ok(Tensor::from_vec(data, (n, d), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_sines_then_cosines() {
        let p = sinusoidal_positions(3, 4, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(p[0], [0.0, 0.0, 1.0, 1.0]);
        let f = 1.0f64 / 10000f64.powf(0.5);
        let want = [2f64.sin(), (2.0 * f).sin(), 2f64.cos(), (2.0 * f).cos()];
        for (a, b) in p[2].iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{:?}", p[2]);
        }
    }

    #[test]
    fn a_truncated_safetensors_file_is_named_as_incomplete() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-marian");
        let dir = tempfile::tempdir().unwrap();
        for f in ["config.json", "generation_config.json"] {
            std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
        }
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
