//! 8-bit linear layers for Marian's `--quantize int8`: each weight row quantized to int8 with
//! its own scale at load, each input row quantized to int8 with its own scale per product, the
//! products summed exactly in int32, and the sum scaled back to f32 (then the bias); the rest
//! of the network stays f32. The scheme of CTranslate2's int8 on CPU.
//!
//! Written by hand because no crate does it for x86 without VNNI: candle has no int8 matmul,
//! and the `gemm` crate is floating-point only. Where the CPU has AMX (Xeon from Sapphire
//! Rapids) the same sums come from `tdpbssd` on tiles of 16 input rows by 16 output rows by 64
//! columns (`crate::amx::int8_block`); where it has AVX-512 VNNI, from byte products, 64
//! multiply-adds an instruction (module `avx512`). Otherwise the
//! product is AVX2's `vpmaddwd` (16-bit pairs
//! multiplied and summed into 32 bits): weights are stored as int8 and widened as they are
//! loaded, inputs are stored widened. Two multiply-adds cover 16 outputs x 2 columns, as many
//! instructions as one f32 FMA does for 8 x 1, on a quarter of the bytes; the sum is exact
//! (no saturation, unlike `vpmaddubsw` on unsigned x signed bytes), so the AVX2 and scalar
//! paths agree bit for bit.
//!
//! Layout: panels of 16 output rows, as `packed`. For AVX2 and the scalar kernel panel step
//! `t` is 32 bytes, columns `2t` and `2t + 1` of each of the 16 rows in row order, so rows 0–7
//! widen into one register and rows 8–15 into another, each 32-bit lane a row. For VNNI and
//! AMX (chosen when the layer is built, on a CPU that has them) step `t` is 64 bytes, columns
//! `4t` to `4t + 3` of each row in row order, the order `vpdpbusd` sums: each step is one load
//! and one instruction per input row, nothing rearranged as the product runs; and 16 steps
//! are one `tdpbssd` weight tile as it is.

use crate::par::{SharedOut, SharedSlice};
use crate::Isa;

/// Output rows per panel.
const PANEL: usize = 16;
/// Bytes per panel step: 16 rows x 2 columns (x 4 in the VNNI layout).
const STEP: usize = 2 * PANEL;
/// Bytes per panel step in the VNNI layout: 16 rows x 4 columns.
const QUAD: usize = 4 * PANEL;
/// Input rows per kernel call: 2 x 6 accumulators, two weight registers and a broadcast.
const ROWS: usize = 6;
/// Input rows per VNNI kernel call: an accumulator each of AVX-512's 32 registers, the
/// weights' 64-byte step loaded once for all of them.
const VNNI_ROWS: usize = 16;
/// Rows per work item for products of many rows (the encoder's); up to `SINGLE_BLOCK` rows
/// (a decoding step: sentences times beams) are one block, so that each weight is read from
/// memory once per product.
const ROW_BLOCK: usize = 8 * ROWS;
// AMX's tiles of 16 rows start at a block's start (`Int8Linear::matmul`).
const _: () = assert!(ROW_BLOCK.is_multiple_of(16));
const SINGLE_BLOCK: usize = 128;
/// Input columns per pass: a panel's chunk (16 KB) stays in L1 while the block's rows pass
/// over it, the rows' chunk in L2 while the group's panels pass.
const K_CHUNK: usize = 1024;
/// Panels per work item.
const GROUP: usize = 8;

thread_local! {
    /// Each thread's int32 sums for one work item, kept between products.
    static ACC: std::cell::RefCell<Vec<[i32; PANEL]>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each thread's quantized input rows, kept between products.
    /// With AVX-512 VNNI also the values plus 128, as bytes.
    static XQ: std::cell::RefCell<(Vec<i16>, Vec<f32>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// 1.5 x 2^23: added to a float of magnitude below 2^22, leaves it rounded to an integer.
const ROUND: f32 = 12582912.0;

/// The int8 values of `row` into `dst` (`row.len()` values) and the scale that maps them back:
/// `row[i] ≈ dst[i] * scale`, the largest magnitude going to ±127.
fn quantize_row<T: From<i8>>(row: &[f32], dst: &mut [T]) -> f32 {
    quantize_row_as(row, dst, |q| T::from(q as i8))
}

/// [`quantize_row`], each value stored as `f` makes it from the int8 value (-127..=127).
#[inline(always)]
fn quantize_row_as<T>(row: &[f32], dst: &mut [T], f: impl Fn(i32) -> T) -> f32 {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    // Whether any value is NaN or infinite (`max` passes NaNs over): all exponent bits set.
    // (Bits, so that the loop vectorizes, as an f32 sum in order does not.)
    const EXP: u32 = 0x7f80_0000;
    let non_finite = row
        .iter()
        .fold(0u32, |a, v| a | (v.to_bits() & EXP == EXP) as u32)
        != 0;
    if max == 0.0 || !max.is_finite() || non_finite {
        // All zero, or a non-finite input whose product is meaningless anyway: zeros, and a
        // scale that keeps a NaN or infinity visible in the output.
        dst.iter_mut().for_each(|d| *d = f(0));
        return if max == 0.0 && !non_finite {
            0.0
        } else {
            f32::NAN
        };
    }
    let inv = 127.0 / max;
    for (d, &v) in dst.iter_mut().zip(row) {
        // Rounded to the nearest integer, ties to even, by adding 1.5 x 2^23 (exact for
        // |v * inv| <= 127), and read from the low bits of the sum: `f32::round` is a call
        // into libm on x86-64's baseline, and a float's cast to an integer saturates, value
        // by value; this loop is integer operations the compiler vectorizes (quantizing
        // tc-big at load: 1.3 s with the cast).
        let q = ((v * inv).clamp(-127.0, 127.0) + ROUND).to_bits() as i32 - ROUND.to_bits() as i32;
        *d = f(q);
    }
    max / 127.0
}

/// Input rows `x` (`k` values each) quantized into `dst` (`kp` values a row, the first `k`
/// written, each as `f` makes it from its int8 value) with their scales into `sx` (one a row):
/// on the pool threads for many rows. On one thread this was 8% of a tc-big beam-4 step
/// (64 rows into every layer) while the other thread waited.
fn quantize_rows<T: Send>(
    x: &[f32],
    k: usize,
    kp: usize,
    dst: &mut [T],
    sx: &mut [f32],
    f: impl Fn(i32) -> T + Sync,
) {
    let m = sx.len();
    assert!(x.len() == m * k && dst.len() >= m * kp && k <= kp);
    if m < 2 || m * k < 1 << 15 {
        for ((row, d), s) in x.chunks_exact(k).zip(dst.chunks_mut(kp)).zip(sx.iter_mut()) {
            *s = quantize_row_as(row, &mut d[..k], &f);
        }
        return;
    }
    let (d, s) = (SharedSlice::new(&mut dst[..m * kp]), SharedSlice::new(sx));
    candle_core::utils::barrier_pool().execute_chunked(m, |rows| {
        for i in rows {
            // SAFETY: row `i` of `dst` and of `sx` is handed to this one call only.
            let (d, s) = unsafe { (d.chunk_mut(i, kp), s.chunk_mut(i, 1)) };
            s[0] = quantize_row_as(&x[i * k..][..k], &mut d[..k], &f);
        }
    });
}

/// The whole groups of `W` values of `q` to the first `W` bytes of each step.
fn put<const W: usize>(steps: std::slice::ChunksMut<'_, i8>, q: &[i8]) {
    for (dst, cols) in steps.zip(q.chunks_exact(W)) {
        let cols: &[i8; W] = cols.try_into().expect("chunks of W");
        dst[..W].copy_from_slice(cols);
    }
}

/// `x @ W^T + b` for a weight `W` of shape `(n, k)` held as int8 rows with f32 scales.
pub struct Int8Linear {
    n: usize,
    k: usize,
    /// `k` rounded up to a whole number of four columns.
    kp: usize,
    /// The kernel the layer is laid out for.
    isa: Isa,
    /// `ceil(n / 16)` panels of `kp` columns; zero past row `n` and column `k`.
    panels: Vec<i8>,
    /// Per output row, the sum of its int8 values (`ceil(n / 16) * 16`, zero past `n`): the
    /// VNNI kernel's sums take the input plus 128, and 128 times this back.
    sums: Vec<i32>,
    /// Per output row, `ceil(n / 16) * 16` of them, zero past `n`: `W[j] ≈ q[j] * scales[j]`.
    scales: Vec<f32>,
    /// `ceil(n / 16) * 16` values, zero past `n`.
    bias: Vec<f32>,
}

/// Builds an [`Int8Linear`] from its weight rows in order, so that a matrix read in pieces
/// never exists whole as f32.
pub struct Int8Builder {
    lin: Int8Linear,
    /// Rows added so far.
    rows: usize,
}

impl Int8Builder {
    /// A `(n, k)` weight matrix to come, laid out for this CPU's kernel.
    pub fn new(n: usize, k: usize) -> Int8Builder {
        Int8Builder::for_isa(n, k, Isa::detect())
    }

    /// A `(n, k)` weight matrix to come, laid out for `isa`'s kernel (one the CPU has).
    fn for_isa(n: usize, k: usize, isa: Isa) -> Int8Builder {
        // AMX's tiles take 64 columns at a time.
        let kp = k.next_multiple_of(if isa.uses_tiles() { 64 } else { 4 });
        let padded = n.div_ceil(PANEL) * PANEL;
        Int8Builder {
            lin: Int8Linear {
                n,
                k,
                kp,
                isa,
                panels: vec![0; padded * kp],
                sums: vec![0; padded],
                scales: vec![0.0; padded],
                bias: vec![0.0; padded],
            },
            rows: 0,
        }
    }

    /// Quantizes and stores the next rows (`rows.len()` a multiple of `k`).
    pub fn push(&mut self, rows: &[f32]) -> candle_core::Result<()> {
        let (n, k, kp) = (self.lin.n, self.lin.k, self.lin.kp);
        if k == 0 || !rows.len().is_multiple_of(k) || self.rows + rows.len() / k > n {
            candle_core::bail!(
                "int8: {} more values for a {n} x {k} matrix holding {} rows",
                rows.len(),
                self.rows
            )
        }
        let (first, count) = (self.rows, rows.len() / k);
        if count == 0 {
            return Ok(());
        }
        // The panels these rows fall in, each quantized by one thread (a panel's rows share
        // its steps' bytes): tc-big's load was a third this loop, on one thread.
        let (p0, p1) = (first / PANEL, (first + count).div_ceil(PANEL));
        let bytes = PANEL * kp;
        let (width, step) = self.lin.step();
        let panels = SharedSlice::new(&mut self.lin.panels[p0 * bytes..p1 * bytes]);
        let scales = SharedSlice::new(&mut self.lin.scales[p0 * PANEL..p1 * PANEL]);
        let sums = SharedSlice::new(&mut self.lin.sums[p0 * PANEL..p1 * PANEL]);
        let run = |items: std::ops::Range<usize>| {
            let mut q = vec![0i8; k];
            for i in items {
                // SAFETY: item `i` is the only one given panel `p0 + i`'s bytes, scales and
                // sums (each item once, `execute_chunked`).
                let (panel, scales, sums) = unsafe {
                    (
                        panels.chunk_mut(i, bytes),
                        scales.chunk_mut(i, PANEL),
                        sums.chunk_mut(i, PANEL),
                    )
                };
                let p = p0 + i;
                for j in (p * PANEL).max(first)..((p + 1) * PANEL).min(first + count) {
                    let r = j % PANEL;
                    scales[r] = quantize_row(&rows[(j - first) * k..][..k], &mut q);
                    sums[r] = q.iter().map(|&v| v as i32).sum();
                    // The row's pairs (fours) of columns go one to each step, at the row's
                    // place in it. (Byte by byte: `copy_from_slice` of a pair is a call to
                    // memmove, which made quantizing tc-big take a second.)
                    let steps = panel[r * width..].chunks_mut(step);
                    let whole = k / width * width;
                    match width {
                        // Copies of constant length: moves of 2 or 4 bytes.
                        2 => put::<2>(steps, &q),
                        _ => put::<4>(steps, &q),
                    }
                    // The last few columns of a step, if `k` ends in one.
                    if whole < k {
                        let last = panel[r * width + whole / width * step..].iter_mut();
                        for (d, &v) in last.zip(&q[whole..]) {
                            *d = v;
                        }
                    }
                }
            }
        };
        if count * k < 1 << 16 {
            run(0..p1 - p0);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(p1 - p0, run);
        }
        self.rows += count;
        Ok(())
    }

    /// The layer, once all `n` rows are in, with the optional bias `(n,)`.
    pub fn finish(mut self, bias: Option<&[f32]>) -> candle_core::Result<Int8Linear> {
        let n = self.lin.n;
        if self.rows != n {
            candle_core::bail!("int8: {} rows of {n} given", self.rows)
        }
        if let Some(bias) = bias {
            if bias.len() != n {
                candle_core::bail!("int8: bias of {} for {n} outputs", bias.len())
            }
            self.lin.bias[..n].copy_from_slice(bias);
        }
        Ok(self.lin)
    }
}

impl Int8Linear {
    /// Quantizes the row-major `(n, k)` matrix `w`.
    pub fn from_rows(
        w: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
    ) -> candle_core::Result<Self> {
        if w.len() != n * k {
            candle_core::bail!("int8: {} values for a {n} x {k} matrix", w.len())
        }
        let mut b = Int8Builder::new(n, k);
        b.push(w)?;
        b.finish(bias)
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// Whether the layer is in the VNNI layout (steps of four columns), which its kernel
    /// reads: with `int8_on_bytes`.
    fn quads(&self) -> bool {
        self.isa.int8_on_bytes()
    }

    /// Columns of a row per panel step, and the step's bytes.
    fn step(&self) -> (usize, usize) {
        if self.quads() {
            (4, QUAD)
        } else {
            (2, STEP)
        }
    }

    /// Row `id` of `W` as the layer holds it (its int8 values times its scale) into `dst`
    /// (`k` values); `id < n`. The embedding table of a model whose output layer shares it.
    pub fn row_into(&self, id: usize, dst: &mut [f32]) {
        let panel = &self.panels[(id / PANEL) * PANEL * self.kp..][..PANEL * self.kp];
        let scale = self.scales[id];
        let (width, step) = self.step();
        for (c, v) in dst[..self.k].iter_mut().enumerate() {
            *v = panel[(c / width) * step + (id % PANEL) * width + c % width] as f32 * scale;
        }
    }

    /// `x @ W^T + b` for `x` holding rows of `k` values: rows of `n` values.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        assert!(
            self.k > 0 && x.len().is_multiple_of(self.k),
            "int8: {} values are not rows of {}",
            x.len(),
            self.k
        );
        let m = x.len() / self.k;
        let mut dst = Vec::with_capacity(m * self.n);
        let (k, kp) = (self.k, self.kp);
        XQ.with_borrow_mut(|(xq, sx, xu)| {
            xq.clear();
            sx.clear();
            xu.clear();
            sx.resize(m, 0.0);
            // On AMX every product takes the tiles, a single row too (padded to 16 rows of
            // zeros): tc-big greedy, batch 8, 2 threads, with tiles from 16 rows 143/172
            // words/s, from one row 257/223; one sentence at a time 48/54 against 59/60.
            let tiles = self.isa.uses_tiles();
            if tiles {
                // The int8 values as they are, and rows of zeros up to a whole tile.
                xu.resize(m.next_multiple_of(16) * kp, 0);
                quantize_rows(x, k, kp, xu, sx, |q| q as i8 as u8);
            } else if self.quads() {
                // The values plus 128 (128 in the padding: a value of 0).
                xu.resize(m * kp, 128);
                quantize_rows(x, k, kp, xu, sx, |q| (q + 128) as u8);
            } else {
                xq.resize(m * kp, 0);
                quantize_rows(x, k, kp, xq, sx, |q| q as i16);
            }
            self.matmul(xq, xu, sx, m, dst.spare_capacity_mut());
        });
        // SAFETY: `matmul` writes all `m * n` cells.
        unsafe { dst.set_len(m * self.n) };
        dst
    }

    /// `dst = (x W^T) * sx * scales + b` for the `m` quantized input rows (`kp` values each)
    /// with their scales `sx`: `packed`'s blocking, on int32 sums. In the pair layout the rows
    /// are `xq` (16-bit) and `xu` is empty; in the VNNI layout they are `xu`, bytes: on AMX's
    /// tiles (`Isa::uses_tiles`) the int8 values, padded with zero rows to a multiple of 16,
    /// otherwise the values plus 128; `xq` is then unused.
    fn matmul(
        &self,
        xq: &[i16],
        xu: &[u8],
        sx: &[f32],
        m: usize,
        dst: &mut [std::mem::MaybeUninit<f32>],
    ) {
        assert!(sx.len() >= m && dst.len() >= m * self.n);
        assert!(xq.len() >= if self.quads() { 0 } else { m * self.kp });
        let tiles = self.isa.uses_tiles();
        let want = match (tiles, self.quads()) {
            (true, _) => m.next_multiple_of(16) * self.kp,
            (false, true) => m * self.kp,
            (false, false) => 0,
        };
        assert!(xu.len() == want);
        let (kp, n) = (self.kp, self.n);
        let n_panels = n.div_ceil(PANEL);
        let block = if m <= SINGLE_BLOCK {
            m.max(1)
        } else {
            ROW_BLOCK
        };
        let row_blocks = m.div_ceil(block);
        let group = if n_panels >= 32 * GROUP {
            GROUP
        } else {
            GROUP / 2
        };
        let groups = n_panels.div_ceil(group);
        let kernel = self.isa;
        let dst_ptr = SharedOut::uninit(dst);
        // The VNNI kernel's sums are of the input plus 128.
        let shift = if self.quads() && !tiles { 128 } else { 0 };
        // Row `row`'s outputs of panel `p` from their int32 sums.
        let finish = |p: usize, row: usize, sums: &[i32]| {
            let cols = PANEL.min(n - p * PANEL);
            let scales = &self.scales[p * PANEL..][..PANEL];
            let bias = &self.bias[p * PANEL..][..PANEL];
            let wsums = &self.sums[p * PANEL..][..PANEL];
            let sums = &sums[..PANEL];
            let s = sx[row];
            let mut out = [0f32; PANEL];
            for c in 0..PANEL {
                let sum = sums[c].wrapping_sub(shift * wsums[c]);
                out[c] = sum as f32 * (s * scales[c]) + bias[c];
            }
            let at = row * n + p * PANEL;
            // SAFETY: every (row, panel) cell of `dst` is written by exactly one work item. A
            // whole panel is a copy of constant length (moves, not a call to memmove: 3% of a
            // beam-4 run on the output layer).
            unsafe {
                match cols {
                    PANEL => dst_ptr.write(at, &out),
                    _ => dst_ptr.write(at, &out[..cols]),
                }
            }
        };
        let run = |items: std::ops::Range<usize>| {
            #[cfg(target_arch = "x86_64")]
            if tiles {
                // SAFETY: `uses_tiles` holds only under `Isa::Amx`, detected only where AMX is
                // usable.
                let square = unsafe { crate::amx::SquareTiles::new() };
                let mut c = [const { crate::amx::Sums([0; 256]) }; 4];
                let units = kp / 64;
                for item in items {
                    let (rb, g) = (item / groups, item % groups);
                    let panels = g * group..n_panels.min((g + 1) * group);
                    let (start, end) = (rb * block, m.min((rb + 1) * block));
                    for p in panels.clone().step_by(2) {
                        let bn = if p + 1 < panels.end { 2 } else { 1 };
                        let b = self.panels[p * PANEL * kp..].as_ptr();
                        for r0 in (start..end).step_by(32) {
                            let an = if r0 + 16 < end { 2 } else { 1 };
                            let a = xu[r0 * kp..].as_ptr().cast::<i8>();
                            let next = PANEL * kp;
                            // SAFETY: `start` is a multiple of 16 (`block` is `m`, one block,
                            // or 48), so the activation tiles' rows `r0..r0 + 16 an` are within
                            // `xu`'s zero-padded rows, `kp` bytes each (asserted above); panels
                            // `p..p + bn` exist, `kp / 64` tiles of 1024 bytes each.
                            unsafe {
                                use crate::amx::int8_block;
                                match (an, bn) {
                                    (1, 1) => {
                                        int8_block::<1, 1>(&square, a, kp, b, next, units, &mut c)
                                    }
                                    (1, _) => {
                                        int8_block::<1, 2>(&square, a, kp, b, next, units, &mut c)
                                    }
                                    (_, 1) => {
                                        int8_block::<2, 1>(&square, a, kp, b, next, units, &mut c)
                                    }
                                    _ => int8_block::<2, 2>(&square, a, kp, b, next, units, &mut c),
                                }
                            }
                            for ai in 0..an {
                                let r = r0 + 16 * ai;
                                for bi in 0..bn {
                                    let sums = &c[bn * ai + bi].0;
                                    for i in 0..16.min(end.saturating_sub(r)) {
                                        finish(p + bi, r + i, &sums[16 * i..]);
                                    }
                                }
                            }
                        }
                    }
                }
                return;
            }
            ACC.with_borrow_mut(|acc| {
                if acc.len() < block * group {
                    acc.resize(block * group, [0; PANEL]);
                }
                for item in items {
                    let (rb, g) = (item / groups, item % groups);
                    let panels = g * group..n_panels.min((g + 1) * group);
                    let (start, end) = (rb * block, m.min((rb + 1) * block));
                    let rows = end - start;
                    for i in 0..panels.len() {
                        acc[i * block..i * block + rows].fill([0; PANEL]);
                    }
                    for kc in (0..kp).step_by(K_CHUNK) {
                        let kl = K_CHUNK.min(kp - kc);
                        for (i, p) in panels.clone().enumerate() {
                            let chunk = &self.panels[p * PANEL * kp + kc * PANEL..][..kl * PANEL];
                            let acc = &mut acc[i * block..i * block + rows];
                            let per_call = if self.quads() { VNNI_ROWS } else { ROWS };
                            for (t, acc) in acc.chunks_mut(per_call).enumerate() {
                                let r = start + t * per_call;
                                let xs = r * kp + kc..(r + acc.len() - 1) * kp + kc + kl;
                                match self.quads() {
                                    true => kernel.run_int8_bytes(chunk, &xu[xs], kp, acc),
                                    false => kernel.run_int8(chunk, &xq[xs], kp, acc),
                                }
                            }
                        }
                    }
                    for (i, p) in panels.enumerate() {
                        for (j, sums) in acc[i * block..i * block + rows].iter().enumerate() {
                            finish(p, start + j, sums);
                        }
                    }
                }
            })
        };
        let items = row_blocks * groups;
        if m * n * kp < 1 << 16 {
            run(0..items);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(items, run);
        }
    }
}

impl Isa {
    /// Whether the int8 kernel reads the inputs as bytes (the values plus 128): with AVX-512
    /// VNNI's unsigned-by-signed byte products.
    fn int8_on_bytes(self) -> bool {
        matches!(self, Isa::Avx512 | Isa::Amx)
    }

    /// `acc[i] += (x[i] + 128) . panel` for the 1..=16 rows of `x` (values plus 128, `stride`
    /// apart), over the VNNI-layout panel chunk's `panel.len() / 16` columns.
    fn run_int8_bytes(self, panel: &[i8], x: &[u8], stride: usize, acc: &mut [[i32; PANEL]]) {
        assert!(self.int8_on_bytes(), "int8: the VNNI layout on {self:?}");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512 F, BW and VNNI are present (`detect`, `int8_on_bytes`); the slices'
        // lengths are checked in the kernel.
        unsafe {
            macro_rules! rows {
                ($($r:literal)*) => {
                    match acc.len() {
                        $($r => avx512::rows::<$r>(panel, x, stride, acc),)*
                        _ => avx512::rows::<16>(panel, x, stride, acc),
                    }
                };
            }
            rows!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
        }
    }

    /// `acc[i] += x[i] . panel` for the 1..=6 rows of `x` (`stride` apart), over the panel
    /// chunk's `panel.len() / 16` columns, in the pair layout.
    fn run_int8(self, panel: &[i8], x: &[i16], stride: usize, acc: &mut [[i32; PANEL]]) {
        match self {
            Isa::Scalar => scalar(panel, x, stride, acc),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 is present (`detect`); the slices' lengths are checked in the
            // kernel.
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe {
                match acc.len() {
                    1 => avx2::rows::<1>(panel, x, stride, acc),
                    2 => avx2::rows::<2>(panel, x, stride, acc),
                    3 => avx2::rows::<3>(panel, x, stride, acc),
                    4 => avx2::rows::<4>(panel, x, stride, acc),
                    5 => avx2::rows::<5>(panel, x, stride, acc),
                    _ => avx2::rows::<6>(panel, x, stride, acc),
                }
            },
        }
    }
}

fn scalar(panel: &[i8], x: &[i16], stride: usize, acc: &mut [[i32; PANEL]]) {
    let steps = panel.len() / STEP;
    for (i, out) in acc.iter_mut().enumerate() {
        let row = &x[i * stride..i * stride + 2 * steps];
        for (w, xs) in panel.chunks_exact(STEP).zip(row.chunks_exact(2)) {
            let (x0, x1) = (xs[0] as i32, xs[1] as i32);
            for (o, w) in out.iter_mut().zip(w.chunks_exact(2)) {
                *o += w[0] as i32 * x0 + w[1] as i32 * x1;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// `R` rows of `x` against one panel chunk, 2 x R accumulators of 8 int32 sums.
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows<const R: usize>(
        panel: &[i8],
        x: &[i16],
        stride: usize,
        acc: &mut [[i32; PANEL]],
    ) {
        let steps = panel.len() / STEP;
        assert!(R <= ROWS && acc.len() >= R && x.len() >= (R - 1) * stride + 2 * steps);
        // SAFETY: the assert above bounds every offset read or written: `panel` at
        // `t * STEP + 32 <= panel.len()`, `x` at `r * stride + 2t + 2 <= x.len()`, `acc[r]`
        // for `r < R`; unaligned loads throughout; the caller runs this on a CPU with AVX2.
        unsafe {
            let mut a0 = [_mm256_setzero_si256(); R];
            let mut a1 = [_mm256_setzero_si256(); R];
            for r in 0..R {
                a0[r] = _mm256_loadu_si256(acc[r].as_ptr().cast());
                a1[r] = _mm256_loadu_si256(acc[r].as_ptr().add(8).cast());
            }
            let w = panel.as_ptr();
            let xp = x.as_ptr();
            for t in 0..steps {
                let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(t * STEP).cast()));
                let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(t * STEP + 16).cast()));
                for r in 0..R {
                    let pair = xp.add(r * stride + 2 * t).cast::<i32>().read_unaligned();
                    let xb = _mm256_set1_epi32(pair);
                    a0[r] = _mm256_add_epi32(a0[r], _mm256_madd_epi16(w0, xb));
                    a1[r] = _mm256_add_epi32(a1[r], _mm256_madd_epi16(w1, xb));
                }
            }
            for r in 0..R {
                _mm256_storeu_si256(acc[r].as_mut_ptr().cast(), a0[r]);
                _mm256_storeu_si256(acc[r].as_mut_ptr().add(8).cast(), a1[r]);
            }
        }
    }
}

/// With AVX-512 VNNI, `vpdpbusd`: unsigned bytes times signed bytes, four products summed
/// into each int32 lane, 64 multiply-adds an instruction where AVX2's `vpmaddwd` does 16. The
/// inputs are read as bytes, each value plus 128 (1 to 255); the caller takes 128 times each
/// weight row's sum (made at load) away, so that the sums are the same exact int32 sums. A
/// panel step in the VNNI layout is one 64-byte load, each row's four columns together, as
/// the instruction sums them, shared by the rows.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    /// `R` rows of `x` (values plus 128) against one panel chunk in the VNNI layout, one
    /// accumulator of 16 int32 sums per row.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn rows<const R: usize>(
        panel: &[i8],
        x: &[u8],
        stride: usize,
        acc: &mut [[i32; PANEL]],
    ) {
        let steps = panel.len() / QUAD;
        assert!(R <= VNNI_ROWS && acc.len() >= R && x.len() >= (R - 1) * stride + 4 * steps);
        // SAFETY: the assert above bounds every offset read or written: `panel` at
        // `t * QUAD + 64 <= panel.len()`, `x` at `r * stride + 4t + 4`, within
        // `(R - 1) * stride + 4 * steps`; `acc[r]` for `r < R`; the caller runs this on a CPU
        // with AVX-512 F, BW and VNNI.
        unsafe {
            let mut a = [_mm512_setzero_si512(); R];
            for (r, a) in a.iter_mut().enumerate() {
                *a = _mm512_loadu_si512(acc[r].as_ptr().cast());
            }
            let w = panel.as_ptr();
            let xp = x.as_ptr();
            for t in 0..steps {
                let wt = _mm512_loadu_si512(w.add(t * QUAD).cast());
                for (r, a) in a.iter_mut().enumerate() {
                    let four = xp.add(r * stride + 4 * t).cast::<i32>().read_unaligned();
                    *a = _mm512_dpbusd_epi32(*a, _mm512_set1_epi32(four), wt);
                }
            }
            for (r, a) in a.iter().enumerate() {
                _mm512_storeu_si512(acc[r].as_mut_ptr().cast(), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{test_input, test_weights};

    fn values(t: candle_core::Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The product in f64 of the f32 input and the weights as the layer holds them (int8
    /// times scale): all that may differ from it is the input's own quantization.
    fn dequantized_product(lin: &Int8Linear, x: &[f32]) -> Vec<f64> {
        let mut w = vec![0f32; lin.k];
        let mut out = Vec::new();
        for row in x.chunks_exact(lin.k) {
            for j in 0..lin.n {
                lin.row_into(j, &mut w);
                let dot: f64 = row.iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum();
                out.push(dot + lin.bias[j] as f64);
            }
        }
        out
    }

    #[test]
    fn weights_round_to_the_nearest_of_255_steps_of_their_rows_largest_value() {
        let w = values(test_weights(37, 41, 3));
        let lin = Int8Linear::from_rows(&w, 37, 41, None).unwrap();
        let mut row = vec![0f32; 41];
        for (j, orig) in w.chunks_exact(41).enumerate() {
            lin.row_into(j, &mut row);
            let max = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((lin.scales[j] - max / 127.0).abs() <= 1e-7 * max);
            for (a, b) in row.iter().zip(orig) {
                assert!(
                    (a - b).abs() <= 0.5 * lin.scales[j] * 1.0001,
                    "{a} against {b}"
                );
            }
            // The largest is exact (up to the scale's rounding).
            let big = orig.iter().map(|v| v.abs()).fold(0f32, f32::max);
            assert!(row.iter().any(|v| (v.abs() - big).abs() <= 1e-6 * big));
        }
        // A zero row stays zero.
        let lin = Int8Linear::from_rows(&[0.0; 6], 2, 3, None).unwrap();
        lin.row_into(1, &mut row[..3]);
        assert_eq!(&row[..3], &[0.0; 3]);
        assert_eq!(lin.apply(&[1.0, 2.0, 3.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn products_are_the_exact_integer_sums_scaled_for_any_shape() {
        // Odd columns (a padded pair), 37 outputs (a partial panel), 1–130 rows (partial row
        // tiles, several row blocks), over 1024 columns (two column chunks), with a bias.
        for (n, k) in [(37, 41), (20, 1100), (300, 64)] {
            let w = values(test_weights(n, k, n));
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 3.0).collect();
            let lin = Int8Linear::from_rows(&w, n, k, Some(&bias)).unwrap();
            for m in [1, 2, 5, 6, 7, 13, 49, 130] {
                let x = values(test_input(m, k));
                let got = lin.apply(&x);
                assert_eq!(got.len(), m * n);
                // Against integer arithmetic done here, independently of the kernels' layout.
                let mut xq = vec![0i32; k];
                let mut wq = vec![0i32; k];
                for (r, row) in x.chunks_exact(k).enumerate() {
                    let sx = quantize_row(row, &mut xq);
                    for j in 0..n {
                        let sw = quantize_row(&w[j * k..(j + 1) * k], &mut wq);
                        let sum: i64 = xq.iter().zip(&wq).map(|(&a, &b)| a as i64 * b as i64).sum();
                        let want = sum as f32 * (sx * sw) + bias[j];
                        let have = got[r * n + j];
                        assert!(
                            (have - want).abs() <= 1e-6 * (1.0 + want.abs()),
                            "{m} rows, ({r}, {j}): {have} against {want}"
                        );
                    }
                }
                // And close to the f64 product with the held weights: the input's rounding
                // costs at most half a step per value.
                let reference = dequantized_product(&lin, &x);
                for (r, row) in x.chunks_exact(k).enumerate() {
                    let max = row.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                    for j in 0..n {
                        let wsum: f64 = {
                            let mut w = vec![0f32; k];
                            lin.row_into(j, &mut w);
                            w.iter().map(|v| v.abs() as f64).sum()
                        };
                        let bound = 0.5 * max / 127.0 * wsum + 1e-4;
                        let d = (got[r * n + j] as f64 - reference[r * n + j]).abs();
                        assert!(d <= bound, "({r}, {j}): off by {d}, bound {bound}");
                    }
                }
            }
        }
    }

    /// Every kernel this CPU can run, each with its own layout, gives the scalar kernel's
    /// products bit for bit (the same exact int32 sums), for every number of rows up to 13 and
    /// AMX's partial and paired tiles of rows, one panel or a pair, over two column chunks, on inputs and weights at ±127 (rows of ±1 in runs, so that every value
    /// quantizes to an edge) and random ones.
    #[test]
    fn every_kernel_agrees_with_the_scalar_one() {
        for (n, k) in [(16, 24), (37, 26), (20, 1100)] {
            let mut w = values(test_weights(n, k, 7));
            for v in &mut w[..3 * k] {
                *v = if (v.to_bits() >> 3) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                };
            }
            // Up to three AMX tiles of rows (two at once, then one), partial ones.
            let m = 40;
            let mut x = values(test_input(m, k));
            for (i, v) in x[..2 * k].iter_mut().enumerate() {
                *v = if (i / 4) % 2 == 0 { 3.0 } else { -3.0 };
            }
            let want = Int8Builder::for_isa(n, k, Isa::Scalar);
            let want = {
                let mut b = want;
                b.push(&w).unwrap();
                b.finish(None).unwrap()
            };
            for isa in crate::test_isas() {
                let mut b = Int8Builder::for_isa(n, k, isa);
                b.push(&w).unwrap();
                let lin = b.finish(None).unwrap();
                assert_eq!(lin.quads(), isa.int8_on_bytes());
                for rows in (1..=17).chain([31, 32, 33, 40]) {
                    let x = &x[..rows * k];
                    assert_eq!(
                        lin.apply(x),
                        want.apply(x),
                        "{isa:?}, {n} x {k}, {rows} rows"
                    );
                }
            }
        }
    }

    /// An input row holding a NaN or an infinity gives NaN outputs (not a product of the other
    /// values), and the rows beside it are untouched; a zero row gives the bias.
    #[test]
    fn a_non_finite_input_row_gives_nan_outputs() {
        let w = values(test_weights(5, 8, 2));
        let bias = [1.0, 2.0, 3.0, 4.0, 5.0];
        let lin = Int8Linear::from_rows(&w, 5, 8, Some(&bias)).unwrap();
        let good: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = good.clone();
            x.extend(&good);
            x[8 + 3] = bad;
            x.extend([0.0; 8]);
            let y = lin.apply(&x);
            assert_eq!(&y[..5], &lin.apply(&good)[..], "{bad}");
            assert!(
                y[5..10].iter().all(|v| v.is_nan()),
                "{bad}: {:?}",
                &y[5..10]
            );
            assert_eq!(&y[10..], &bias, "{bad}");
        }
    }

    #[test]
    fn built_in_pieces_equals_built_whole() {
        let w = values(test_weights(40, 30, 11));
        let whole = Int8Linear::from_rows(&w, 40, 30, None).unwrap();
        let mut b = Int8Builder::new(40, 30);
        for piece in w.chunks(7 * 30) {
            b.push(piece).unwrap();
        }
        let pieces = b.finish(None).unwrap();
        assert_eq!(whole.panels, pieces.panels);
        assert_eq!(whole.scales, pieces.scales);
        // Pieces large enough to be quantized on the threads, a panel each, starting and ending
        // inside panels, against a row at a time, in every layout.
        let (n, k) = (100, 1100);
        let w = values(test_weights(n, k, 5));
        for isa in crate::test_isas() {
            let mut big = Int8Builder::for_isa(n, k, isa);
            for piece in w.chunks(70 * k) {
                assert!(piece.len() >= 1 << 16 || piece.len() < 70 * k);
                big.push(piece).unwrap();
            }
            let mut one = Int8Builder::for_isa(n, k, isa);
            for row in w.chunks(k) {
                one.push(row).unwrap();
            }
            let (big, one) = (big.finish(None).unwrap(), one.finish(None).unwrap());
            assert_eq!(big.panels, one.panels, "{isa:?}");
            assert_eq!(big.scales, one.scales, "{isa:?}");
            assert_eq!(big.sums, one.sums, "{isa:?}");
        }
        // Too many rows, too few, a bias of the wrong length: errors.
        let mut b = Int8Builder::new(2, 30);
        assert!(b.push(&w[..90]).is_err());
        b.push(&w[..30]).unwrap();
        assert!(Int8Builder::new(2, 30).finish(None).is_err());
        let mut b = Int8Builder::new(1, 30);
        b.push(&w[..30]).unwrap();
        assert!(b.finish(Some(&[1.0, 2.0])).is_err());
    }
}
