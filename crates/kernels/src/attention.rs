//! Multi-head attention on row-major f32 buffers, one query row at a time, for Marian; and
//! the decoding step of the GGUF chat models over their half-precision KV cache.
//!
//! Written by hand because the products here are small and irregular: a decoding step
//! attends from one position per row (a sentence, or a beam of one) to that row's own
//! history and to its own sentence's encoder states, and the encoder attends within each
//! sentence of a batch of mixed lengths. Through candle these were padded batched matmuls
//! with a broadcast mask, a softmax and copies to split and merge heads, each a separate pass
//! over memory on rayon's threads next to the kernels' pool (perf, tc-big shape, beam 4: 13%
//! of the run). Here each (row, head) reads its keys and values where they lie, through a
//! function from key position to rows of a buffer, so nothing is padded, split, copied or
//! gathered: beams share their sentence's encoder states and read their history through the
//! beams they descend from.

use crate::par::par_chunks;
use crate::Isa;

/// The attention of each query row for every head: row `r` of `queries` (rows `q_stride`
/// floats apart, the query first, `heads * head_dim` values) against its `len(r)` keys, key
/// `j` being `kv(r, j)`: a key row and a value row of `heads * head_dim` values each. Scores
/// are scaled by `scale`. Returns `(rows, heads * head_dim)`.
#[allow(clippy::too_many_arguments)]
pub fn attend<'a>(
    queries: &[f32],
    q_stride: usize,
    rows: usize,
    heads: usize,
    head_dim: usize,
    scale: f32,
    len: impl Fn(usize) -> usize + Sync,
    kv: impl Fn(usize, usize) -> (&'a [f32], &'a [f32]) + Sync,
) -> Vec<f32> {
    let d = heads * head_dim;
    assert!(queries.len() >= rows * q_stride && q_stride >= d);
    let isa = Isa::detect();
    let mut out = vec![0f32; rows * d];
    // Item `r * heads + h`: row `r`, head `h`, whose output is chunk `item` of `out`.
    par_chunks(&mut out, head_dim, Vec::new, |scores, item, o| {
        let (r, h) = (item / heads, item % heads);
        let head = h * head_dim..(h + 1) * head_dim;
        let q = &queries[r * q_stride..][head.clone()];
        softmax_into(
            scores,
            (0..len(r)).map(|j| isa.dot(q, &kv(r, j).0[head.clone()]) * scale),
        );
        for (j, &p) in scores.iter().enumerate() {
            isa.axpy(p, &kv(r, j).1[head.clone()], o);
        }
    });
    out
}

/// Decoding attention of one position over a cache of half-precision keys and values, as
/// llama.cpp keeps them (`cache_type_k/v = f16`): half the memory of an f32 cache and half the
/// bytes read per token. `q` holds `n_head` query heads of `head_dim` values; key/value head
/// `h / n_rep` serves query head `h` (grouped-query attention); the keys of head `g` are the
/// `len` rows of `head_dim` values from `g * head_stride` in `k` (and so the values in `v`).
/// Scores are scaled by `scale`. Returns the `n_head * head_dim` outputs. Each head converts its
/// keys and values to f32 as it reads them (F16C on AVX2), so no f32 copy of the cache is made.
/// As llama.cpp's products with an f16 cache, the query and the attention weights are rounded
/// to half precision before they meet the keys and values (its `mul_mat` converts the f32
/// operand to the f16 one's type); sums run in f32.
#[allow(clippy::too_many_arguments)]
pub fn attend_f16_cache(
    q: &[f32],
    n_head: usize,
    head_dim: usize,
    n_rep: usize,
    k: &[half::f16],
    v: &[half::f16],
    head_stride: usize,
    len: usize,
    scale: f32,
) -> Vec<f32> {
    assert!(n_rep > 0 && n_head.is_multiple_of(n_rep) && q.len() >= n_head * head_dim);
    let last = (n_head / n_rep - 1) * head_stride + len * head_dim;
    assert!(
        k.len() >= last && v.len() >= last,
        "cache rows out of range"
    );
    let isa = Isa::detect();
    let half = |x: f32| half::f16::from_f32(x).to_f32();
    let q: Vec<f32> = q[..n_head * head_dim].iter().map(|&x| half(x)).collect();
    let mut out = vec![0f32; n_head * head_dim];
    par_chunks(&mut out, head_dim, Vec::new, |scores, h, o| {
        let base = h / n_rep * head_stride;
        let q = &q[h * head_dim..][..head_dim];
        fn row(m: &[half::f16], at: usize, head_dim: usize) -> &[half::f16] {
            &m[at..][..head_dim]
        }
        let keys = (0..len).map(|j| isa.dot_f16(q, row(k, base + j * head_dim, head_dim)) * scale);
        softmax_into(scores, keys);
        for (j, &p) in scores.iter().enumerate() {
            isa.axpy_f16(half(p), row(v, base + j * head_dim, head_dim), o);
        }
    });
    out
}

/// The softmax of `logits`, written to `weights` (cleared first; a thread's scratch buffer).
fn softmax_into(weights: &mut Vec<f32>, logits: impl Iterator<Item = f32>) {
    weights.clear();
    weights.extend(logits);
    let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for w in weights.iter_mut() {
        *w = (*w - max).exp();
        sum += *w;
    }
    for w in weights.iter_mut() {
        *w /= sum;
    }
}

impl Isa {
    fn dot_f16(self, a: &[f32], b: &[half::f16]) -> f32 {
        match self {
            Isa::Scalar => scalar_dot_f16(a, b),
            // SAFETY: AVX2, FMA and F16C are present (`detect`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::dot_f16(a, b) },
        }
    }

    /// `y += alpha * x`, `x` in half precision.
    fn axpy_f16(self, alpha: f32, x: &[half::f16], y: &mut [f32]) {
        match self {
            Isa::Scalar => scalar_axpy_f16(alpha, x, y),
            // SAFETY: as in `dot_f16`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::axpy_f16(alpha, x, y) },
        }
    }

    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Isa::Scalar => scalar_dot(a, b),
            // SAFETY: AVX2 and FMA are present (`detect`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::dot(a, b) },
        }
    }

    /// `y += alpha * x`.
    fn axpy(self, alpha: f32, x: &[f32], y: &mut [f32]) {
        match self {
            Isa::Scalar => scalar_axpy(alpha, x, y),
            // SAFETY: as in `dot`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::axpy(alpha, x, y) },
        }
    }
}

fn scalar_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn scalar_axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = alpha.mul_add(x, *y);
    }
}

fn scalar_dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y.to_f32()).sum()
}

fn scalar_axpy_f16(alpha: f32, x: &[half::f16], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y = alpha.mul_add(x.to_f32(), *y);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: every offset read is below `n`, within both slices; the caller runs this on a CPU
        // with AVX2 and FMA.
        unsafe {
            let n = a.len().min(b.len());
            let full = n - n % 8;
            let mut acc = _mm256_setzero_ps();
            for i in (0..full).step_by(8) {
                acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(a.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                    acc,
                );
            }
            hsum(acc) + super::scalar_dot(&a[full..n], &b[full..n])
        }
    }

    /// The sum of the eight lanes of `acc`.
    #[target_feature(enable = "avx2")]
    fn hsum(acc: __m256) -> f32 {
        let hi = _mm256_extractf128_ps(acc, 1);
        let s = _mm_add_ps(_mm256_castps256_ps128(acc), hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
        // SAFETY: every offset read is below `n`, within both slices (8 halves are 16 bytes);
        // the caller runs this on a CPU with AVX2, FMA and F16C.
        unsafe {
            let n = a.len().min(b.len());
            let full = n - n % 8;
            let mut acc = _mm256_setzero_ps();
            for i in (0..full).step_by(8) {
                let h = _mm_loadu_si128(b.as_ptr().add(i).cast());
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_cvtph_ps(h), acc);
            }
            hsum(acc) + super::scalar_dot_f16(&a[full..n], &b[full..n])
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn axpy_f16(alpha: f32, x: &[half::f16], y: &mut [f32]) {
        // SAFETY: every offset read or written is below `n`, within both slices; the caller
        // runs this on a CPU with AVX2, FMA and F16C.
        unsafe {
            let n = x.len().min(y.len());
            let full = n - n % 8;
            let a = _mm256_set1_ps(alpha);
            for i in (0..full).step_by(8) {
                let p = y.as_mut_ptr().add(i);
                let h = _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(i).cast()));
                _mm256_storeu_ps(p, _mm256_fmadd_ps(a, h, _mm256_loadu_ps(p)));
            }
            super::scalar_axpy_f16(alpha, &x[full..n], &mut y[full..n]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        // SAFETY: every offset read or written is below `n`, within both slices; the caller runs this
        // on a CPU with AVX2 and FMA.
        unsafe {
            let n = x.len().min(y.len());
            let full = n - n % 8;
            let a = _mm256_set1_ps(alpha);
            for i in (0..full).step_by(8) {
                let p = y.as_mut_ptr().add(i);
                _mm256_storeu_ps(
                    p,
                    _mm256_fmadd_ps(a, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(p)),
                );
            }
            super::scalar_axpy(alpha, &x[full..n], &mut y[full..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104729) % 1009) as f32 - 504.0) / 313.0)
            .collect()
    }

    /// Attention written out the textbook way, for one query and its keys and values.
    fn reference(q: &[f32], keys: &[&[f32]], values: &[&[f32]], scale: f32) -> Vec<f32> {
        let s: Vec<f64> = keys
            .iter()
            .map(|k| q.iter().zip(*k).map(|(a, b)| (a * b) as f64).sum::<f64>() * scale as f64)
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        (0..q.len())
            .map(|c| {
                e.iter()
                    .zip(values)
                    .map(|(p, v)| p / sum * v[c] as f64)
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn each_row_and_head_attends_to_its_own_keys() {
        // 3 rows, 2 heads of 12 (a SIMD part and a tail); row r reads keys 0..=r + 1 of a
        // fused key/value buffer, in an order of its own.
        let (heads, hd, rows) = (2, 12, 3);
        let d = heads * hd;
        let q = values(rows * d, 1);
        let kv = values(5 * 2 * d, 2);
        let key_row = |r: usize, j: usize| (3 * j + 4 * r + 1) % 5;
        let kv_of = |r: usize, j: usize| {
            let at = key_row(r, j) * 2 * d;
            (&kv[at..at + d], &kv[at + d..at + 2 * d])
        };
        let got = attend(&q, d, rows, heads, hd, 0.3, |r| r + 2, kv_of);
        for r in 0..rows {
            for h in 0..heads {
                let rows_read: Vec<usize> = (0..r + 2).map(|j| key_row(r, j)).collect();
                let ks: Vec<&[f32]> = rows_read
                    .iter()
                    .map(|&k| &kv[k * 2 * d + h * hd..][..hd])
                    .collect();
                let vs: Vec<&[f32]> = rows_read
                    .iter()
                    .map(|&k| &kv[k * 2 * d + d + h * hd..][..hd])
                    .collect();
                let want = reference(&q[r * d + h * hd..][..hd], &ks, &vs, 0.3);
                for (a, b) in got[r * d + h * hd..][..hd].iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "row {r} head {h}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn a_half_precision_cache_is_read_in_place_head_by_head() {
        // 6 query heads over 2 key/value heads (3 each), head_dim 20 (a SIMD part and a
        // tail), 7 rows held of a buffer of 9 rows per head.
        let (n_head, hd, n_rep, cap, len) = (6, 20, 3, 9, 7);
        let q = values(n_head * hd, 1);
        let to_half = |x: Vec<f32>| x.into_iter().map(half::f16::from_f32).collect::<Vec<_>>();
        let k = to_half(values(2 * cap * hd, 2));
        let v = to_half(values(2 * cap * hd, 3));
        let got = attend_f16_cache(&q, n_head, hd, n_rep, &k, &v, cap * hd, len, 0.25);
        let wide = |m: &[half::f16]| m.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
        let (kf, vf) = (wide(&k), wide(&v));
        for h in 0..n_head {
            let g = h / n_rep;
            let ks: Vec<&[f32]> = (0..len)
                .map(|j| &kf[g * cap * hd + j * hd..][..hd])
                .collect();
            let vs: Vec<&[f32]> = (0..len)
                .map(|j| &vf[g * cap * hd + j * hd..][..hd])
                .collect();
            // The query rounded as the kernel rounds it; the weights' rounding moves the
            // result by up to 2^-11 of each weight's share.
            let qh: Vec<f32> = q[h * hd..][..hd]
                .iter()
                .map(|&x| half::f16::from_f32(x).to_f32())
                .collect();
            let want = reference(&qh, &ks, &vs, 0.25);
            for (a, b) in got[h * hd..][..hd].iter().zip(&want) {
                assert!((a - b).abs() < 2e-3, "head {h}: {a} vs {b}");
            }
        }
        let a = values(29, 6);
        let b = to_half(values(29, 7));
        let isa = Isa::detect();
        assert!((isa.dot_f16(&a, &b) - scalar_dot_f16(&a, &b)).abs() < 1e-4);
        let (mut y1, mut y2) = (values(29, 8), values(29, 8));
        isa.axpy_f16(0.7, &b, &mut y1);
        scalar_axpy_f16(0.7, &b, &mut y2);
        assert_eq!(y1, y2);
    }

    #[test]
    fn the_scalar_and_simd_paths_agree() {
        let (a, b) = (values(29, 3), values(29, 4));
        let isa = Isa::detect();
        assert!((isa.dot(&a, &b) - scalar_dot(&a, &b)).abs() < 1e-4);
        let (mut y1, mut y2) = (values(29, 5), values(29, 5));
        isa.axpy(0.7, &a, &mut y1);
        scalar_axpy(0.7, &a, &mut y2);
        assert_eq!(y1, y2);
    }
}
