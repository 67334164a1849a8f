//! Matrix products with ggml's k-quant weights, Q4_K and Q6_K (super-blocks of 256 weights),
//! kept exactly as the GGUF file stores them, with activations quantized once per row to
//! ggml's Q8_K (256 int8, an f32 scale, and the sums of each 16), as llama.cpp does.
//!
//! Written by hand because candle 0.11.1's x86 path for these types keeps a repacked copy of
//! every weight matrix beside the original (`PackedCache`, built at the first product): on the
//! Qwen2.5 1.5B shape about 1.3x the file's bytes in memory, and a copy read at every token
//! (README, "Qwen2.5 1.5B"). Here each matrix is its GGUF bytes and nothing else.
//!
//! The integer sums are the ones ggml forms: per 32-weight sub-block (Q4_K) or 16-weight one
//! (Q6_K), the 4- or 6-bit codes times the int8 activations, times the sub-block's integer
//! scale; the minimum (Q4_K) and the offset of 32 (Q6_K) come in through the activation sums.
//! Only the order of the float additions differs from candle's and ggml's kernels.

use std::io::SeekFrom;

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;

use crate::par::{SharedOut, SharedSlice};
use crate::storage::{Bytes, Source};
use crate::Isa;

/// Weights per super-block.
const QK_K: usize = 256;

/// The k-quant types with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KQuant {
    /// 144 bytes per 256 weights: f16 d and dmin, 12 bytes of eight 6-bit scales and mins,
    /// 128 bytes of 4-bit codes; weight = d * scale * q - dmin * min.
    Q4K,
    /// 210 bytes per 256 weights: 128 bytes of low 4 bits, 64 of high 2 bits, sixteen int8
    /// scales, f16 d; weight = d * scale * (q - 32).
    Q6K,
}

impl KQuant {
    pub fn of(dtype: GgmlDType) -> Option<Self> {
        match dtype {
            GgmlDType::Q4K => Some(Self::Q4K),
            GgmlDType::Q6K => Some(Self::Q6K),
            _ => None,
        }
    }

    /// Bytes of one super-block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4K => 144,
            Self::Q6K => 210,
        }
    }
}

/// A `rows x cols` weight matrix of one k-quant type; `forward` computes `x @ W^T`.
pub struct KMatrix {
    kind: KQuant,
    rows: usize,
    cols: usize,
    /// Row after row, each `cols / 256` super-blocks as the GGUF stores them: read, or the
    /// file's pages mapped.
    data: Bytes,
}

impl KMatrix {
    /// Reads tensor `name` from a GGUF file as it is stored, or maps it where `reader` can (see
    /// [`Source`]). `None` when it is of another type or shape.
    pub fn from_gguf<R: Source>(
        ct: &gguf_file::Content,
        reader: &mut R,
        name: &str,
    ) -> Result<Option<Self>> {
        let Some(info) = ct.tensor_infos.get(name) else {
            candle_core::bail!("cannot find tensor info for {name}")
        };
        let (Some(kind), [rows, cols]) = (KQuant::of(info.ggml_dtype), info.shape.dims()) else {
            return Ok(None);
        };
        if !cols.is_multiple_of(QK_K) {
            return Ok(None);
        }
        let offset = ct.tensor_data_offset + info.offset;
        let len = rows * cols / QK_K * kind.block_bytes();
        let data = match reader.mapped(offset, len) {
            Some(bytes) => bytes,
            None => {
                reader.seek(SeekFrom::Start(offset))?;
                let mut data = vec![0u8; len];
                reader.read_exact(&mut data)?;
                Bytes::Owned(data)
            }
        };
        Self::from_bytes(kind, *rows, *cols, data).map(Some)
    }

    /// The blocks of a candle `QTensor` of a k-quant type (a copy; `None` for another type).
    pub fn from_gguf_blocks(q: &candle_core::quantized::QTensor) -> Result<Option<Self>> {
        let (Some(kind), [rows, cols]) = (KQuant::of(q.dtype()), q.shape().dims()) else {
            return Ok(None);
        };
        Self::from_raw(kind, *rows, *cols, q.data()?.to_vec()).map(Some)
    }

    /// From ggml blocks of `kind`, row after row.
    pub fn from_raw(kind: KQuant, rows: usize, cols: usize, data: Vec<u8>) -> Result<Self> {
        Self::from_bytes(kind, rows, cols, Bytes::Owned(data))
    }

    fn from_bytes(kind: KQuant, rows: usize, cols: usize, data: Bytes) -> Result<Self> {
        if !cols.is_multiple_of(QK_K) || data.len() != rows * cols / QK_K * kind.block_bytes() {
            candle_core::bail!(
                "{kind:?}: {rows} x {cols} does not fit {} bytes",
                data.len()
            )
        }
        Ok(Self {
            kind,
            rows,
            cols,
            data,
        })
    }

    pub fn kind(&self) -> KQuant {
        self.kind
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the weights take (and a decode step reads).
    pub fn weight_bytes(&self) -> usize {
        self.data.len()
    }

    /// Whether the weights are the model file's mapped pages.
    pub fn is_mapped(&self) -> bool {
        self.data.is_mapped()
    }

    fn row(&self, j: usize) -> &[u8] {
        let n = self.cols / QK_K * self.kind.block_bytes();
        &self.data[j * n..(j + 1) * n]
    }

    /// `x @ W^T` for `x` of shape `(.., cols)`: shape `(.., rows)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }

    /// The rows named by `ids` (any shape of u32), dequantized: shape `(ids.., cols)`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        let what = match self.kind {
            KQuant::Q4K => "q4_k",
            KQuant::Q6K => "q6_k",
        };
        crate::storage::gather_rows(ids, self.rows, self.cols, what, |id, dst| {
            self.dequantize_row(id, dst)
        })
    }

    fn dequantize_row(&self, j: usize, dst: &mut [f32]) {
        let bytes = self.kind.block_bytes();
        for (block, out) in self
            .row(j)
            .chunks_exact(bytes)
            .zip(dst.chunks_exact_mut(QK_K))
        {
            match self.kind {
                KQuant::Q4K => scalar::dequantize_q4k(block, out),
                KQuant::Q6K => scalar::dequantize_q6k(block, out),
            }
        }
    }

    /// Weight rows `range` of the product into `dst` (`m` rows of `self.rows`), the work of one
    /// thread. Each weight row is read once for up to eight activation rows (a prompt's), and
    /// the outputs are written once per activation row.
    fn run_rows(
        &self,
        kernel: Isa,
        range: std::ops::Range<usize>,
        act: &Activations,
        sets: &[(usize, Vec<ActRow>)],
        dst: &SharedOut,
    ) {
        let m = act.m;
        #[cfg(target_arch = "x86_64")]
        let range = if kernel.on_tiles(m) {
            // Whole tiles of 16 weight rows on AMX, the rows after the last as below.
            let whole = range.start + range.len() / amx::ROWS * amx::ROWS;
            let mut scratch = amx::Scratch::default();
            let mut out = vec![0f32; m * amx::ROWS];
            for j0 in (range.start..whole).step_by(amx::ROWS) {
                // SAFETY: `Isa::Amx` is only detected where AMX is usable, on a CPU with
                // AVX-512 F, BW, VL and VNNI and F16C; the activations are padded for it
                // (`Activations::quantize` with the same `on_tiles`).
                unsafe { amx::tile(self, j0, act, m, &mut scratch, &mut out) };
                for (r, out) in out.chunks_exact(amx::ROWS).enumerate() {
                    // SAFETY: cells (r, j0..j0 + 16) are written by this work item only.
                    unsafe { dst.write(r * self.rows + j0, out) }
                }
            }
            whole..range.end
        } else {
            range
        };
        #[cfg(target_arch = "x86_64")]
        if let (Some(one), false) = (&act.one_row, range.is_empty()) {
            // A decoding step: all the rows in one call.
            let bytes = self.row(range.start).len();
            let w = &self.data[range.start * bytes..range.end * bytes];
            let mut out = vec![0f32; range.len()];
            // SAFETY: `one_row` is only made where the CPU has AVX-512 F, BW, VL and VNNI,
            // and AVX2, FMA and F16C (`Isa::one_row_on_avx512`); the kernels check the slices'
            // lengths.
            unsafe {
                match self.kind {
                    KQuant::Q4K => avx512::gemv_q4k(w, (&one.q, &act.d, &one.sums), &mut out),
                    KQuant::Q6K => avx512::gemv_q6k(w, act.row(0), &mut out),
                }
            }
            // SAFETY: cells (0, range) are written by this work item only.
            unsafe { dst.write(range.start, &out) };
            return;
        }
        let (start, len) = (range.start, range.len());
        let mut out = vec![0f32; m * len];
        // A tile of weight rows stays in cache while every set of activation rows passes
        // over it: a prompt's activations are read once per tile, not once per weight row.
        for tile in range.clone().step_by(TILE_ROWS) {
            let tile = tile..(tile + TILE_ROWS).min(range.end);
            for (r, rows) in sets {
                for j in tile.clone() {
                    let v = kernel.kdots(self.kind, self.row(j), rows);
                    for (t, v) in v[..rows.len()].iter().enumerate() {
                        out[(r + t) * len + j - start] = *v;
                    }
                }
            }
        }
        for (r, out) in out.chunks_exact(len.max(1)).enumerate() {
            // SAFETY: cells (r, start..start + len) are written by this work item only.
            unsafe { dst.write(r * self.rows + start, out) }
        }
    }

    /// `x @ W^T` for each of `parts` (all with the same columns) on the `m` rows of `xs`,
    /// quantized once: one output of `m * rows` per part, all parts' rows handed to the threads
    /// together.
    fn products(parts: &[&KMatrix], xs: &[f32], m: usize) -> Vec<Vec<f32>> {
        let cols = parts.first().map_or(0, |p| p.cols);
        let kernel = Isa::detect();
        let act = Activations::quantize(xs, cols, kernel);
        let sets = act.sets(m);
        let mut outs: Vec<Vec<f32>> = parts.iter().map(|p| vec![0f32; m * p.rows]).collect();
        let dsts: Vec<SharedOut> = outs.iter_mut().map(|o| SharedOut::new(o)).collect();
        // The threads take items: rows, or on AMX tiles of 16 rows counted from each part's
        // first (a part's product is then the same whether made alone or with others).
        let per_item = if kernel.on_tiles(m) { 16 } else { 1 };
        let ends: Vec<usize> = parts
            .iter()
            .scan(0, |end, p| {
                *end += p.rows.div_ceil(per_item);
                Some(*end)
            })
            .collect();
        let total = ends.last().copied().unwrap_or(0);
        let run = |range: std::ops::Range<usize>| {
            let mut begin = 0;
            for ((part, dst), &end) in parts.iter().zip(&dsts).zip(&ends) {
                let (a, b) = (range.start.max(begin), range.end.min(end));
                if a < b {
                    let rows = (a - begin) * per_item..((b - begin) * per_item).min(part.rows);
                    part.run_rows(kernel, rows, &act, &sets, dst);
                }
                begin = end;
            }
        };
        if total * per_item * m * (cols / QK_K) < 2048 {
            run(0..total);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(total, run);
        }
        drop(dsts);
        outs
    }

    /// `x @ W^T` for each of `parts` (matrices with the same columns applied to one input: q,
    /// k and v, or gate and up): the input is quantized once, and all their rows go to the
    /// threads in one hand-off instead of one per matrix (a decoding step of Qwen2.5 1.5B made
    /// seven hand-offs per layer, now four).
    pub fn forward_many(parts: &[&KMatrix], x: &Tensor) -> Result<Vec<Tensor>> {
        let Some(cols) = parts.first().map(|p| p.cols) else {
            return Ok(Vec::new());
        };
        if parts.iter().any(|p| p.cols != cols) {
            candle_core::bail!("k-quant: matrices applied to one input must have the same columns")
        }
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let candle_core::Storage::Cpu(storage) = &*storage else {
            candle_core::bail!("k-quant: input must be on the CPU")
        };
        let (xs, m) = crate::storage::input(storage, layout, cols, "k-quant")?;
        let outs = Self::products(parts, xs, m);
        let dims = layout.shape().dims().to_vec();
        parts
            .iter()
            .zip(outs)
            .map(|(p, out)| {
                let mut dims = dims.clone();
                if let Some(last) = dims.last_mut() {
                    *last = p.rows;
                }
                Tensor::from_vec(out, dims, &candle_core::Device::Cpu)
            })
            .collect()
    }
}

/// Activation rows one weight row is dotted with at a time.
const ROWS_AT_ONCE: usize = 8;
/// Weight rows a prompt's activation rows pass over together (16 rows of Qwen2.5 1.5B's widest
/// matrix, 8960 columns of Q6_K, take 115 KB: within L2).
const TILE_ROWS: usize = 16;

/// Activation rows quantized to Q8_K blocks.
struct Activations {
    /// Rows (before any padding).
    m: usize,
    blocks: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    /// Sums of each 16 consecutive `q`.
    bsums: Vec<i16>,
    /// For AMX: `d` times the sums of each 32 (empty otherwise).
    sums32: Vec<f32>,
    /// For a decoding step's one row on AVX-512: what `avx512::gemv_q4k` reads.
    one_row: Option<OneRow>,
}

/// One activation row as `avx512::gemv_q4k` reads it: the values of each super-block with
/// its 32-value sub-blocks in the order 0, 2, 1, 3, 4, 6, 5, 7 (the order in which the low and
/// high nibbles of 64 code bytes hold the weights), and the sums of each 32.
struct OneRow {
    q: Vec<i8>,
    sums: Vec<i16>,
}

impl OneRow {
    /// Sub-block `i` of the kernel's order holds sub-block `ORDER[i]` of the weights.
    const ORDER: [usize; 8] = [0, 2, 1, 3, 4, 6, 5, 7];

    fn new(q: &[i8], bsums: &[i16]) -> Self {
        let mut reordered = Vec::with_capacity(q.len());
        for block in q.chunks_exact(QK_K) {
            for i in Self::ORDER {
                reordered.extend_from_slice(&block[32 * i..32 * i + 32]);
            }
        }
        let sums = bsums.chunks_exact(2).map(|p| p[0] + p[1]).collect();
        OneRow { q: reordered, sums }
    }
}

impl Activations {
    /// As candle's `BlockQ8K::from_float` (ggml's `quantize_row_q8_K_ref`): the value of
    /// largest magnitude maps to -127 (its sign kept in the scale), values rounded half away
    /// from zero.
    ///
    /// For AMX (`Isa::on_tiles`) the rows are padded with zeros to a multiple of 16, whole
    /// tiles, and `sums32` made.
    fn quantize(x: &[f32], cols: usize, isa: Isa) -> Self {
        let blocks = cols / QK_K;
        let m = x.len() / cols.max(1);
        let tiles = isa.on_tiles(m);
        let rows = if tiles { m.next_multiple_of(16) } else { m };
        let n = rows * blocks;
        let mut q = vec![0i8; rows * cols];
        let mut d = vec![0f32; n];
        let mut bsums = vec![0i16; n * QK_K / 16];
        let blocks_in = x.len() / QK_K;
        let quantize = |i: usize, qs: &mut [i8], d: &mut f32, bs: &mut [i16]| {
            let xs = &x[i * QK_K..(i + 1) * QK_K];
            match isa {
                // SAFETY: `Avx512` and `Amx` are only detected on a CPU with AVX-512 F, BW
                // and VL; the kernel checks the slices' lengths.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Amx => unsafe { avx512::quantize_q8k(xs, qs, d, bs) },
                _ => scalar::quantize_q8k(xs, qs, d, bs),
            }
        };
        // A prompt's rows are quantized by the threads, a few at a time (one thread took 5%
        // of a Qwen2.5 1.5B prompt); a decoding step's row by this one.
        if blocks_in >= 64 {
            let (qv, dv, bv) = (
                SharedSlice::new(&mut q),
                SharedSlice::new(&mut d),
                SharedSlice::new(&mut bsums),
            );
            candle_core::utils::barrier_pool().execute_chunked(blocks_in, |range| {
                for i in range {
                    // SAFETY: block `i`'s values, scale and sums are this item's alone.
                    unsafe {
                        let d = &mut dv.chunk_mut(i, 1)[0];
                        quantize(i, qv.chunk_mut(i, QK_K), d, bv.chunk_mut(i, QK_K / 16));
                    }
                }
            });
        } else {
            for (i, ((qs, d), bs)) in q
                .chunks_exact_mut(QK_K)
                .zip(&mut d)
                .zip(bsums.chunks_exact_mut(QK_K / 16))
                .take(blocks_in)
                .enumerate()
            {
                quantize(i, qs, d, bs);
            }
        }
        let sums32 = if tiles {
            let blocks_of = bsums.chunks_exact(QK_K / 16).zip(&d);
            blocks_of
                .flat_map(|(bs, &d)| bs.chunks_exact(2).map(move |p| d * (p[0] + p[1]) as f32))
                .collect()
        } else {
            Vec::new()
        };
        let one_row = (m == 1 && isa.one_row_on_avx512()).then(|| OneRow::new(&q, &bsums));
        Self {
            m,
            blocks,
            q,
            d,
            bsums,
            sums32,
            one_row,
        }
    }

    /// The first `m` rows in sets of up to `ROWS_AT_ONCE`, each with its first row's index,
    /// sliced once for every weight row.
    fn sets(&self, m: usize) -> Vec<(usize, Vec<ActRow<'_>>)> {
        (0..m)
            .step_by(ROWS_AT_ONCE)
            .map(|r| {
                (
                    r,
                    (r..m.min(r + ROWS_AT_ONCE)).map(|r| self.row(r)).collect(),
                )
            })
            .collect()
    }

    /// Row `r`: its int8 values, block scales and sums of 16.
    fn row(&self, r: usize) -> ActRow<'_> {
        let b = self.blocks;
        (
            &self.q[r * b * QK_K..(r + 1) * b * QK_K],
            &self.d[r * b..(r + 1) * b],
            &self.bsums[r * b * 16..(r + 1) * b * 16],
        )
    }
}

impl Isa {
    /// The dots of weight row `w` with `rows` (1 to `ROWS_AT_ONCE` of them).
    #[inline]
    fn kdots(self, kind: KQuant, w: &[u8], rows: &[ActRow]) -> [f32; ROWS_AT_ONCE] {
        assert!((1..=ROWS_AT_ONCE).contains(&rows.len()));
        let mut out = [0f32; ROWS_AT_ONCE];
        match self {
            Isa::Scalar => {
                for (o, &(q, d, bs)) in out.iter_mut().zip(rows) {
                    *o = match kind {
                        KQuant::Q4K => scalar::dot_q4k(w, q, d, bs),
                        KQuant::Q6K => scalar::dot_q6k(w, q, d, bs),
                    };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                // SAFETY: the CPU has AVX2, FMA and F16C (checked in `detect`); the kernels
                // check the slices' lengths.
                unsafe {
                    match (kind, rows) {
                        (KQuant::Q4K, [row]) => out[0] = avx2::dot_q4k(w, *row),
                        (KQuant::Q6K, [row]) => out[0] = avx2::dot_q6k(w, *row),
                        (KQuant::Q4K, _) => avx2::gemm_q4k(w, rows, &mut out),
                        (KQuant::Q6K, _) => avx2::gemm_q6k(w, rows, &mut out),
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Amx => {
                // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI, and AVX2, FMA and F16C
                // (checked in `detect`); the kernels check the slices' lengths.
                unsafe {
                    match kind {
                        KQuant::Q4K => avx512::gemm_q4k(w, rows, &mut out),
                        KQuant::Q6K => avx512::gemm_q6k(w, rows, &mut out),
                    }
                }
            }
        }
        out
    }
}

/// One activation row: its int8 values, block scales and sums of 16.
type ActRow<'a> = (&'a [i8], &'a [f32], &'a [i16]);

/// Asserts that each of `rows` holds `blocks` super-blocks and `out` a place for each.
#[cfg(target_arch = "x86_64")]
fn check_rows(rows: &[ActRow], blocks: usize, out: &[f32]) {
    assert!(rows.len() <= ROWS_AT_ONCE && out.len() >= rows.len());
    for (q, d, bs) in rows {
        assert!(q.len() >= blocks * QK_K && d.len() >= blocks && bs.len() >= blocks * 16);
    }
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K block, from its 12 packed bytes
/// (ggml's `get_scale_min_k4`).
fn q4k_scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
    (sc, mn)
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

mod scalar {
    use super::*;

    /// One block of 256 activations to Q8_K (see `Activations::quantize`); an all-zero block
    /// leaves `qs`, `d` and `bs` as they were (zeros).
    pub fn quantize_q8k(xs: &[f32], qs: &mut [i8], d: &mut f32, bs: &mut [i16]) {
        let mut max = 0f32;
        let mut amax = 0f32;
        for &v in xs {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            return;
        }
        let iscale = -127f32 / max;
        for (q, &v) in qs.iter_mut().zip(xs) {
            *q = crate::round_away(iscale * v).clamp(-128, 127) as i8;
        }
        for (s, qs) in bs.iter_mut().zip(qs.chunks_exact(16)) {
            *s = qs.iter().map(|&v| v as i16).sum();
        }
        *d = 1.0 / iscale;
    }

    pub fn dequantize_q4k(b: &[u8], out: &mut [f32]) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (sc, mn) = q4k_scales_mins(&b[4..16]);
        for i in 0..4 {
            let qs = &b[16 + 32 * i..16 + 32 * (i + 1)];
            let (d1, m1) = (d * sc[2 * i] as f32, dmin * mn[2 * i] as f32);
            let (d2, m2) = (d * sc[2 * i + 1] as f32, dmin * mn[2 * i + 1] as f32);
            for (l, &q) in qs.iter().enumerate() {
                out[64 * i + l] = d1 * (q & 0x0F) as f32 - m1;
                out[64 * i + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }

    /// The 256 unsigned 6-bit codes of a Q6_K block, in weight order.
    fn q6k_codes(b: &[u8]) -> [u8; QK_K] {
        let mut q = [0u8; QK_K];
        for n in 0..2 {
            let ql = &b[64 * n..64 * (n + 1)];
            let qh = &b[128 + 32 * n..128 + 32 * (n + 1)];
            let q = &mut q[128 * n..128 * (n + 1)];
            for l in 0..32 {
                q[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
                q[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
                q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
            }
        }
        q
    }

    pub fn dequantize_q6k(b: &[u8], out: &mut [f32]) {
        let d = f16_at(b, 208);
        let q = q6k_codes(b);
        for (i, (out, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let s = d * b[192 + i] as i8 as f32;
            for (o, &q) in out.iter_mut().zip(q) {
                *o = s * (q as i32 - 32) as f32;
            }
        }
    }

    pub fn dot_q4k(w: &[u8], yq: &[i8], yd: &[f32], bs: &[i16]) -> f32 {
        let mut sum = 0f32;
        for ((b, y), (&dy, bs)) in w
            .chunks_exact(144)
            .zip(yq.chunks_exact(QK_K))
            .zip(yd.iter().zip(bs.chunks_exact(16)))
        {
            let (sc, mn) = q4k_scales_mins(&b[4..16]);
            let mut sumi = 0i32;
            let mut mins = 0i32;
            for i in 0..4 {
                let qs = &b[16 + 32 * i..16 + 32 * (i + 1)];
                let (mut lo, mut hi) = (0i32, 0i32);
                for (l, &q) in qs.iter().enumerate() {
                    lo += (q & 0x0F) as i32 * y[64 * i + l] as i32;
                    hi += (q >> 4) as i32 * y[64 * i + 32 + l] as i32;
                }
                sumi += sc[2 * i] as i32 * lo + sc[2 * i + 1] as i32 * hi;
            }
            for j in 0..8 {
                mins += mn[j] as i32 * (bs[2 * j] as i32 + bs[2 * j + 1] as i32);
            }
            sum += dy * (f16_at(b, 0) * sumi as f32 - f16_at(b, 2) * mins as f32);
        }
        sum
    }

    pub fn dot_q6k(w: &[u8], yq: &[i8], yd: &[f32], bs: &[i16]) -> f32 {
        let mut sum = 0f32;
        for ((b, y), (&dy, bs)) in w
            .chunks_exact(210)
            .zip(yq.chunks_exact(QK_K))
            .zip(yd.iter().zip(bs.chunks_exact(16)))
        {
            let q = q6k_codes(b);
            let mut sumi = 0i32;
            for i in 0..16 {
                let s: i32 = (0..16)
                    .map(|l| q[16 * i + l] as i32 * y[16 * i + l] as i32)
                    .sum();
                sumi += b[192 + i] as i8 as i32 * (s - 32 * bs[i] as i32);
            }
            sum += dy * f16_at(b, 208) * sumi as f32;
        }
        sum
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// Sum of the eight f32 lanes.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: only called from the `avx2,fma,f16c` kernels below, on a CPU that has them.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }

    /// The two f16 at `p` as f32.
    #[inline(always)]
    pub(super) unsafe fn two_f16(p: *const u8) -> (f32, f32) {
        // SAFETY: `p` points to 4 readable bytes (the callers); the CPU has F16C.
        unsafe {
            let v = _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
            (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
        }
    }

    /// A Q4_K block's scales (bytes 0..8) and mins (8..16) from its 12 packed bytes at `p`,
    /// as ggml unpacks them (`get_scale_min_k4` for all eight at once).
    #[inline(always)]
    pub(super) unsafe fn q4k_unpack(p: *const u8) -> [u32; 4] {
        const M1: u32 = 0x3f3f3f3f;
        const M2: u32 = 0x0f0f0f0f;
        const M3: u32 = 0x03030303;
        // SAFETY: `p` points to the block's 12 scale bytes (the caller).
        let u: [u32; 3] =
            std::array::from_fn(|i| unsafe { (p.add(4 * i) as *const u32).read_unaligned() });
        [
            u[0] & M1,
            (u[2] & M2) | (((u[0] >> 6) & M3) << 4),
            u[1] & M1,
            ((u[2] >> 4) & M2) | (((u[1] >> 6) & M3) << 4),
        ]
    }

    /// Q4_K row `w` against one activation row (decode: the weights stream from memory once
    /// per token, and everything else stays in registers).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q4k(w: &[u8], (q, dq, bs): ActRow) -> f32 {
        let blocks = dq.len();
        assert!(w.len() >= blocks * 144 && q.len() >= blocks * QK_K && bs.len() >= blocks * 16);
        let low = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut acc_m = _mm_setzero_ps();
        for k in 0..blocks {
            // SAFETY: block `k` of `w` (144 bytes) and of the activation row (256 values, 16
            // sums, one scale) are in bounds (the assert); the CPU has AVX2, FMA and F16C.
            unsafe {
                let b = w.as_ptr().add(k * 144);
                crate::prefetch_ahead(b, 144);
                let (d, dmin) = two_f16(b);
                let sm = q4k_unpack(b.add(4));
                let sm: [u8; 16] = std::mem::transmute(sm);
                let mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(sm.as_ptr().add(8) as *const __m128i));
                let mut sumi = _mm256_setzero_si256();
                for i in 0..4 {
                    let bits = _mm256_loadu_si256(b.add(16 + 32 * i) as *const __m256i);
                    let lo = _mm256_and_si256(bits, low);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low);
                    let y = q.as_ptr().add(k * QK_K + 64 * i);
                    let ylo = _mm256_loadu_si256(y as *const __m256i);
                    let yhi = _mm256_loadu_si256(y.add(32) as *const __m256i);
                    let p = _mm256_add_epi32(
                        _mm256_madd_epi16(
                            _mm256_maddubs_epi16(lo, ylo),
                            _mm256_set1_epi16(sm[2 * i] as i16),
                        ),
                        _mm256_madd_epi16(
                            _mm256_maddubs_epi16(hi, yhi),
                            _mm256_set1_epi16(sm[2 * i + 1] as i16),
                        ),
                    );
                    sumi = _mm256_add_epi32(sumi, p);
                }
                let dy = *dq.get_unchecked(k);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), _mm256_cvtepi32_ps(sumi), acc);
                // The mins: each against the sum of its 32 activations (two sums of 16).
                let bs = _mm256_loadu_si256(bs.as_ptr().add(16 * k) as *const __m256i);
                let pairs =
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                let prod = _mm_cvtepi32_ps(_mm_madd_epi16(mins, pairs));
                acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin * dy), prod, acc_m);
            }
        }
        // SAFETY: this CPU has AVX2 (the caller's promise).
        unsafe {
            let m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
            let m = _mm_add_ss(m, _mm_movehdup_ps(m));
            hsum(acc) - _mm_cvtss_f32(m)
        }
    }

    /// Q4_K row `w` against several activation rows (a prompt's), into `out[..rows.len()]`.
    ///
    /// Each super-block's 256 codes are unpacked to bytes and its eight scales widened once,
    /// and every activation row then takes them as they are: per 32 weights and row, one load,
    /// one `maddubs`, one `madd` with the scale and one add. (Unpacking inside the row loop, as
    /// `dot_q4k` does for one row, kept four rows' accumulators, codes and scales live at once:
    /// more than the sixteen registers, and the spills made Q4_K 59% of a Qwen2.5 1.5B prompt.)
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm_q4k(w: &[u8], rows: &[ActRow], out: &mut [f32]) {
        let blocks = rows.first().map_or(0, |r| r.1.len());
        assert!(w.len() >= blocks * 144);
        check_rows(rows, blocks, out);
        let low = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); ROWS_AT_ONCE];
        for k in 0..blocks {
            // SAFETY: block `k` of `w` (144 bytes) and of every activation row (256 values, 16
            // sums, one scale) are in bounds (the asserts); the CPU has AVX2, FMA and F16C.
            unsafe {
                let b = w.as_ptr().add(k * 144);
                let (d, dmin) = two_f16(b);
                let sm: [u8; 16] = std::mem::transmute(q4k_unpack(b.add(4)));
                // Codes `j` and scale `j` are those of weights 32j..32j + 32.
                let mut codes = [_mm256_setzero_si256(); 8];
                for i in 0..4 {
                    let bits = _mm256_loadu_si256(b.add(16 + 32 * i) as *const __m256i);
                    codes[2 * i] = _mm256_and_si256(bits, low);
                    codes[2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low);
                }
                let mut scales = [_mm256_setzero_si256(); 8];
                for (s, &v) in scales.iter_mut().zip(&sm[..8]) {
                    *s = _mm256_set1_epi16(v as i16);
                }
                // Each min twice, against the two sums of 16 of its 32 activations.
                let m8 = _mm_loadl_epi64(sm.as_ptr().add(8) as *const __m128i);
                let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
                for (acc, &(q, dq, bs)) in acc.iter_mut().zip(rows) {
                    let y = q.as_ptr().add(k * QK_K);
                    let mut s = [_mm256_setzero_si256(); 2];
                    for j in 0..8 {
                        let yv = _mm256_loadu_si256(y.add(32 * j) as *const __m256i);
                        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(codes[j], yv), scales[j]);
                        s[j % 2] = _mm256_add_epi32(s[j % 2], p);
                    }
                    let bsv = _mm256_loadu_si256(bs.as_ptr().add(16 * k) as *const __m256i);
                    let summ = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsv));
                    let sumi = _mm256_cvtepi32_ps(_mm256_add_epi32(s[0], s[1]));
                    let dy = *dq.get_unchecked(k);
                    let a = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), sumi, *acc);
                    *acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * dy), summ, a);
                }
            }
        }
        for (o, acc) in out.iter_mut().zip(&acc[..rows.len()]) {
            // SAFETY: this CPU has AVX2 (the caller's promise).
            *o = unsafe { hsum(*acc) };
        }
    }

    /// A Q6_K block's 256 codes (0..64) in weight order, 32 to a register.
    #[inline(always)]
    unsafe fn q6k_codes(b: *const u8) -> [__m256i; 8] {
        // SAFETY: `b` points to a whole block (the callers); AVX2 as they run with.
        unsafe {
            let low = _mm256_set1_epi8(0x0F);
            let two = _mm256_set1_epi8(0x03);
            let mut codes = [_mm256_setzero_si256(); 8];
            for n in 0..2 {
                let ql0 = _mm256_loadu_si256(b.add(64 * n) as *const __m256i);
                let ql1 = _mm256_loadu_si256(b.add(64 * n + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(b.add(128 + 32 * n) as *const __m256i);
                // The two high bits of each code, at bits 4 and 5.
                let h0 = _mm256_slli_epi16(_mm256_and_si256(qh, two), 4);
                let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4);
                let h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4);
                let h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4);
                codes[4 * n] = _mm256_or_si256(_mm256_and_si256(ql0, low), h0);
                codes[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(ql1, low), h1);
                codes[4 * n + 2] =
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), h2);
                codes[4 * n + 3] =
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low), h3);
            }
            codes
        }
    }

    /// Q6_K row `w` against one activation row.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_q6k(w: &[u8], row: ActRow) -> f32 {
        let mut out = [0f32];
        // SAFETY: as the caller's; `gemm_q6k` checks the lengths.
        unsafe { gemm_q6k(w, &[row], &mut out) };
        out[0]
    }

    /// Q6_K row `w` against several activation rows, into `out[..rows.len()]`: each block's
    /// codes are put together and its scales widened once for all of them, as in `gemm_q4k`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm_q6k(w: &[u8], rows: &[ActRow], out: &mut [f32]) {
        let blocks = rows.first().map_or(0, |r| r.1.len());
        assert!(w.len() >= blocks * 210);
        check_rows(rows, blocks, out);
        let mut acc = [_mm256_setzero_ps(); ROWS_AT_ONCE];
        for k in 0..blocks {
            // SAFETY: block `k` of `w` (210 bytes: ql at 0, qh at 128, scales at 192, d at
            // 208) and of every activation row are in bounds (the asserts); the CPU has AVX2,
            // FMA and F16C.
            unsafe {
                let b = w.as_ptr().add(k * 210);
                crate::prefetch_ahead(b, 210);
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                    (b.add(208) as *const u16).read_unaligned() as i32,
                )));
                let raw = _mm_loadu_si128(b.add(192) as *const __m128i);
                let sc: [i8; 16] = std::mem::transmute(raw);
                let sc16 = _mm256_cvtepi8_epi16(raw);
                let codes = q6k_codes(b);
                // Scale `j` covers weights 32j..32j + 16 (low half) and 32j + 16..32j + 32.
                let mut scales = [_mm256_setzero_si256(); 8];
                for (j, s) in scales.iter_mut().enumerate() {
                    *s = _mm256_set_m128i(
                        _mm_set1_epi16(sc[2 * j + 1] as i16),
                        _mm_set1_epi16(sc[2 * j] as i16),
                    );
                }
                for (acc, &(q, dq, bs)) in acc.iter_mut().zip(rows) {
                    // The offset of 32 on every code, through the activation sums: 32 x
                    // sum(scale x sum of 16).
                    let bsv = _mm256_loadu_si256(bs.as_ptr().add(16 * k) as *const __m256i);
                    let offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsv), 5);
                    let mut s = [
                        _mm256_sub_epi32(_mm256_setzero_si256(), offset),
                        _mm256_setzero_si256(),
                    ];
                    let y = q.as_ptr().add(k * QK_K);
                    for j in 0..8 {
                        let yv = _mm256_loadu_si256(y.add(32 * j) as *const __m256i);
                        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(codes[j], yv), scales[j]);
                        s[j % 2] = _mm256_add_epi32(s[j % 2], p);
                    }
                    let sumi = _mm256_cvtepi32_ps(_mm256_add_epi32(s[0], s[1]));
                    let dy = *dq.get_unchecked(k);
                    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), sumi, *acc);
                }
            }
        }
        for (o, acc) in out.iter_mut().zip(&acc[..rows.len()]) {
            // SAFETY: this CPU has AVX2 (the caller's promise).
            *o = unsafe { hsum(*acc) };
        }
    }
}

/// The k-quant products on AVX-512: the AVX2 prompt kernels' arithmetic on registers of 64
/// weights (codes times activations by `maddubs`, then VNNI's `vpdpwssd` multiplies the pair
/// sums by the sub-block scales and adds them in one instruction), for any number of rows,
/// decode's one included.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    /// `scalar::quantize_q8k`, bit for bit, 16 values at a time (the scalar loop, with its
    /// search for the first value of largest magnitude, was 6% of a Qwen2.5 1.5B-shape prompt
    /// on the pool's threads).
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_q8k(xs: &[f32], qs: &mut [i8], d: &mut f32, bs: &mut [i16]) {
        assert!(xs.len() == QK_K && qs.len() == QK_K && bs.len() == QK_K / 16);
        // SAFETY: the 16 loads and stores of 16 values stay within the slices (the assert);
        // the CPU as the caller promises.
        unsafe {
            let x = |k: usize| _mm512_loadu_ps(xs.as_ptr().add(16 * k));
            let mut amax = _mm512_setzero_ps();
            for k in 0..16 {
                // A NaN `|v|` leaves `amax` (the second operand), as `amax < |v|` does.
                amax = _mm512_max_ps(_mm512_abs_ps(x(k)), amax);
            }
            let amax = _mm512_reduce_max_ps(amax);
            if amax == 0.0 {
                return;
            }
            // The first value of that magnitude, with its sign, as the scalar search keeps.
            let mut max = amax;
            for k in 0..16 {
                let hit =
                    _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(x(k)), _mm512_set1_ps(amax));
                if hit != 0 {
                    max = xs[16 * k + hit.trailing_zeros() as usize];
                    break;
                }
            }
            let iscale = -127f32 / max;
            let s = _mm512_set1_ps(iscale);
            for (k, b) in bs.iter_mut().enumerate() {
                let q = crate::round_away_i8_avx512(_mm512_mul_ps(s, x(k)));
                *b = _mm512_reduce_add_epi32(q) as i16;
                let at = qs.as_mut_ptr().add(16 * k) as *mut __m128i;
                _mm_storeu_si128(at, _mm512_cvtepi32_epi8(q));
            }
            *d = 1.0 / iscale;
        }
    }

    /// The 16-bit lanes of the high 256 bits shifted right by `n`, the low ones by `low`.
    #[inline(always)]
    unsafe fn halves(low: i16, n: i16) -> __m512i {
        // SAFETY: only called from the kernels below, on a CPU with AVX-512 F.
        unsafe {
            _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set1_epi16(low)),
                _mm256_set1_epi16(n),
            )
        }
    }

    /// Indices that spread 16-bit lane `first + l / per` to lane `l` (32 lanes).
    #[inline(always)]
    unsafe fn spread(first: i16, per: i16) -> __m512i {
        let idx: [i16; 32] = std::array::from_fn(|l| first + l as i16 / per);
        // SAFETY: 64 bytes read from a 64-byte array; AVX-512 F as the callers run with.
        unsafe { _mm512_loadu_si512(idx.as_ptr() as *const __m512i) }
    }

    /// Two high bits of each Q6_K code, picked from `qh` by a shift per half and put at bits
    /// 4 and 5. A function inlined into the kernel, not a closure in it: a closure does not
    /// take the kernel's target features.
    #[inline(always)]
    unsafe fn high_bits(qh: __m512i, shift: __m512i, two: __m512i) -> __m512i {
        // SAFETY: only called from the kernels below, on a CPU with AVX-512 F and BW.
        unsafe { _mm512_slli_epi16::<4>(_mm512_and_si512(_mm512_srlv_epi16(qh, shift), two)) }
    }

    /// Q4_K row `w` against `rows` (1 to `ROWS_AT_ONCE`), into `out[..rows.len()]`. As
    /// `avx2::gemm_q4k`: each super-block's codes unpacked (four registers of 64 weights in
    /// order: a 32-byte load broadcast to both halves, the high half shifted by four) and its
    /// scales spread (scale `2i` over the low half of register `i`, `2i + 1` over the high)
    /// once, then per row and 64 weights one load, one `maddubs`, one `vpdpwssd`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub unsafe fn gemm_q4k(w: &[u8], rows: &[ActRow], out: &mut [f32]) {
        let blocks = rows.first().map_or(0, |r| r.1.len());
        assert!(w.len() >= blocks * 144);
        check_rows(rows, blocks, out);
        let mut acc = [_mm512_setzero_ps(); ROWS_AT_ONCE];
        // SAFETY: the row's blocks and the activations' are in bounds (the asserts); the CPU
        // has the features enabled here.
        unsafe {
            let c = Q4kConsts::new();
            q4k_row(w.as_ptr(), blocks, rows, &c, &mut acc);
        }
        for (o, acc) in out.iter_mut().zip(&acc[..rows.len()]) {
            *o = _mm512_reduce_add_ps(*acc);
        }
    }

    /// Q4_K weight rows, `out.len()` of them one after another in `w`, against one activation
    /// row (a decoding step) in `OneRow`'s form: values, block scales, sums of 32.
    ///
    /// Each 64 code bytes are one load; their low and high nibbles hold sub-blocks (0, 2) and
    /// (1, 3) of the 128 weights, matched by the activations' order. `vpdpbusd` sums each four
    /// codes times activations (at most 4 * 15 * 127, an int16), `vpackssdw` packs two
    /// registers' sums into one of int16, and one `vpmaddwd` applies the scales of four
    /// sub-blocks to it: per super-block 4 + 2 + 2 multiply-and-pack operations and two
    /// shuffles for the scales, where `gemm_q4k`'s form takes 8, four 16-bit permutes and four
    /// variable shifts (one row of 1536 in cache: 28-30 cycles per super-block before).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub unsafe fn gemv_q4k(w: &[u8], (y, dy, sums): ActRow, out: &mut [f32]) {
        let blocks = dy.len();
        let bytes = blocks * 144;
        assert!(w.len() >= out.len() * bytes);
        assert!(y.len() >= blocks * QK_K && sums.len() >= blocks * 8);
        // The scales of sub-blocks (0, 1) over the first two 128-bit lanes' four and four
        // int16, (2, 3) over the last two's; `high` the same for sub-blocks 4 to 7. Each
        // picks a byte of the eight scales broadcast to every lane, its high byte zero.
        let picks = |first: u8| -> [u8; 64] {
            std::array::from_fn(|i| {
                let (lane, byte) = (i / 16, i % 16);
                if byte % 2 == 1 {
                    0x80
                } else {
                    first + 2 * (lane as u8 / 2) + (byte as u8 / 8)
                }
            })
        };
        let (low_picks, high_picks) = (picks(0), picks(4));
        // SAFETY: row `j`'s blocks lie at `j * bytes` within `w` and block `k` of the
        // activations at `k * 256`, `k * 8` and `k` (the asserts); 64-byte loads of 64-byte
        // arrays; the CPU has the features enabled here.
        unsafe {
            let nibble = _mm512_set1_epi8(0x0F);
            let low_picks = _mm512_loadu_si512(low_picks.as_ptr() as *const __m512i);
            let high_picks = _mm512_loadu_si512(high_picks.as_ptr() as *const __m512i);
            for (j, o) in out.iter_mut().enumerate() {
                let row = w.as_ptr().add(j * bytes);
                let mut acc = _mm512_setzero_ps();
                let mut acc_min = _mm_setzero_ps();
                for k in 0..blocks {
                    let b = row.add(k * 144);
                    crate::prefetch_ahead(b, 144);
                    // [d * dy, dmin * dy, 0, 0].
                    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128((b as *const i32).read_unaligned()));
                    let dm = _mm_mul_ps(dm, _mm_set1_ps(*dy.get_unchecked(k)));
                    let sm = avx2::q4k_unpack(b.add(4));
                    let scales = _mm512_set1_epi64((sm[0] as u64 | (sm[1] as u64) << 32) as i64);
                    let mins = _mm_cvtsi64_si128((sm[2] as u64 | (sm[3] as u64) << 32) as i64);
                    let yk = y.as_ptr().add(k * QK_K) as *const __m512i;
                    let mut packed = [_mm512_setzero_si512(); 2];
                    for (h, p) in packed.iter_mut().enumerate() {
                        let codes = _mm512_loadu_si512(b.add(16 + 64 * h) as *const __m512i);
                        let lo = _mm512_and_si512(codes, nibble);
                        let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(codes), nibble);
                        let zero = _mm512_setzero_si512();
                        let lo = _mm512_dpbusd_epi32(zero, lo, _mm512_loadu_si512(yk.add(2 * h)));
                        let hi =
                            _mm512_dpbusd_epi32(zero, hi, _mm512_loadu_si512(yk.add(2 * h + 1)));
                        *p = _mm512_packs_epi32(lo, hi);
                    }
                    let s = _mm512_add_epi32(
                        _mm512_madd_epi16(packed[0], _mm512_shuffle_epi8(scales, low_picks)),
                        _mm512_madd_epi16(packed[1], _mm512_shuffle_epi8(scales, high_picks)),
                    );
                    acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(dm), _mm512_cvtepi32_ps(s), acc);
                    // The minimums against the activations' sums of 32.
                    let ys = _mm_loadu_si128(sums.as_ptr().add(8 * k) as *const __m128i);
                    let m = _mm_cvtepi32_ps(_mm_madd_epi16(_mm_cvtepu8_epi16(mins), ys));
                    acc_min = _mm_fmadd_ps(_mm_permute_ps::<0x55>(dm), m, acc_min);
                }
                *o = _mm512_reduce_add_ps(acc)
                    - _mm512_reduce_add_ps(_mm512_zextps128_ps512(acc_min));
            }
        }
    }

    /// What the Q4_K kernels keep in registers across blocks and rows.
    struct Q4kConsts {
        low: __m512i,
        nibbles: __m512i,
        picks: [__m512i; 4],
    }

    impl Q4kConsts {
        #[inline(always)]
        unsafe fn new() -> Self {
            // SAFETY: AVX-512 F and BW, as the callers run with.
            unsafe {
                Q4kConsts {
                    low: _mm512_set1_epi8(0x0F),
                    nibbles: halves(0, 4),
                    picks: [spread(0, 16), spread(2, 16), spread(4, 16), spread(6, 16)],
                }
            }
        }
    }

    /// One Q4_K weight row (`blocks` super-blocks at `w`) against `rows`, added to `acc` (one
    /// per activation row).
    ///
    /// # Safety
    /// `w` has `blocks * 144` readable bytes and each of `rows` `blocks` super-blocks; `acc`
    /// has a place per row; the CPU has what `gemm_q4k` runs with.
    #[inline(always)]
    unsafe fn q4k_row(
        w: *const u8,
        blocks: usize,
        rows: &[ActRow],
        c: &Q4kConsts,
        acc: &mut [__m512],
    ) {
        // SAFETY: block `k` of `w` (144 bytes) and of every activation row (256 values, 16
        // sums, one scale) are in bounds (the caller's promise); the CPU as promised.
        unsafe {
            for k in 0..blocks {
                let b = w.add(k * 144);
                crate::prefetch_ahead(b, 144);
                let (d, dmin) = avx2::two_f16(b);
                let sm: [u8; 16] = std::mem::transmute(avx2::q4k_unpack(b.add(4)));
                let mut codes = [_mm512_setzero_si512(); 4];
                for (i, code) in codes.iter_mut().enumerate() {
                    let bits = _mm256_loadu_si256(b.add(16 + 32 * i) as *const __m256i);
                    let both = _mm512_broadcast_i64x4(bits);
                    *code = _mm512_and_si512(_mm512_srlv_epi16(both, c.nibbles), c.low);
                }
                let s16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(sm.as_ptr() as *const __m128i));
                let s16 = _mm512_castsi128_si512(s16);
                let mut scales = [_mm512_setzero_si512(); 4];
                for (s, pick) in scales.iter_mut().zip(&c.picks) {
                    *s = _mm512_permutexvar_epi16(*pick, s16);
                }
                // Each min twice, against the two sums of 16 of its 32 activations.
                let m8 = _mm_loadl_epi64(sm.as_ptr().add(8) as *const __m128i);
                let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
                for (acc, &(q, dq, bs)) in acc.iter_mut().zip(rows) {
                    let y = q.as_ptr().add(k * QK_K);
                    let mut s = _mm512_setzero_si512();
                    for i in 0..4 {
                        let yv = _mm512_loadu_si512(y.add(64 * i) as *const __m512i);
                        s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(codes[i], yv), scales[i]);
                    }
                    let bsv = _mm256_loadu_si256(bs.as_ptr().add(16 * k) as *const __m256i);
                    let summ = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsv));
                    let dy = *dq.get_unchecked(k);
                    let a = _mm512_fmadd_ps(_mm512_set1_ps(d * dy), _mm512_cvtepi32_ps(s), *acc);
                    let summ = _mm512_zextps256_ps512(summ);
                    *acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin * dy), summ, a);
                }
            }
        }
    }

    /// Q6_K row `w` against `rows`, into `out[..rows.len()]`, as `gemm_q4k`: the codes put
    /// together in four registers of 64 weights in order (the low bits of 64 bytes, the two
    /// high bits of the matching 32 bytes broadcast and shifted per half), the sixteen scales
    /// spread over their 16 weights' eight pair lanes, the offset of 32 through the activation
    /// sums as in `avx2::gemm_q6k`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub unsafe fn gemm_q6k(w: &[u8], rows: &[ActRow], out: &mut [f32]) {
        let blocks = rows.first().map_or(0, |r| r.1.len());
        assert!(w.len() >= blocks * 210);
        check_rows(rows, blocks, out);
        let mut acc = [_mm512_setzero_ps(); ROWS_AT_ONCE];
        // SAFETY: the row's blocks and the activations' are in bounds (the asserts); the CPU
        // has the features enabled here.
        unsafe {
            let c = Q6kConsts::new();
            q6k_row(w.as_ptr(), blocks, rows, &c, &mut acc);
        }
        for (o, acc) in out.iter_mut().zip(&acc[..rows.len()]) {
            *o = _mm512_reduce_add_ps(*acc);
        }
    }

    /// Q6_K weight rows, `out.len()` of them one after another in `w`, against one activation
    /// row (a decoding step), as `gemv_q4k`: the 6-bit codes of 64 weights put together in one
    /// register (two masked shifts of the broadcast high bits and a three-way bit select),
    /// `vpdpbusd` for each four (at most 4 * 63 * 127, an int16), two registers packed to int16
    /// and one `vpmaddwd` for their eight scales; the offset of 32 through the activation sums.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub unsafe fn gemv_q6k(w: &[u8], (y, dy, bsums): ActRow, out: &mut [f32]) {
        let blocks = dy.len();
        let bytes = blocks * 210;
        assert!(w.len() >= out.len() * bytes);
        assert!(y.len() >= blocks * QK_K && bsums.len() >= blocks * 16);
        // Scale `L` over the first four int16 of 128-bit lane `L` and `4 + L` over the last
        // four (`first` 0); sub-blocks 8 to 15 with `first` 8.
        let picks = |first: i16| -> [i16; 32] {
            std::array::from_fn(|i| first + (i / 8) as i16 + 4 * ((i % 8) / 4) as i16)
        };
        let (low_picks, high_picks) = (picks(0), picks(8));
        // SAFETY: row `j`'s blocks lie at `j * bytes` within `w`, block `k` of the
        // activations at `k * 256`, `k * 16` and `k` (the asserts); 64-byte loads of 64-byte
        // arrays; the CPU has the features enabled here.
        unsafe {
            let nibble = _mm512_set1_epi8(0x0F);
            let pair = _mm512_set1_epi8(0x30);
            let low_picks = _mm512_loadu_si512(low_picks.as_ptr() as *const __m512i);
            let high_picks = _mm512_loadu_si512(high_picks.as_ptr() as *const __m512i);
            // Bit pairs (0, 1) of the low 32 bytes' and (2, 3) of the high 32's to bits 4, 5
            // (left by 4 and 2), pairs (4, 5) and (6, 7) likewise (right by 0 and 2).
            let left = halves(4, 2);
            let right = halves(0, 2);
            for (j, o) in out.iter_mut().enumerate() {
                let row = w.as_ptr().add(j * bytes);
                let mut acc = _mm512_setzero_ps();
                for k in 0..blocks {
                    let b = row.add(k * 210);
                    crate::prefetch_ahead(b, 210);
                    let yk = y.as_ptr().add(k * QK_K) as *const __m512i;
                    let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(192) as *const __m128i));
                    let sc = _mm512_castsi256_si512(sc16);
                    let mut sums = [_mm512_setzero_si512(); 2];
                    for (n, s) in sums.iter_mut().enumerate() {
                        let ql = _mm512_loadu_si512(b.add(64 * n) as *const __m512i);
                        let qh = _mm256_loadu_si256(b.add(128 + 32 * n) as *const __m256i);
                        let qh = _mm512_broadcast_i64x4(qh);
                        let hi_lo = _mm512_and_si512(_mm512_sllv_epi16(qh, left), pair);
                        let hi_hi = _mm512_and_si512(_mm512_srlv_epi16(qh, right), pair);
                        // (a & 0x0F) | b, b having no bit below 4.
                        let lo = _mm512_ternarylogic_epi32::<0xEA>(ql, nibble, hi_lo);
                        let hi = _mm512_srli_epi16::<4>(ql);
                        let hi = _mm512_ternarylogic_epi32::<0xEA>(hi, nibble, hi_hi);
                        let zero = _mm512_setzero_si512();
                        let lo = _mm512_dpbusd_epi32(zero, lo, _mm512_loadu_si512(yk.add(2 * n)));
                        let hi =
                            _mm512_dpbusd_epi32(zero, hi, _mm512_loadu_si512(yk.add(2 * n + 1)));
                        *s = _mm512_packs_epi32(lo, hi);
                    }
                    let bsv = _mm256_loadu_si256(bsums.as_ptr().add(16 * k) as *const __m256i);
                    let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, bsv));
                    let s = _mm512_add_epi32(
                        _mm512_madd_epi16(sums[0], _mm512_permutexvar_epi16(low_picks, sc)),
                        _mm512_madd_epi16(sums[1], _mm512_permutexvar_epi16(high_picks, sc)),
                    );
                    let s = _mm512_sub_epi32(s, _mm512_zextsi256_si512(offset));
                    let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                        (b.add(208) as *const u16).read_unaligned() as i32,
                    )));
                    let d = _mm512_set1_ps(d * *dy.get_unchecked(k));
                    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
                }
                *o = _mm512_reduce_add_ps(acc);
            }
        }
    }

    /// What the Q6_K kernels keep in registers across blocks and rows.
    struct Q6kConsts {
        low: __m512i,
        two: __m512i,
        h01: __m512i,
        h23: __m512i,
        picks: [__m512i; 4],
    }

    impl Q6kConsts {
        #[inline(always)]
        unsafe fn new() -> Self {
            // SAFETY: AVX-512 F and BW, as the callers run with.
            unsafe {
                Q6kConsts {
                    low: _mm512_set1_epi8(0x0F),
                    two: _mm512_set1_epi8(0x03),
                    h01: halves(0, 2),
                    h23: halves(4, 6),
                    picks: [spread(0, 8), spread(4, 8), spread(8, 8), spread(12, 8)],
                }
            }
        }
    }

    /// One Q6_K weight row (`blocks` super-blocks at `w`: ql at 0, qh at 128, scales at 192,
    /// d at 208) against `rows`, added to `acc` (one per activation row).
    ///
    /// # Safety
    /// `w` has `blocks * 210` readable bytes and each of `rows` `blocks` super-blocks; `acc`
    /// has a place per row; the CPU has what `gemm_q6k` runs with.
    #[inline(always)]
    unsafe fn q6k_row(
        w: *const u8,
        blocks: usize,
        rows: &[ActRow],
        c: &Q6kConsts,
        acc: &mut [__m512],
    ) {
        // SAFETY: block `k` of `w` and of every activation row are in bounds (the caller's
        // promise); the CPU as promised.
        unsafe {
            for k in 0..blocks {
                let b = w.add(k * 210);
                crate::prefetch_ahead(b, 210);
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                    (b.add(208) as *const u16).read_unaligned() as i32,
                )));
                let raw = _mm_loadu_si128(b.add(192) as *const __m128i);
                let sc16 = _mm256_cvtepi8_epi16(raw);
                // Register 2n + 1 holds weights 128n + 64..128n + 128: the high nibbles of the
                // same 64 low-bit bytes as register 2n, and bit pairs 2 and 3 of the same qh.
                let mut codes = [_mm512_setzero_si512(); 4];
                for n in 0..2 {
                    let ql = _mm512_loadu_si512(b.add(64 * n) as *const __m512i);
                    let qh = _mm256_loadu_si256(b.add(128 + 32 * n) as *const __m256i);
                    let qh = _mm512_broadcast_i64x4(qh);
                    let ql_low = _mm512_and_si512(ql, c.low);
                    codes[2 * n] = _mm512_or_si512(ql_low, high_bits(qh, c.h01, c.two));
                    let ql_high = _mm512_and_si512(_mm512_srli_epi16::<4>(ql), c.low);
                    codes[2 * n + 1] = _mm512_or_si512(ql_high, high_bits(qh, c.h23, c.two));
                }
                let sc = _mm512_castsi256_si512(sc16);
                let mut scales = [_mm512_setzero_si512(); 4];
                for (s, pick) in scales.iter_mut().zip(&c.picks) {
                    *s = _mm512_permutexvar_epi16(*pick, sc);
                }
                for (acc, &(q, dq, bs)) in acc.iter_mut().zip(rows) {
                    let bsv = _mm256_loadu_si256(bs.as_ptr().add(16 * k) as *const __m256i);
                    let offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsv), 5);
                    let offset = _mm256_sub_epi32(_mm256_setzero_si256(), offset);
                    let mut s = _mm512_zextsi256_si512(offset);
                    let y = q.as_ptr().add(k * QK_K);
                    for j in 0..4 {
                        let yv = _mm512_loadu_si512(y.add(64 * j) as *const __m512i);
                        s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(codes[j], yv), scales[j]);
                    }
                    let dy = *dq.get_unchecked(k);
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(d * dy), _mm512_cvtepi32_ps(s), *acc);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use super::*;
    use crate::amx::{pipeline, Tiles, UnitScales};
    use std::arch::x86_64::*;

    /// Weight rows, and activation rows, of one tile.
    pub(super) const ROWS: usize = 16;

    /// A thread's weight tiles and scales for 16 weight rows.
    #[derive(Default)]
    pub(super) struct Scratch {
        tiles: Vec<i8>,
        /// `d * scale` per sub-block, 16 rows each.
        scales: Vec<f32>,
        /// Q4_K: `dmin * min` per sub-block, 16 rows each.
        mins: Vec<f32>,
    }

    /// Weight rows `j0..j0 + 16` of `w` against activation rows `0..m`: `out[16r + j]` is the
    /// dot of weight row `j0 + j` with activation row `r`.
    ///
    /// # Safety
    /// AMX is usable (`crate::amx::usable`) and the CPU has AVX-512 F, BW and VL, and F16C.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    pub(super) unsafe fn tile(
        w: &KMatrix,
        j0: usize,
        act: &Activations,
        m: usize,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) {
        let (blocks, cols) = (w.cols / QK_K, w.cols);
        let padded = m.next_multiple_of(ROWS);
        assert!(j0 + ROWS <= w.rows && out.len() >= m * ROWS);
        assert!(act.q.len() >= padded * cols && act.d.len() >= padded * blocks);
        assert!(act.sums32.len() >= padded * blocks * 8);
        let sub = match w.kind {
            KQuant::Q4K => 32,
            KQuant::Q6K => 16,
        };
        let units = cols / sub;
        scratch.tiles.resize(units * ROWS * sub, 0);
        scratch.scales.resize(units * ROWS, 0.0);
        scratch.mins.resize(blocks * 8 * ROWS, 0.0);
        let bytes = w.kind.block_bytes();
        let row_bytes = blocks * bytes;
        let base = w.row(j0).as_ptr();
        assert!(w.data.len() >= (j0 + ROWS) * row_bytes);
        for k in 0..blocks {
            // SAFETY: super-block `k` of rows `j0..j0 + 16` is in bounds (the asserts), and
            // the scratch holds its tiles and scales (resized above); the CPU has the features.
            unsafe {
                let b = base.add(k * bytes);
                match w.kind {
                    KQuant::Q4K => q4k_tiles(b, row_bytes, k, scratch),
                    KQuant::Q6K => q6k_tiles(b, row_bytes, k, scratch),
                }
            }
        }
        // SAFETY: AMX is usable (the caller's promise).
        let tiles = unsafe { Tiles::new(sub) };
        for r0 in (0..m).step_by(ROWS) {
            let scale = UnitScales {
                weights: scratch.scales.as_ptr(),
                acts: act.d[r0 * blocks..].as_ptr(),
                blocks,
                per_block: QK_K / sub,
            };
            // SAFETY: activation rows `r0..r0 + 16` exist, padded with zeros (the asserts),
            // each `cols` int8; the weight tiles and scales of every unit were made above; the
            // CPU has AVX-512 F.
            let mut acc = unsafe {
                let a = act.q[r0 * cols..].as_ptr();
                let wt = scratch.tiles.as_ptr();
                match w.kind {
                    KQuant::Q4K => pipeline::<32>(&tiles, a, cols, wt, units, &scale),
                    KQuant::Q6K => pipeline::<16>(&tiles, a, cols, wt, units, &scale),
                }
            };
            if w.kind == KQuant::Q4K {
                // Unit by unit, each row's accumulator once: sixteen independent additions
                // (row by row, each accumulator's 8 * blocks in turn waited on the one before).
                let sums = &act.sums32[r0 * blocks * 8..];
                for u in 0..blocks * 8 {
                    // SAFETY: the minimums of unit `u` were made above; AVX-512 F.
                    let mins = unsafe { _mm512_loadu_ps(scratch.mins.as_ptr().add(u * ROWS)) };
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let y = sums[i * blocks * 8 + u];
                        *acc = _mm512_fnmadd_ps(mins, _mm512_set1_ps(y), *acc);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(m - r0) {
                // SAFETY: row `r0 + i < m` of `out` holds 16 values (the assert).
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add((r0 + i) * ROWS), *acc) };
            }
        }
    }

    /// The dwords at `at` of 16 rows, `stride` bytes apart from `b`.
    #[inline(always)]
    unsafe fn gather(b: *const u8, stride: __m512i, at: usize) -> __m512i {
        // SAFETY: the callers bound the 16 rows' blocks; AVX-512 F as they run with.
        unsafe { _mm512_i32gather_epi32::<1>(stride, b.add(at) as *const i32) }
    }

    /// The two bits of each byte of `qh` at `SHIFT`, at bits 4 and 5.
    #[inline(always)]
    unsafe fn high<const SHIFT: u32>(qh: __m512i, two: __m512i) -> __m512i {
        // SAFETY: AVX-512 F and BW as the callers run with.
        unsafe { _mm512_slli_epi16::<4>(_mm512_and_si512(_mm512_srli_epi16::<SHIFT>(qh), two)) }
    }

    /// Row offsets `0, stride, .., 15 stride`.
    #[inline(always)]
    unsafe fn offsets(stride: usize) -> __m512i {
        let s = stride as i32;
        // SAFETY: AVX-512 F as the callers run with.
        unsafe {
            let n = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            _mm512_mullo_epi32(n, _mm512_set1_epi32(s))
        }
    }

    /// Super-block `k` of the 16 Q4_K rows at `b` (`stride` bytes apart): its eight 512-byte
    /// tiles (sub-block `2i` from the low nibbles of code bytes `32i..32i + 32`, `2i + 1` from
    /// their high nibbles), scales and minimums into `scratch`.
    ///
    /// # Safety
    /// 16 blocks of 144 bytes at `b + n * stride`; `scratch` sized for super-block `k`; the CPU
    /// has AVX-512 F and BW and F16C.
    #[inline(always)]
    unsafe fn q4k_tiles(b: *const u8, stride: usize, k: usize, scratch: &mut Scratch) {
        // SAFETY: as the caller promises.
        unsafe {
            let rows = offsets(stride);
            let low = _mm512_set1_epi8(0x0F);
            let tiles = scratch.tiles.as_mut_ptr().add(k * 8 * 512);
            for i in 0..4 {
                for r in 0..8 {
                    let v = gather(b, rows, 16 + 32 * i + 4 * r);
                    let lo = _mm512_and_si512(v, low);
                    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low);
                    _mm512_storeu_si512(tiles.add(512 * 2 * i + 64 * r) as *mut __m512i, lo);
                    _mm512_storeu_si512(tiles.add(512 * (2 * i + 1) + 64 * r) as *mut __m512i, hi);
                }
            }
            for n in 0..ROWS {
                let block = b.add(n * stride);
                let (d, dmin) = avx2::two_f16(block);
                let sm: [u8; 16] = std::mem::transmute(avx2::q4k_unpack(block.add(4)));
                for j in 0..8 {
                    let u = k * 8 + j;
                    *scratch.scales.get_unchecked_mut(u * ROWS + n) = d * sm[j] as f32;
                    *scratch.mins.get_unchecked_mut(u * ROWS + n) = dmin * sm[8 + j] as f32;
                }
            }
        }
    }

    /// Super-block `k` of the 16 Q6_K rows at `b`: its sixteen 256-byte tiles (codes less 32,
    /// put together from the low four bits in bytes 0..128 and the high two in 128..192, as
    /// `scalar::q6k_codes` does) and scales into `scratch`.
    ///
    /// # Safety
    /// 16 blocks of 210 bytes at `b + n * stride`; `scratch` sized for super-block `k`; the CPU
    /// has AVX-512 F and BW and F16C.
    #[inline(always)]
    unsafe fn q6k_tiles(b: *const u8, stride: usize, k: usize, scratch: &mut Scratch) {
        // SAFETY: as the caller promises.
        unsafe {
            let rows = offsets(stride);
            let low = _mm512_set1_epi8(0x0F);
            let two = _mm512_set1_epi8(0x03);
            let offset = _mm512_set1_epi8(32);
            let tiles = scratch.tiles.as_mut_ptr().add(k * 16 * 256);
            // Codes `128h + 32q + 4l..` (q = 0..4, l = 0..8) are tile row `l % 4` of
            // sub-block `8h + 2q + l / 4`.
            for h in 0..2 {
                for l in 0..8 {
                    let ql0 = gather(b, rows, 64 * h + 4 * l);
                    let ql1 = gather(b, rows, 64 * h + 32 + 4 * l);
                    let qh = gather(b, rows, 128 + 32 * h + 4 * l);
                    let ql0_high = _mm512_and_si512(_mm512_srli_epi16::<4>(ql0), low);
                    let ql1_high = _mm512_and_si512(_mm512_srli_epi16::<4>(ql1), low);
                    let codes = [
                        _mm512_or_si512(_mm512_and_si512(ql0, low), high::<0>(qh, two)),
                        _mm512_or_si512(_mm512_and_si512(ql1, low), high::<2>(qh, two)),
                        _mm512_or_si512(ql0_high, high::<4>(qh, two)),
                        _mm512_or_si512(ql1_high, high::<6>(qh, two)),
                    ];
                    for (q, v) in codes.into_iter().enumerate() {
                        let code = 128 * h + 32 * q + 4 * l;
                        let (s, r) = (code / 16, code % 16 / 4);
                        let at = tiles.add(256 * s + 64 * r) as *mut __m512i;
                        _mm512_storeu_si512(at, _mm512_sub_epi8(v, offset));
                    }
                }
            }
            for n in 0..ROWS {
                let block = b.add(n * stride);
                let d = f16::from_bits((block.add(208) as *const u16).read_unaligned()).to_f32();
                for j in 0..16 {
                    let sc = *block.add(192 + j) as i8 as f32;
                    *scratch.scales.get_unchecked_mut((k * 16 + j) * ROWS + n) = d * sc;
                }
            }
        }
    }
}

impl CustomOp1 for KMatrix {
    fn name(&self) -> &'static str {
        "k-quant-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, m) = crate::storage::input(storage, layout, self.cols, "k-quant")?;
        let dst = Self::products(&[self], x, m).pop().unwrap_or_default();
        Ok(crate::storage::output(dst, layout, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use candle_core::quantized::{QMatMul, QTensor};
    use candle_core::{DType, Device, Module};

    use crate::{test_input as input, test_weights as weights};

    fn mine(w: &QTensor) -> KMatrix {
        let (rows, cols) = w.shape().dims2().unwrap();
        KMatrix::from_raw(
            KQuant::of(w.dtype()).unwrap(),
            rows,
            cols,
            w.data().unwrap().to_vec(),
        )
        .unwrap()
    }

    /// The AVX-512 quantizer makes the scalar one's Q8_K blocks bit for bit.
    #[test]
    fn vector_quantizer_makes_the_scalar_ones_blocks() {
        #[cfg(target_arch = "x86_64")]
        if crate::test_isas().contains(&Isa::Avx512) {
            for (n, xs) in crate::test_quantizer_blocks(QK_K).iter().enumerate() {
                let mut want = (vec![0i8; QK_K], 0f32, vec![0i16; 16]);
                let mut got = (vec![0i8; QK_K], 0f32, vec![0i16; 16]);
                scalar::quantize_q8k(xs, &mut want.0, &mut want.1, &mut want.2);
                // SAFETY: the CPU has AVX-512 (`test_isas`).
                unsafe { avx512::quantize_q8k(xs, &mut got.0, &mut got.1, &mut got.2) };
                assert_eq!(got.0, want.0, "block {n}: values");
                assert_eq!(got.1.to_bits(), want.1.to_bits(), "block {n}: scale");
                assert_eq!(got.2, want.2, "block {n}: sums");
            }
            return;
        }
        eprintln!("skipped: this CPU has no AVX-512");
    }

    /// Odd shapes: rows not a multiple of anything, several super-blocks, one and many
    /// activation rows, leading dimensions kept; against candle's product on the same blocks.
    #[test]
    fn products_match_candles_for_q4_k_and_q6_k() {
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            for (rows, cols) in [(7, 256), (13, 768), (130, 512), (64, 512)] {
                let w = QTensor::quantize(&weights(rows, cols, rows), dtype).unwrap();
                let k = mine(&w);
                let reference = QMatMul::from_qtensor(w).unwrap();
                for m in [1, 2, 5, 8, 19] {
                    let x = input(m, cols);
                    assert_close(&k.forward(&x).unwrap(), &reference.forward(&x).unwrap());
                }
                let x = input(6, cols).reshape((2, 3, cols)).unwrap();
                let y = k.forward(&x).unwrap();
                assert_eq!(y.dims(), &[2, 3, rows]);
                assert_close(&y, &reference.forward(&x).unwrap());
            }
        }
    }

    /// Our tile kernels and candle's (its x86 Q4_K product runs on AMX where the CPU has it,
    /// with a tile configuration it loads once per thread) take turns on the same threads:
    /// each gives its own products every time. Before our kernels put back the configuration
    /// they found, candle's next product here died of an illegal instruction.
    #[test]
    fn products_alternating_with_candles_own_tile_kernels_stay_right() {
        let w = QTensor::quantize(&weights(256, 1024, 5), GgmlDType::Q4K).unwrap();
        let k = mine(&w);
        let reference = QMatMul::from_qtensor(w).unwrap();
        let x = input(128, 1024);
        let first = reference.forward(&x).unwrap();
        for _ in 0..3 {
            let ours = k.forward(&x).unwrap();
            let theirs = reference.forward(&x).unwrap();
            assert_close(&ours, &first);
            assert_eq!(
                theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                first.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }

    /// Matrices of both types applied to one input in one call give each one's own product,
    /// for one row, a prompt's rows, leading dimensions, and enough work for the threads.
    #[test]
    fn products_of_several_matrices_in_one_call_are_each_ones_own() {
        let a = mine(&QTensor::quantize(&weights(7, 512, 1), GgmlDType::Q4K).unwrap());
        let b = mine(&QTensor::quantize(&weights(130, 512, 2), GgmlDType::Q6K).unwrap());
        let c = mine(&QTensor::quantize(&weights(3, 512, 3), GgmlDType::Q4K).unwrap());
        for shape in [vec![1, 512], vec![19, 512], vec![2, 5, 512]] {
            let n: usize = shape.iter().product::<usize>() / 512;
            let x = input(n, 512).reshape(shape.as_slice()).unwrap();
            let all = KMatrix::forward_many(&[&a, &b, &c], &x).unwrap();
            assert_eq!(all.len(), 3);
            for (y, m) in all.iter().zip([&a, &b, &c]) {
                let own = m.forward(&x).unwrap();
                assert_eq!(y.dims(), own.dims());
                assert_eq!(
                    y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    own.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                );
            }
        }
        let d = mine(&QTensor::quantize(&weights(4, 256, 4), GgmlDType::Q4K).unwrap());
        assert!(KMatrix::forward_many(&[&a, &d], &input(1, 512)).is_err());
        assert!(KMatrix::forward_many(&[], &input(1, 512))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn every_kernel_agrees_with_the_scalar_one() {
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            let w = QTensor::quantize(&weights(3, 1024, 5), dtype).unwrap();
            let k = mine(&w);
            let x = input(10, 1024)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let act = Activations::quantize(&x, 1024, Isa::Scalar);
            for j in 0..3 {
                for (r, n) in [(0, 8), (1, 8), (0, 4), (2, 7), (3, 2), (5, 1)] {
                    let rows: Vec<_> = (r..r + n).map(|r| act.row(r)).collect();
                    let slow = Isa::Scalar.kdots(k.kind, k.row(j), &rows);
                    for isa in crate::test_isas() {
                        let fast = isa.kdots(k.kind, k.row(j), &rows);
                        for (f, s) in fast[..n].iter().zip(&slow[..n]) {
                            assert!(
                                (f - s).abs() <= 1e-4 * (1.0 + s.abs()),
                                "{isa:?} {dtype:?} row {j}, rows {r}..{}: {f} against {s}",
                                r + n
                            );
                        }
                    }
                }
            }
        }
    }

    /// The one-row kernels (a decoding step on AVX-512) against the scalar dot products, on
    /// pseudo-random weights and on the extremes of their integer sums: weights at both ends
    /// of their range in runs of four (codes 15 and 0 for Q4_K, 63 and 0 for Q6_K) against
    /// activations all at 127 in magnitude, the largest sum of four products either kernel
    /// packs into 16 bits (4 * 63 * 127 = 32004).
    #[test]
    fn one_row_kernels_agree_with_the_scalar_one() {
        #[cfg(target_arch = "x86_64")]
        if crate::test_isas().contains(&Isa::Avx512) {
            let extremes = |rows: usize, cols: usize| {
                let v = (0..rows * cols).map(|i| if i % 8 < 4 { 1.0 } else { -1.0 });
                Tensor::from_vec(v.collect::<Vec<f32>>(), (rows, cols), &Device::Cpu).unwrap()
            };
            for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
                for (rows, cols) in [(5, 256), (9, 2304), (2, 1536)] {
                    for (weights, x) in [
                        (weights(rows, cols, 11), input(1, cols)),
                        (
                            extremes(rows, cols),
                            Tensor::ones((1, cols), DType::F32, &Device::Cpu).unwrap(),
                        ),
                        (extremes(rows, cols), input(1, cols).sign().unwrap()),
                    ] {
                        let k = mine(&QTensor::quantize(&weights, dtype).unwrap());
                        let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                        let act = Activations::quantize(&x, cols, Isa::Avx512);
                        let one = act.one_row.as_ref().expect("made for one row on AVX-512");
                        let mut got = vec![0f32; rows];
                        // SAFETY: the CPU has AVX-512 (`test_isas`), and AVX2, FMA and F16C
                        // with it; the kernels check the slices' lengths.
                        unsafe {
                            match dtype {
                                GgmlDType::Q4K => {
                                    avx512::gemv_q4k(&k.data, (&one.q, &act.d, &one.sums), &mut got)
                                }
                                _ => avx512::gemv_q6k(&k.data, act.row(0), &mut got),
                            }
                        }
                        for (j, g) in got.iter().enumerate() {
                            let (q, d, bs) = act.row(0);
                            let want = match dtype {
                                GgmlDType::Q4K => scalar::dot_q4k(k.row(j), q, d, bs),
                                _ => scalar::dot_q6k(k.row(j), q, d, bs),
                            };
                            assert!(
                                (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{dtype:?} {rows}x{cols} row {j}: {g} against {want}"
                            );
                        }
                    }
                }
            }
            return;
        }
        eprintln!("skipped: this CPU has no AVX-512");
    }

    #[test]
    fn rows_dequantize_as_candle_does() {
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            let w = QTensor::quantize(&weights(6, 512, 3), dtype).unwrap();
            let full = w.dequantize(&Device::Cpu).unwrap();
            let k = mine(&w);
            let ids = Tensor::new(&[[5u32, 0], [2, 2]], &Device::Cpu).unwrap();
            let rows = k.embedding(&ids).unwrap();
            let want = full
                .index_select(&ids.flatten_all().unwrap(), 0)
                .unwrap()
                .reshape((2, 2, 512))
                .unwrap();
            assert_eq!(
                rows.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{dtype:?}"
            );
            assert!(k
                .embedding(&Tensor::new(&[6u32], &Device::Cpu).unwrap())
                .is_err());
        }
    }

    #[test]
    fn tensors_read_from_a_gguf_give_candles_products() {
        let q4 = QTensor::quantize(&weights(9, 512, 1), GgmlDType::Q4K).unwrap();
        let q6 = QTensor::quantize(&weights(5, 256, 2), GgmlDType::Q6K).unwrap();
        let q8 = QTensor::quantize(&weights(4, 256, 3), GgmlDType::Q8_0).unwrap();
        let mut file = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut file, &[], &[("a", &q4), ("b", &q6), ("c", &q8)]).unwrap();
        file.set_position(0);
        let ct = gguf_file::Content::read(&mut file).unwrap();
        for (name, reference, cols) in [("a", q4, 512), ("b", q6, 256)] {
            let k = KMatrix::from_gguf(&ct, &mut file, name).unwrap().unwrap();
            let reference = QMatMul::from_qtensor(reference).unwrap();
            let x = input(3, cols);
            assert_close(&k.forward(&x).unwrap(), &reference.forward(&x).unwrap());
        }
        assert!(KMatrix::from_gguf(&ct, &mut file, "c").unwrap().is_none());
    }
}
