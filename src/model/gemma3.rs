//! Gemma 3 on GGUF weights: a copy of candle-transformers 0.11.1
//! `models::quantized_gemma3`, vendored because the shipped file is wrong in ways that change
//! the output or cost gigabytes. Each fix is marked `FIX:` where it is made:
//!
//! 1. The MLP used SiLU; Gemma uses GELU. With SiLU the first generated token's top-5 are wrong
//!    (The 20.3, We 18.2, ... against llama.cpp's President 15.37, The 14.91, ...). The form is
//!    the tanh approximation Gemma's config names (`gelu_pytorch_tanh`), as transformers and
//!    llama.cpp compute it: with the weights dequantized, our logits then equal transformers'
//!    float64 ones to 0.00005, where the exact (erf) GELU is 0.007 to 0.019 off
//!    (`tests/parity.rs`, which guards this).
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
//!
//! Not fixes but speed: Q8_0 and Q5_0 weights (the embeddings and output projection, and most
//! of the layer weights in Q4_K_M files) go through `q8::Q8Matrix` instead of candle's
//! `QMatMul`; see there for why.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_transformers::quantized_nn::RmsNorm;

use super::q8::Q8Matrix;

/// Gemma 3 alternates five sliding-window layers with one global layer when the GGUF does not
/// say otherwise (`gemma3.attention.sliding_window_type`; llama.cpp uses the same default).
const DEFAULT_SLIDING_WINDOW_TYPE: usize = 6;
/// Rope bases from the Gemma 3 config (`rope_theta`, `rope_local_base_freq`).
const DEFAULT_ROPE_FREQUENCY: f32 = 1_000_000.;
const DEFAULT_ROPE_FREQUENCY_SLIDING: f32 = 10_000.;

/// How the weights are held and the products computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// As stored in the GGUF, with activations rounded to 8 bits before each product, as
    /// llama.cpp does: what the tool runs.
    Quantized,
    /// Every weight dequantized to f32 at load, activations never rounded: the GGUF's model
    /// computed as exactly as f32 allows, about four times the memory and much slower. It is
    /// the numerics reference: the tests compare it with transformers in float64 on the same
    /// weights to a tolerance far below what the 8-bit activation rounding moves (see
    /// `tests/parity.rs`).
    Dequantized,
}

/// A weight matrix applied as `x @ W^T`: ours for 8-bit (and 5-bit) blocks, candle's for the
/// k-quants, or dequantized f32 (`Precision::Dequantized`).
#[derive(Clone)]
enum Linear {
    Q8(Arc<Q8Matrix>),
    Candle(QMatMul),
    Dense(candle_nn::Linear),
}

impl Linear {
    fn load<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        if precision == Precision::Dequantized {
            let w = ct.tensor(reader, name, device)?.dequantize(device)?;
            return Ok(Self::Dense(candle_nn::Linear::new(w, None)));
        }
        if device.is_cpu() {
            if let Some(m) = Q8Matrix::from_gguf(ct, reader, name)? {
                return Ok(Self::Q8(Arc::new(m)));
            }
        }
        let t = super::requant::with_fast_kernel(ct.tensor(reader, name, device)?)?;
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Q8(m) => m.embedding(ids),
            Self::Candle(m) => m.embedding(ids),
            Self::Dense(l) => {
                let rows = l.weight().index_select(&ids.flatten_all()?, 0)?;
                let mut shape = ids.dims().to_vec();
                shape.push(l.weight().dim(1)?);
                rows.reshape(shape)
            }
        }
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Q8(m) => m.forward(xs),
            Self::Candle(m) => m.forward(xs),
            Self::Dense(l) => l.forward(xs),
        }
    }
}

/// Weight matrices applied to the same input (q, k, v; gate, up): one product over their
/// rows laid end to end when all are 8-bit (see `Q8Matrix::concat_rows`), else one each.
enum Projections {
    Fused(Q8Matrix, Vec<usize>),
    Separate(Vec<Linear>),
}

impl Projections {
    fn load<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        names: &[String],
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        let linears = names
            .iter()
            .map(|n| Linear::load(ct, reader, n, device, precision))
            .collect::<Result<Vec<_>>>()?;
        let q8: Vec<&Q8Matrix> = linears
            .iter()
            .filter_map(|l| match l {
                Linear::Q8(m) => Some(m.as_ref()),
                Linear::Candle(_) | Linear::Dense(_) => None,
            })
            .collect();
        if q8.len() < linears.len() {
            return Ok(Self::Separate(linears));
        }
        let rows = q8.iter().map(|m| m.rows()).collect();
        let fused = Q8Matrix::concat_rows(&q8)?;
        Ok(Self::Fused(fused, rows))
    }

    fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Self::Fused(m, rows) => {
                let y = m.forward(xs)?;
                let mut start = 0;
                rows.iter()
                    .map(|&n| {
                        let part = y.narrow(D::Minus1, start, n);
                        start += n;
                        part
                    })
                    .collect()
            }
            Self::Separate(ls) => ls.iter().map(|l| l.forward(xs)).collect(),
        }
    }
}

struct Mlp {
    gate_up: Projections,
    down: Linear,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] = self.gate_up.forward(xs)?.try_into().unwrap();
        // FIX 1: GELU (candle's `gelu` is the tanh form), not SiLU.
        let gate = gate.gelu()?;
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
    /// Queries, keys, values.
    qkv: Projections,
    wo: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    mlp: Mlp,
    sliding: bool,
    kv_cache: KvCache,
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
    embed: Linear,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
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
        Self::from_gguf_with(ct, reader, device, Precision::Quantized)
    }

    pub fn from_gguf_with<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        precision: Precision,
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
        let embed = Linear::load(ct, reader, "token_embd.weight", device, precision)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            Linear::load(ct, reader, "output.weight", device, precision)?
        } else {
            // Gemma ties the output projection to the embeddings: one copy serves both.
            embed.clone()
        };
        let final_norm = norm(tensor(reader, "output_norm.weight")?)?;

        let mut layers = Vec::with_capacity(block_count);
        for i in 0..block_count {
            let name = |n: &str| format!("blk.{i}.{n}.weight");
            let t = |r: &mut R, n: &str| tensor(r, &name(n));
            let linear = |r: &mut R, n: &str| Linear::load(ct, r, &name(n), device, precision);
            let projections = |r: &mut R, ns: &[&str]| {
                let names: Vec<String> = ns.iter().map(|n| name(n)).collect();
                Projections::load(ct, r, &names, device, precision)
            };
            let layer = Layer {
                qkv: projections(reader, &["attn_q", "attn_k", "attn_v"])?,
                wo: linear(reader, "attn_output")?,
                q_norm: norm(t(reader, "attn_q_norm")?)?,
                k_norm: norm(t(reader, "attn_k_norm")?)?,
                attn_norm: norm(t(reader, "attn_norm")?)?,
                post_attn_norm: norm(t(reader, "post_attention_norm")?)?,
                ffn_norm: norm(t(reader, "ffn_norm")?)?,
                post_ffn_norm: norm(t(reader, "post_ffw_norm")?)?,
                mlp: Mlp {
                    gate_up: projections(reader, &["ffn_gate", "ffn_up"])?,
                    down: linear(reader, "ffn_down")?,
                },
                sliding: (i + 1) % sliding_type != 0,
                kv_cache: KvCache::default(),
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
            layer.kv_cache.truncate(0);
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
            layer.kv_cache.truncate(len);
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
        let [q, k, v]: [Tensor; 3] = self.qkv.forward(x)?.try_into().unwrap();
        let q = q
            .reshape((b, seq_len, c.n_head, c.head_dim))?
            .transpose(1, 2)?;
        let k = k
            .reshape((b, seq_len, c.n_kv_head, c.head_dim))?
            .transpose(1, 2)?;
        let v = v
            .reshape((b, seq_len, c.n_kv_head, c.head_dim))?
            .transpose(1, 2)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        let q = rope.apply(&q, index_pos)?;
        let k = rope.apply(&k, index_pos)?;

        if index_pos == 0 {
            self.kv_cache.truncate(0);
        }
        let (k, v) = self.kv_cache.append(&k, &v.contiguous()?)?;

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

        // Grouped-query attention without copying keys and values once per query head (candle's
        // `repeat_kv` copied the whole cache four times per layer per token on the 270M model):
        // the `n_rep` query heads that share a key/value head are stacked as rows of one
        // product. Heads `h * n_rep .. (h + 1) * n_rep` share key/value head `h`.
        let n_rep = c.n_head / c.n_kv_head;
        let q = q.reshape((b, c.n_kv_head, n_rep * seq_len, c.head_dim))?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            let kv_len = k.dim(2)?;
            scores = scores
                .reshape((b, c.n_kv_head, n_rep, seq_len, kv_len))?
                .broadcast_add(mask)?
                .reshape((b, c.n_kv_head, n_rep * seq_len, kv_len))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .reshape((b, c.n_head, seq_len, c.head_dim))?
            .transpose(1, 2)?
            .reshape((b, seq_len, c.n_head * c.head_dim))?;
        self.wo.forward(&out)
    }
}

/// Keys and values of the positions seen so far, `(batch, kv_heads, positions, head_dim)`, in
/// buffers that grow by doubling: a token is written in place instead of the whole cache
/// being copied into a new tensor one position longer, as `Tensor::cat` did at every token.
#[derive(Default)]
struct KvCache {
    buffers: Option<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `k` and `v` (contiguous, same shape) and returns views of the whole cache.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, n, d) = k.dims4()?;
        let needed = self.len + n;
        let capacity = self
            .buffers
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if needed > capacity {
            let grown = needed.next_power_of_two().max(256);
            let new_k = Tensor::zeros((b, h, grown, d), k.dtype(), k.device())?;
            let new_v = Tensor::zeros((b, h, grown, d), v.dtype(), v.device())?;
            if let Some((old_k, old_v)) = &self.buffers {
                if self.len > 0 {
                    new_k.slice_set(&old_k.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                    new_v.slice_set(&old_v.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
            }
            self.buffers = Some((new_k, new_v));
        }
        let (ck, cv) = self.buffers.as_ref().expect("allocated above");
        ck.slice_set(k, 2, self.len)?;
        cv.slice_set(v, 2, self.len)?;
        self.len = needed;
        Ok((ck.narrow(2, 0, needed)?, cv.narrow(2, 0, needed)?))
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
