//! Building blocks shared by the GGUF decoders (`gemma3`, `qwen2`), both vendored from
//! candle-transformers 0.11.1: weights that stay quantized (the embedding table included) and
//! go through our 8-bit kernels where they can, q/k/v and gate/up as one product, RoPE tables
//! sized to the positions in use, a KV cache written in place, a causal mask that sees cached
//! positions (gemma3's FIX 3; candle's Qwen2 mask was right), and grouped-query attention
//! without copying keys and values per query head.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use tercuman_kernels::storage::Source;

use tercuman_kernels::f16w::F16Matrix;
use tercuman_kernels::kquant::KMatrix;
use tercuman_kernels::q8::Q8Matrix;

/// How the weights are held and the products computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// As stored in the GGUF, with activations rounded to 8 bits before each product, as
    /// llama.cpp does: what the tool runs.
    Quantized,
    /// Every weight dequantized to f32 at load, activations never rounded: the GGUF's model
    /// computed as exactly as f32 allows, about four times the memory and much slower. It is
    /// the numerics reference: for Gemma 3 the tests compare it with transformers in float64
    /// on the same weights to a tolerance far below what the 8-bit activation rounding moves
    /// (see `tests/it/gemma3_parity.rs`).
    Dequantized,
    /// As stored, every product through candle's own kernels (none of ours): what the vendored
    /// networks are compared with candle-transformers' models on, kernel for kernel.
    CandleKernels,
}

impl Precision {
    /// What the KV cache holds: half precision as llama.cpp's default cache does (half the
    /// memory, and half the bytes attention reads per token) when the model runs as stored;
    /// f32 for the numerics reference and for the comparison with candle's models.
    pub fn kv_dtype(self) -> DType {
        match self {
            Precision::Quantized => DType::F16,
            Precision::Dequantized | Precision::CandleKernels => DType::F32,
        }
    }
}

/// A weight matrix applied as `x @ W^T`: ours for 8-, 5- and 4-bit blocks (Q8_0, Q5_0, Q4_0),
/// for Q4_K and Q6_K and for F16, candle's for the other types, or dequantized f32
/// (`Precision::Dequantized`).
#[derive(Clone)]
pub(crate) enum Linear {
    Q8(Arc<Q8Matrix>),
    K(Arc<KMatrix>),
    F16(Arc<F16Matrix>),
    Candle(QMatMul),
    Dense(candle_nn::Linear),
}

impl Linear {
    pub(crate) fn load<R: Source>(
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
        if device.is_cpu() && precision == Precision::Quantized {
            if let Some(m) = Q8Matrix::from_gguf(ct, reader, name)? {
                return Ok(Self::Q8(Arc::new(m)));
            }
            if let Some(m) = KMatrix::from_gguf(ct, reader, name)? {
                return Ok(Self::K(Arc::new(m)));
            }
            if let Some(m) = F16Matrix::from_gguf(ct, reader, name)? {
                return Ok(Self::F16(Arc::new(m)));
            }
        }
        let t = tercuman_kernels::requant::with_fast_kernel(ct.tensor(reader, name, device)?)?;
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    /// Bytes of the weights as held (what one product reads).
    pub(crate) fn weight_bytes(&self) -> usize {
        match self {
            Self::Q8(m) => m.weight_bytes(),
            Self::K(m) => m.weight_bytes(),
            Self::F16(m) => m.weight_bytes(),
            Self::Candle(QMatMul::QTensor(t)) => t.storage_size_in_bytes(),
            Self::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => {
                t.elem_count() * t.dtype().size_in_bytes()
            }
            Self::Dense(l) => l.weight().elem_count() * l.weight().dtype().size_in_bytes(),
        }
    }

    pub(crate) fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Q8(m) => m.embedding(ids),
            Self::K(m) => m.embedding(ids),
            Self::F16(m) => m.embedding(ids),
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
            Self::K(m) => m.forward(xs),
            Self::F16(m) => m.forward(xs),
            Self::Candle(m) => m.forward(xs),
            Self::Dense(l) => l.forward(xs),
        }
    }
}

/// The embedding table and the output projection; a model without `output.weight` ties the
/// output to the embeddings, and one copy serves both.
pub(crate) fn embedding_and_output<R: Source>(
    ct: &gguf_file::Content,
    reader: &mut R,
    device: &Device,
    precision: Precision,
) -> Result<(Linear, Linear)> {
    let embed = Linear::load(ct, reader, "token_embd.weight", device, precision)?;
    let output = if ct.tensor_infos.contains_key("output.weight") {
        Linear::load(ct, reader, "output.weight", device, precision)?
    } else {
        embed.clone()
    };
    Ok((embed, output))
}

/// Weight matrices applied to the same input (q, k, v; gate, up): one product over their
/// rows laid end to end when all are 8-bit, or all 4-bit (see `Q8Matrix::concat_rows`); when
/// all are k-quants, each stays as stored (mapped) and one call quantizes the input once and
/// hands all their rows to the threads together (`KMatrix::forward_many`); else one each.
pub(crate) enum Projections {
    Fused(Q8Matrix, Vec<usize>),
    KQuants(Vec<Arc<KMatrix>>),
    Separate(Vec<Linear>),
}

impl Projections {
    pub(crate) fn load<R: Source>(
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
                Linear::K(_) | Linear::F16(_) | Linear::Candle(_) | Linear::Dense(_) => None,
            })
            .collect();
        let kq: Vec<Arc<KMatrix>> = linears
            .iter()
            .filter_map(|l| match l {
                Linear::K(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        if kq.len() == linears.len() && kq.iter().all(|m| m.cols() == kq[0].cols()) {
            return Ok(Self::KQuants(kq));
        }
        if q8.len() < linears.len() || q8.iter().any(|m| !m.joins(q8[0])) {
            return Ok(Self::Separate(linears));
        }
        let rows = q8.iter().map(|m| m.rows()).collect();
        let fused = Q8Matrix::concat_rows(&q8)?;
        Ok(Self::Fused(fused, rows))
    }

    pub(crate) fn weight_bytes(&self) -> usize {
        match self {
            Self::Fused(m, _) => m.weight_bytes(),
            Self::KQuants(ms) => ms.iter().map(|m| m.weight_bytes()).sum(),
            Self::Separate(ls) => ls.iter().map(Linear::weight_bytes).sum(),
        }
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
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
            Self::KQuants(ms) => {
                let parts: Vec<&KMatrix> = ms.iter().map(|m| m.as_ref()).collect();
                KMatrix::forward_many(&parts, xs)
            }
            Self::Separate(ls) => ls.iter().map(|l| l.forward(xs)).collect(),
        }
    }
}

/// cos/sin tables for one rope base, grown on demand to the positions in use (gemma3's FIX 2:
/// candle's Gemma 3 built one per layer for the model's whole context).
pub(crate) struct Rope {
    base: f32,
    /// Linear position scaling: position `p` turns as `p / factor` would (1: none).
    factor: f32,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub(crate) fn new(base: f32, head_dim: usize, device: &Device) -> Result<Self> {
        Self::scaled(base, 1.0, head_dim, device)
    }

    /// A table whose positions are divided by `factor` (rope scaling of type `linear`, as
    /// Gemma 3 4B and larger use on their global layers).
    pub(crate) fn scaled(base: f32, factor: f32, head_dim: usize, device: &Device) -> Result<Self> {
        let empty = Tensor::zeros((0, head_dim / 2), DType::F32, device)?;
        Ok(Self {
            base,
            factor,
            head_dim,
            cos: empty.clone(),
            sin: empty,
        })
    }

    pub(crate) fn device(&self) -> &Device {
        self.cos.device()
    }

    pub(crate) fn ensure(&mut self, positions: usize) -> Result<()> {
        if self.cos.dim(0)? >= positions {
            return Ok(());
        }
        let len = positions.next_power_of_two().max(512);
        let device = self.cos.device().clone();
        let inv_freq: Vec<f32> = (0..self.head_dim)
            .step_by(2)
            .map(|i| 1f32 / self.base.powf(i as f32 / self.head_dim as f32) / self.factor)
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

    pub(crate) fn apply(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let seq_len = x.dim(2)?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
    }
}

/// Keys and values of the positions seen so far, `(batch, kv_heads, positions, head_dim)`, in
/// buffers written in place (`Tensor::cat` copied the whole cache at every token). A buffer
/// grows to the end of the prompt being run (`expect`), then by half again as decoding goes
/// past it, so a long prompt does not leave it twice the size it needs.
///
/// A sliding-window layer (`windowed`) holds at most the window plus one prefill chunk: before
/// it would grow past that, it drops the rows no query can see any more, as llama.cpp's SWA
/// cache does. Its memory then stays the same however long the prompt (on Gemma 3, five layers
/// in six). Going back to a position whose window it has dropped ([`KvCache::truncate`]
/// returning false) empties it; the caller runs the sequence again from the start.
pub(crate) struct KvCache {
    buffers: Option<(Tensor, Tensor)>,
    /// What the buffers hold (`Precision::kv_dtype`); rows are converted as they come in.
    dtype: DType,
    /// Absolute position of the first row held (0 unless a window dropped older rows).
    start: usize,
    /// Absolute position after the last row held.
    end: usize,
    window: Option<usize>,
    /// The position the prompt being run ends at: the size to grow to at once.
    expect: usize,
}

/// Rows are allocated in multiples of this.
const KV_ROUND: usize = 256;

fn round_up(n: usize) -> usize {
    n.div_ceil(KV_ROUND) * KV_ROUND
}

impl KvCache {
    /// An empty cache holding `dtype` rows.
    pub(crate) fn new(dtype: DType) -> Self {
        Self {
            buffers: None,
            dtype,
            start: 0,
            end: 0,
            window: None,
            expect: 0,
        }
    }

    /// The cache of a layer whose queries see only the keys fewer than `window` positions back.
    pub(crate) fn windowed(window: usize, dtype: DType) -> Self {
        Self {
            window: Some(window.max(1)),
            ..Self::new(dtype)
        }
    }

    pub(crate) fn dtype(&self) -> DType {
        self.dtype
    }

    /// The most rows a windowed cache holds: what the queries of one prefill chunk can see.
    fn limit(window: usize) -> usize {
        round_up(window - 1 + PREFILL_CHUNK)
    }

    /// Keeps the positions before `len`. False when a window has dropped rows that a query at
    /// `len` needs: the cache is then emptied, to be filled again from position 0.
    #[must_use]
    pub(crate) fn truncate(&mut self, len: usize) -> bool {
        if len >= self.end {
            return true;
        }
        self.end = len;
        let serves = self.start == 0 || self.window.is_some_and(|w| self.start + w <= len + 1);
        if !serves {
            self.start = 0;
            self.end = 0;
        }
        serves
    }

    /// The prompt being run ends at position `end`.
    pub(crate) fn expect(&mut self, end: usize) {
        self.expect = end;
    }

    fn capacity(&self) -> usize {
        self.buffers
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    /// Appends `k` and `v` (contiguous, same shape) at position `end` and returns views of the
    /// rows held, with the absolute position of the first.
    pub(crate) fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor, usize)> {
        let (k, v) = (&k.to_dtype(self.dtype)?, &v.to_dtype(self.dtype)?);
        let (b, h, n, d) = k.dims4()?;
        let capacity = self.capacity();
        if self.end + n - self.start > capacity {
            // Rows before `keep` are seen by no query from `end` on.
            let keep = match self.window {
                Some(w) if self.end + n - self.start > Self::limit(w) => {
                    (self.end + 1).saturating_sub(w).max(self.start)
                }
                _ => self.start,
            };
            let rows = self.end - keep;
            let needed = rows + n;
            let target = if needed <= capacity {
                capacity
            } else {
                let grown = round_up(
                    needed
                        .max(self.expect.saturating_sub(keep))
                        .max(capacity + capacity / 2),
                );
                match self.window {
                    Some(w) => grown.min(Self::limit(w)).max(needed),
                    None => grown,
                }
            };
            let kept = match &self.buffers {
                Some((old_k, old_v)) if rows > 0 => Some((
                    old_k
                        .narrow(2, keep - self.start, rows)?
                        .force_contiguous()?,
                    old_v
                        .narrow(2, keep - self.start, rows)?
                        .force_contiguous()?,
                )),
                _ => None,
            };
            if target != capacity {
                self.buffers = Some((
                    Tensor::zeros((b, h, target, d), k.dtype(), k.device())?,
                    Tensor::zeros((b, h, target, d), v.dtype(), v.device())?,
                ));
            }
            if let (Some((kk, kv)), Some((ck, cv))) = (kept, &self.buffers) {
                ck.slice_set(&kk, 2, 0)?;
                cv.slice_set(&kv, 2, 0)?;
            }
            self.start = keep;
        }
        let (ck, cv) = self.buffers.as_ref().expect("allocated above");
        let at = self.end - self.start;
        ck.slice_set(k, 2, at)?;
        cv.slice_set(v, 2, at)?;
        self.end += n;
        let held = self.end - self.start;
        Ok((ck.narrow(2, 0, held)?, cv.narrow(2, 0, held)?, self.start))
    }
}

/// Additive attention mask `(seq_len, index_pos + seq_len - kv_start)`: 0 where query `i` (at
/// absolute position `index_pos + i`) may see key `j` (at `kv_start + j`), -inf elsewhere.
/// Cached positions are visible (gemma3's FIX 3), and a window hides keys `window` or more
/// positions back (FIX 4).
pub(crate) fn mask(
    seq_len: usize,
    index_pos: usize,
    kv_start: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let kv_len = index_pos + seq_len - kv_start;
    let mut data = Vec::with_capacity(seq_len * kv_len);
    for i in 0..seq_len {
        let p = index_pos + i;
        for j in kv_start..kv_start + kv_len {
            let visible = j <= p && window.is_none_or(|w| p - j < w);
            data.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    Tensor::from_vec(data, (seq_len, kv_len), device)
}

/// The masks of one pass, built once for each first cached position the layers report (a
/// windowed cache may hold fewer rows than a full one); none when one token is decoded.
pub(crate) struct PassMasks {
    seq_len: usize,
    index_pos: usize,
    window: Option<usize>,
    built: Vec<(usize, Tensor)>,
}

impl PassMasks {
    pub(crate) fn new(seq_len: usize, index_pos: usize, window: Option<usize>) -> Self {
        Self {
            seq_len,
            index_pos,
            window,
            built: Vec::new(),
        }
    }

    pub(crate) fn get(&mut self, kv_start: usize, device: &Device) -> Result<Option<Tensor>> {
        if self.seq_len == 1 {
            return Ok(None);
        }
        if let Some((_, m)) = self.built.iter().find(|(s, _)| *s == kv_start) {
            return Ok(Some(m.clone()));
        }
        let m = mask(self.seq_len, self.index_pos, kv_start, self.window, device)?;
        self.built.push((kv_start, m.clone()));
        Ok(Some(m))
    }
}

/// Prompt positions run through the layers at once. A longer prompt goes through in chunks of
/// this many, each appended to the KV cache before the next, as llama.cpp's micro-batches
/// (`n_ubatch`, 512): the activations and attention scores of a pass then stay the size of one
/// chunk (scores grow as chunk x cached positions, not prompt x prompt), so memory does not grow
/// with the square of the prompt.
pub(crate) const PREFILL_CHUNK: usize = 512;

/// Runs `tokens` at `index_pos..` through `pass` of decoder `m`, chunk after chunk, and returns
/// what the last pass returned (the hidden state of the last position). A pass that fails cuts
/// the cache back to `index_pos` (`truncate`), so the call leaves it as it found it.
pub(crate) fn in_chunks<M>(
    m: &mut M,
    tokens: &[u32],
    index_pos: usize,
    pass: fn(&mut M, &[u32], usize) -> Result<Tensor>,
    truncate: fn(&mut M, usize) -> usize,
) -> Result<Tensor> {
    let mut last = None;
    for (chunk, pos) in prefill_chunks(tokens, index_pos) {
        match pass(m, chunk, pos) {
            Ok(h) => last = Some(h),
            Err(e) => {
                truncate(m, index_pos);
                return Err(e);
            }
        }
    }
    last.ok_or_else(|| candle_core::Error::Msg("no tokens to run".into()))
}

/// `tokens` at `index_pos..` as the passes a forward runs one after another: each chunk and its
/// first position.
fn prefill_chunks(tokens: &[u32], index_pos: usize) -> impl Iterator<Item = (&[u32], usize)> {
    tokens
        .chunks(PREFILL_CHUNK)
        .enumerate()
        .map(move |(i, chunk)| (chunk, index_pos + i * PREFILL_CHUNK))
}

/// What every forward checks before it runs `tokens` at `index_pos`: they continue the
/// `cached` positions, there are some, and they fit the `context`. Returns the number of
/// positions after them.
pub(crate) fn check_positions(
    arch: &str,
    tokens: usize,
    index_pos: usize,
    cached: usize,
    context: usize,
) -> Result<usize> {
    if index_pos != cached {
        candle_core::bail!(
            "{arch}: tokens at position {index_pos} but {cached} positions are cached"
        );
    }
    if tokens == 0 {
        candle_core::bail!("{arch}: no tokens to run");
    }
    let kv_len = index_pos + tokens;
    if kv_len > context {
        candle_core::bail!("{arch}: {kv_len} positions exceed the model's context of {context}");
    }
    Ok(kv_len)
}

/// Grouped-query attention of `q` `(b, n_head, seq, head_dim)` over `k`, `v`
/// `(b, n_kv_head, kv_len, head_dim)`, with an optional additive `mask` `(seq, kv_len)`;
/// returns `(b, seq, n_head * head_dim)`. Keys and values are not copied once per query head
/// (candle's `repeat_kv` copied the whole cache `n_rep` times per layer per token): the `n_rep`
/// query heads that share a key/value head are stacked as rows of one product. Heads
/// `h * n_rep .. (h + 1) * n_rep` share key/value head `h`, as in llama.cpp and transformers.
pub(crate) fn grouped_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    if k.dtype() == DType::F16 {
        if q.dim(0)? == 1 && q.dim(2)? == 1 && mask.is_none() {
            return decode_over_f16(q, k, v, scale);
        }
        // A prompt's chunk: one f32 copy of this layer's rows, read by many queries; the query
        // and the weights rounded to f16 as llama.cpp's products with an f16 cache round them.
        let (k, v) = (k.to_dtype(DType::F32)?, v.to_dtype(DType::F32)?);
        let q = q.to_dtype(DType::F16)?.to_dtype(DType::F32)?;
        return blocks_of_attention(&q, &k, &v, mask, scale, true);
    }
    blocks_of_attention(q, k, v, mask, scale, false)
}

/// [`grouped_attention`] on f32 keys and values, a block of query rows at a time;
/// `half_weights` rounds the attention weights to f16 before they meet the values.
fn blocks_of_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
    half_weights: bool,
) -> Result<Tensor> {
    let seq_len = q.dim(2)?;
    let kv_len = k.dim(2)?;
    let mut rows = (SCORES_PER_HEAD / kv_len).max(1);
    if mask.is_some() && seq_len > 2 * CAUSAL_ROWS {
        rows = rows.min(CAUSAL_ROWS);
    }
    if seq_len <= rows {
        return attend(q, k, v, mask, scale, half_weights);
    }
    // Query rows a block at a time, so that the scores of a long prompt's chunk against a long
    // cache stay small (each row's result is the same as in one product). The mask is causal
    // (`mask`: row `r` sees no key past `kv_len - seq_len + r`), so a block meets only the
    // keys up to its last row's: the masked corner of a prompt's scores is never computed (a
    // masked key's weight is exactly 0, so leaving it out changes no sum).
    let mut parts = Vec::with_capacity(seq_len.div_ceil(rows));
    for start in (0..seq_len).step_by(rows) {
        let n = rows.min(seq_len - start);
        let seen = match mask {
            Some(_) => kv_len - seq_len + start + n,
            None => kv_len,
        };
        let mask = mask
            .map(|m| m.narrow(0, start, n)?.narrow(1, 0, seen))
            .transpose()?;
        parts.push(attend(
            &q.narrow(2, start, n)?.contiguous()?,
            &k.narrow(2, 0, seen)?,
            &v.narrow(2, 0, seen)?,
            mask.as_ref(),
            scale,
            half_weights,
        )?);
    }
    Tensor::cat(&parts, 1)
}

/// One decoding step over a half-precision cache, read where it lies (see
/// `tercuman_kernels::attention::attend_f16_cache`): `q` `(1, n_head, 1, head_dim)`, `k` and `v`
/// views `(1, n_kv_head, len, head_dim)` of the cache's buffers.
fn decode_over_f16(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (_, n_head, _, head_dim) = q.dims4()?;
    let (_, n_kv_head, len, _) = k.dims4()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (candle_core::Storage::Cpu(ks), candle_core::Storage::Cpu(vs)) = (&*ks, &*vs) else {
        candle_core::bail!("the half-precision KV cache runs on the CPU only")
    };
    let (Ok(kd), Ok(vd)) = (ks.as_slice::<half::f16>(), vs.as_slice::<half::f16>()) else {
        candle_core::bail!("KV cache: expected f16 rows")
    };
    // Each head's rows one after another; the heads `stride` values apart.
    let rows = |l: &candle_core::Layout| {
        let st = l.stride();
        (st[2] == head_dim && st[3] == 1).then_some(st[1])
    };
    let (Some(stride), Some(vstride)) = (rows(kl), rows(vl)) else {
        candle_core::bail!("KV cache: rows of a head are not contiguous")
    };
    if stride != vstride {
        candle_core::bail!("KV cache: keys and values laid out differently")
    }
    let out = tercuman_kernels::attention::attend_f16_cache(
        &q,
        n_head,
        head_dim,
        n_head / n_kv_head,
        &kd[kl.start_offset()..],
        &vd[vl.start_offset()..],
        stride,
        len,
        scale as f32,
    );
    Tensor::from_vec(out, (1, 1, n_head * head_dim), &Device::Cpu)
}

/// Query rows per block of a masked prompt's attention, so that the keys past a block's last
/// row are left out (see [`blocks_of_attention`]).
const CAUSAL_ROWS: usize = 64;

/// Attention scores held at once per head (query rows x keys): a 512-token chunk against a
/// 4096-position cache goes in blocks of 64 query rows.
const SCORES_PER_HEAD: usize = 512 * 512;

fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
    half_weights: bool,
) -> Result<Tensor> {
    let (b, n_head, seq_len, head_dim) = q.dims4()?;
    let (_, n_kv_head, kv_len, _) = k.dims4()?;
    let n_rep = n_head / n_kv_head;
    let q = q.reshape((b, n_kv_head, n_rep * seq_len, head_dim))?;
    let scores = q.matmul(&k.t()?)?;
    // Scaled, masked (row `i` of the scores is query row `i % seq_len`) and normalized in one
    // pass over the scores.
    let mut probs = if scores.device().is_cpu() && scores.dtype() == DType::F32 {
        tercuman_kernels::softmax::scaled_masked_softmax(&scores, scale as f32, mask)?
    } else {
        let mut scores = (scores * scale)?;
        if let Some(mask) = mask {
            scores = scores
                .reshape((b, n_kv_head, n_rep, seq_len, kv_len))?
                .broadcast_add(mask)?
                .reshape((b, n_kv_head, n_rep * seq_len, kv_len))?;
        }
        candle_nn::ops::softmax_last_dim(&scores)?
    };
    if half_weights {
        probs = probs.to_dtype(DType::F16)?.to_dtype(DType::F32)?;
    }
    probs
        .matmul(v)?
        .reshape((b, n_head, seq_len, head_dim))?
        .transpose(1, 2)?
        .reshape((b, seq_len, n_head * head_dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linearly_scaled_rope_turns_position_p_times_factor_as_the_plain_one_turns_p() {
        let dev = Device::Cpu;
        let mut plain = Rope::new(1e6, 8, &dev).unwrap();
        let mut scaled = Rope::scaled(1e6, 8.0, 8, &dev).unwrap();
        plain.ensure(16).unwrap();
        scaled.ensure(128).unwrap();
        for p in [0usize, 1, 5, 15] {
            for (a, b) in [(&plain.cos, &scaled.cos), (&plain.sin, &scaled.sin)] {
                let a = a.get(p).unwrap().to_vec1::<f32>().unwrap();
                let b = b.get(8 * p).unwrap().to_vec1::<f32>().unwrap();
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() < 1e-5, "position {p}: {x} against {y}");
                }
            }
        }
        // And it is not the plain table: position 8 of the plain one turns eight times as far.
        let a = plain.sin.get(8).unwrap().to_vec1::<f32>().unwrap();
        let b = scaled.sin.get(8).unwrap().to_vec1::<f32>().unwrap();
        assert!((a[0] - b[0]).abs() > 0.1, "{} against {}", a[0], b[0]);
    }

    fn visible(m: &Tensor) -> Vec<Vec<u8>> {
        m.to_vec2::<f32>()
            .unwrap()
            .into_iter()
            .map(|r| r.into_iter().map(|v| (v == 0.0) as u8).collect())
            .collect()
    }

    /// `n` positions from `start` as `(batch 1, 2 heads, n, head_dim 4)` keys, distinct values
    /// per position.
    fn kv_rows(start: usize, n: usize) -> Tensor {
        let v: Vec<f32> = (0..2 * n * 4)
            .map(|i| (start * 8 + i) as f32 * 0.5)
            .collect();
        Tensor::from_vec(v, (1, n, 2, 4), &Device::Cpu)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    }

    /// A windowed cache fed a long sequence in chunks and token by token holds, after every
    /// append, the last rows of the sequence (at least the window), at most the window and a
    /// chunk, and gives their first position; going back within what it holds keeps it, going
    /// back further empties it.
    #[test]
    fn windowed_cache_keeps_the_window_and_no_more() {
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let window = 300;
        let mut c = KvCache::windowed(window, DType::F32);
        let mut end = 0;
        let mut appends: Vec<usize> = vec![512, 512, 100, 512];
        appends.extend(std::iter::repeat_n(1, 700));
        for n in appends {
            let (k, v, start) = c
                .append(&kv_rows(end, n), &kv_rows(10_000 + end, n))
                .unwrap();
            end += n;
            let held = end - start;
            assert!(held <= KvCache::limit(window), "{held} rows held");
            assert!(
                start + window <= end - n + 1 || start == 0,
                "the window of the first new query"
            );
            assert_eq!(flat(&k), flat(&kv_rows(start, held).contiguous().unwrap()));
            assert_eq!(flat(&v), flat(&kv_rows(10_000 + start, held)));
        }
        assert!(c.start > 0);
        assert!(c.truncate(end - 10), "within the window it holds");
        assert!(
            !c.truncate(c.start + 5),
            "a position whose window was dropped"
        );
        assert_eq!((c.start, c.end), (0, 0));
    }

    /// The cache grown in steps (copying what it holds into a larger buffer each time), and
    /// cut back and overwritten, holds what one append of the same rows holds.
    #[test]
    fn kv_cache_grown_in_steps_equals_one_append() {
        let rows = |start: usize, n: usize| {
            let v: Vec<f32> = (0..2 * n * 4)
                .map(|i| (start * 8 + i) as f32 * 0.5)
                .collect();
            // (batch 1, 2 heads, n positions, head_dim 4), values distinct per position.
            Tensor::from_vec(v, (1, n, 2, 4), &Device::Cpu)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let mut whole = KvCache::new(DType::F32);
        let (k_all, v_all, _) = whole.append(&rows(0, 301), &rows(1000, 301)).unwrap();
        let mut grown = KvCache::new(DType::F32);
        for (start, n) in [(0, 200), (200, 100), (300, 1)] {
            grown
                .append(&rows(start, n), &rows(1000 + start, n))
                .unwrap();
        }
        // Cut back to 250 after writing garbage past it, then append the true rows again.
        assert!(grown.truncate(250));
        grown.append(&rows(7, 51), &rows(7, 51)).unwrap();
        assert!(grown.truncate(250));
        let (k, v, start) = grown.append(&rows(250, 51), &rows(1250, 51)).unwrap();
        assert_eq!(start, 0);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(k.dims(), k_all.dims());
        assert_eq!(flat(&k), flat(&k_all));
        assert_eq!(flat(&v), flat(&v_all));
    }

    /// A tensor of `shape` with spread-out values, distinct per `seed`.
    fn t(shape: (usize, usize, usize, usize), seed: usize) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n)
            .map(|i| (((i + seed) * 7919 % 1009) as f32 - 504.0) / 300.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Query rows taken a block at a time against a long cache give the rows of one product.
    #[test]
    fn attention_in_query_blocks_equals_one_product() {
        let (q, k, v) = (
            t((1, 4, 70, 8), 1),
            t((1, 2, 4000, 8), 2),
            t((1, 2, 4000, 8), 3),
        );
        const { assert!(70 > SCORES_PER_HEAD / 4000, "the product must go in blocks") };
        let m = mask(70, 3930, 0, Some(1000), &Device::Cpu).unwrap();
        let blocks = grouped_attention(&q, &k, &v, Some(&m), 0.3).unwrap();
        let whole = attend(&q, &k, &v, Some(&m), 0.3, false).unwrap();
        assert_eq!(blocks.dims(), &[1, 70, 32]);
        let (a, b) = (
            blocks.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            whole.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5, "{x} against {y}");
        }
    }

    /// A masked prompt in causal blocks (keys past each block's last row left out) gives the
    /// rows of one product over all keys, with cached positions before it and a window.
    #[test]
    fn causal_blocks_equal_one_product() {
        for window in [None, Some(120)] {
            let (q, k, v) = (
                t((1, 4, 200, 8), 1),
                t((1, 2, 250, 8), 2),
                t((1, 2, 250, 8), 3),
            );
            const { assert!(200 > 2 * CAUSAL_ROWS, "the product must go in blocks") };
            let m = mask(200, 50, 0, window, &Device::Cpu).unwrap();
            let blocks = grouped_attention(&q, &k, &v, Some(&m), 0.3).unwrap();
            let whole = attend(&q, &k, &v, Some(&m), 0.3, false).unwrap();
            let (a, b) = (
                blocks.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                whole.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6, "{x} against {y}");
            }
        }
    }

    #[test]
    fn a_half_precision_cache_is_attended_as_llama_cpp_attends_it() {
        let close = |a: &Tensor, b: &Tensor, tol: f32| {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= tol, "{x} against {y}");
            }
        };
        // As llama.cpp computes with an f16 cache: the query and the weights rounded to f16.
        let half = |x: &Tensor| {
            x.to_dtype(DType::F16)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
        };
        // 6 query heads over 2 key/value heads; a prompt of 300 rows, then one more.
        let mut cache = KvCache::new(DType::F16);
        cache.expect(301);
        let (k, v) = (t((1, 2, 300, 16), 2), t((1, 2, 300, 16), 3));
        let (hk, hv, _) = cache.append(&k, &v).unwrap();
        assert_eq!(hk.dtype(), DType::F16);
        let q = t((1, 6, 300, 16), 1);
        let m = mask(300, 0, 0, None, &Device::Cpu).unwrap();
        let wide = |x: &Tensor| x.to_dtype(DType::F32).unwrap();
        close(
            &grouped_attention(&q, &hk, &hv, Some(&m), 0.3).unwrap(),
            &attend(&half(&q), &wide(&hk), &wide(&hv), Some(&m), 0.3, true).unwrap(),
            1e-5,
        );
        let (k1, v1) = (t((1, 2, 1, 16), 4), t((1, 2, 1, 16), 5));
        let (hk, hv, _) = cache.append(&k1, &v1).unwrap();
        let q1 = t((1, 6, 1, 16), 6);
        // Read in place: all rows, and a window of the last 100 (a view that starts inside
        // the buffer, as a sliding layer's decoding step reads it).
        for start in [0, 201] {
            let (wk, wv) = (
                hk.narrow(2, start, 301 - start).unwrap(),
                hv.narrow(2, start, 301 - start).unwrap(),
            );
            close(
                &grouped_attention(&q1, &wk, &wv, None, 0.3).unwrap(),
                &attend(&half(&q1), &wide(&wk), &wide(&wv), None, 0.3, true).unwrap(),
                // Another kernel's softmax: a weight may round to the next f16 (2^-11).
                1e-3,
            );
        }
        // What the cache holds is the rows rounded to half precision.
        let back = wide(&hk.narrow(2, 300, 1).unwrap());
        let want = k1
            .to_dtype(DType::F16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        close(&back, &want, 0.0);
    }

    #[test]
    fn prefill_chunks_cover_the_prompt_in_order() {
        let tokens: Vec<u32> = (0..1100).collect();
        let chunks: Vec<(usize, usize)> = prefill_chunks(&tokens, 7)
            .map(|(c, pos)| (c.len(), pos))
            .collect();
        assert_eq!(chunks, [(512, 7), (512, 519), (76, 1031)]);
        let joined: Vec<u32> = prefill_chunks(&tokens, 7)
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        assert_eq!(joined, tokens);
        assert_eq!(prefill_chunks(&tokens[..3], 0).count(), 1);
    }

    #[test]
    fn mask_with_cached_positions_sees_the_cache() {
        let m = mask(2, 3, 0, None, &Device::Cpu).unwrap();
        assert_eq!(visible(&m), [vec![1, 1, 1, 1, 0], vec![1, 1, 1, 1, 1]]);
    }

    #[test]
    fn sliding_window_hides_keys_window_or_more_back() {
        let m = mask(4, 0, 0, Some(2), &Device::Cpu).unwrap();
        assert_eq!(
            visible(&m),
            [
                vec![1, 0, 0, 0],
                vec![1, 1, 0, 0],
                vec![0, 1, 1, 0],
                vec![0, 0, 1, 1]
            ]
        );
        let m = mask(1, 3, 0, Some(2), &Device::Cpu).unwrap();
        assert_eq!(visible(&m), [vec![0, 0, 1, 1]]);
        // Keys from position 2 on only (a windowed cache that dropped 0 and 1).
        let m = mask(2, 4, 2, Some(3), &Device::Cpu).unwrap();
        assert_eq!(visible(&m), [vec![1, 1, 1, 0], vec![0, 1, 1, 1]]);
    }
}
