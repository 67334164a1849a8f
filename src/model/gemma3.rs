//! Gemma 3 on GGUF weights: a copy of candle-transformers 0.11.1
//! `models::quantized_gemma3`, vendored because the shipped file is wrong in ways that change
//! the output or cost gigabytes. Each fix is marked `FIX:` where it is made:
//!
//! 1. The MLP used SiLU; Gemma uses GELU. With SiLU the first generated token's top-5 are wrong
//!    (The 20.3, We 18.2, ... against llama.cpp's President 15.37, The 14.91, ...). Gemma's
//!    config names the tanh approximation; the exact (erf) form is used here. In exact
//!    arithmetic the two move these logits by under 0.01; the larger differences seen against
//!    llama.cpp come from both engines rounding activations to 8 bits before each quantized
//!    matmul (see `tests/parity.rs`). Guarded by `tests/parity.rs`.
//! 2. Every layer built its own RoPE table for 131072 positions (18 layers x 134 MB on the
//!    270M model). Here one table per rope base is shared by all layers and sized to the
//!    positions actually used.
//! 3. The prompt mask for `index_pos > 0` hid every cached position (it prepended zeros, which
//!    the mask treats as "masked"), so a prompt fed in two parts attended to nothing before it.
//! 4. The sliding window was off by one (a query saw `window + 1` keys) and not applied at all
//!    while decoding one token at a time. llama.cpp and transformers let position `p` see key
//!    `j` when `p - j < window`; both paths now do.
//! 5. The token embedding table was dequantized to f32 at load (671 MB on the 270M model, and
//!    a second copy of the tied output weights); it now stays quantized and shared.

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

/// Gemma 3 alternates five sliding-window layers with one global layer when the GGUF does not
/// say otherwise (`gemma3.attention.sliding_window_type`; llama.cpp uses the same default).
const DEFAULT_SLIDING_WINDOW_TYPE: usize = 6;
/// Rope bases from the Gemma 3 config (`rope_theta`, `rope_local_base_freq`).
const DEFAULT_ROPE_FREQUENCY: f32 = 1_000_000.;
const DEFAULT_ROPE_FREQUENCY_SLIDING: f32 = 10_000.;

struct Mlp {
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // FIX 1: GELU, not SiLU.
        let gate = self.gate.forward(xs)?.gelu_erf()?;
        let up = self.up.forward(xs)?;
        self.down.forward(&(gate * up)?)
    }
}

/// cos/sin tables for one rope base, grown on demand to the positions in use (FIX 2).
struct Rope {
    base: f32,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(base: f32, head_dim: usize, device: &Device) -> Result<Self> {
        let empty = Tensor::zeros((0, head_dim / 2), DType::F32, device)?;
        Ok(Self {
            base,
            head_dim,
            cos: empty.clone(),
            sin: empty,
        })
    }

    fn ensure(&mut self, positions: usize) -> Result<()> {
        if self.cos.dim(0)? >= positions {
            return Ok(());
        }
        let len = positions.next_power_of_two().max(512);
        let device = self.cos.device().clone();
        let inv_freq: Vec<f32> = (0..self.head_dim)
            .step_by(2)
            .map(|i| 1f32 / self.base.powf(i as f32 / self.head_dim as f32))
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, self.head_dim / 2), &device)?;
        let t = Tensor::arange(0u32, len as u32, &device)?
            .to_dtype(DType::F32)?
            .reshape((len, 1))?;
        let freqs = t.matmul(&inv_freq)?;
        self.cos = freqs.cos()?;
        self.sin = freqs.sin()?;
        Ok(())
    }

    fn apply(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let seq_len = x.dim(2)?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
    }
}

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    mlp: Mlp,
    sliding: bool,
    kv_cache: Option<(Tensor, Tensor)>,
}

/// Model dimensions read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub embedding_length: usize,
    pub sliding_window: usize,
    pub context_length: usize,
}

pub struct Model {
    embed: QMatMul,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    rope_global: Rope,
    rope_local: Rope,
    config: Config,
    /// Positions already in the KV cache.
    cached: usize,
}

impl Model {
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let md = |key: &str| -> Result<&gguf_file::Value> {
            ct.metadata
                .get(&format!("gemma3.{key}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("missing metadata gemma3.{key}")))
        };
        let n_head = md("attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("attention.head_count_kv")?.to_u32()? as usize;
        let block_count = md("block_count")?.to_u32()? as usize;
        let embedding_length = md("embedding_length")?.to_u32()? as usize;
        let head_dim = md("attention.key_length")?.to_u32()? as usize;
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let sliding_window = md("attention.sliding_window")?.to_u32()? as usize;
        let context_length = md("context_length")?.to_u32()? as usize;
        let sliding_type = md("attention.sliding_window_type")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(DEFAULT_SLIDING_WINDOW_TYPE);
        let rope_base = md("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(DEFAULT_ROPE_FREQUENCY);
        let rope_local_base = md("rope.local_freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(DEFAULT_ROPE_FREQUENCY_SLIDING);

        let tensor = |r: &mut R, name: &str| ct.tensor(r, name, device);
        let norm = |t: QTensor| RmsNorm::from_qtensor(t, eps);

        // FIX 5: the embedding table stays quantized and rows are dequantized as they are
        // looked up; candle dequantized all of it to f32 (671 MB for a 262144 x 640 table).
        let embed = QMatMul::from_qtensor(tensor(reader, "token_embd.weight")?)?;
        let output = match tensor(reader, "output.weight") {
            Ok(t) => QMatMul::from_qtensor(t)?,
            // Gemma ties the output projection to the embeddings: one copy serves both.
            Err(_) => embed.clone(),
        };
        let final_norm = norm(tensor(reader, "output_norm.weight")?)?;

        let mut layers = Vec::with_capacity(block_count);
        for i in 0..block_count {
            let mut t = |name: &str| {
                super::requant::with_fast_kernel(tensor(reader, &format!("blk.{i}.{name}.weight"))?)
            };
            let layer = Layer {
                wq: QMatMul::from_qtensor(t("attn_q")?)?,
                wk: QMatMul::from_qtensor(t("attn_k")?)?,
                wv: QMatMul::from_qtensor(t("attn_v")?)?,
                wo: QMatMul::from_qtensor(t("attn_output")?)?,
                q_norm: norm(t("attn_q_norm")?)?,
                k_norm: norm(t("attn_k_norm")?)?,
                attn_norm: norm(t("attn_norm")?)?,
                post_attn_norm: norm(t("post_attention_norm")?)?,
                ffn_norm: norm(t("ffn_norm")?)?,
                post_ffn_norm: norm(t("post_ffw_norm")?)?,
                mlp: Mlp {
                    gate: QMatMul::from_qtensor(t("ffn_gate")?)?,
                    up: QMatMul::from_qtensor(t("ffn_up")?)?,
                    down: QMatMul::from_qtensor(t("ffn_down")?)?,
                },
                sliding: (i + 1) % sliding_type != 0,
                kv_cache: None,
            };
            layers.push(layer);
        }

        Ok(Self {
            embed,
            layers,
            norm: final_norm,
            output,
            rope_global: Rope::new(rope_base, head_dim, device)?,
            rope_local: Rope::new(rope_local_base, head_dim, device)?,
            config: Config {
                n_head,
                n_kv_head,
                head_dim,
                embedding_length,
                sliding_window,
                context_length,
            },
            cached: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clear_kv_cache(&mut self) {
        for layer in &mut self.layers {
            layer.kv_cache = None;
        }
        self.cached = 0;
    }

    /// Keeps the first `len` cached positions and drops the rest, so that a prompt sharing a
    /// prefix with the previous one (the few-shot examples) runs only its new tokens.
    pub fn truncate_kv_cache(&mut self, len: usize) -> Result<()> {
        if len >= self.cached {
            return Ok(());
        }
        for layer in &mut self.layers {
            if let Some((k, v)) = &layer.kv_cache {
                layer.kv_cache = if len == 0 {
                    None
                } else {
                    Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?))
                };
            }
        }
        self.cached = len;
        Ok(())
    }

    /// Runs `tokens` (one sequence) at positions `index_pos..`, appending to the KV cache, and
    /// returns the logits of the last position, shape `(vocab,)`.
    pub fn forward(&mut self, tokens: &[u32], index_pos: usize) -> Result<Tensor> {
        if index_pos != self.cached {
            candle_core::bail!(
                "gemma3: tokens at position {index_pos} but {} positions are cached",
                self.cached
            );
        }
        let device = self.rope_global.cos.device().clone();
        let seq_len = tokens.len();
        let kv_len = index_pos + seq_len;
        if kv_len > self.config.context_length {
            candle_core::bail!(
                "gemma3: {kv_len} positions exceed the model's context of {}",
                self.config.context_length
            );
        }
        self.rope_global.ensure(kv_len)?;
        self.rope_local.ensure(kv_len)?;

        let x = Tensor::new(tokens, &device)?.unsqueeze(0)?;
        let mut h = (self.embed.embedding(&x)? * (self.config.embedding_length as f64).sqrt())?;

        let (mask_global, mask_local) = if seq_len > 1 {
            (
                Some(mask(seq_len, index_pos, None, &device)?),
                Some(mask(
                    seq_len,
                    index_pos,
                    Some(self.config.sliding_window),
                    &device,
                )?),
            )
        } else {
            (None, None)
        };

        let c = &self.config;
        for layer in &mut self.layers {
            let (rope, mask) = if layer.sliding {
                (&self.rope_local, mask_local.as_ref())
            } else {
                (&self.rope_global, mask_global.as_ref())
            };
            let residual = &h;
            let x = layer.attn_norm.forward(&h)?;
            let x = layer.attention(&x, mask, index_pos, rope, c)?;
            let x = (layer.post_attn_norm.forward(&x)? + residual)?;
            let residual = &x;
            let y = layer.ffn_norm.forward(&x)?;
            let y = layer.mlp.forward(&y)?;
            h = (layer.post_ffn_norm.forward(&y)? + residual)?;
        }
        self.cached = kv_len;

        let last = h.i((.., seq_len - 1, ..))?;
        let last = self.norm.forward(&last)?;
        self.output.forward(&last)?.squeeze(0)
    }
}

impl Layer {
    fn attention(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
        rope: &Rope,
        c: &Config,
    ) -> Result<Tensor> {
        let (b, seq_len, _) = x.dims3()?;
        let q = self
            .wq
            .forward(x)?
            .reshape((b, seq_len, c.n_head, c.head_dim))?
            .transpose(1, 2)?;
        let k = self
            .wk
            .forward(x)?
            .reshape((b, seq_len, c.n_kv_head, c.head_dim))?
            .transpose(1, 2)?;
        let v = self
            .wv
            .forward(x)?
            .reshape((b, seq_len, c.n_kv_head, c.head_dim))?
            .transpose(1, 2)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        let q = rope.apply(&q, index_pos)?;
        let k = rope.apply(&k, index_pos)?;

        let (k, v) = match &self.kv_cache {
            Some((kc, vc)) if index_pos > 0 => (
                Tensor::cat(&[kc, &k], 2)?,
                Tensor::cat(&[vc, &v.contiguous()?], 2)?,
            ),
            _ => (k, v.contiguous()?),
        };
        self.kv_cache = Some((k.clone(), v.clone()));

        // FIX 4: while decoding one token, a sliding layer sees only the last `window` keys.
        let kv_len = k.dim(2)?;
        let (k, v) = if seq_len == 1 && self.sliding && kv_len > c.sliding_window {
            let start = kv_len - c.sliding_window;
            (
                k.narrow(2, start, c.sliding_window)?,
                v.narrow(2, start, c.sliding_window)?,
            )
        } else {
            (k, v)
        };

        let n_rep = c.n_head / c.n_kv_head;
        let k = candle_transformers::utils::repeat_kv(k, n_rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, n_rep)?.contiguous()?;

        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out =
            probs
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, seq_len, c.n_head * c.head_dim))?;
        self.wo.forward(&out)
    }
}

/// Additive attention mask `(seq_len, index_pos + seq_len)`: 0 where query `i` (at absolute
/// position `index_pos + i`) may see key `j`, -inf elsewhere. FIX 3 and 4: cached positions are
/// visible, and a window hides keys `window` or more positions back.
fn mask(
    seq_len: usize,
    index_pos: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let kv_len = index_pos + seq_len;
    let mut data = Vec::with_capacity(seq_len * kv_len);
    for i in 0..seq_len {
        let p = index_pos + i;
        for j in 0..kv_len {
            let visible = j <= p && window.is_none_or(|w| p - j < w);
            data.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    Tensor::from_vec(data, (seq_len, kv_len), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(m: &Tensor) -> Vec<Vec<u8>> {
        m.to_vec2::<f32>()
            .unwrap()
            .into_iter()
            .map(|r| r.into_iter().map(|v| (v == 0.0) as u8).collect())
            .collect()
    }

    #[test]
    fn mask_with_cached_positions_sees_the_cache() {
        let m = mask(2, 3, None, &Device::Cpu).unwrap();
        assert_eq!(visible(&m), [vec![1, 1, 1, 1, 0], vec![1, 1, 1, 1, 1]]);
    }

    #[test]
    fn sliding_window_hides_keys_window_or_more_back() {
        let m = mask(4, 0, Some(2), &Device::Cpu).unwrap();
        assert_eq!(
            visible(&m),
            [
                vec![1, 0, 0, 0],
                vec![1, 1, 0, 0],
                vec![0, 1, 1, 0],
                vec![0, 0, 1, 1]
            ]
        );
        let m = mask(1, 3, Some(2), &Device::Cpu).unwrap();
        assert_eq!(visible(&m), [vec![0, 0, 1, 1]]);
    }
}
