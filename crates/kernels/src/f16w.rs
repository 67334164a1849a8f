//! Matrix products with 16-bit float weights (ggml F16) kept as stored, converted to f32 as
//! they are read.
//!
//! Written by hand because candle 0.11.1 turns every F16 tensor it is given for a product into
//! f32 at load (`QMatMul::from_arc`): twice the memory, and twice the bytes every product reads.
//! Google's quantization-aware-trained Gemma 3 files keep their 262144-row embedding table in
//! F16 (604 MB at 1B, 1.3 GB at 4B), and it is also the output projection every decoded token
//! goes through; as f32 it would be 1.2 and 2.7 GB. Here it stays 2 bytes a weight, and the
//! AVX2 kernel converts eight weights at a time (F16C) into a fused multiply-add with the f32
//! activations. The activations are not rounded (ggml rounds them to f16 for this product), so
//! the products are those of the dequantized weights in another float order.

use std::io::SeekFrom;

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;

use crate::par::SharedOut;
use crate::storage::{Bytes, Source};
use crate::Isa;

/// Activation rows taken together against one weight row.
const ROWS_AT_ONCE: usize = 4;
/// Weight rows a work item takes at a time: at the widths of these models (640 to 2560) they
/// stay in L1 while a prompt's activation rows pass over them.
const TILE_ROWS: usize = 8;

/// A `rows x cols` weight matrix; `forward` computes `x @ W^T` like a linear layer.
pub struct F16Matrix {
    rows: usize,
    cols: usize,
    /// Row after row.
    data: Values,
}

/// The values: read into memory, or the model file's pages mapped (aligned for f16: GGUF
/// aligns tensor data to 32 bytes).
enum Values {
    Owned(Vec<f16>),
    Mapped(Bytes),
}

impl Values {
    fn as_slice(&self) -> &[f16] {
        match self {
            Values::Owned(v) => v,
            // Checked to be aligned when mapped (`from_gguf`).
            Values::Mapped(b) => bytemuck::cast_slice(b),
        }
    }
}

impl F16Matrix {
    /// Reads tensor `name` from a GGUF file as it is stored, or maps it where `reader` can (see
    /// [`Source`]; GGUF's f16 values are little-endian, as x86's). `None` when it is of another
    /// type or shape.
    pub fn from_gguf<R: Source>(
        ct: &gguf_file::Content,
        reader: &mut R,
        name: &str,
    ) -> Result<Option<Self>> {
        let Some(info) = ct.tensor_infos.get(name) else {
            candle_core::bail!("cannot find tensor info for {name}")
        };
        let (GgmlDType::F16, [rows, cols]) = (info.ggml_dtype, info.shape.dims()) else {
            return Ok(None);
        };
        let offset = ct.tensor_data_offset + info.offset;
        if cfg!(target_endian = "little") {
            if let Some(bytes) = reader.mapped(offset, 2 * rows * cols) {
                if bytemuck::try_cast_slice::<u8, f16>(&bytes).is_ok() {
                    let (rows, cols) = (*rows, *cols);
                    let data = Values::Mapped(bytes);
                    return Ok(Some(Self { rows, cols, data }));
                }
            }
        }
        reader.seek(SeekFrom::Start(offset))?;
        let mut data = vec![f16::ZERO; rows * cols];
        // Read a few hundred kilobytes at a time into the values' own memory.
        let mut raw = vec![0u8; 256 * 1024];
        for values in data.chunks_mut(raw.len() / 2) {
            let raw = &mut raw[..2 * values.len()];
            reader.read_exact(raw)?;
            for (v, b) in values.iter_mut().zip(raw.chunks_exact(2)) {
                *v = f16::from_le_bytes([b[0], b[1]]);
            }
        }
        Self::from_f16(*rows, *cols, data).map(Some)
    }

    /// From `rows * cols` values, row after row.
    pub fn from_f16(rows: usize, cols: usize, data: Vec<f16>) -> Result<Self> {
        if data.len() != rows * cols {
            candle_core::bail!("f16: {rows} x {cols} does not fit {} values", data.len())
        }
        let data = Values::Owned(data);
        Ok(Self { rows, cols, data })
    }

    /// Whether the weights are the model file's mapped pages.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, Values::Mapped(_))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the weights take (and a decode step reads).
    pub fn weight_bytes(&self) -> usize {
        2 * self.rows * self.cols
    }

    fn row(&self, j: usize) -> &[f16] {
        &self.data.as_slice()[j * self.cols..(j + 1) * self.cols]
    }

    /// `x @ W^T` for `x` of shape `(.., cols)`: shape `(.., rows)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }

    /// The rows named by `ids` (any shape of u32) as f32: shape `(ids.., cols)`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        crate::storage::gather_rows(ids, self.rows, self.cols, "f16", |id, dst| {
            for (d, w) in dst.iter_mut().zip(self.row(id)) {
                *d = w.to_f32();
            }
        })
    }

    /// `dst[r * rows + j] = dot(W[j], x[r])` for the `m` rows of `x`.
    fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(dst.len(), m * rows, "f16: output of {m} x {rows}");
        let dst_ptr = SharedOut::new(dst);
        let kernel = Isa::detect();
        // The values once, not per row: a mapped table is cast (and its alignment checked)
        // here, not 262144 times a token.
        let w = self.data.as_slice();
        let run = |range: std::ops::Range<usize>| {
            let (start, len) = (range.start, range.len());
            let mut out = vec![0f32; m * len];
            for tile in range.clone().step_by(TILE_ROWS) {
                let tile = tile..(tile + TILE_ROWS).min(range.end);
                for r in (0..m).step_by(ROWS_AT_ONCE) {
                    let n = (m - r).min(ROWS_AT_ONCE);
                    let xs: [&[f32]; ROWS_AT_ONCE] =
                        std::array::from_fn(|t| &x[(r + t.min(n - 1)) * cols..][..cols]);
                    for j in tile.clone() {
                        let v = kernel.f16_dots(&w[j * cols..(j + 1) * cols], &xs, n);
                        for (t, v) in v[..n].iter().enumerate() {
                            out[(r + t) * len + j - start] = *v;
                        }
                    }
                }
            }
            for (r, out) in out.chunks_exact(len.max(1)).enumerate() {
                // SAFETY: cells (r, start..start + len) are written by this work item only.
                unsafe { dst_ptr.write(r * rows + start, out) }
            }
        };
        if rows * m * cols < 1 << 16 {
            run(0..rows);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(rows, run);
        }
    }
}

impl Isa {
    /// Dots of weight row `w` with the first `n` of `xs` (the rest repeat a row, unused).
    fn f16_dots(self, w: &[f16], xs: &[&[f32]; ROWS_AT_ONCE], n: usize) -> [f32; ROWS_AT_ONCE] {
        match self {
            Isa::Scalar => scalar::dots(w, xs, n),
            // SAFETY: `Isa::Avx2` and `Avx512` are only detected on a CPU with AVX2, FMA and F16C.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe {
                if n == 1 {
                    [avx2::dot1(w, xs[0]), 0.0, 0.0, 0.0]
                } else {
                    avx2::dots4(w, xs)
                }
            },
        }
    }
}

mod scalar {
    use super::*;

    pub fn dots(w: &[f16], xs: &[&[f32]; ROWS_AT_ONCE], n: usize) -> [f32; ROWS_AT_ONCE] {
        let mut out = [0f32; ROWS_AT_ONCE];
        for (out, x) in out.iter_mut().zip(xs).take(n) {
            *out = w.iter().zip(x.iter()).map(|(w, x)| w.to_f32() * x).sum();
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// Eight weights from `w` at `k`, as f32.
    #[inline(always)]
    unsafe fn load8(w: &[f16], k: usize) -> __m256 {
        // SAFETY: the callers keep `k + 8 <= w.len()`; F16C as they run with.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(k) as *const __m128i)) }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: AVX as the callers run with.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }
    }

    /// The dot of `w` and `x`, with two accumulators so that one FMA need not wait for the
    /// last (a decoding step has only this one row).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot1(w: &[f16], x: &[f32]) -> f32 {
        let cols = w.len();
        assert!(x.len() >= cols);
        let body = cols / 16 * 16;
        // SAFETY: every load reads `k..k + 8` with `k + 8 <= body <= cols`, within `w` and `x`
        // (the assert); the caller runs this on a CPU with AVX2, FMA and F16C.
        unsafe {
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for k in (0..body).step_by(16) {
                crate::prefetch_ahead(w.as_ptr().add(k) as *const u8, 32);
                a0 = _mm256_fmadd_ps(load8(w, k), _mm256_loadu_ps(x.as_ptr().add(k)), a0);
                a1 = _mm256_fmadd_ps(load8(w, k + 8), _mm256_loadu_ps(x.as_ptr().add(k + 8)), a1);
            }
            let tail: f32 = (body..cols).map(|k| w[k].to_f32() * x[k]).sum();
            hsum(_mm256_add_ps(a0, a1)) + tail
        }
    }

    /// The dots of `w` with four rows, each weight load shared by the four.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dots4(w: &[f16], xs: &[&[f32]; ROWS_AT_ONCE]) -> [f32; ROWS_AT_ONCE] {
        let cols = w.len();
        assert!(xs.iter().all(|x| x.len() >= cols));
        let body = cols / 8 * 8;
        // SAFETY: every load reads `k..k + 8` with `k + 8 <= body <= cols`, within `w` and each
        // row of `xs` (the assert); the CPU as in `dot1`.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); ROWS_AT_ONCE];
            for k in (0..body).step_by(8) {
                let wv = load8(w, k);
                for (acc, x) in acc.iter_mut().zip(xs) {
                    *acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.as_ptr().add(k)), *acc);
                }
            }
            // A loop, not `array::from_fn`: a closure would not inherit the target features.
            let mut out = [0f32; ROWS_AT_ONCE];
            for ((out, acc), x) in out.iter_mut().zip(acc).zip(xs) {
                let tail: f32 = (body..cols).map(|k| w[k].to_f32() * x[k]).sum();
                *out = hsum(acc) + tail;
            }
            out
        }
    }
}

impl CustomOp1 for F16Matrix {
    fn name(&self) -> &'static str {
        "f16-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, m) = crate::storage::input(storage, layout, self.cols, "f16")?;
        let mut dst = vec![0f32; m * self.rows];
        self.matmul(x, m, &mut dst);
        Ok(crate::storage::output(dst, layout, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assert_close, test_input as input, test_weights};
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Module};

    fn f16_matrix(w: &Tensor) -> F16Matrix {
        let (rows, cols) = w.dims2().unwrap();
        let v = w.to_dtype(candle_core::DType::F16).unwrap();
        let v = v.flatten_all().unwrap().to_vec1::<f16>().unwrap();
        F16Matrix::from_f16(rows, cols, v).unwrap()
    }

    /// The reference: the weights rounded to f16, back to f32, multiplied by candle.
    fn reference(w: &Tensor, x: &Tensor) -> Tensor {
        let w = w
            .to_dtype(candle_core::DType::F16)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        candle_nn::Linear::new(w, None).forward(x).unwrap()
    }

    #[test]
    fn products_equal_the_dequantized_products_for_odd_shapes_and_row_counts() {
        // 37 columns: a 16-wide body and a tail; 13 rows: not a multiple of the tile.
        for (rows, cols) in [(13, 37), (24, 96), (9, 8)] {
            let w = test_weights(rows, cols, 3);
            let mine = f16_matrix(&w);
            for m in [1, 2, 4, 5, 9] {
                let x = input(m, cols);
                assert_close(&mine.forward(&x).unwrap(), &reference(&w, &x));
            }
        }
        let w = test_weights(24, 96, 1);
        let x = input(6, 96).reshape((2, 3, 96)).unwrap();
        let y = f16_matrix(&w).forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 3, 24]);
        assert_close(&y, &reference(&w, &x));
    }

    #[test]
    fn a_large_product_runs_on_the_pool_and_matches() {
        let w = test_weights(512, 640, 2);
        let mine = f16_matrix(&w);
        for m in [1, 3] {
            let x = input(m, 640);
            assert_close(&mine.forward(&x).unwrap(), &reference(&w, &x));
        }
    }

    #[test]
    fn the_scalar_kernel_agrees_with_the_detected_one() {
        let w = f16_matrix(&test_weights(2, 100, 5));
        let x = input(4, 100)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let xs: [&[f32]; ROWS_AT_ONCE] = std::array::from_fn(|t| &x[t * 100..(t + 1) * 100]);
        for n in [1, 3, 4] {
            let fast = Isa::detect().f16_dots(w.row(1), &xs, n);
            let slow = Isa::Scalar.f16_dots(w.row(1), &xs, n);
            for (f, s) in fast[..n].iter().zip(&slow[..n]) {
                assert!((f - s).abs() <= 1e-4 * (1.0 + s.abs()), "{f} against {s}");
            }
        }
    }

    #[test]
    fn read_from_a_gguf_as_stored_with_its_embedding_rows() {
        let w = test_weights(12, 64, 4);
        let q = QTensor::quantize(&w, GgmlDType::F16).unwrap();
        let q8 = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let mut file = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut file, &[], &[("a", &q), ("b", &q8)]).unwrap();
        file.set_position(0);
        let ct = gguf_file::Content::read(&mut file).unwrap();
        let mine = F16Matrix::from_gguf(&ct, &mut file, "a").unwrap().unwrap();
        assert_eq!(mine.weight_bytes(), 12 * 64 * 2);
        let x = input(3, 64);
        assert_close(&mine.forward(&x).unwrap(), &reference(&w, &x));
        let ids = Tensor::new(&[[5u32, 0], [11, 7]], &Device::Cpu).unwrap();
        let rows = mine.embedding(&ids).unwrap();
        assert_eq!(rows.dims(), &[2, 2, 64]);
        let want = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .index_select(&ids.flatten_all().unwrap(), 0)
            .unwrap();
        assert_eq!(
            rows.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        // Another type is left to the other kernels.
        assert!(F16Matrix::from_gguf(&ct, &mut file, "b").unwrap().is_none());
    }
}
