//! Gemma 3 on GGUF weights: a copy of candle-transformers 0.11.1
//! `models::quantized_gemma3`, vendored because the shipped file is wrong in ways that change
//! the output or cost gigabytes. Each fix is marked `FIX:` where it is made:
//!
//! 1. The MLP used SiLU; Gemma uses GELU. With SiLU the first generated token's top-5 are wrong
//!    (The 20.3, We 18.2, ... against llama.cpp's President 15.37, The 14.91, ...). The form is
//!    the tanh approximation Gemma's config names (`gelu_pytorch_tanh`), as transformers and
//!    llama.cpp compute it: with the weights dequantized, our logits then equal transformers'
//!    float64 ones to 0.00005, where the exact (erf) GELU is 0.007 to 0.019 off
//!    (`tests/it/gemma3_parity.rs`, which guards this).
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
//! 6. The global layers' linear rope scaling (`gemma3.rope.scaling.factor`: 8 in Gemma 3 4B
//!    and larger, written by llama.cpp's converter from the config's `rope_scaling`) was not
//!    read: every global layer turned position `p` eight times as far as the model was
//!    trained to (as `p` where it should be `p / 8`). It is read as llama.cpp reads it,
//!    and a scaling of another type is refused (`rope_scale`).
//!
//! The pieces Gemma shares with Qwen2 (weights, RoPE tables, KV cache, mask, grouped-query
//! attention) live in `decoder.rs`, and so do fixes 2 (`Rope`) and 3 (`mask`).
//!
//! Not fixes but speed: Q8_0 and Q5_0 weights (the embeddings and output projection, and most
//! of the layer weights in Q4_K_M files) and Q4_0 ones (every layer weight of Google's QAT
//! files) go through `q8::Q8Matrix` instead of candle's `QMatMul`, and an F16 embedding table
//! (the QAT files') through `f16w::F16Matrix`, which keeps it 16-bit where candle made it f32;
//! see there for why.

use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;
use tercuman_kernels::storage::Source;

use super::gguf::Meta;
pub use super::layers::Precision;
use super::layers::{
    check_positions, embedding_and_output, grouped_attention, in_chunks, KvCache, Linear,
    PassMasks, Projections, Rope,
};

/// Gemma 3 alternates five sliding-window layers with one global layer when the GGUF does not
/// say otherwise (`gemma3.attention.sliding_window_type`; llama.cpp uses the same default).
const DEFAULT_SLIDING_WINDOW_TYPE: usize = 6;
/// Rope bases from the Gemma 3 config (`rope_theta`, `rope_local_base_freq`).
const DEFAULT_ROPE_FREQUENCY: f32 = 1_000_000.;
const DEFAULT_ROPE_FREQUENCY_SLIDING: f32 = 10_000.;

struct Mlp {
    gate_up: Projections,
    down: Linear,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] = self.gate_up.forward(xs)?.try_into().unwrap();
        // FIX 1: GELU (the tanh form, as candle's `gelu`), not SiLU; in one pass with the
        // product, eight values at a time (candle's went through libm's `tanhf` value by value).
        let hidden = if gate.device().is_cpu() {
            tercuman_kernels::act::gelu_mul(&gate, &up)?
        } else {
            (gate.gelu()? * up)?
        };
        self.down.forward(&hidden)
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
    pub block_count: usize,
    pub rms_norm_eps: f64,
    /// Every `sliding_window_type`-th layer is global, the others slide.
    pub sliding_window_type: usize,
    pub rope_base: f32,
    pub rope_local_base: f32,
    /// Linear rope scaling of the global layers (`rope.scaling.factor`; 8 in Gemma 3 4B and
    /// larger, 1 where the file has none). The sliding layers are never scaled, as in
    /// transformers and llama.cpp.
    pub rope_scale: f32,
}

impl Config {
    /// The dimensions in `ct`'s `gemma3.*` metadata, with Gemma 3's defaults for the optional
    /// keys.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Config> {
        let md = |key: &str| Meta(ct).arch("gemma3", key);
        let int = |key: &str| -> Result<usize> { Ok(md(key)?.to_u32()? as usize) };
        let float = |key: &str, default: f32| {
            md(key)
                .ok()
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(default)
        };
        Ok(Config {
            n_head: int("attention.head_count")?,
            n_kv_head: int("attention.head_count_kv")?,
            block_count: int("block_count")?,
            embedding_length: int("embedding_length")?,
            head_dim: int("attention.key_length")?,
            rms_norm_eps: md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            sliding_window: int("attention.sliding_window")?,
            context_length: int("context_length")?,
            sliding_window_type: int("attention.sliding_window_type")
                .unwrap_or(DEFAULT_SLIDING_WINDOW_TYPE),
            rope_base: float("rope.freq_base", DEFAULT_ROPE_FREQUENCY),
            // llama.cpp's key, then candle's.
            rope_local_base: md("rope.freq_base_swa")
                .ok()
                .and_then(|v| v.to_f32().ok())
                .unwrap_or_else(|| float("rope.local_freq_base", DEFAULT_ROPE_FREQUENCY_SLIDING)),
            rope_scale: rope_scale(ct)?,
        })
    }
}

/// The global layers' linear rope scaling factor, read as llama.cpp reads it:
/// `rope.scaling.factor`, else the older `rope.scale_linear`; 0 or absent is none. A scaling
/// of another type (`yarn`) is refused rather than run as if it were linear.
fn rope_scale(ct: &gguf_file::Content) -> Result<f32> {
    let md = |key: &str| Meta(ct).arch("gemma3", key).ok();
    let kind = md("rope.scaling.type").and_then(|v| v.to_string().ok().cloned());
    let factor = md("rope.scaling.factor")
        .or_else(|| md("rope.scale_linear"))
        .and_then(|v| v.to_f32().ok())
        .unwrap_or(0.0);
    match kind.as_deref() {
        None | Some("linear") | Some("none") => {}
        Some(other) => candle_core::bail!(
            "rope scaling `{other}` is not supported for gemma3 (supported: linear)"
        ),
    }
    if kind.as_deref() == Some("none") || factor == 0.0 {
        return Ok(1.0);
    }
    if !(factor.is_finite() && factor > 0.0) {
        candle_core::bail!("rope scaling factor {factor} is not a positive number")
    }
    Ok(factor)
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

impl Layer {
    /// Layer `i`'s weights.
    fn load<R: Source>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        precision: Precision,
        config: &Config,
        i: usize,
    ) -> Result<Layer> {
        let name = |n: &str| format!("blk.{i}.{n}.weight");
        let norm = |r: &mut R, n: &str| {
            RmsNorm::from_qtensor(ct.tensor(r, &name(n), device)?, config.rms_norm_eps)
        };
        let linear = |r: &mut R, n: &str| Linear::load(ct, r, &name(n), device, precision);
        let projections = |r: &mut R, ns: &[&str]| {
            let names: Vec<String> = ns.iter().map(|n| name(n)).collect();
            Projections::load(ct, r, &names, device, precision)
        };
        let sliding = !(i + 1).is_multiple_of(config.sliding_window_type);
        Ok(Layer {
            qkv: projections(reader, &["attn_q", "attn_k", "attn_v"])?,
            wo: linear(reader, "attn_output")?,
            q_norm: norm(reader, "attn_q_norm")?,
            k_norm: norm(reader, "attn_k_norm")?,
            attn_norm: norm(reader, "attn_norm")?,
            post_attn_norm: norm(reader, "post_attention_norm")?,
            ffn_norm: norm(reader, "ffn_norm")?,
            post_ffn_norm: norm(reader, "post_ffw_norm")?,
            mlp: Mlp {
                gate_up: projections(reader, &["ffn_gate", "ffn_up"])?,
                down: linear(reader, "ffn_down")?,
            },
            sliding,
            kv_cache: if sliding {
                KvCache::windowed(config.sliding_window, precision.kv_dtype())
            } else {
                KvCache::new(precision.kv_dtype())
            },
        })
    }
}

impl Model {
    /// Loads the model from a GGUF file whose header `ct` was read from `reader`.
    pub fn load<R: Source>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        let config = Config::from_gguf(ct)?;
        // FIX 5: the embedding table stays quantized and rows are dequantized as they are
        // looked up; candle dequantized all of it to f32 (671 MB for a 262144 x 640 table).
        // Gemma ties the output projection to the embeddings: one copy serves both.
        let (embed, output) = embedding_and_output(ct, reader, device, precision)?;
        let norm = ct.tensor(reader, "output_norm.weight", device)?;
        let norm = RmsNorm::from_qtensor(norm, config.rms_norm_eps)?;
        let layers = (0..config.block_count)
            .map(|i| Layer::load(ct, reader, device, precision, &config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            rope_global: Rope::scaled(
                config.rope_base,
                config.rope_scale,
                config.head_dim,
                device,
            )?,
            rope_local: Rope::new(config.rope_local_base, config.head_dim, device)?,
            config,
            cached: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes of weights one decoded token reads: every layer's matrices and the output
    /// projection (of the embedding table, only one row).
    pub fn weight_bytes_per_token(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.weight_bytes()
                    + l.wo.weight_bytes()
                    + l.mlp.gate_up.weight_bytes()
                    + l.mlp.down.weight_bytes()
            })
            .sum();
        layers + self.output.weight_bytes()
    }

    /// Whether the sliding layers' caches drop the keys their window no longer sees (the
    /// default). Off, every layer keeps every position, as before this cache existed: for the
    /// tests that compare the two, and for measuring what it saves. Empties the cache.
    pub fn set_windowed_cache(&mut self, windowed: bool) {
        for layer in &mut self.layers {
            let dtype = layer.kv_cache.dtype();
            layer.kv_cache = if windowed && layer.sliding {
                KvCache::windowed(self.config.sliding_window, dtype)
            } else {
                KvCache::new(dtype)
            };
        }
        self.cached = 0;
    }

    pub fn clear_kv_cache(&mut self) {
        self.truncate_kv_cache(0);
    }

    /// Empties the caches and has them hold `dtype` from now on (see `Precision::kv_dtype`).
    pub fn set_kv_dtype(&mut self, dtype: candle_core::DType) {
        for layer in &mut self.layers {
            layer.kv_cache = if layer.sliding {
                KvCache::windowed(self.config.sliding_window, dtype)
            } else {
                KvCache::new(dtype)
            };
        }
        self.cached = 0;
    }

    /// Keeps the first `len` cached positions and drops the rest, so that a prompt sharing a
    /// prefix with the previous one (the few-shot examples) runs only its new tokens. Returns
    /// the positions kept: `len`, or 0 when the sliding layers had already dropped keys that
    /// position `len` needs (after a prompt longer than the window and a chunk); the sequence
    /// is then run again from the start.
    pub fn truncate_kv_cache(&mut self, len: usize) -> usize {
        if len >= self.cached {
            return self.cached;
        }
        let mut kept = true;
        for layer in &mut self.layers {
            kept &= layer.kv_cache.truncate(len);
        }
        self.cached = if kept { len } else { 0 };
        if !kept {
            for layer in &mut self.layers {
                let _ = layer.kv_cache.truncate(0);
            }
        }
        self.cached
    }

    /// Runs `tokens` (one sequence) at positions `index_pos..`, appending to the KV cache, and
    /// returns the logits of the last position, shape `(vocab,)`. A long prompt runs in chunks
    /// of `PREFILL_CHUNK` (512) positions; only the last position goes through the output
    /// projection. A pass that fails leaves the cache as it was before the call.
    pub fn forward(&mut self, tokens: &[u32], index_pos: usize) -> Result<Tensor> {
        check_positions(
            "gemma3",
            tokens.len(),
            index_pos,
            self.cached,
            self.config.context_length,
        )?;
        for layer in &mut self.layers {
            layer.kv_cache.expect(index_pos + tokens.len());
        }
        let last = in_chunks(self, tokens, index_pos, Self::pass, Self::truncate_kv_cache)?;
        let last = self.norm.forward(&last)?;
        self.output.forward(&last)?.squeeze(0)
    }

    /// One pass of `tokens` through the layers; returns the hidden state of the last position.
    fn pass(&mut self, tokens: &[u32], index_pos: usize) -> Result<Tensor> {
        let device = self.rope_global.device().clone();
        let seq_len = tokens.len();
        let kv_len = check_positions(
            "gemma3",
            seq_len,
            index_pos,
            self.cached,
            self.config.context_length,
        )?;
        self.rope_global.ensure(kv_len)?;
        self.rope_local.ensure(kv_len)?;

        let x = Tensor::new(tokens, &device)?.unsqueeze(0)?;
        let mut h = (self.embed.embedding(&x)? * (self.config.embedding_length as f64).sqrt())?;

        let mut mask_global = PassMasks::new(seq_len, index_pos, None);
        let mut mask_local = PassMasks::new(seq_len, index_pos, Some(self.config.sliding_window));

        let c = &self.config;
        for layer in &mut self.layers {
            let (rope, masks) = if layer.sliding {
                (&self.rope_local, &mut mask_local)
            } else {
                (&self.rope_global, &mut mask_global)
            };
            let residual = &h;
            let x = layer.attn_norm.forward(&h)?;
            let x = layer.attention(&x, masks, index_pos, rope, c)?;
            let x = (layer.post_attn_norm.forward(&x)? + residual)?;
            let residual = &x;
            let y = layer.ffn_norm.forward(&x)?;
            let y = layer.mlp.forward(&y)?;
            h = (layer.post_ffn_norm.forward(&y)? + residual)?;
        }
        self.cached = kv_len;
        h.i((.., seq_len - 1, ..))
    }
}

impl Layer {
    fn attention(
        &mut self,
        x: &Tensor,
        masks: &mut PassMasks,
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

        // Positions at or past `index_pos` are stale (a new sequence, or a forward that failed
        // part way through the layers): overwrite them.
        if !self.kv_cache.truncate(index_pos) {
            candle_core::bail!(
                "gemma3: the cache no longer holds the window of position {index_pos}"
            )
        }
        let (k, v, kv_start) = self.kv_cache.append(&k, &v.contiguous()?)?;
        let mask = masks.get(kv_start, x.device())?;

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

        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let out = grouped_attention(&q, &k, &v, mask.as_ref(), scale)?;
        self.wo.forward(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::{Value, VersionedMagic};

    fn content(pairs: &[(&str, Value)]) -> gguf_file::Content {
        gguf_file::Content {
            magic: VersionedMagic::GgufV3,
            metadata: pairs
                .iter()
                .map(|(k, v)| (format!("gemma3.{k}"), v.clone()))
                .collect(),
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn rope_scaling_is_read_as_llama_cpp_reads_it() {
        let linear = || Value::String("linear".into());
        // Gemma 3 4B's: linear, factor 8.
        let ct = content(&[
            ("rope.scaling.type", linear()),
            ("rope.scaling.factor", Value::F32(8.0)),
        ]);
        assert_eq!(rope_scale(&ct).unwrap(), 8.0);
        // The older key; none at all; a factor of 0; type none.
        assert_eq!(
            rope_scale(&content(&[("rope.scale_linear", Value::F32(4.0))])).unwrap(),
            4.0
        );
        assert_eq!(rope_scale(&content(&[])).unwrap(), 1.0);
        assert_eq!(
            rope_scale(&content(&[("rope.scaling.factor", Value::F32(0.0))])).unwrap(),
            1.0
        );
        let none = [
            ("rope.scaling.type", Value::String("none".into())),
            ("rope.scaling.factor", Value::F32(8.0)),
        ];
        assert_eq!(rope_scale(&content(&none)).unwrap(), 1.0);
        // Another kind of scaling is refused, not run as linear.
        let yarn = [
            ("rope.scaling.type", Value::String("yarn".into())),
            ("rope.scaling.factor", Value::F32(8.0)),
        ];
        let err = rope_scale(&content(&yarn)).unwrap_err().to_string();
        assert!(err.contains("yarn"), "{err}");
        let bad = [
            ("rope.scaling.type", linear()),
            ("rope.scaling.factor", Value::F32(-2.0)),
        ];
        assert!(rope_scale(&content(&bad)).is_err());
    }
}
