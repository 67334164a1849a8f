//! A prompt's attention weights, `softmax(scale * scores + mask)` along each row, in one pass
//! over the scores.
//!
//! Written by hand because candle 0.11.1 makes them in three: the scaling and the mask are
//! each a pass over the whole score matrix, and its softmax calls libm's scalar `expf` for
//! every score. On a Qwen2.5 1.5B-shape prompt of 1854 tokens those passes were about 10% of
//! the time (perf: `expf` alone 6%). Here eight scores at a time, `exp` as in [`crate::act`]
//! (Cephes' `expf`), the scaling and the mask added as the row is read.

use candle_core::{Device, Result, Tensor};

use crate::Isa;

/// `softmax(scale * scores + mask)` over the last dimension of `scores` (any leading shape):
/// row `i` of the scores takes row `i % mask_rows` of `mask` `(mask_rows, cols)` (a causal
/// mask of `-inf` and 0 for a prompt's rows, broadcast over heads). A row with every score
/// `-inf` gets weights of 0 (candle's softmax makes NaNs of it).
pub fn scaled_masked_softmax(scores: &Tensor, scale: f32, mask: Option<&Tensor>) -> Result<Tensor> {
    let scores = scores.contiguous()?;
    let cols = scores.dims().last().copied().unwrap_or(0);
    let (storage, layout) = scores.storage_and_layout();
    let candle_core::Storage::Cpu(storage) = &*storage else {
        candle_core::bail!("softmax: scores must be on the CPU")
    };
    let (s, rows) = crate::storage::input(storage, layout, cols, "softmax")?;
    let mask = mask.map(|m| m.contiguous()).transpose()?;
    let mask_storage = mask.as_ref().map(|m| m.storage_and_layout());
    let mask_rows = match (&mask, &mask_storage) {
        (Some(m), Some((storage, layout))) => {
            let (mr, mc) = m.dims2()?;
            if mc != cols || mr == 0 || rows % mr != 0 {
                candle_core::bail!(
                    "softmax: mask {:?} for scores {:?}",
                    m.dims(),
                    scores.dims()
                )
            }
            let candle_core::Storage::Cpu(storage) = &**storage else {
                candle_core::bail!("softmax: mask must be on the CPU")
            };
            Some(crate::storage::input(
                storage,
                layout,
                cols,
                "softmax mask",
            )?)
        }
        _ => None,
    };
    let mut out = vec![0f32; rows * cols];
    let kernel = Isa::detect();
    if cols > 0 {
        crate::par::par_chunks(
            &mut out,
            cols,
            || (),
            |_, i, dst| {
                let m = mask_rows.map(|(m, mr)| &m[i % mr * cols..][..cols]);
                kernel.softmax_row(&s[i * cols..][..cols], scale, m, dst);
            },
        );
    }
    Tensor::from_vec(out, scores.shape(), &Device::Cpu)
}

/// `x - max - ln(sum(exp(x - max)))` in place: a row of logits made log-probabilities (a
/// beam search's scores over a vocabulary). With AVX2 the `exp`s are the vector ones, the sum
/// taken in eight lanes and then across them; libm's scalar `expf` was 5% of a Marian tc-big
/// beam-4 run (57,000 per row, 64 rows a step). An empty row, or one of `-inf` only, is left
/// as it is.
pub fn log_softmax(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let sum = match Isa::detect() {
        Isa::Scalar => xs.iter().map(|&x| (x - max).exp()).sum(),
        // SAFETY: the x86 vector ISAs are only detected on a CPU with AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::sum_exp(xs, max) },
    };
    let log_sum = sum.ln();
    xs.iter_mut().for_each(|x| *x = (*x - max) - log_sum);
}

impl Isa {
    /// `dst = softmax(scale * s + m)`.
    fn softmax_row(self, s: &[f32], scale: f32, m: Option<&[f32]>, dst: &mut [f32]) {
        assert!(s.len() == dst.len() && m.is_none_or(|m| m.len() == dst.len()));
        match self {
            Isa::Scalar => scalar::softmax_row(s, scale, m, dst),
            // SAFETY: the x86 vector ISAs are only detected on a CPU with AVX2 and FMA; the
            // lengths are checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => unsafe { avx2::softmax_row(s, scale, m, dst) },
        }
    }
}

mod scalar {
    /// The logits into `dst`; their largest.
    fn logits(s: &[f32], scale: f32, m: Option<&[f32]>, dst: &mut [f32]) -> f32 {
        let mut max = f32::NEG_INFINITY;
        for (i, (d, &s)) in dst.iter_mut().zip(s).enumerate() {
            *d = s * scale + m.map_or(0.0, |m| m[i]);
            max = max.max(*d);
        }
        max
    }

    pub fn softmax_row(s: &[f32], scale: f32, m: Option<&[f32]>, dst: &mut [f32]) {
        let max = logits(s, scale, m, dst);
        if max == f32::NEG_INFINITY {
            dst.fill(0.0);
            return;
        }
        for d in dst.iter_mut() {
            *d = (*d - max).exp();
        }
        divide_by_sum(dst);
    }

    /// `dst[i] / sum(dst)`, the sum taken in order, one value after another, as candle's
    /// softmax takes it. The order matters: a row's weights must not depend on where its keys
    /// fall in the row. A prompt's row holds its masked keys (exact zeros, which change no sum)
    /// before a sliding window's first visible key; the same query decoded alone does not, so
    /// sums in vector lanes paired the values differently and differed in the last bit, which
    /// the next layer's 8-bit activation rounding made visible (0.59 in the Gemma cache test
    /// under AVX-512; exactly 0 with this sum). An exact order-free sum (fixed point in f64
    /// lanes) was tried and left 0.31 under AVX2: it also counts values below f32's
    /// precision of the sum, which this one drops as candle's does. This sum cost 5-15% of a
    /// 1854-token prompt against the lane sums.
    pub fn divide_by_sum(dst: &mut [f32]) {
        let sum: f32 = dst.iter().sum();
        let inv = 1.0 / sum;
        for d in dst.iter_mut() {
            *d *= inv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// `exp` in each lane as Cephes' `expf`: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, `exp(r)`
    /// by its polynomial, `2^n` put in the exponent bits. Above 88.376 (Cephes' bound, a little
    /// short of where `exp` leaves f32, 88.72) the result is infinite; below -87 (`-inf` included) it is 0, where `exp` is under about
    /// 1.6e-38 (so `2^n` stays a normal number).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[inline(always)]
    pub(crate) unsafe fn exp(x: __m256) -> __m256 {
        // SAFETY: AVX2 and FMA, as the caller runs with.
        unsafe {
            let max = _mm256_set1_ps(88.376_26);
            let min = _mm256_set1_ps(-87.0);
            let overflow = _mm256_cmp_ps::<_CMP_GT_OQ>(x, max);
            let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, min);
            let x = _mm256_max_ps(_mm256_min_ps(x, max), min);
            let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
            );
            // ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in few bits.
            let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
            let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
            let mut p = _mm256_set1_ps(1.987_569_1e-4);
            for c in [
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                0.166_666_65,
                0.5,
            ] {
                p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
            }
            let e = _mm256_fmadd_ps(
                p,
                _mm256_mul_ps(r, r),
                _mm256_add_ps(r, _mm256_set1_ps(1.0)),
            );
            // 2^n with n in -126..=128: n + 127 in the exponent field (128 gives infinity).
            let n = _mm256_cvtps_epi32(n);
            let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(n, _mm256_set1_epi32(127)));
            let y = _mm256_mul_ps(e, _mm256_castsi256_ps(two_n));
            let y = _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), overflow);
            _mm256_andnot_ps(underflow, y)
        }
    }

    /// The largest of eight lanes.
    #[inline(always)]
    unsafe fn hmax(v: __m256) -> f32 {
        // SAFETY: AVX, as the caller runs with.
        unsafe {
            let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_shuffle_ps::<1>(m, m));
            _mm_cvtss_f32(m)
        }
    }

    /// `sum(exp(x - max))` over `xs`, eight lanes at a time.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sum_exp(xs: &[f32], max: f32) -> f32 {
        let body = xs.len() / 8 * 8;
        // SAFETY: every load is of `k..k + 8` with `k + 8 <= body <= xs.len()`, or of the
        // eight-value `tail`; the CPU as the caller promises.
        unsafe {
            let vm = _mm256_set1_ps(max);
            let mut sum = _mm256_setzero_ps();
            for k in (0..body).step_by(8) {
                let x = _mm256_loadu_ps(xs.as_ptr().add(k));
                sum = _mm256_add_ps(sum, exp(_mm256_sub_ps(x, vm)));
            }
            let mut tail = [f32::NEG_INFINITY; 8];
            tail[..xs.len() - body].copy_from_slice(&xs[body..]);
            let x = _mm256_loadu_ps(tail.as_ptr());
            sum = _mm256_add_ps(sum, exp(_mm256_sub_ps(x, vm)));
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
            lanes.iter().sum()
        }
    }

    /// `super::scalar::softmax_row`, eight values at a time, with the vector `exp`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `s`, `dst` and `m` (if any) have one length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_row(s: &[f32], scale: f32, m: Option<&[f32]>, dst: &mut [f32]) {
        let n = dst.len();
        let body = n / 8 * 8;
        // SAFETY: every access is to `k..k + 8` with `k + 8 <= body <= n`, within the slices
        // (one length, the caller's promise); the CPU as the caller promises.
        unsafe {
            let sc = _mm256_set1_ps(scale);
            let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
            for k in (0..body).step_by(8) {
                let mut y = _mm256_mul_ps(_mm256_loadu_ps(s.as_ptr().add(k)), sc);
                if let Some(m) = m {
                    y = _mm256_add_ps(y, _mm256_loadu_ps(m.as_ptr().add(k)));
                }
                _mm256_storeu_ps(dst.as_mut_ptr().add(k), y);
                vmax = _mm256_max_ps(vmax, y);
            }
            let mut max = hmax(vmax);
            for k in body..n {
                dst[k] = s[k] * scale + m.map_or(0.0, |m| m[k]);
                max = max.max(dst[k]);
            }
            if max == f32::NEG_INFINITY {
                dst.fill(0.0);
                return;
            }
            // Every value's `exp` is the vector one (the last few through a padded register),
            // so that a key's weight does not depend on its place in the row.
            let vm = _mm256_set1_ps(max);
            for k in (0..body).step_by(8) {
                let at = dst.as_mut_ptr().add(k);
                _mm256_storeu_ps(at, exp(_mm256_sub_ps(_mm256_loadu_ps(at), vm)));
            }
            if body < n {
                let mut tail = [f32::NEG_INFINITY; 8];
                tail[..n - body].copy_from_slice(&dst[body..]);
                let e = exp(_mm256_sub_ps(_mm256_loadu_ps(tail.as_ptr()), vm));
                _mm256_storeu_ps(tail.as_mut_ptr(), e);
                dst[body..].copy_from_slice(&tail[..n - body]);
            }
        }
        super::scalar::divide_by_sum(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference in f64: `softmax(scale * s + m)`.
    fn reference(s: &[f32], scale: f32, m: Option<&[f32]>) -> Vec<f64> {
        let y: Vec<f64> = s
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f64 * scale as f64 + m.map_or(0.0, |m| m[i] as f64))
            .collect();
        let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = y.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64_and_zero_or_infinite_past_f32() {
        #[cfg(target_arch = "x86_64")]
        if crate::test_isas().contains(&Isa::Avx2) {
            let mut xs: Vec<f32> = (-1_000_000..=1_000_000).map(|i| i as f32 * 9e-5).collect();
            xs.extend([
                -87.5,
                -100.0,
                f32::NEG_INFINITY,
                88.5,
                1e3,
                f32::INFINITY,
                0.0,
                -0.0,
            ]);
            for x in xs.chunks_exact(8) {
                let mut y = [0f32; 8];
                // SAFETY: the CPU has AVX2 and FMA (`test_isas`); eight values each way.
                unsafe {
                    let v = avx2::exp(std::arch::x86_64::_mm256_loadu_ps(x.as_ptr()));
                    std::arch::x86_64::_mm256_storeu_ps(y.as_mut_ptr(), v);
                }
                for (&x, &y) in x.iter().zip(&y) {
                    if x < -87.0 {
                        assert_eq!(y, 0.0, "exp({x})");
                    } else if x > 88.376_26 {
                        assert_eq!(y, f32::INFINITY, "exp({x})");
                    } else {
                        let want = (x as f64).exp();
                        let ulp = (want as f32).to_bits().abs_diff(y.to_bits());
                        assert!(ulp <= 2, "exp({x}) = {y}, want {want} ({ulp} ulp)");
                    }
                }
            }
            return;
        }
        eprintln!("skipped: this CPU has no AVX2");
    }

    /// The log-probabilities against f64 on rows of a vocabulary's length and odd short ones,
    /// with banned (`-inf`) logits, and a row of `-inf` only left alone.
    #[test]
    fn log_softmax_equals_the_f64_reference() {
        for (n, spread) in [(57_000usize, 30.0f32), (13, 5.0), (1, 1.0), (8, 80.0)] {
            let row: Vec<f32> = (0..n)
                .map(|i| match i % 97 {
                    3 => f32::NEG_INFINITY,
                    _ => (((i * 7919) % 1009) as f32 / 1009.0 - 0.5) * spread,
                })
                .collect();
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            let mut got = row.clone();
            log_softmax(&mut got);
            for (i, (&g, &x)) in got.iter().zip(&row).enumerate() {
                let want = x as f64 - max - sum.ln();
                if x == f32::NEG_INFINITY {
                    assert_eq!(g, f32::NEG_INFINITY, "n {n} [{i}]");
                } else {
                    assert!(
                        (g as f64 - want).abs() <= 2e-6 * want.abs().max(1.0),
                        "n {n} [{i}]: {g} vs {want}"
                    );
                }
            }
        }
        let mut all_banned = vec![f32::NEG_INFINITY; 5];
        log_softmax(&mut all_banned);
        assert!(all_banned.iter().all(|&v| v == f32::NEG_INFINITY));
    }

    /// Every kernel against the f64 reference: rows with and without a mask, lengths with a
    /// tail after the eight-wide body, a fully masked row, the mask's rows repeating over the
    /// score rows (heads), and candle's three passes on the same tensors.
    #[test]
    fn weights_equal_the_reference_and_candles_passes() {
        let (heads, rows, cols) = (3usize, 5usize, 21usize);
        let s: Vec<f32> = (0..heads * rows * cols)
            .map(|i| ((i * 7919) % 613) as f32 / 20.0 - 15.0)
            .collect();
        // Causal: row r sees keys 0..=r + 16; the last row sees none.
        let m: Vec<f32> = (0..rows * cols)
            .map(|i| {
                let (r, c) = (i / cols, i % cols);
                if c <= r + 16 && r < rows - 1 {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let scale = 0.125;
        for isa in crate::test_isas() {
            for mask in [None, Some(&m[..])] {
                for (i, row) in s.chunks_exact(cols).enumerate() {
                    let mrow = mask.map(|m| &m[i % rows * cols..][..cols]);
                    let mut got = vec![f32::NAN; cols];
                    isa.softmax_row(row, scale, mrow, &mut got);
                    if mrow.is_some() && i % rows == rows - 1 {
                        assert!(got.iter().all(|&w| w == 0.0), "{isa:?}: masked row {i}");
                        continue;
                    }
                    for (c, (&g, w)) in got.iter().zip(reference(row, scale, mrow)).enumerate() {
                        assert!(
                            (g as f64 - w).abs() <= 2e-6 * w + 1e-30,
                            "{isa:?}: row {i} col {c}: {g} against {w}"
                        );
                        if w == 0.0 {
                            assert_eq!(g, 0.0, "{isa:?}: a masked key's weight is exactly 0");
                        }
                    }
                }
            }
        }
        let dev = Device::Cpu;
        let scores = Tensor::from_vec(s.clone(), (1, heads, rows, cols), &dev).unwrap();
        let mask = Tensor::from_vec(m.clone(), (rows, cols), &dev).unwrap();
        let mine = scaled_masked_softmax(&scores, scale, Some(&mask)).unwrap();
        let theirs = candles_passes(&scores, scale, &mask);
        let (mine, theirs) = (
            mine.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
            if i / cols % rows == rows - 1 {
                assert!(b.is_nan() && *a == 0.0, "fully masked row: {a} against {b}");
            } else {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs() + 1e-30,
                    "{i}: {a} against {b}"
                );
            }
        }
        // A mask whose rows do not divide the score rows is an error, not a guess.
        let four = Tensor::from_vec(m[..4 * cols].to_vec(), (4, cols), &dev).unwrap();
        assert!(scaled_masked_softmax(&scores, scale, Some(&four)).is_err());
    }

    /// A key's weight does not depend on its place in the row: the visible keys of a row
    /// whose first keys are masked (a prompt's row past a sliding window) get, bit for bit,
    /// the weights they get in a row of only them (the same query decoded alone against a
    /// cache that holds only the window), for every row length around the vector width.
    #[test]
    fn weights_do_not_depend_on_masked_keys_before_them() {
        for isa in crate::test_isas() {
            for visible in 1..40usize {
                for hidden in 0..11usize {
                    let s: Vec<f32> = (0..hidden + visible)
                        .map(|i| ((i * 7919) % 613) as f32 / 20.0 - 15.0)
                        .collect();
                    let m: Vec<f32> = (0..hidden + visible)
                        .map(|i| if i < hidden { f32::NEG_INFINITY } else { 0.0 })
                        .collect();
                    let mut long = vec![0f32; hidden + visible];
                    isa.softmax_row(&s, 0.3, Some(&m), &mut long);
                    let mut alone = vec![0f32; visible];
                    isa.softmax_row(&s[hidden..], 0.3, None, &mut alone);
                    assert!(long[..hidden].iter().all(|&w| w == 0.0));
                    let bits = |v: &[f32]| v.iter().map(|w| w.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&long[hidden..]),
                        bits(&alone),
                        "{isa:?}: {hidden} masked keys before {visible}"
                    );
                }
            }
        }
    }

    /// The same in candle's passes: scale, mask (broadcast over heads), softmax.
    fn candles_passes(scores: &Tensor, scale: f32, mask: &Tensor) -> Tensor {
        let y = (scores * scale as f64)
            .unwrap()
            .broadcast_add(mask)
            .unwrap();
        let max = y.max_keepdim(3).unwrap();
        let e = y.broadcast_sub(&max).unwrap().exp().unwrap();
        let sum = e.sum_keepdim(3).unwrap();
        e.broadcast_div(&sum).unwrap()
    }
}
