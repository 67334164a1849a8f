//! tercuman's hand-written CPU kernels: every `unsafe` block and SIMD intrinsic of the project
//! lives in this crate, behind strict lints, so that the models read as math.
//!
//! - [`q8`]: products with 8-bit and 4-bit block weights (ggml Q8_0, Q4_0, and Q5_0 re-encoded
//!   by [`requant`]);
//! - [`f16w`]: products with 16-bit float weights (ggml F16) kept as stored;
//! - [`kquant`]: products with k-quant weights (ggml Q4_K, Q6_K) as the GGUF stores them;
//! - [`packed`]: f32 products on weights packed once at load (Marian);
//! - [`int8`]: products with int8 weight rows and int8 input rows, summed in int32 (Marian's
//!   `--quantize int8`);
//! - [`attention`]: the dot/axpy core of multi-head attention (Marian);
//! - [`act`]: Gemma's gated activation, `gelu(gate) * up`;
//! - [`isa`], [`par`], [`storage`]: what they share (CPU detection, threads, candle's storage).
//!
//! Each kernel has an AVX2/FMA path and a scalar one it is tested against.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod act;
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
