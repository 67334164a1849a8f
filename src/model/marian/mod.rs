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

mod beam;
mod config;
mod pth;
pub mod tokenizer;
mod weights;

pub use config::{Config, ForcedLength, Generation};

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::path::Path;
use tercuman_kernels::int8::Int8Linear;
use tercuman_kernels::packed::PackedLinear;
use weights::Tensors;

/// How a Marian model's linear layers hold their weights (`--quantize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Quantize {
    /// f32, as trained.
    #[default]
    None,
    /// int8 weight rows, each with its own scale, as CTranslate2's int8: a quarter of the
    /// memory, faster.
    //
    // Each input row is quantized as it comes and the sums are exact in int32
    // (`tercuman_kernels::int8`); the output is close to f32's, not identical.
    Int8,
}

/// A linear layer, `x @ W^T + b`, its weights as `Quantize` says.
enum Linear {
    F32(PackedLinear),
    Int8(Int8Linear),
}

impl Linear {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        match self {
            Linear::F32(l) => l.apply(x),
            Linear::Int8(l) => l.apply(x),
        }
    }

    /// Row `id` of `W` (the embedding of token `id`, for the output layer) into `dst`.
    fn row_into(&self, id: usize, dst: &mut [f32]) {
        match self {
            Linear::F32(l) => l.row_into(id, dst),
            Linear::Int8(l) => l.row_into(id, dst),
        }
    }
}

/// Multi-head attention's projections.
struct Attention {
    /// Of the layer's input: q, k and v as one product, `(3d, d)`, for self-attention; q
    /// alone, `(d, d)`, for cross-attention.
    in_proj: Linear,
    /// Cross-attention only: k and v of the encoder states as one product, `(2d, d)`.
    kv_proj: Option<Linear>,
    o: Linear,
    heads: usize,
    head_dim: usize,
    scale: f32,
}

impl Attention {
    fn load(w: &mut Tensors, prefix: &str, d: usize, heads: usize, cross: bool) -> Result<Self> {
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
        let a = tercuman_kernels::attention::attend(
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
    fc1: Linear,
    fc2: Linear,
    act: candle_nn::Activation,
}

impl FeedForward {
    fn load(
        w: &mut Tensors,
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
    /// of encoder and decoder inputs (`Linear::row_into`).
    output: Linear,
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

impl Marian {
    /// Loads a Marian model directory as the hub ships it: `config.json`, optional
    /// `generation_config.json`, and `model.safetensors` or `pytorch_model.bin`.
    pub fn load(dir: &Path) -> Result<Marian> {
        Self::load_with(dir, Quantize::None)
    }

    /// [`Marian::load`], the linear layers' weights held as `quantize` says (the output
    /// layer, and so the embedding table it shares, included).
    pub fn load_with(dir: &Path, quantize: Quantize) -> Result<Marian> {
        let (config, generation) = config::read(dir)?;
        let tensors = weights::read(dir, quantize)?;
        Self::build(config, generation, tensors).map_err(|e| match e {
            Error::Candle(e) => Error::InvalidModel {
                path: dir.to_path_buf(),
                message: format!("weights do not fit config.json: {e}"),
            },
            e => e,
        })
    }

    fn build(config: Config, generation: Generation, mut w: Tensors) -> Result<Self> {
        let d = config.d_model;
        let vocab = config.vocab_size;
        let embed = if w.has("model.shared.weight") {
            "model.shared.weight"
        } else {
            "model.encoder.embed_tokens.weight"
        };
        let final_bias = if w.has("final_logits_bias") {
            Some(w.take_vec("final_logits_bias", &[1, vocab])?)
        } else {
            None
        };
        let output = w.matrix(
            std::iter::once(embed.to_string()),
            vocab,
            d,
            final_bias.as_deref(),
        )?;
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
        Ok(self
            .decode_nbest(enc, batch, beams)?
            .into_iter()
            .map(|mut n| n.swap_remove(0))
            .collect())
    }

    /// Each sentence's candidate translations, best first: the beam search's finished
    /// hypotheses (up to `beams`), or the one greedy output. The first is what
    /// [`Marian::decode`] returns; the others are there for a caller that rejects it.
    pub fn decode_nbest(
        &self,
        enc: &Encoded,
        batch: &[Vec<u32>],
        beams: usize,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut out = if beams <= 1 {
            self.greedy(enc, batch)?
                .into_iter()
                .map(|o| vec![o])
                .collect()
        } else {
            self.beam_search(enc, batch, beams)?
        };
        for n in &mut out {
            if n.is_empty() {
                n.push(Vec::new());
            }
        }
        Ok(out)
    }

    /// The longest source a sentence may have so that its whole translation fits the model's
    /// length limit.
    pub fn max_source_tokens(&self) -> usize {
        (self.generation.max_length.saturating_sub(11) / 2)
            .min(self.config.max_position_embeddings)
            .max(8)
    }

    /// Log-probabilities of one row of logits after the reference's processors: banned
    /// tokens, `</s>` forced at the last position (`cur_len` tokens so far), and, where the
    /// generation config asks, a second log-softmax over what is left (`log` only: greedy's
    /// choice does not change with it).
    fn scores(&self, s: &mut [f32], cur_len: usize, max_length: usize, log: bool) {
        if log {
            beam::log_softmax(s);
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
        if log && self.generation.renormalize {
            beam::log_softmax(s);
        }
    }
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
    use std::path::PathBuf;

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
    fn f16_weights_are_the_f32_weights_rounded_and_read_exactly() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut f32 = weights::read(&fixtures.join("tiny-marian"), Quantize::None).unwrap();
        let mut f16 = weights::read(&fixtures.join("tiny-marian-f16"), Quantize::None).unwrap();
        let shapes = f32.shapes();
        assert_eq!(shapes, f16.shapes());
        let mut rounded = 0;
        for (name, dims) in &shapes {
            let v32 = f32.take_vec(name, dims).unwrap();
            let v16 = f16.take_vec(name, dims).unwrap();
            assert_eq!(v32.len(), dims.iter().product::<usize>(), "{name}");
            for (a, b) in v32.iter().zip(&v16) {
                assert_eq!(half::f16::from_f32(*a).to_f32(), *b, "{name}");
                rounded += usize::from(a != b);
            }
        }
        assert!(
            rounded > 10_000,
            "only {rounded} values changed by rounding"
        );
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
}
