//! tercuman's hand-written CPU kernels: every `unsafe` block and SIMD intrinsic of the project
//! lives in this crate, behind strict lints, so that the models read as math.
//!
//! - [`q8`]: products with 8-, 5- and 4-bit block weights (ggml Q8_0, Q5_0 as its codes put
//!   together by [`requant`], Q4_0);
//! - [`f16w`]: products with 16-bit float weights (ggml F16) kept as stored;
//! - [`kquant`]: products with k-quant weights (ggml Q4_K, Q6_K) as the GGUF stores them;
//! - [`packed`]: f32 products on weights packed once at load (Marian);
//! - [`int8`]: products with int8 weight rows and int8 input rows, summed in int32 (Marian's
//!   `--quantize int8`);
//! - [`attention`]: the dot/axpy core of multi-head attention (Marian);
//! - [`act`]: the gated feed-forward activations, Gemma's `gelu(gate) * up` and Qwen's
//!   `silu(gate) * up`;
//! - [`softmax`]: a prompt's attention weights, scaled and masked in the same pass, and a beam
//!   search's log-probabilities;
//! - [`isa`], [`par`], [`storage`]: what they share (CPU detection, threads, candle's storage).
//!
//! Each kernel has an AVX2/FMA path and a scalar one it is tested against; the quantized
//! products ([`q8`], [`kquant`], [`int8`]) also an AVX-512 one (F, BW, VL, VNNI), chosen at run
//! time ([`isa`]; `TERCUMAN_ISA=avx512`, `avx2` or `scalar` asks for less). Where the CPU has
//! Intel's AMX, the quantized products of prompts (16 rows or more) run on its tiles (`amx`,
//! used by [`q8`] and [`kquant`]), and all of [`int8`]'s. The one-row kernels of decoding ask for the weights a few KB ahead
//! of where they read (`PREFETCH`).

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod act;
mod amx;
pub mod attention;
pub mod f16w;
pub mod int8;
pub mod isa;
pub mod kquant;
pub mod packed;
pub mod par;
pub mod q8;
pub mod requant;
pub mod softmax;
pub mod storage;

pub use isa::Isa;

/// `x` rounded half away from zero, as `f32::round` rounds, saturated to an `i32`: how the
/// activations are quantized. Written out because `f32::round` is a call to libm's `roundf` on
/// x86-64 without SSE4.1 (with the loop around it, 3-5% of a Gemma 3 270M prompt); a truncating
/// conversion and a test of the fraction are a few instructions. Exact: `x - trunc(x)` has no
/// rounding error.
#[inline(always)]
pub(crate) fn round_away(x: f32) -> i32 {
    let t = x as i32;
    let f = x - t as f32;
    t.saturating_add((f >= 0.5) as i32 - (f <= -0.5) as i32)
}

/// How far ahead of the weight block it is reading a product kernel asks for the cache lines:
/// measured on a Qwen2.5 1.5B-shape decode (2 threads), 1 KB 1.0x, 2 KB 1.2x, 4 KB 1.35x, 8 KB
/// the same as 4 KB, against no prefetch. The hardware prefetcher alone left each core
/// streaming weights at a third of the copy bandwidth.
pub(crate) const PREFETCH: usize = 4096;

/// Asks for the cache lines `PREFETCH` bytes past a weight block of `bytes` at `b`: one
/// every 64 bytes from its start. The kernels read the weights in order, block after block
/// with no gap, so the addresses asked for over a stream are never more than 64 bytes apart
/// and every line is asked for at least once (a 144-byte Q4_K block asks three times, not the
/// four a line for each of its bytes' lines would take). A block past a row's end is the next
/// row's (past the matrix's end, nothing: a prefetch never faults).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn prefetch_ahead(b: *const u8, bytes: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let ahead = b.wrapping_add(PREFETCH) as *const i8;
    for line in (0..bytes).step_by(64) {
        // SAFETY: a prefetch reads nothing into the program and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line)) };
    }
}

/// The wrapping sum of `xs`, read as the product kernels read weights: in order, eight values
/// (a 64-byte line) at a time, each line asked for `PREFETCH` bytes ahead. For measuring the
/// memory bandwidth a decoding step can reach (`tercuman bench --bandwidth`).
pub fn read_sum(xs: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    for (i, line) in xs.chunks_exact(8).enumerate() {
        #[cfg(target_arch = "x86_64")]
        prefetch_ahead(xs.as_ptr().wrapping_add(8 * i) as *const u8, 64);
        for (l, x) in lanes.iter_mut().zip(line) {
            *l = l.wrapping_add(*x);
        }
    }
    let tail = xs.chunks_exact(8).remainder().iter();
    lanes.iter().chain(tail).fold(0, |a, &b| a.wrapping_add(b))
}

/// [`round_away`] in each of 16 lanes, clamped to `-128..=127` as the quantizers clamp, as
/// int32; a NaN lane gives 0, as `NaN as i32` does. The same arithmetic: a truncation, the exact
/// fraction left, and a step away from zero where it is at least a half.
///
/// # Safety
/// The CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn round_away_i8_avx512(
    y: std::arch::x86_64::__m512,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // SAFETY: AVX-512 F, as the caller promises.
    unsafe {
        let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(y);
        let f = _mm512_sub_ps(y, t);
        let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(f, _mm512_set1_ps(0.5));
        let down = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(f, _mm512_set1_ps(-0.5));
        let t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0));
        let t = _mm512_mask_sub_ps(t, down, t, _mm512_set1_ps(1.0));
        let t = _mm512_min_ps(
            _mm512_max_ps(t, _mm512_set1_ps(-128.0)),
            _mm512_set1_ps(127.0),
        );
        // A NaN lane (unordered with itself) is 0.
        let t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(y, y), t);
        _mm512_cvtps_epi32(t)
    }
}

/// Test data: a `rows x cols` weight matrix of values in about [-1.7, 1.7], varied by `seed`.
#[cfg(test)]
pub(crate) fn test_weights(rows: usize, cols: usize, seed: usize) -> candle_core::Tensor {
    let v: Vec<f32> = (0..rows * cols)
        .map(|i| ((((i + seed) * 7919) % 1000) as f32 - 500.0) / 300.0)
        .collect();
    candle_core::Tensor::from_vec(v, (rows, cols), &candle_core::Device::Cpu).unwrap()
}

/// Test data: `m` activation rows of `cols` values in about [-2, 2].
#[cfg(test)]
pub(crate) fn test_input(m: usize, cols: usize) -> candle_core::Tensor {
    let v: Vec<f32> = (0..m * cols)
        .map(|i| (((i * 104729) % 997) as f32 - 498.0) / 250.0)
        .collect();
    candle_core::Tensor::from_vec(v, (m, cols), &candle_core::Device::Cpu).unwrap()
}

/// Test data for the activation quantizers, blocks of `len` values: pseudo-random ones of four
/// magnitudes; ones that scale onto halves and next to them (largest magnitude 127 or 254, so
/// the scale is 1 or 1/2 exactly); zeros; the largest magnitude twice with both signs, in both
/// orders; a NaN; an infinity.
#[cfg(test)]
pub(crate) fn test_quantizer_blocks(len: usize) -> Vec<Vec<f32>> {
    let mut state = 0x2545_f491_u64;
    let mut random = |scale: f32| -> Vec<f32> {
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    };
    let mut blocks = Vec::new();
    for scale in [1e-3f32, 1.0, 37.0, 1e6] {
        for _ in 0..8 {
            blocks.push(random(scale));
        }
    }
    for first in [127f32, -127.0, 254.0, -254.0] {
        let mut b: Vec<f32> = (0..len)
            .map(|i| {
                let v = ((i * 37 % 200) as f32 - 100.0) * 0.5;
                match i % 3 {
                    0 => v,
                    1 => f32::from_bits(v.to_bits() + 1),
                    _ => f32::from_bits(v.to_bits().saturating_sub(1)),
                }
            })
            .collect();
        b[0] = first;
        blocks.push(b);
    }
    blocks.push(vec![0.0; len]);
    for sign in [1f32, -1.0] {
        let mut b = random(1.0);
        b[5] = 3.0 * sign;
        b[len - 3] = -3.0 * sign;
        blocks.push(b);
    }
    let mut b = random(2.0);
    b[7] = f32::NAN;
    blocks.push(b);
    let mut b = random(2.0);
    b[3] = f32::INFINITY;
    blocks.push(b);
    blocks
}

/// Test helper: every instruction set this CPU runs, the scalar one first, so that each
/// kernel is checked, not only the one `Isa::detect` picks.
#[cfg(test)]
pub(crate) fn test_isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        Isa::Amx => isas.extend([Isa::Avx2, Isa::Avx512, Isa::Amx]),
        Isa::Avx512 => isas.extend([Isa::Avx2, Isa::Avx512]),
        Isa::Avx2 => isas.push(Isa::Avx2),
        Isa::Scalar => {}
    }
    isas
}

/// Test helper: `a` equals `b` to 1e-4 relative, element by element.
#[cfg(test)]
pub(crate) fn assert_close(a: &candle_core::Tensor, b: &candle_core::Tensor) {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "element {i}: {x} against {y}"
        );
    }
}

#[cfg(test)]
mod round_tests {
    #[test]
    fn read_sum_is_the_wrapping_sum() {
        for n in [0, 5, 8, 1000, 1003] {
            let xs: Vec<u64> = (0..n as u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect();
            let want = xs.iter().fold(0u64, |a, &b| a.wrapping_add(b));
            assert_eq!(super::read_sum(&xs), want, "{n} values");
        }
    }

    #[test]
    fn round_away_is_f32_round() {
        let mut xs: Vec<f32> = (-4000..4000).map(|i| i as f32 / 8.0).collect();
        for i in -300..300 {
            let half = i as f32 + 0.5;
            xs.extend([
                half,
                f32::from_bits(half.to_bits() - 1),
                f32::from_bits(half.to_bits() + 1),
            ]);
        }
        xs.extend([
            0.49999997,
            -0.49999997,
            8388607.5,
            -8388607.5,
            1e9,
            -1e9,
            0.0,
            -0.0,
        ]);
        let mut seed = 12345u32;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            xs.push((seed as f32 / u32::MAX as f32 - 0.5) * 300.0);
        }
        for x in xs {
            assert_eq!(super::round_away(x), x.round() as i32, "{x}");
        }
        assert_eq!(super::round_away(f32::NAN), 0);
        assert_eq!(super::round_away(f32::INFINITY), i32::MAX);
    }
}
