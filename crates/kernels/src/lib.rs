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
//! - [`act`]: Gemma's gated activation, `gelu(gate) * up`;
//! - [`isa`], [`par`], [`storage`]: what they share (CPU detection, threads, candle's storage).
//!
//! Each kernel has an AVX2/FMA path and a scalar one it is tested against; the quantized
//! products ([`q8`], [`kquant`]) also an AVX-512 one (F, BW, VL, VNNI), chosen at run time
//! ([`isa`]; `TERCUMAN_ISA=avx512`, `avx2` or `scalar` asks for less). Where the CPU has Intel's
//! AMX, the quantized products of prompts (16 rows or more) run on its tiles (`amx`, used by
//! [`q8`] and [`kquant`]).

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
