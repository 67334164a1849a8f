//! Matrix products with 8-bit and 4-bit block weights against activations quantized to 8 bits
//! (ggml's Q8_0 and Q4_0: blocks of 32 int8, or of 32 4-bit values, and one f16 scale), stored
//! four output rows at a time, block by block. The module is named for what both share: the
//! activations are ggml's Q8_0 blocks, as ggml dots both weight types with.
//!
//! Written by hand because candle 0.11.1's CPU path for these weights was most of Gemma's run
//! time (perf: `vec_dot_q8_0_q8_0` 56% of decode and of prefill on the 270M model, where the
//! 262144 x 640 output projection alone is 178 MB). Its kernel takes one weight row at a time
//! and converts each block's two f16 scales through a function call. Here a weight block of
//! four rows sits in one 136-byte chunk (four f16 scales, then 4 x 32 int8, the rows
//! interleaved eight values at a time), so eight activation values, broadcast, meet eight
//! values of each of the four rows in one multiply, each row's sums stay in their own lanes
//! (no horizontal additions per block, as llama.cpp's repacked `Q4_0_8x8` layout does for its
//! prompt kernels), and the four scales convert in one instruction. Activations are quantized
//! exactly as candle (and ggml) quantize them, so the integer products are the same as before;
//! only the order of the float additions differs.
//!
//! Q5_0 weights (most of Gemma 3's layer weights in Q4_K_M files) are held a byte per value,
//! as their unsigned 5-bit codes `q` (the value is `q - 16`), put together once from the
//! block's nibbles and high bits (see `requant`). Being unsigned and small, the codes go into
//! `maddubs` as they are, four rows' sums add up in 16 bits, and the `- 16` comes off through
//! the activations' sums: the Q4_0 kernel's arithmetic, with a plain load for the unpacking.
//! Before, they were re-encoded as Q8_0 (int8 `q - 16`) and took the 8-bit kernel, whose sign
//! trick costs two more instructions per product and four times the widening `madd`s.
//!
//! Q4_0 (Google's quantization-aware-trained Gemma 3 files hold every layer weight in it) stays
//! 4-bit: a four-row chunk is the four f16 scales and the four rows' 16 bytes of nibbles, read
//! as stored, no wider copy. The kernel widens a row's nibbles to the int8 values `q - 8` as
//! it loads them and from there runs the Q8_0 arithmetic, so the integer sums are ggml's
//! `vec_dot_q4_0_q8_0` ones.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use crate::par::{SharedOut, SharedSlice};
use crate::Isa;
use half::f16;

/// Weights per block.
const QK: usize = 32;
/// Output rows stored together.
const GROUP: usize = 4;
/// Bytes of one block of one row in ggml's Q8_0 layout: f16 scale, 32 int8.
const Q8_BLOCK: usize = 2 + QK;
/// Bytes of one block of one row in ggml's Q5_0 layout.
const Q5_BLOCK: usize = 22;
/// Bytes of one block of one row in ggml's Q4_0 layout: f16 scale, 16 bytes of nibbles.
const Q4_BLOCK: usize = 2 + QK / 2;
/// The most activation rows one kernel call takes.
const MAX_TAKE: usize = 8;

/// How the weights' values are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// 32 int8 per row and block (Q8_0, and Q5_0 re-encoded).
    Int8,
    /// 16 bytes per row and block: value `j` is the low nibble of byte `j` minus 8, value
    /// `j + 16` its high nibble minus 8 (Q4_0).
    Int4,
    /// 32 bytes per row and block: value `j` is byte `j` (0..32) minus 16 (Q5_0's codes).
    Int5,
}

impl Format {
    /// Bytes of one row's values in a block.
    const fn value_bytes(self) -> usize {
        match self {
            Format::Int8 | Format::Int5 => QK,
            Format::Int4 => QK / 2,
        }
    }

    /// What is taken off every stored code to give its value: the unsigned formats' offset.
    const fn offset(self) -> i32 {
        match self {
            Format::Int8 => 0,
            Format::Int4 => 8,
            Format::Int5 => 16,
        }
    }

    /// Bytes of one block of a four-row group: four f16 scales, then the four rows' values.
    const fn chunk(self) -> usize {
        2 * GROUP + GROUP * self.value_bytes()
    }

    /// Where value `j` of row `r` lies in a chunk's values (after the scales): the byte, and
    /// for 4-bit values whether it is the high nibble.
    ///
    /// The rows are interleaved eight bytes at a time, so that one 32-byte load holds the same
    /// eight bytes of all four rows: bytes `8k..8k + 8` of row `r` are at `32k + 8r`. A kernel
    /// then multiplies a whole load by eight activation values broadcast four times and gets
    /// each row's sums in its own lanes, with no horizontal additions (see `avx2::unsigned`).
    /// For Q4_0 that is bytes 0..8 of each row in the first load (values 0..8 in the low
    /// nibbles, 16..24 in the high), bytes 8..16 in the second (values 8..16 and 24..32).
    const fn place(self, r: usize, j: usize) -> (usize, bool) {
        let (byte, high) = match self {
            Format::Int8 | Format::Int5 => (j, false),
            Format::Int4 => (j % (QK / 2), j >= QK / 2),
        };
        (byte / 8 * 8 * GROUP + r * 8 + byte % 8, high)
    }

    /// Value `j` of row `r` of a chunk.
    fn value(self, chunk: &[u8], r: usize, j: usize) -> i8 {
        let (at, high) = self.place(r, j);
        let q = chunk[2 * GROUP + at];
        match self {
            Format::Int8 => q as i8,
            Format::Int4 if high => (q >> 4) as i8 - 8,
            Format::Int4 => (q & 0x0F) as i8 - 8,
            Format::Int5 => q as i8 - 16,
        }
    }

    /// The scale of row `r` of a chunk.
    fn scale(chunk: &[u8], r: usize) -> f32 {
        f16::from_le_bytes([chunk[2 * r], chunk[2 * r + 1]]).to_f32()
    }
}

/// A `rows x cols` weight matrix; `forward` computes `x @ W^T` like a linear layer.
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    format: Format,
    /// `rows / 4` groups of `cols / 32` chunks.
    data: Vec<u8>,
}

impl Q8Matrix {
    /// Reads tensor `name` from a GGUF file straight into the grouped layout, without a second
    /// copy of it in memory. `None` when the tensor is of another type or shape.
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        name: &str,
    ) -> Result<Option<Self>> {
        let Some(info) = ct.tensor_infos.get(name) else {
            candle_core::bail!("cannot find tensor info for {name}")
        };
        let (rows, cols) = match info.shape.dims() {
            [rows, cols] => (*rows, *cols),
            _ => return Ok(None),
        };
        let (block_bytes, format) = match info.ggml_dtype {
            GgmlDType::Q8_0 => (Q8_BLOCK, Format::Int8),
            GgmlDType::Q5_0 => (Q5_BLOCK, Format::Int5),
            GgmlDType::Q4_0 => (Q4_BLOCK, Format::Int4),
            _ => return Ok(None),
        };
        if !rows.is_multiple_of(GROUP) || !cols.is_multiple_of(QK) {
            return Ok(None);
        }
        reader.seek(SeekFrom::Start(ct.tensor_data_offset + info.offset))?;
        let row_bytes = cols / QK * block_bytes;
        // Read a few hundred kilobytes at a time.
        let groups_per_read = (256 * 1024 / (GROUP * row_bytes)).max(1);
        let mut raw = vec![0u8; groups_per_read * GROUP * row_bytes];
        let mut rows_q8 = vec![0u8; GROUP * cols / QK * Q8_BLOCK];
        let mut m = Self::empty(rows, cols, format);
        let n_groups = rows / GROUP;
        let mut g = 0;
        while g < n_groups {
            let take = groups_per_read.min(n_groups - g);
            let raw = &mut raw[..take * GROUP * row_bytes];
            reader.read_exact(raw)?;
            for four in raw.chunks_exact(GROUP * row_bytes) {
                let four = if info.ggml_dtype == GgmlDType::Q5_0 {
                    for (src, dst) in four
                        .chunks_exact(Q5_BLOCK)
                        .zip(rows_q8.chunks_exact_mut(Q8_BLOCK))
                    {
                        crate::requant::q5_0_block_codes(src, dst);
                    }
                    &rows_q8[..]
                } else {
                    four
                };
                m.set_group(g, four);
                g += 1;
            }
        }
        Ok(Some(m))
    }

    /// From ggml Q4_0 rows laid end to end (`rows * cols / 32` blocks of 18 bytes).
    pub fn from_q4_0_rows(rows: usize, cols: usize, q4_0: &[u8]) -> Result<Self> {
        Self::from_rows(rows, cols, q4_0, Format::Int4)
    }

    /// From ggml Q5_0 rows laid end to end (`rows * cols / 32` blocks of 22 bytes).
    pub fn from_q5_0_rows(rows: usize, cols: usize, q5_0: &[u8]) -> Result<Self> {
        if !q5_0.len().is_multiple_of(Q5_BLOCK) {
            candle_core::bail!("Q5_0: {} bytes are not whole blocks", q5_0.len())
        }
        let mut codes = vec![0u8; q5_0.len() / Q5_BLOCK * Q8_BLOCK];
        for (src, dst) in q5_0
            .chunks_exact(Q5_BLOCK)
            .zip(codes.chunks_exact_mut(Q8_BLOCK))
        {
            crate::requant::q5_0_block_codes(src, dst);
        }
        Self::from_rows(rows, cols, &codes, Format::Int5)
    }

    /// From ggml Q8_0 rows laid end to end (`rows * cols / 32` blocks of 34 bytes).
    pub fn from_q8_0_rows(rows: usize, cols: usize, q8_0: &[u8]) -> Result<Self> {
        Self::from_rows(rows, cols, q8_0, Format::Int8)
    }

    /// From ggml rows of `format`'s blocks (an f16 scale, then the values), laid end to end.
    fn from_rows(rows: usize, cols: usize, raw: &[u8], format: Format) -> Result<Self> {
        let block = 2 + format.value_bytes();
        if !rows.is_multiple_of(GROUP)
            || !cols.is_multiple_of(QK)
            || raw.len() != rows * cols / QK * block
        {
            candle_core::bail!(
                "{format:?}: {rows} x {cols} does not fit {} bytes",
                raw.len()
            )
        }
        let mut m = Self::empty(rows, cols, format);
        for (g, four) in raw.chunks_exact(GROUP * cols / QK * block).enumerate() {
            m.set_group(g, four);
        }
        Ok(m)
    }

    /// The rows of `parts` one after the other (all with the same columns), so that weights
    /// applied to the same input run as one product: one quantization of the input and one
    /// hand-off to the threads instead of one per matrix.
    ///
    /// 5-bit codes beside 8-bit values (a layer whose v projection is Q8_0 and q, k Q5_0) are
    /// joined as 8-bit values, which keeps them one product as before this format (not measured
    /// against three products, q and k on the faster kernel).
    pub fn concat_rows(parts: &[&Self]) -> Result<Self> {
        let cols = parts.first().map_or(0, |p| p.cols);
        if parts.iter().any(|p| !p.joins(parts[0])) {
            candle_core::bail!("q8: concatenated matrices must have the same columns and type")
        }
        let format = match parts.first().map(|p| p.format) {
            Some(f) if parts.iter().all(|p| p.format == f) => f,
            _ => Format::Int8,
        };
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.data.len()).sum());
        for p in parts {
            // Groups never straddle two parts: every part has a multiple of four rows.
            match (p.format, format) {
                (Format::Int5, Format::Int8) => {
                    data.extend(p.data.chunks_exact(p.format.chunk()).flat_map(|c| {
                        let (scales, codes) = c.split_at(2 * GROUP);
                        scales
                            .iter()
                            .copied()
                            .chain(codes.iter().map(|&q| (q as i8 - 16) as u8))
                    }))
                }
                _ => data.extend_from_slice(&p.data),
            }
        }
        Ok(Self {
            rows,
            cols,
            format,
            data,
        })
    }

    /// Whether `concat_rows` can join `self` and `other`.
    pub fn joins(&self, other: &Self) -> bool {
        let bytewise = |f| matches!(f, Format::Int8 | Format::Int5);
        self.cols == other.cols
            && (self.format == other.format || bytewise(self.format) && bytewise(other.format))
    }

    fn empty(rows: usize, cols: usize, format: Format) -> Self {
        Self {
            rows,
            cols,
            format,
            data: vec![0u8; rows / GROUP * cols / QK * format.chunk()],
        }
    }

    /// Bytes of one four-row group.
    fn group_bytes(&self) -> usize {
        self.blocks() * self.format.chunk()
    }

    /// Group `g`'s chunks.
    fn group(&self, g: usize) -> &[u8] {
        let n = self.group_bytes();
        &self.data[g * n..(g + 1) * n]
    }

    fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// Stores group `g` from four consecutive rows of ggml blocks of the matrix's format
    /// (Q8_0, Q4_0, or Q5_0's codes: an f16 scale, then the values as ggml holds them), the
    /// rows' value bytes interleaved eight at a time (`Format::place`).
    fn set_group(&mut self, g: usize, four_rows: &[u8]) {
        let blocks = self.blocks();
        let (chunk_bytes, values) = (self.format.chunk(), self.format.value_bytes());
        let block = 2 + values;
        let group = &mut self.data[g * blocks * chunk_bytes..(g + 1) * blocks * chunk_bytes];
        for (b, chunk) in group.chunks_exact_mut(chunk_bytes).enumerate() {
            let (scales, q) = chunk.split_at_mut(2 * GROUP);
            for r in 0..GROUP {
                let src = &four_rows[(r * blocks + b) * block..][..block];
                scales[2 * r..2 * r + 2].copy_from_slice(&src[..2]);
                for (k, eight) in src[2..].chunks_exact(8).enumerate() {
                    q[8 * (k * GROUP + r)..][..8].copy_from_slice(eight);
                }
            }
        }
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

    /// `x @ W^T` for `x` of shape `(.., cols)`: shape `(.., rows)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }

    /// The rows named by `ids` (any shape of u32), dequantized: shape `(ids.., cols)`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        let format = self.format;
        crate::storage::gather_rows(ids, self.rows, self.cols, "q8", |id, dst| {
            let (g, r) = (id / GROUP, id % GROUP);
            let chunks = self.group(g).chunks_exact(format.chunk());
            for (chunk, dst) in chunks.zip(dst.chunks_exact_mut(QK)) {
                let d = Format::scale(chunk, r);
                for (j, v) in dst.iter_mut().enumerate() {
                    *v = d * format.value(chunk, r, j) as f32;
                }
            }
        })
    }

    /// `dst[r * rows + j] = dot(W[j], x[r])` for the `m` activation rows, quantized.
    fn matmul(&self, kernel: Isa, m: usize, act: &Activations, dst: &mut [f32]) {
        let blocks = self.blocks();
        let n_groups = self.rows / GROUP;
        let rows = self.rows;
        assert_eq!(dst.len(), m * rows, "q8: output of {m} x {rows}");
        let dst_ptr = SharedOut::new(dst);
        let run = |range: std::ops::Range<usize>| {
            let dst_ptr = &dst_ptr;
            for g in range {
                let group = self.group(g);
                let mut r = 0;
                while r < m {
                    let take = (m - r).min(kernel.rows_at_once(self.format));
                    let mut out = [[0f32; GROUP]; MAX_TAKE];
                    kernel.dots(self.format, group, act, r, take, &mut out);
                    for (i, out) in out[..take].iter().enumerate() {
                        // SAFETY: each (row, group) cell of `dst` is written by exactly one
                        // work item.
                        unsafe { dst_ptr.write((r + i) * rows + g * GROUP, out) }
                    }
                    r += take;
                }
            }
        };
        #[cfg(target_arch = "x86_64")]
        if kernel.on_tiles(m) {
            // Whole tiles of 16 weight rows on AMX, the groups after the last on AVX-512.
            let tiles = n_groups / (amx::ROWS / GROUP);
            let on_tiles = |range: std::ops::Range<usize>| {
                let mut scratch = amx::Scratch::default();
                let mut out = vec![0f32; m * amx::ROWS];
                for t in range {
                    // SAFETY: `Isa::Amx` is only detected where AMX is usable, on a CPU with
                    // AVX-512 F, BW, VL and VNNI and F16C; the activations are padded for it
                    // (`Activations::quantize` with the same `on_tiles`).
                    unsafe { amx::tile(self, t, act, m, &mut scratch, &mut out) };
                    for (r, out) in out.chunks_exact(amx::ROWS).enumerate() {
                        // SAFETY: each (row, tile) cell of `dst` is written by exactly one
                        // work item.
                        unsafe { dst_ptr.write(r * rows + t * amx::ROWS, out) }
                    }
                }
            };
            candle_core::utils::barrier_pool().execute_chunked(tiles, on_tiles);
            run(tiles * amx::ROWS / GROUP..n_groups);
            return;
        }
        if n_groups * m * blocks < 4096 {
            run(0..n_groups);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(n_groups, run);
        }
    }
}

/// Activation rows quantized to Q8_0 blocks: int8 values and the f16-rounded scales as f32.
struct Activations {
    blocks: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    /// Per block, the share of `offset d sum y` that a product with unsigned codes takes off
    /// each lane of a row's sums (Q4_0: `d sum (u - 8) y = d sum u y - 8 d sum y`; two lanes a
    /// row in `avx2::unsigned`, four in `avx512::dots`: `Isa::offset_share`).
    c: Vec<f32>,
}

impl Activations {
    /// As candle's `BlockQ8_0::from_float` (and ggml's `quantize_row_q8_0`): scale
    /// `amax / 127`, values rounded half away from zero, the scale kept as f16.
    ///
    /// For AMX (`Isa::on_tiles`) the rows are padded with zeros to a multiple of 16, whole
    /// tiles.
    fn quantize(x: &[f32], cols: usize, format: Format, isa: Isa) -> Self {
        let share = isa.offset_share(format);
        let blocks = cols / QK;
        let m = x.len() / cols.max(1);
        let rows = if isa.on_tiles(m) {
            m.next_multiple_of(16)
        } else {
            m
        };
        let mut q = vec![0i8; rows * cols];
        let mut d = vec![0f32; rows * blocks];
        let mut c = vec![0f32; rows * blocks];
        let quantize = |xs: &[f32], qs: &mut [i8], d: &mut f32, c: &mut f32| match isa {
            // SAFETY: `Avx512` and `Amx` are only detected on a CPU with AVX-512 F, BW and VL;
            // the kernel checks the slices' lengths.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Amx => unsafe { avx512::quantize_q8_0(xs, qs, share, d, c) },
            _ => scalar::quantize_q8_0(xs, qs, share, d, c),
        };
        // A prompt's rows are quantized by the threads, rows of blocks at a time; a decoding
        // step's row by this one.
        if m >= 16 {
            let (qv, dv, cv) = (
                SharedSlice::new(&mut q),
                SharedSlice::new(&mut d),
                SharedSlice::new(&mut c),
            );
            candle_core::utils::barrier_pool().execute_chunked(m, |range| {
                for r in range {
                    // SAFETY: row `r`'s values and scales are this item's alone.
                    let (qs, ds, cs) = unsafe {
                        (
                            qv.chunk_mut(r, cols),
                            dv.chunk_mut(r, blocks),
                            cv.chunk_mut(r, blocks),
                        )
                    };
                    let xs = x[r * cols..(r + 1) * cols].chunks_exact(QK);
                    for ((xs, qs), (d, c)) in
                        xs.zip(qs.chunks_exact_mut(QK)).zip(ds.iter_mut().zip(cs))
                    {
                        quantize(xs, qs, d, c);
                    }
                }
            });
        } else {
            let blocks_of = x.chunks_exact(QK).zip(q.chunks_exact_mut(QK));
            for ((xs, qs), (d, c)) in blocks_of.zip(d.iter_mut().zip(&mut c)) {
                quantize(xs, qs, d, c);
            }
        }
        Self { blocks, q, d, c }
    }

    fn row_q(&self, r: usize) -> &[i8] {
        &self.q[r * self.blocks * QK..(r + 1) * self.blocks * QK]
    }

    fn row_d(&self, r: usize) -> &[f32] {
        &self.d[r * self.blocks..(r + 1) * self.blocks]
    }
}

impl Isa {
    /// Activation rows a kernel takes against one load of a group's block: AVX2's 16
    /// registers leave room for four with unsigned codes, two with the 8-bit kernel's sign
    /// trick; AVX-512's 32 for eight (the scalar kernel takes any number).
    fn rows_at_once(self, format: Format) -> usize {
        match (self, format) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512 | Isa::Amx, _) => MAX_TAKE,
            (Isa::Scalar, _) => MAX_TAKE,
            (_, Format::Int8) => 2,
            _ => 4,
        }
    }

    /// What `Activations::c` holds per block, in units of `d_y sum y`: the offset of the codes
    /// the kernel multiplies, shared among the lanes that hold one row's sums (two in AVX2's
    /// registers, four in AVX-512's). AVX-512 takes 8-bit weights as unsigned codes too, `w +
    /// 128` (`vpdpbusd` wants one unsigned operand, and AVX-512 has no `vpsignb`).
    fn offset_share(self, format: Format) -> f32 {
        match self {
            Isa::Scalar => 0.0,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => format.offset() as f32 / 2.0,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Amx => match format {
                Format::Int8 => 128.0 / 4.0,
                _ => format.offset() as f32 / 4.0,
            },
        }
    }

    /// Dots of one group's four rows with activation rows `r..r + take` (`take` at most the
    /// format's `rows_at_once`).
    fn dots(
        self,
        format: Format,
        group: &[u8],
        act: &Activations,
        r: usize,
        take: usize,
        out: &mut [[f32; GROUP]; MAX_TAKE],
    ) {
        assert!((1..=self.rows_at_once(format)).contains(&take));
        match self {
            Isa::Scalar => {
                for (i, out) in out[..take].iter_mut().enumerate() {
                    *out = scalar::dots(format, group, act.row_q(r + i), act.row_d(r + i));
                }
            }
            // SAFETY: `Isa::Avx2` is only detected on a CPU with AVX2, FMA and F16C.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe {
                match format {
                    Format::Int8 => avx2::int8_dots(group, act, r, take, out),
                    Format::Int4 => avx2::unsigned_dots::<false>(group, act, r, take, out),
                    Format::Int5 => avx2::unsigned_dots::<true>(group, act, r, take, out),
                }
            },
            // SAFETY: `Isa::Avx512` is only detected on a CPU with AVX-512 F, BW, VL and VNNI,
            // and AVX2, FMA and F16C.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Amx => unsafe { avx512::dots(format, group, act, r, take, out) },
        }
    }
}

mod scalar {
    use super::*;

    /// One block of 32 activations to Q8_0 (see `Activations::quantize`), and its `c`.
    pub fn quantize_q8_0(xs: &[f32], qs: &mut [i8], share: f32, d: &mut f32, c: &mut f32) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (q, &v) in qs.iter_mut().zip(xs) {
            *q = crate::round_away(v * inv).clamp(-128, 127) as i8;
        }
        *d = f16::from_f32(scale).to_f32();
        *c = *d * share * qs.iter().map(|&q| q as i32).sum::<i32>() as f32;
    }

    pub fn dots(format: Format, group: &[u8], yq: &[i8], yd: &[f32]) -> [f32; GROUP] {
        let mut out = [0f32; GROUP];
        let chunks = group.chunks_exact(format.chunk());
        for ((chunk, yq), &yd) in chunks.zip(yq.chunks_exact(QK)).zip(yd) {
            for (r, out) in out.iter_mut().enumerate() {
                let sum: i32 = (0..QK)
                    .map(|j| format.value(chunk, r, j) as i32 * yq[j] as i32)
                    .sum();
                *out += Format::scale(chunk, r) * yd * sum as f32;
            }
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// `Isa::dots` for 8-bit weights.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C.
    pub(super) unsafe fn int8_dots(
        group: &[u8],
        act: &Activations,
        r: usize,
        take: usize,
        out: &mut [[f32; GROUP]; MAX_TAKE],
    ) {
        // SAFETY: the CPU has the features (the caller's promise), and the kernels check the
        // slices' lengths.
        unsafe {
            match take {
                1 => [out[0]] = signed::<1>(group, act, r),
                _ => [out[0], out[1]] = signed::<2>(group, act, r),
            }
        }
    }

    /// `Isa::dots` for unsigned codes: Q4_0's nibbles, or Q5_0's bytes (`INT5`).
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C.
    pub(super) unsafe fn unsigned_dots<const INT5: bool>(
        group: &[u8],
        act: &Activations,
        r: usize,
        take: usize,
        out: &mut [[f32; GROUP]; MAX_TAKE],
    ) {
        // SAFETY: as in `int8_dots`.
        unsafe {
            match take {
                1 => [out[0]] = unsigned::<1, INT5>(group, act, r),
                2 => [out[0], out[1]] = unsigned::<2, INT5>(group, act, r),
                3 => [out[0], out[1], out[2]] = unsigned::<3, INT5>(group, act, r),
                _ => out[..4].copy_from_slice(&unsigned::<4, INT5>(group, act, r)),
            }
        }
    }

    /// A chunk's four weight scales, each in two neighbouring lanes (`[d0, d0, d1, d1, ..]`),
    /// as the interleaved layout leaves row `r`'s sums in lanes `2r` and `2r + 1`.
    #[inline(always)]
    unsafe fn pair_scales(chunk: *const u8) -> __m256 {
        // SAFETY: `chunk` points to a weight chunk, whose first 8 bytes are the four f16 scales;
        // the callers run on a CPU with AVX2, FMA and F16C.
        unsafe {
            let d = _mm_cvtph_ps(_mm_loadl_epi64(chunk as *const __m128i));
            let pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
            _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d), pairs)
        }
    }

    /// Activation values `at..at + 8`, four times over (one per row of a weight load).
    #[inline(always)]
    unsafe fn eight(y: *const i8, at: usize) -> __m256i {
        // SAFETY: the callers bound `y + at + 8` by their asserts; AVX2 as they run with.
        unsafe { _mm256_set1_epi64x(std::ptr::read_unaligned(y.add(at) as *const i64)) }
    }

    /// The four rows' dots from lanes `2r` and `2r + 1`.
    #[inline(always)]
    unsafe fn finish(acc: __m256) -> [f32; GROUP] {
        // SAFETY: `out` holds the 4 floats stored; as in `pair_scales` for the CPU.
        unsafe {
            // [r0, r1, r0, r1 | r2, r3, r2, r3]
            let h = _mm256_hadd_ps(acc, acc);
            let s = _mm_shuffle_ps::<0b01_00_01_00>(
                _mm256_castps256_ps128(h),
                _mm256_extractf128_ps::<1>(h),
            );
            let mut out = [0f32; GROUP];
            _mm_storeu_ps(out.as_mut_ptr(), s);
            out
        }
    }

    const CHUNK8: usize = Format::Int8.chunk();
    const CHUNK4: usize = Format::Int4.chunk();
    const CHUNK5: usize = Format::Int5.chunk();

    /// Dots of a group's four rows of int8 values with activation rows `r..r + N`, each weight
    /// block loaded once for the N. Each 32-byte load holds eight values of the four rows
    /// (`Format::place`), multiplied by the same eight activation values broadcast: ggml's sign
    /// trick (`maddubs` wants one unsigned operand), a widening `madd`, and the four loads'
    /// sums added lane by lane, so row `r`'s sum ends in lanes `2r` and `2r + 1` with no
    /// horizontal additions.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn signed<const N: usize>(
        group: &[u8],
        act: &Activations,
        r: usize,
    ) -> [[f32; GROUP]; N] {
        let blocks = act.blocks;
        assert!(group.len() >= blocks * CHUNK8 && (r + N) * blocks <= act.d.len());
        assert!(act.q.len() == act.d.len() * QK && act.c.len() == act.d.len());
        // SAFETY: the assert bounds every read: block `b < blocks` of `group` (one chunk), and
        // of each activation row (`QK` values and one scale: rows `r..r + N` exist); the caller
        // runs this on a CPU with AVX2, FMA and F16C.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut acc = [_mm256_setzero_ps(); N];
            for b in 0..blocks {
                let c = group.as_ptr().add(b * CHUNK8);
                let mut w = [_mm256_setzero_si256(); 4];
                let mut aw = [_mm256_setzero_si256(); 4];
                for k in 0..4 {
                    w[k] = _mm256_loadu_si256(c.add(2 * GROUP + 32 * k) as *const __m256i);
                    aw[k] = _mm256_sign_epi8(w[k], w[k]);
                }
                let d = pair_scales(c);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let at = (r + i) * blocks + b;
                    let y = act.q.as_ptr().add(at * QK);
                    let mut sums = _mm256_setzero_si256();
                    for k in 0..4 {
                        let sy = _mm256_sign_epi8(eight(y, 8 * k), w[k]);
                        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[k], sy), ones);
                        sums = _mm256_add_epi32(sums, p);
                    }
                    let dy = _mm256_mul_ps(d, _mm256_set1_ps(*act.d.get_unchecked(at)));
                    *acc = _mm256_fmadd_ps(dy, _mm256_cvtepi32_ps(sums), *acc);
                }
            }
            let mut out = [[0f32; GROUP]; N];
            for (out, acc) in out.iter_mut().zip(acc) {
                *out = finish(acc);
            }
            out
        }
    }

    /// Dots of a group's four rows of unsigned codes (Q4_0's nibbles, or with `INT5` Q5_0's
    /// bytes) with activation rows `r..r + N`, each weight block loaded once for the N.
    ///
    /// The block's codes become four registers, each eight codes of the four rows
    /// (`Format::place`: for nibbles, two loads, low and high halves), and go into `maddubs` as
    /// they are, against the matching eight activation values broadcast, without the sign
    /// trick. A `maddubs` lane is at most 2 x 15 x 127 = 3810 for nibbles and 2 x 31 x 127 =
    /// 7874 for 5-bit codes, so the four registers' lanes are summed in 16 bits (at most 15240
    /// or 31496, below 32768) before one widening `madd`: lanes `2r` and `2r + 1` then hold row
    /// `r`'s sums over the first and last four of each eight values. The offset (8 or 16) comes
    /// off in the same multiply-add as the scales: each lane adds `d_w (d_y sum - c)`, with
    /// `c = (offset / 2) d_y sum y` (`Activations::c`) taken once per lane of the pair.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unsigned<const N: usize, const INT5: bool>(
        group: &[u8],
        act: &Activations,
        r: usize,
    ) -> [[f32; GROUP]; N] {
        let blocks = act.blocks;
        let chunk = if INT5 { CHUNK5 } else { CHUNK4 };
        assert!(group.len() >= blocks * chunk && (r + N) * blocks <= act.d.len());
        assert!(act.q.len() == act.d.len() * QK && act.c.len() == act.d.len());
        // SAFETY: the assert bounds every read: block `b < blocks` of `group` (one chunk), and
        // of each activation row (`QK` values, one scale, one sum: rows `r..r + N` exist); the
        // caller runs this on a CPU with AVX2, FMA and F16C.
        unsafe {
            let low = _mm256_set1_epi8(0x0F);
            let ones = _mm256_set1_epi16(1);
            let mut acc = [_mm256_setzero_ps(); N];
            for b in 0..blocks {
                let c = group.as_ptr().add(b * chunk);
                crate::prefetch_ahead(c, chunk);
                let q = c.add(2 * GROUP);
                // Codes 8k..8k + 8 of the four rows in w[k].
                // Written out, not `array::map`: a closure would not inherit the target
                // features, and the intrinsics in it would become calls.
                let w: [__m256i; 4] = if INT5 {
                    let at = |k: usize| q.add(32 * k) as *const __m256i;
                    [
                        _mm256_loadu_si256(at(0)),
                        _mm256_loadu_si256(at(1)),
                        _mm256_loadu_si256(at(2)),
                        _mm256_loadu_si256(at(3)),
                    ]
                } else {
                    let a = _mm256_loadu_si256(q as *const __m256i);
                    let b = _mm256_loadu_si256(q.add(32) as *const __m256i);
                    [
                        _mm256_and_si256(a, low),
                        _mm256_and_si256(b, low),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(a), low),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(b), low),
                    ]
                };
                let d = pair_scales(c);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let at = (r + i) * blocks + b;
                    let y = act.q.as_ptr().add(at * QK);
                    let s01 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(w[0], eight(y, 0)),
                        _mm256_maddubs_epi16(w[1], eight(y, 8)),
                    );
                    let s23 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(w[2], eight(y, 16)),
                        _mm256_maddubs_epi16(w[3], eight(y, 24)),
                    );
                    let sums = _mm256_madd_epi16(_mm256_add_epi16(s01, s23), ones);
                    let t = _mm256_fmsub_ps(
                        _mm256_set1_ps(*act.d.get_unchecked(at)),
                        _mm256_cvtepi32_ps(sums),
                        _mm256_set1_ps(*act.c.get_unchecked(at)),
                    );
                    *acc = _mm256_fmadd_ps(d, t, *acc);
                }
            }
            let mut out = [[0f32; GROUP]; N];
            for (out, acc) in out.iter_mut().zip(acc) {
                *out = finish(acc);
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    /// `scalar::quantize_q8_0`, bit for bit, 16 values at a time.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VL and F16C.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    pub(super) unsafe fn quantize_q8_0(
        xs: &[f32],
        qs: &mut [i8],
        share: f32,
        d: &mut f32,
        c: &mut f32,
    ) {
        assert!(xs.len() == QK && qs.len() == QK && QK == 32);
        // SAFETY: two loads and stores of 16 values within the slices (the assert); the CPU as
        // the caller promises.
        unsafe {
            let (a, b) = (
                _mm512_loadu_ps(xs.as_ptr()),
                _mm512_loadu_ps(xs.as_ptr().add(16)),
            );
            // A NaN `|v|` leaves the other operand, as `f32::max` does.
            let amax = _mm512_max_ps(_mm512_abs_ps(a), _mm512_setzero_ps());
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(b), amax));
            let scale = amax / 127.0;
            let inv = _mm512_set1_ps(if scale != 0.0 { 1.0 / scale } else { 0.0 });
            let qa = crate::round_away_i8_avx512(_mm512_mul_ps(a, inv));
            let qb = crate::round_away_i8_avx512(_mm512_mul_ps(b, inv));
            _mm_storeu_si128(qs.as_mut_ptr() as *mut __m128i, _mm512_cvtepi32_epi8(qa));
            _mm_storeu_si128(
                qs.as_mut_ptr().add(16) as *mut __m128i,
                _mm512_cvtepi32_epi8(qb),
            );
            *d = f16::from_f32(scale).to_f32();
            let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
            *c = *d * share * sum as f32;
        }
    }

    const INT8: u8 = 0;
    const INT4: u8 = 1;
    const INT5: u8 = 2;

    /// `Isa::dots` on AVX-512 with VNNI.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW, VL and VNNI, and AVX2, FMA and F16C.
    pub(super) unsafe fn dots(
        format: Format,
        group: &[u8],
        act: &Activations,
        r: usize,
        take: usize,
        out: &mut [[f32; GROUP]; MAX_TAKE],
    ) {
        // SAFETY: the CPU has the features (the caller's promise); the kernel checks the
        // slices' lengths.
        unsafe {
            match format {
                Format::Int8 => by_take::<INT8>(group, act, r, take, out),
                Format::Int4 => by_take::<INT4>(group, act, r, take, out),
                Format::Int5 => by_take::<INT5>(group, act, r, take, out),
            }
        }
    }

    /// # Safety
    /// As `dots`.
    unsafe fn by_take<const F: u8>(
        group: &[u8],
        act: &Activations,
        r: usize,
        take: usize,
        out: &mut [[f32; GROUP]; MAX_TAKE],
    ) {
        // SAFETY: as in `dots`.
        unsafe {
            match take {
                1 => out[..1].copy_from_slice(&kernel::<1, F>(group, act, r)),
                2 => out[..2].copy_from_slice(&kernel::<2, F>(group, act, r)),
                3 => out[..3].copy_from_slice(&kernel::<3, F>(group, act, r)),
                4 => out[..4].copy_from_slice(&kernel::<4, F>(group, act, r)),
                5 => out[..5].copy_from_slice(&kernel::<5, F>(group, act, r)),
                6 => out[..6].copy_from_slice(&kernel::<6, F>(group, act, r)),
                7 => out[..7].copy_from_slice(&kernel::<7, F>(group, act, r)),
                _ => *out = kernel::<8, F>(group, act, r),
            }
        }
    }

    /// Dots of a group's four rows with activation rows `r..r + N`, each weight block loaded
    /// once for the N.
    ///
    /// A block's values become two 64-byte registers, each sixteen values of the four rows
    /// (`Format::place`: values 0..8 and 8..16 of each row in the first, 16..24 and 24..32 in
    /// the second; for nibbles, the low and high halves of one load), as unsigned codes: Q4_0
    /// and Q5_0's as stored, Q8_0's int8 flipped to `w + 128`. Against each goes the matching
    /// activation values, eight at a time broadcast four times, and `vpdpbusd` sums four
    /// products into each 32-bit lane: lanes `2r, 2r + 1, 8 + 2r, 9 + 2r` hold row `r`'s sums.
    /// The codes' offset (8, 16 or 128) comes off in the scales' multiply-add, a quarter per
    /// lane (`Activations::c`, `Isa::offset_share`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn kernel<const N: usize, const F: u8>(
        group: &[u8],
        act: &Activations,
        r: usize,
    ) -> [[f32; GROUP]; N] {
        let format = match F {
            INT8 => Format::Int8,
            INT4 => Format::Int4,
            _ => Format::Int5,
        };
        let blocks = act.blocks;
        let chunk = format.chunk();
        assert!(group.len() >= blocks * chunk && (r + N) * blocks <= act.d.len());
        assert!(act.q.len() == act.d.len() * QK && act.c.len() == act.d.len());
        // SAFETY: the assert bounds every read: block `b < blocks` of `group` (one chunk: 8
        // bytes of scales, then 64 bytes of nibbles or 128 of codes), and of each activation
        // row (`QK` values, one scale, one sum: rows `r..r + N` exist); the caller runs this on
        // a CPU with the features enabled here.
        unsafe {
            let low = _mm512_set1_epi8(0x0F);
            let flip = _mm512_set1_epi8(i8::MIN);
            // Qword 0 into the low half, qword 1 into the high half, four times each.
            let spread = _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1);
            let pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3);
            let mut acc = [_mm512_setzero_ps(); N];
            for b in 0..blocks {
                let c = group.as_ptr().add(b * chunk);
                crate::prefetch_ahead(c, chunk);
                let q = c.add(2 * GROUP);
                let (first, second) = match F {
                    INT4 => {
                        let v = load(q, 0);
                        let high = _mm512_srli_epi16::<4>(v);
                        (_mm512_and_si512(v, low), _mm512_and_si512(high, low))
                    }
                    INT5 => (load(q, 0), load(q, 64)),
                    _ => (
                        _mm512_xor_si512(load(q, 0), flip),
                        _mm512_xor_si512(load(q, 64), flip),
                    ),
                };
                let d = _mm_cvtph_ps(_mm_loadl_epi64(c as *const __m128i));
                let d = _mm512_permutexvar_ps(pairs, _mm512_castps128_ps512(d));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let at = (r + i) * blocks + b;
                    let y = act.q.as_ptr().add(at * QK);
                    let ya = sixteen(y, 0, spread);
                    let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), first, ya);
                    let sums = _mm512_dpbusd_epi32(sums, second, sixteen(y, 16, spread));
                    let t = _mm512_fmsub_ps(
                        _mm512_set1_ps(*act.d.get_unchecked(at)),
                        _mm512_cvtepi32_ps(sums),
                        _mm512_set1_ps(*act.c.get_unchecked(at)),
                    );
                    *acc = _mm512_fmadd_ps(d, t, *acc);
                }
            }
            let mut out = [[0f32; GROUP]; N];
            for (out, acc) in out.iter_mut().zip(acc) {
                *out = finish(acc);
            }
            out
        }
    }

    // Helpers are functions inlined into the kernel, not closures in it: a closure does not
    // take the kernel's target features, and perf showed these called, not inlined.

    /// The 64 bytes at `q + at`.
    #[inline(always)]
    unsafe fn load(q: *const u8, at: usize) -> __m512i {
        // SAFETY: the kernel bounds `q + at + 64` by its assert; AVX-512 F as it runs with.
        unsafe { _mm512_loadu_si512(q.add(at) as *const __m512i) }
    }

    /// Activation values `at..at + 8` four times over in the low half, `at + 8..at + 16` in
    /// the high half.
    #[inline(always)]
    unsafe fn sixteen(y: *const i8, at: usize, spread: __m512i) -> __m512i {
        // SAFETY: the kernel bounds `y + at + 16` by its assert; AVX-512 F as it runs with.
        unsafe {
            let v = _mm_loadu_si128(y.add(at) as *const __m128i);
            _mm512_permutexvar_epi64(spread, _mm512_castsi128_si512(v))
        }
    }

    /// The four rows' dots from lanes `2r, 2r + 1, 8 + 2r, 9 + 2r`.
    #[inline(always)]
    unsafe fn finish(acc: __m512) -> [f32; GROUP] {
        // SAFETY: only called from `kernel`, on a CPU with its features.
        unsafe {
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc)));
            let s = _mm256_add_ps(_mm512_castps512_ps256(acc), high);
            // [r0, r1, r0, r1 | r2, r3, r2, r3]
            let h = _mm256_hadd_ps(s, s);
            let s = _mm_shuffle_ps::<0b01_00_01_00>(
                _mm256_castps256_ps128(h),
                _mm256_extractf128_ps::<1>(h),
            );
            let mut out = [0f32; GROUP];
            _mm_storeu_ps(out.as_mut_ptr(), s);
            out
        }
    }
}

/// Prompts on AMX (`crate::amx`): sixteen weight rows (four groups) against sixteen
/// activation rows at a time, one block of 32 columns per `tdpbssd`.
///
/// Per block, the four groups' chunks become one 8 x 64 tile of int8 weight values in the
/// order `tdpbssd` reads them (for each four columns, the sixteen rows' four values), Q4_0's
/// nibbles and Q5_0's codes shifted to their signed values on the way; this is done once per
/// block and weight tile, for all the activation rows. The activations' int8 rows are the
/// other tile, loaded as quantized (16 rows, the matrix's columns apart), so the integer sums
/// are ggml's. Each block's 16 x 16 sums then take the weight rows' scales times the
/// activation rows' ones into sixteen 512-bit accumulators, one per activation row.
#[cfg(target_arch = "x86_64")]
mod amx {
    use super::*;
    use crate::amx::{pipeline, Tiles, UnitScales};
    use std::arch::x86_64::*;

    /// Weight rows, and activation rows, of one tile.
    pub(super) const ROWS: usize = 16;
    /// Bytes of one block's weight tile.
    const TILE: usize = ROWS * QK;

    /// A thread's weight tiles and scales, made once per block of a tile of 16 weight rows.
    #[derive(Default)]
    pub(super) struct Scratch {
        tiles: Vec<i8>,
        scales: Vec<f32>,
    }

    /// Weight rows `16t..16t + 16` against activation rows `0..m`: `out[16r + j]` is the dot of
    /// weight row `16t + j` with activation row `r`.
    ///
    /// # Safety
    /// AMX is usable (`crate::amx::usable`) and the CPU has AVX-512 F, BW and VL, and F16C.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    pub(super) unsafe fn tile(
        w: &Q8Matrix,
        t: usize,
        act: &Activations,
        m: usize,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) {
        let (blocks, cols) = (w.blocks(), w.cols);
        let padded = m.next_multiple_of(ROWS);
        assert!((t + 1) * ROWS <= w.rows && out.len() >= m * ROWS);
        assert!(act.q.len() >= padded * cols && act.d.len() >= padded * blocks);
        scratch.tiles.resize(blocks * TILE, 0);
        scratch.scales.resize(blocks * ROWS, 0.0);
        for b in 0..blocks {
            // SAFETY: the CPU has the features (the caller's promise); `weight_tile` reads
            // block `b` of groups `4t..4t + 4` (in bounds: the assert) and writes `TILE` bytes
            // and `ROWS` scales at block `b`'s place (resized above).
            unsafe {
                weight_tile(
                    w,
                    t,
                    b,
                    scratch.tiles.as_mut_ptr().add(b * TILE),
                    scratch.scales.as_mut_ptr().add(b * ROWS),
                )
            };
        }
        // SAFETY: AMX is usable (the caller's promise).
        let tiles = unsafe { Tiles::new(QK) };
        for r0 in (0..m).step_by(ROWS) {
            let scale = UnitScales {
                weights: scratch.scales.as_ptr(),
                acts: act.d[r0 * blocks..].as_ptr(),
                blocks,
                per_block: 1,
            };
            // SAFETY: activation rows `r0..r0 + 16` exist, padded with zeros (the assert), each
            // `cols` int8; the weight tiles and scales of every block were made above; the
            // activation scales of rows `r0..r0 + 16` exist (the assert); the CPU has AVX-512 F.
            let acc = unsafe {
                let a = act.q[r0 * cols..].as_ptr();
                pipeline::<QK>(&tiles, a, cols, scratch.tiles.as_ptr(), blocks, &scale)
            };
            for (i, acc) in acc.iter().enumerate().take(m - r0) {
                // SAFETY: row `r0 + i < m` of `out` holds 16 values (the assert).
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add((r0 + i) * ROWS), *acc) };
            }
        }
    }

    /// Block `b` of weight rows `16t..16t + 16` as a `tdpbssd` tile at `tile` (row `k` holds,
    /// for each weight row `j`, its values `4k..4k + 4`) and their scales at `scales`.
    ///
    /// A group's chunk holds its values as `Format::place` lays them: Q8_0's and Q5_0's as two
    /// 64-byte loads, Q4_0's low nibbles as one and its high nibbles as another, all with the
    /// same layout (value `j` of row `r` at byte `j / 8 * 32 + 8r + j % 8`). Tile row `k` takes
    /// from each group the four rows' dwords `2r + k % 2` of the 32-byte run `k / 2`: two
    /// two-source permutes (groups 0 and 1, 2 and 3) and a blend.
    #[inline(always)]
    unsafe fn weight_tile(w: &Q8Matrix, t: usize, b: usize, tile: *mut i8, scales: *mut f32) {
        let format = w.format;
        let chunk = format.chunk();
        // SAFETY: the caller bounds block `b` of groups `4t..4t + 4`, and `tile` (512 bytes)
        // and `scales` (16 f32); the CPU has AVX-512 F and BW and F16C (it runs with them).
        unsafe {
            let low = _mm512_set1_epi8(0x0F);
            let mut values = [[_mm512_setzero_si512(); 2]; GROUP];
            let mut d = [0u64; GROUP];
            for (g, (values, d)) in values.iter_mut().zip(&mut d).enumerate() {
                let c = w.group(GROUP * t + g)[b * chunk..].as_ptr();
                *d = (c as *const u64).read_unaligned();
                let q = c.add(2 * GROUP) as *const __m512i;
                *values = match format {
                    Format::Int8 => [_mm512_loadu_si512(q), _mm512_loadu_si512(q.add(1))],
                    Format::Int4 => {
                        let v = _mm512_loadu_si512(q);
                        let eight = _mm512_set1_epi8(8);
                        let high = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low);
                        [
                            _mm512_sub_epi8(_mm512_and_si512(v, low), eight),
                            _mm512_sub_epi8(high, eight),
                        ]
                    }
                    Format::Int5 => {
                        let sixteen = _mm512_set1_epi8(16);
                        [
                            _mm512_sub_epi8(_mm512_loadu_si512(q), sixteen),
                            _mm512_sub_epi8(_mm512_loadu_si512(q.add(1)), sixteen),
                        ]
                    }
                };
            }
            let d = _mm256_loadu_si256(d.as_ptr() as *const __m256i);
            _mm512_storeu_ps(scales, _mm512_cvtph_ps(d));
            // Rows 0..4 from the first source's dwords, 4..8 from the second's (16 on).
            let first = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 0, 0, 0, 0, 0, 0, 0, 0);
            let second = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 6, 16, 18, 20, 22);
            for k in 0..QK / 4 {
                let run = k / 2;
                let at = _mm512_set1_epi32(((run % 2) * 8 + k % 2) as i32);
                let half = run / 2;
                let (a, b) = (values[0][half], values[1][half]);
                let lo = _mm512_permutex2var_epi32(a, _mm512_add_epi32(first, at), b);
                let (a, b) = (values[2][half], values[3][half]);
                let hi = _mm512_permutex2var_epi32(a, _mm512_add_epi32(second, at), b);
                let row = _mm512_mask_blend_epi32(0xFF00, lo, hi);
                _mm512_storeu_si512(tile.add(64 * k) as *mut __m512i, row);
            }
        }
    }
}

impl CustomOp1 for Q8Matrix {
    fn name(&self) -> &'static str {
        "q8-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, m) = crate::storage::input(storage, layout, self.cols, "q8")?;
        let kernel = Isa::detect();
        let act = Activations::quantize(x, self.cols, self.format, kernel);
        let mut dst = vec![0f32; m * self.rows];
        self.matmul(kernel, m, &act, &mut dst);
        Ok(crate::storage::output(dst, layout, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use candle_core::quantized::{QMatMul, QTensor};
    use candle_core::{Device, Module};

    use crate::test_input as input;

    fn weights(rows: usize, cols: usize) -> Tensor {
        crate::test_weights(rows, cols, 0)
    }

    fn q8(w: &QTensor) -> Q8Matrix {
        let (rows, cols) = w.shape().dims2().unwrap();
        match w.dtype() {
            GgmlDType::Q8_0 => Q8Matrix::from_q8_0_rows(rows, cols, &w.data().unwrap()).unwrap(),
            GgmlDType::Q4_0 => Q8Matrix::from_q4_0_rows(rows, cols, &w.data().unwrap()).unwrap(),
            GgmlDType::Q5_0 => Q8Matrix::from_q5_0_rows(rows, cols, &w.data().unwrap()).unwrap(),
            other => panic!("no test matrix of {other:?}"),
        }
    }

    /// The three types with a kernel here.
    const TYPES: [GgmlDType; 3] = [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::Q5_0];

    /// `cols`, or for Q5_0 the next even number of blocks: candle's Q5_0 reference asserts an
    /// even number in debug builds.
    fn cols_for(dtype: GgmlDType, cols: usize) -> usize {
        match dtype {
            GgmlDType::Q5_0 => cols.div_ceil(2 * QK) * 2 * QK,
            _ => cols,
        }
    }

    /// The AVX-512 quantizer makes the scalar one's Q8_0 blocks and offsets bit for bit.
    #[test]
    fn vector_quantizer_makes_the_scalar_ones_blocks() {
        #[cfg(target_arch = "x86_64")]
        if crate::test_isas().contains(&Isa::Avx512) {
            for (n, xs) in crate::test_quantizer_blocks(QK).iter().enumerate() {
                let (mut want, mut got) = ([0i8; QK], [0i8; QK]);
                let (mut wd, mut wc, mut gd, mut gc) = (0f32, 0f32, 0f32, 0f32);
                scalar::quantize_q8_0(xs, &mut want, 128.0 / 4.0, &mut wd, &mut wc);
                // SAFETY: the CPU has AVX-512 (`test_isas`), and F16C with it.
                unsafe { avx512::quantize_q8_0(xs, &mut got, 128.0 / 4.0, &mut gd, &mut gc) };
                assert_eq!(got, want, "block {n}: values");
                assert_eq!(gd.to_bits(), wd.to_bits(), "block {n}: scale");
                assert_eq!(gc.to_bits(), wc.to_bits(), "block {n}: offset");
            }
            return;
        }
        eprintln!("skipped: this CPU has no AVX-512");
    }

    #[test]
    fn products_match_candles_matmul_for_one_and_many_rows() {
        for dtype in TYPES {
            // 24 rows: six groups, not a multiple of eight; 96 columns: three blocks.
            let cols = cols_for(dtype, 96);
            let w = QTensor::quantize(&weights(24, cols), dtype).unwrap();
            let mine = q8(&w);
            let reference = QMatMul::from_qtensor(w).unwrap();
            for m in [1, 2, 3, 6, 7] {
                let x = input(m, cols);
                assert_close(&mine.forward(&x).unwrap(), &reference.forward(&x).unwrap());
            }
            // Leading dimensions are kept.
            let x = input(6, cols).reshape((2, 3, cols)).unwrap();
            let y = mine.forward(&x).unwrap();
            assert_eq!(y.dims(), &[2, 3, 24]);
            assert_close(&y, &reference.forward(&x).unwrap());
        }
    }

    #[test]
    fn a_large_product_runs_on_the_pool_and_matches() {
        for dtype in TYPES {
            let w = QTensor::quantize(&weights(512, 640), dtype).unwrap();
            let mine = q8(&w);
            let reference = QMatMul::from_qtensor(w).unwrap();
            for m in [1, 5] {
                let x = input(m, 640);
                assert_close(&mine.forward(&x).unwrap(), &reference.forward(&x).unwrap());
            }
        }
    }

    #[test]
    fn q4_0_keeps_its_size_and_q5_0_its_values() {
        let w = QTensor::quantize(&weights(8, 128), GgmlDType::Q4_0).unwrap();
        let mine = q8(&w);
        // 18 bytes per 32 weights, as in the file.
        assert_eq!(mine.weight_bytes(), w.storage_size_in_bytes());
        let ids = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &Device::Cpu).unwrap();
        let dequantized = |w: &QTensor| w.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>();
        assert_eq!(
            mine.embedding(&ids).unwrap().to_vec2::<f32>().unwrap(),
            dequantized(&w).unwrap()
        );
        // Q5_0: a byte per value (34 bytes per 32 weights), every value kept.
        let w = QTensor::quantize(&weights(8, 128), GgmlDType::Q5_0).unwrap();
        let mine = q8(&w);
        assert_eq!(mine.weight_bytes(), 8 * 128 / QK * Q8_BLOCK);
        assert_eq!(
            mine.embedding(&ids).unwrap().to_vec2::<f32>().unwrap(),
            dequantized(&w).unwrap()
        );
    }

    #[test]
    fn every_kernel_agrees_with_the_scalar_one() {
        for dtype in TYPES {
            let w = QTensor::quantize(&weights(8, 128), dtype).unwrap();
            let mine = q8(&w);
            let x = input(9, 128)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let group = mine.group(1);
            for isa in crate::test_isas() {
                let act = Activations::quantize(&x, 128, mine.format, isa);
                let slow_act = Activations::quantize(&x, 128, mine.format, Isa::Scalar);
                for take in 1..=isa.rows_at_once(mine.format) {
                    for r in [0, 9 - take] {
                        let mut fast = [[0f32; GROUP]; MAX_TAKE];
                        let mut slow = [[0f32; GROUP]; MAX_TAKE];
                        isa.dots(mine.format, group, &act, r, take, &mut fast);
                        Isa::Scalar.dots(mine.format, group, &slow_act, r, take, &mut slow);
                        for (f, s) in fast.iter().flatten().zip(slow.iter().flatten()) {
                            let close = (f - s).abs() <= 1e-4 * (1.0 + s.abs());
                            assert!(close, "{isa:?} {dtype:?} take {take}: {f} against {s}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_kernels_products_match_candles() {
        for dtype in TYPES {
            // 36 rows: nine groups (for AMX two tiles of 16 rows and a group left over); 192
            // columns: six blocks. From 16 activation rows AMX takes them, 16 at a time: one
            // tile, one and a part, two.
            let w = QTensor::quantize(&weights(36, 192), dtype).unwrap();
            let mine = q8(&w);
            let reference = QMatMul::from_qtensor(w).unwrap();
            for m in [1, 3, 8, 11, 16, 19, 32] {
                let x = input(m, 192);
                let want = reference.forward(&x).unwrap();
                let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for isa in crate::test_isas() {
                    let act = Activations::quantize(&x, 192, mine.format, isa);
                    let mut got = vec![0f32; m * 36];
                    mine.matmul(isa, m, &act, &mut got);
                    let got = Tensor::from_vec(got, (m, 36), &Device::Cpu).unwrap();
                    assert_close(&got, &want);
                }
            }
        }
    }

    #[test]
    fn q8_0_q5_0_and_q4_0_tensors_read_from_a_gguf_give_candles_products() {
        let q8_0 = QTensor::quantize(&weights(16, 64), GgmlDType::Q8_0).unwrap();
        // An even number of blocks: candle's Q5_0 reference asserts it in debug builds.
        let q5_0 = QTensor::quantize(&weights(8, 128), GgmlDType::Q5_0).unwrap();
        let q4_0 = QTensor::quantize(&weights(12, 96), GgmlDType::Q4_0).unwrap();
        let q4_1 = QTensor::quantize(&weights(8, 64), GgmlDType::Q4_1).unwrap();
        let mut file = std::io::Cursor::new(Vec::new());
        let tensors = [("a", &q8_0), ("b", &q5_0), ("c", &q4_0), ("d", &q4_1)];
        gguf_file::write(&mut file, &[], &tensors).unwrap();
        file.set_position(0);
        let ct = gguf_file::Content::read(&mut file).unwrap();
        for (name, reference, cols) in [("a", q8_0, 64), ("b", q5_0, 128), ("c", q4_0, 96)] {
            let mine = Q8Matrix::from_gguf(&ct, &mut file, name).unwrap().unwrap();
            let reference = QMatMul::from_qtensor(reference).unwrap();
            let x = input(3, cols);
            assert_close(&mine.forward(&x).unwrap(), &reference.forward(&x).unwrap());
        }
        // Another type is left to candle.
        assert!(Q8Matrix::from_gguf(&ct, &mut file, "d").unwrap().is_none());
    }

    #[test]
    fn concatenated_rows_give_each_parts_products() {
        for dtype in TYPES {
            let a = QTensor::quantize(&weights(8, 64), dtype).unwrap();
            let b = QTensor::quantize(&weights(12, 64).affine(0.5, 0.1).unwrap(), dtype).unwrap();
            let both = Q8Matrix::concat_rows(&[&q8(&a), &q8(&b)]).unwrap();
            assert_eq!((both.rows(), both.cols()), (20, 64));
            let x = input(3, 64);
            let y = both.forward(&x).unwrap();
            assert_close(&y.narrow(1, 0, 8).unwrap(), &q8(&a).forward(&x).unwrap());
            assert_close(&y.narrow(1, 8, 12).unwrap(), &q8(&b).forward(&x).unwrap());
            let c = QTensor::quantize(&weights(4, 32), dtype).unwrap();
            assert!(Q8Matrix::concat_rows(&[&q8(&a), &q8(&c)]).is_err());
        }
        // 8-bit and 4-bit rows do not mix.
        let a8 = QTensor::quantize(&weights(8, 64), GgmlDType::Q8_0).unwrap();
        let a4 = QTensor::quantize(&weights(8, 64), GgmlDType::Q4_0).unwrap();
        assert!(!q8(&a8).joins(&q8(&a4)));
        assert!(Q8Matrix::concat_rows(&[&q8(&a8), &q8(&a4)]).is_err());
        // Q5_0 codes beside Q8_0 values join as 8-bit values, each part's products kept.
        let a5 = QTensor::quantize(&weights(12, 64).affine(0.5, 0.1).unwrap(), GgmlDType::Q5_0);
        let a5 = a5.unwrap();
        assert!(q8(&a5).joins(&q8(&a8)) && !q8(&a5).joins(&q8(&a4)));
        let both = Q8Matrix::concat_rows(&[&q8(&a5), &q8(&a8)]).unwrap();
        assert_eq!(both.format, Format::Int8);
        let x = input(3, 64);
        let y = both.forward(&x).unwrap();
        assert_close(&y.narrow(1, 0, 12).unwrap(), &q8(&a5).forward(&x).unwrap());
        assert_close(&y.narrow(1, 12, 8).unwrap(), &q8(&a8).forward(&x).unwrap());
    }

    #[test]
    fn embedding_rows_are_the_dequantized_weights() {
        for dtype in TYPES {
            let w = QTensor::quantize(&weights(12, 64), dtype).unwrap();
            let full = w.dequantize(&Device::Cpu).unwrap();
            let mine = q8(&w);
            let ids = Tensor::new(&[[5u32, 0], [11, 7]], &Device::Cpu).unwrap();
            let rows = mine.embedding(&ids).unwrap();
            assert_eq!(rows.dims(), &[2, 2, 64]);
            let want = full
                .index_select(&ids.flatten_all().unwrap(), 0)
                .unwrap()
                .reshape((2, 2, 64))
                .unwrap();
            assert_eq!(
                rows.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
            assert!(mine
                .embedding(&Tensor::new(&[12u32], &Device::Cpu).unwrap())
                .is_err());
        }
    }
}
