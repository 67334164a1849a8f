//! f32 linear layers with their weights packed once, at load, for the products decoding
//! makes: few rows (the sentences, or beams, being decoded) against large matrices.
//!
//! Written by hand because candle 0.11.1 multiplies through the `gemm` crate, which packs the
//! right-hand matrix into its own layout on every call: on the tc-big-shaped Marian model
//! (perf, greedy, batches of 16) packing was 33% of the run time and the multiply 43%. Here a
//! weight matrix `(n, k)` is stored as panels of 16 output rows, each panel `k` steps of 16
//! floats, so a product reads every weight once, in order, as the kernel consumes it. The
//! kernel keeps 6 input rows x 16 outputs in 12 AVX registers (two FMAs per weight load per
//! row), the shape of `gemm`'s own x86 kernel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use crate::par::SharedOut;
use crate::Isa;

/// Output rows per panel.
const PANEL: usize = 16;
/// Input rows per kernel call.
const ROWS: usize = 6;
/// Input rows per work item, for products of many rows (the encoder's): a chunk of their
/// columns stays in L2 while a group of panels passes over it. Up to `SINGLE_BLOCK` rows
/// (decoding steps: sentences times beams) are one block, so that each weight is read from
/// memory once per product.
const ROW_BLOCK: usize = 8 * ROWS;
const SINGLE_BLOCK: usize = 128;
/// Input columns per pass (see `PackedLinear::matmul`).
const K_CHUNK: usize = 256;
/// Panels per work item.
const GROUP: usize = 8;

thread_local! {
    /// Each thread's accumulators for one work item, kept between products.
    static ACC: std::cell::RefCell<Vec<[f32; PANEL]>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `x @ W^T + b` for a weight `W` of shape `(n, k)`.
pub struct PackedLinear {
    n: usize,
    k: usize,
    /// `n / 16` full panels of `k * 16` floats.
    panels: Vec<f32>,
    /// The last `n % 16` rows as one more panel, zero past `n`; empty when `n % 16 == 0`.
    tail: Vec<f32>,
    /// `ceil(n / 16) * 16` floats, zero past `n`.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Packs `weight` `(n, k)` and the optional `bias` `(n,)`.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (n, k) = weight.dims2()?;
        let bias = bias
            .map(|b| b.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        Self::from_rows(
            weight.flatten_all()?.to_vec1::<f32>()?,
            n,
            k,
            bias.as_deref(),
        )
    }

    /// Packs the row-major `(n, k)` matrix `w` in place: each panel's 16 rows are 16 * k
    /// floats wherever they are stored, so the panels are rearranged where they lie and no
    /// second copy of the matrix is ever made (the largest, tc-big's 57000 x 1024 output
    /// layer, is 233 MB).
    pub fn from_rows(mut w: Vec<f32>, n: usize, k: usize, bias: Option<&[f32]>) -> Result<Self> {
        if w.len() != n * k {
            candle_core::bail!("packed: {} values for a {n} x {k} matrix", w.len())
        }
        let full = n / PANEL;
        let mut tail = Vec::new();
        if !n.is_multiple_of(PANEL) {
            tail = vec![0f32; k * PANEL];
            for j in 0..n % PANEL {
                let row = &w[(full * PANEL + j) * k..][..k];
                for (kk, &v) in row.iter().enumerate() {
                    tail[kk * PANEL + j] = v;
                }
            }
            w.truncate(full * PANEL * k);
        }
        let mut rows = vec![0f32; k * PANEL];
        for panel in w.chunks_exact_mut(k * PANEL) {
            rows.copy_from_slice(panel);
            for (j, row) in rows.chunks_exact(k).enumerate() {
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * PANEL + j] = v;
                }
            }
        }
        let mut b = vec![0f32; n.div_ceil(PANEL) * PANEL];
        if let Some(bias) = bias {
            if bias.len() != n {
                candle_core::bail!("packed: bias of {} for {n} outputs", bias.len())
            }
            b[..n].copy_from_slice(bias);
        }
        Ok(Self {
            n,
            k,
            panels: w,
            tail,
            bias: b,
        })
    }

    /// Panel `p`: `k` steps of 16 weights.
    fn panel(&self, p: usize) -> &[f32] {
        let size = self.k * PANEL;
        if (p + 1) * size <= self.panels.len() {
            &self.panels[p * size..(p + 1) * size]
        } else {
            &self.tail
        }
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `x @ W^T + b` for `x` of shape `(.., k)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }

    /// Rows `ids` of `W` (an embedding table stored as the output layer that shares it):
    /// shape `(ids.., k)`.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        crate::storage::gather_rows(ids, self.n, self.k, "packed", |id, dst| {
            self.row_into(id, dst)
        })
    }

    /// `x @ W^T + b` for `x` holding rows of `k` values: rows of `n` values.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        assert!(
            self.k > 0 && x.len().is_multiple_of(self.k),
            "packed: {} values are not rows of {}",
            x.len(),
            self.k
        );
        let m = x.len() / self.k;
        let mut dst = Vec::with_capacity(m * self.n);
        self.matmul(x, m, dst.spare_capacity_mut());
        // SAFETY: `matmul` writes all `m * n` cells.
        unsafe { dst.set_len(m * self.n) };
        dst
    }

    /// Row `id` of `W` into `dst` (`k` values); `id < n`.
    pub fn row_into(&self, id: usize, dst: &mut [f32]) {
        let panel = self.panel(id / PANEL);
        for (v, step) in dst.iter_mut().zip(panel.chunks_exact(PANEL)) {
            *v = step[id % PANEL];
        }
    }

    /// `dst = x W^T + b` for `m` rows of `x`. Long (~80 lines) on purpose: the blocking (row
    /// blocks, groups of panels, K chunks, prefetch of the next chunk) is one loop nest whose
    /// parts only make sense together.
    fn matmul(&self, x: &[f32], m: usize, dst: &mut [std::mem::MaybeUninit<f32>]) {
        assert!(x.len() >= m * self.k && dst.len() >= m * self.n);
        let n_panels = self.n.div_ceil(PANEL);
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
        let kernel = Isa::detect();
        let dst_ptr = SharedOut::uninit(dst);
        let k = self.k;
        // Work items: (row block, group of panels), row block major. Within an item the
        // inputs are taken K_CHUNK columns at a time: that chunk of the block's rows stays in
        // L2 while the group's panels pass over it, and each panel's chunk stays in L1 while
        // the block's rows pass over it (GotoBLAS's blocking).
        let run = |items: std::ops::Range<usize>| {
            ACC.with_borrow_mut(|acc| {
                let dst_ptr = &dst_ptr;
                if acc.len() < block * group {
                    acc.resize(block * group, [0f32; PANEL]);
                }
                for item in items {
                    let (rb, g) = (item / groups, item % groups);
                    let panels = g * group..n_panels.min((g + 1) * group);
                    let (start, end) = (rb * block, m.min((rb + 1) * block));
                    let rows = end - start;
                    for (i, p) in panels.clone().enumerate() {
                        let bias: &[f32; PANEL] =
                            self.bias[p * PANEL..][..PANEL].try_into().unwrap();
                        acc[i * block..i * block + rows].fill(*bias);
                    }
                    // The (column chunk, panel) pairs in order; each pair's weights are fetched
                    // into cache while the previous pair's are used.
                    let count = panels.len();
                    // Pair `c`: its first column, its panel within the group, its weights.
                    let pair = |c: usize| {
                        let (kc, i) = ((c / count) * K_CHUNK, c % count);
                        let kl = K_CHUNK.min(k - kc);
                        (
                            kc,
                            i,
                            &self.panel(panels.start + i)[kc * PANEL..(kc + kl) * PANEL],
                        )
                    };
                    let pairs = k.div_ceil(K_CHUNK) * count;
                    for c in 0..pairs {
                        let (kc, i, chunk) = pair(c);
                        let kl = chunk.len() / PANEL;
                        let next = (c + 1 < pairs).then(|| pair(c + 1).2);
                        let acc = &mut acc[i * block..i * block + rows];
                        for (t, acc) in acc.chunks_mut(ROWS).enumerate() {
                            let r = start + t * ROWS;
                            let x = &x[r * k + kc..(r + acc.len() - 1) * k + kc + kl];
                            kernel.run(chunk, x, k, acc, if t == 0 { next } else { None });
                        }
                    }
                    for (i, p) in panels.enumerate() {
                        let cols = PANEL.min(self.n - p * PANEL);
                        for (j, row) in acc[i * block..i * block + rows].iter().enumerate() {
                            let at = (start + j) * self.n + p * PANEL;
                            // SAFETY: every (row, panel) cell of `dst` is written by exactly
                            // one work item. A whole panel is a copy of constant length (moves,
                            // not a call to memmove).
                            unsafe {
                                match cols {
                                    PANEL => dst_ptr.write(at, row),
                                    _ => dst_ptr.write(at, &row[..cols]),
                                }
                            }
                        }
                    }
                }
            })
        };
        let items = row_blocks * groups;
        if m * self.n * self.k < 1 << 16 {
            run(0..items);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(items, run);
        }
    }
}

impl Isa {
    /// `acc[i] += x[i] . panel` for the 1..=6 rows of `x` (`stride` apart), over the panel's
    /// `panel.len() / 16` columns.
    fn run(
        self,
        panel: &[f32],
        x: &[f32],
        stride: usize,
        acc: &mut [[f32; PANEL]],
        prefetch: Option<&[f32]>,
    ) {
        match self {
            Isa::Scalar => scalar(panel, x, stride, acc),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 and FMA are present (`detect`); the slices' lengths are checked in
            // the kernel.
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe {
                match acc.len() {
                    1 => avx2::rows::<1>(panel, x, stride, acc, prefetch),
                    2 => avx2::rows::<2>(panel, x, stride, acc, prefetch),
                    3 => avx2::rows::<3>(panel, x, stride, acc, prefetch),
                    4 => avx2::rows::<4>(panel, x, stride, acc, prefetch),
                    5 => avx2::rows::<5>(panel, x, stride, acc, prefetch),
                    _ => avx2::rows::<6>(panel, x, stride, acc, prefetch),
                }
            },
        }
    }
}

fn scalar(panel: &[f32], x: &[f32], stride: usize, acc: &mut [[f32; PANEL]]) {
    let kl = panel.len() / PANEL;
    for (i, out) in acc.iter_mut().enumerate() {
        let row = &x[i * stride..i * stride + kl];
        for (step, &xv) in panel.chunks_exact(PANEL).zip(row) {
            for (o, &w) in out.iter_mut().zip(step) {
                *o = xv.mul_add(w, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// `R` rows of `x` against one panel, 2 x R accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn rows<const R: usize>(
        panel: &[f32],
        x: &[f32],
        stride: usize,
        acc: &mut [[f32; PANEL]],
        prefetch: Option<&[f32]>,
    ) {
        let kl = panel.len() / PANEL;
        assert!(R <= ROWS && acc.len() >= R && x.len() >= (R - 1) * stride + kl);
        // SAFETY: the assert above bounds every offset of `acc`, `x` and `panel` read or written
        // (`step` reads `panel` at `kk * PANEL + 16 <= panel.len()`, `x` at `r * stride + kk`); the
        // prefetch hint reads nothing; the caller runs this on a CPU with AVX2 and FMA.
        unsafe {
            let mut acc0 = [_mm256_setzero_ps(); R];
            let mut acc1 = [_mm256_setzero_ps(); R];
            for r in 0..R {
                acc0[r] = _mm256_loadu_ps(acc[r].as_ptr());
                acc1[r] = _mm256_loadu_ps(acc[r].as_ptr().add(8));
            }
            let w = panel.as_ptr();
            let xp = x.as_ptr();
            if let Some(pf) = prefetch {
                // One 64-byte line of the next panel chunk per step: a chunk's worth in all.
                let lines = pf.len() * 4 / 64;
                let pf = pf.as_ptr() as *const i8;
                for kk in 0..kl {
                    if kk < lines {
                        _mm_prefetch::<_MM_HINT_T1>(pf.add(kk * 64));
                    }
                    step::<R>(w, xp, stride, kk, &mut acc0, &mut acc1);
                }
            } else {
                for kk in 0..kl {
                    step::<R>(w, xp, stride, kk, &mut acc0, &mut acc1);
                }
            }
            for r in 0..R {
                _mm256_storeu_ps(acc[r].as_mut_ptr(), acc0[r]);
                _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), acc1[r]);
            }
        }
    }

    /// Column `kk`: one panel step (16 weights) times one value of each of the `R` rows.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn step<const R: usize>(
        w: *const f32,
        xp: *const f32,
        stride: usize,
        kk: usize,
        acc0: &mut [__m256; R],
        acc1: &mut [__m256; R],
    ) {
        // SAFETY: `rows` passes pointers into `panel` and `x` for which these offsets are in bounds
        // (its assert), on a CPU with AVX2 and FMA.
        unsafe {
            let w0 = _mm256_loadu_ps(w.add(kk * PANEL));
            let w1 = _mm256_loadu_ps(w.add(kk * PANEL + 8));
            for r in 0..R {
                let xv = _mm256_broadcast_ss(&*xp.add(r * stride + kk));
                acc0[r] = _mm256_fmadd_ps(xv, w0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(xv, w1, acc1[r]);
            }
        }
    }
}

impl CustomOp1 for PackedLinear {
    fn name(&self) -> &'static str {
        "packed-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, _) = crate::storage::input(storage, layout, self.k, "packed")?;
        Ok(crate::storage::output(self.apply(x), layout, self.n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use candle_core::{Device, Module};

    fn tensor(rows: usize, cols: usize, seed: usize) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 7919 + seed * 104729) % 1009) as f32 - 504.0) / 313.0)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn products_match_candles_linear_for_any_number_of_rows_and_outputs() {
        // 37 outputs: two full panels and a partial one.
        let w = tensor(37, 40, 1);
        let b = tensor(1, 37, 2).flatten_all().unwrap();
        let reference = candle_nn::Linear::new(w.clone(), Some(b.clone()));
        let mine = PackedLinear::new(&w, Some(&b)).unwrap();
        assert_eq!(mine.out_features(), 37);
        for m in [1, 2, 5, 6, 7, 13, 49, 100] {
            let x = tensor(m, 40, m);
            assert_close(&mine.forward(&x).unwrap(), &reference.forward(&x).unwrap());
        }
        let x = tensor(6, 40, 3).reshape((2, 3, 40)).unwrap();
        let y = mine.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 3, 37]);
        assert_close(&y, &reference.forward(&x).unwrap());
        // A transposed (non-contiguous) input is made contiguous first.
        let xt = tensor(40, 4, 4).t().unwrap();
        assert_close(
            &mine.forward(&xt).unwrap(),
            &reference.forward(&xt).unwrap(),
        );
    }

    #[test]
    fn a_large_product_runs_on_the_pool_and_matches() {
        // Over 256 columns (four chunks and a part) and over 128 rows (several row blocks).
        let w = tensor(300, 1100, 5);
        let reference = candle_nn::Linear::new(w.clone(), None);
        let mine = PackedLinear::new(&w, None).unwrap();
        for m in [1, 16, 130] {
            let x = tensor(m, 1100, 6);
            assert_close(&mine.forward(&x).unwrap(), &reference.forward(&x).unwrap());
        }
    }

    #[test]
    fn the_scalar_kernel_agrees_with_the_detected_one() {
        let w = PackedLinear::new(&tensor(16, 24, 7), None).unwrap();
        let x = tensor(6, 24, 9)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for take in [1, 4, 6] {
            let start = [[0.5f32; PANEL]; ROWS];
            let (mut fast, mut slow) = (start, start);
            Isa::detect().run(&w.panels, &x, 24, &mut fast[..take], None);
            Isa::Scalar.run(&w.panels, &x, 24, &mut slow[..take], None);
            assert_eq!(fast, slow);
        }
        // A chunk of the columns: the panel's first 8 steps against each row's first 8.
        let (mut fast, mut slow) = ([[0f32; PANEL]; 2], [[0f32; PANEL]; 2]);
        Isa::detect().run(&w.panels[..8 * PANEL], &x, 24, &mut fast, None);
        Isa::Scalar.run(&w.panels[..8 * PANEL], &x, 24, &mut slow, None);
        assert_eq!(fast, slow);
    }

    #[test]
    fn rows_are_the_weight_rows() {
        let w = tensor(20, 8, 10);
        let mine = PackedLinear::new(&w, None).unwrap();
        let ids = Tensor::new(&[[19u32, 0], [3, 17]], &Device::Cpu).unwrap();
        let got = mine.rows(&ids).unwrap();
        assert_eq!(got.dims(), &[2, 2, 8]);
        let want = w.index_select(&ids.flatten_all().unwrap(), 0).unwrap();
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        assert!(mine
            .rows(&Tensor::new(&[20u32], &Device::Cpu).unwrap())
            .is_err());
    }
}
