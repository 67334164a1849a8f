//! Qwen2 (Qwen2.5) on GGUF weights: a copy of candle-transformers 0.11.1
//! `models::quantized_qwen2`, vendored for what it costs, on the blocks of `decoder.rs` that
//! the Gemma 3 decoder uses. The arithmetic is the shipped file's (where weights are 8-bit, our
//! kernels add the same products in another order); what changed:
//!
//! 1. The token embedding table was dequantized to f32 at load: 151936 x 1536 floats (933 MB)
//!    for Qwen2.5 1.5B, the default summarizer, 1.2 GB for 3B and 2.2 GB for 7B, on top of a
//!    second, quantized copy when the output projection is tied to it. It now stays quantized,
//!    rows are dequantized as they are looked up, and a tied output shares it.
//! 2. The KV cache was rebuilt with `Tensor::cat` at every token (the whole cache copied, per
//!    layer) and then copied again `n_head / n_kv_head` times by `repeat_kv` (6x on 1.5B): it is
//!    now written in place, and the query heads of a key/value head attend to it as one product.
//! 3. A cached prefix can be kept (`truncate_kv_cache`), so that prompts sharing their opening
//!    (few-shot examples, map-reduce notes) run only their new tokens; the shipped mask already
//!    handled cached positions.
//! 4. q, k, v and gate, up are one product each where the weights are 8-bit (`q8::Q8Matrix`),
//!    as in `gemma3.rs`.

use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;
use tercuman_kernels::storage::Source;

use super::gguf::Meta;
pub use super::layers::Precision;
use super::layers::{
    check_positions, embedding_and_output, grouped_attention, in_chunks, mask, KvCache, Linear,
    Projections, Rope,
};

/// `qwen2.rope.freq_base` when the GGUF does not give it (candle's and llama.cpp's default).
const DEFAULT_ROPE_FREQUENCY: f32 = 10_000.;

struct Layer {
    qkv: Projections,
    /// q, k and v biases, each `(out,)`.
    biases: [Tensor; 3],
    wo: Linear,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate_up: Projections,
    down: Linear,
    kv_cache: KvCache,
}

/// Model dimensions read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub embedding_length: usize,
    pub context_length: usize,
    pub block_count: usize,
    pub rms_norm_eps: f64,
    pub rope_base: f32,
}

impl Config {
    /// The dimensions in `ct`'s `qwen2.*` metadata; heads that do not split the width are an
    /// error.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Config> {
        let md = |key: &str| Meta(ct).arch("qwen2", key);
        let int = |key: &str| -> Result<usize> { Ok(md(key)?.to_u32()? as usize) };
        let n_head = int("attention.head_count")?;
        let n_kv_head = int("attention.head_count_kv")?;
        let embedding_length = int("embedding_length")?;
        if n_head == 0 || n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) {
            candle_core::bail!(
                "qwen2: {n_head} query heads cannot share {n_kv_head} key/value heads"
            );
        }
        if !embedding_length.is_multiple_of(n_head) {
            candle_core::bail!("qwen2: {n_head} heads do not divide the width {embedding_length}");
        }
        Ok(Config {
            n_head,
            n_kv_head,
            head_dim: embedding_length / n_head,
            embedding_length,
            context_length: int("context_length")?,
            block_count: int("block_count")?,
            rms_norm_eps: md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_base: md("rope.freq_base")
                .ok()
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(DEFAULT_ROPE_FREQUENCY),
        })
    }
}

pub struct Model {
    embed: Linear,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
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
        eps: f64,
        i: usize,
    ) -> Result<Layer> {
        let name = |n: &str| format!("blk.{i}.{n}");
        let norm = |r: &mut R, n: &str| RmsNorm::from_qtensor(ct.tensor(r, &name(n), device)?, eps);
        let linear = |r: &mut R, n: &str| Linear::load(ct, r, &name(n), device, precision);
        let projections = |r: &mut R, ns: &[&str]| {
            let names: Vec<String> = ns.iter().map(|n| name(&format!("{n}.weight"))).collect();
            Projections::load(ct, r, &names, device, precision)
        };
        let bias = |r: &mut R, n: &str| {
            ct.tensor(r, &name(&format!("{n}.bias")), device)?
                .dequantize(device)
        };
        Ok(Layer {
            qkv: projections(reader, &["attn_q", "attn_k", "attn_v"])?,
            biases: [
                bias(reader, "attn_q")?,
                bias(reader, "attn_k")?,
                bias(reader, "attn_v")?,
            ],
            wo: linear(reader, "attn_output.weight")?,
            attn_norm: norm(reader, "attn_norm.weight")?,
            ffn_norm: norm(reader, "ffn_norm.weight")?,
            gate_up: projections(reader, &["ffn_gate", "ffn_up"])?,
            down: linear(reader, "ffn_down.weight")?,
            kv_cache: KvCache::new(precision.kv_dtype()),
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
        let eps = config.rms_norm_eps;
        let (embed, output) = embedding_and_output(ct, reader, device, precision)?;
        let norm = RmsNorm::from_qtensor(ct.tensor(reader, "output_norm.weight", device)?, eps)?;
        let layers = (0..config.block_count)
            .map(|i| Layer::load(ct, reader, device, precision, eps, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            rope: Rope::new(config.rope_base, config.head_dim, device)?,
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
                    + l.gate_up.weight_bytes()
                    + l.down.weight_bytes()
            })
            .sum();
        layers + self.output.weight_bytes()
    }

    pub fn clear_kv_cache(&mut self) {
        self.truncate_kv_cache(0);
    }

    /// Empties the caches and has them hold `dtype` from now on (see `Precision::kv_dtype`):
    /// for the tests that compare with llama.cpp run with either cache.
    pub fn set_kv_dtype(&mut self, dtype: candle_core::DType) {
        for layer in &mut self.layers {
            layer.kv_cache = KvCache::new(dtype);
        }
        self.cached = 0;
    }

    /// Keeps the first `len` cached positions and drops the rest; returns the positions kept
    /// (always `len` or fewer: no layer has a window that drops keys).
    pub fn truncate_kv_cache(&mut self, len: usize) -> usize {
        if len >= self.cached {
            return self.cached;
        }
        for layer in &mut self.layers {
            let kept = layer.kv_cache.truncate(len);
            debug_assert!(kept, "a cache without a window keeps every position");
        }
        self.cached = len;
        len
    }

    /// Runs `tokens` (one sequence) at positions `index_pos..`, appending to the KV cache, and
    /// returns the logits of the last position, shape `(vocab,)`. A long prompt runs in chunks
    /// of `PREFILL_CHUNK` (512) positions; only the last position goes through the output
    /// projection. A pass that fails leaves the cache as it was before the call.
    pub fn forward(&mut self, tokens: &[u32], index_pos: usize) -> Result<Tensor> {
        check_positions(
            "qwen2",
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
        let device = self.rope.device().clone();
        let seq_len = tokens.len();
        let kv_len = check_positions(
            "qwen2",
            seq_len,
            index_pos,
            self.cached,
            self.config.context_length,
        )?;
        self.rope.ensure(kv_len)?;
        let mask = if seq_len > 1 {
            Some(mask(seq_len, index_pos, 0, None, &device)?)
        } else {
            None
        };

        let x = Tensor::new(tokens, &device)?.unsqueeze(0)?;
        let mut h = self.embed.embedding(&x)?;
        for layer in &mut self.layers {
            let x = layer.attn_norm.forward(&h)?;
            let x =
                (layer.attention(&x, mask.as_ref(), index_pos, &self.rope, &self.config)? + &h)?;
            let y = layer.ffn_norm.forward(&x)?;
            let [gate, up]: [Tensor; 2] = layer.gate_up.forward(&y)?.try_into().unwrap();
            // SiLU and the product in one pass, eight values at a time.
            let hidden = if gate.device().is_cpu() {
                tercuman_kernels::act::silu_mul(&gate, &up)?
            } else {
                (candle_nn::ops::silu(&gate)? * up)?
            };
            let y = layer.down.forward(&hidden)?;
            h = (y + x)?;
        }
        self.cached = kv_len;
        h.i((.., seq_len - 1, ..))
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
        let [bq, bk, bv] = &self.biases;
        let heads = |t: Tensor, bias: &Tensor, n: usize| -> Result<Tensor> {
            t.broadcast_add(bias)?
                .reshape((b, seq_len, n, c.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = rope.apply(&heads(q, bq, c.n_head)?, index_pos)?;
        let k = rope.apply(&heads(k, bk, c.n_kv_head)?, index_pos)?;
        let v = heads(v, bv, c.n_kv_head)?;

        // Positions at or past `index_pos` are stale (a new sequence, or a forward that failed
        // part way through the layers): overwrite them.
        if !self.kv_cache.truncate(index_pos) {
            candle_core::bail!("qwen2: the cache no longer holds position {index_pos}")
        }
        let (k, v, _) = self.kv_cache.append(&k, &v)?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        let out = grouped_attention(&q, &k, &v, mask, scale)?;
        self.wo.forward(&out)
    }
}
