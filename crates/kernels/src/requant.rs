//! Re-encodes weights whose quantization candle has no SIMD kernel for into one it has, without
//! changing a single weight value.
//!
//! candle 0.11.1 computes Q5_0 dot products with a scalar loop (`vec_dot_unopt`); on the Gemma
//! 3 270M test model that loop was 74% of the run time (perf). Every Q5_0 value is
//! `d * (q - 16)` with `q` in 0..32, which a Q8_0 block with the same scale `d` and
//! `q - 16` as its int8 holds exactly; Q8_0 has an AVX2 kernel. Both are dotted with
//! activations quantized to Q8_0, so the products are the same integers as before. The cost
//! is memory: 34 bytes instead of 22 per 32 weights.
//!
//! That re-encoding now serves only candle's path (`Precision::CandleKernels`, and types our
//! kernels do not take). Our own Q5_0 kernel (`q8`) takes the codes `q` themselves, a byte
//! each, from [`q5_0_block_codes`].

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};
use candle_core::Result;

const BLOCK: usize = 32;
const Q5_0_BYTES: usize = 22;
const Q8_0_BYTES: usize = 34;

/// `q` itself, or its exact Q8_0 re-encoding when it is Q5_0.
pub fn with_fast_kernel(q: QTensor) -> Result<QTensor> {
    if q.dtype() != GgmlDType::Q5_0 {
        return Ok(q);
    }
    let src = q.data()?;
    let out = q5_0_to_q8_0(&src);
    let t = qtensor_from_ggml(
        GgmlDType::Q8_0,
        &out,
        q.shape().dims().to_vec(),
        &q.device(),
    )?;
    Ok(t)
}

/// Raw Q5_0 blocks (f16 d, u32 high bits, 16 bytes of low nibbles) into raw Q8_0 blocks
/// (f16 d, 32 int8), value for value (ggml's block layouts).
fn q5_0_to_q8_0(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; src.len() / Q5_0_BYTES * Q8_0_BYTES];
    for (src, dst) in src
        .chunks_exact(Q5_0_BYTES)
        .zip(out.chunks_exact_mut(Q8_0_BYTES))
    {
        q5_0_block_to_q8_0(src, dst);
    }
    out
}

/// One Q5_0 block (22 bytes) into one Q8_0 block (34 bytes) holding the same 32 values.
pub fn q5_0_block_to_q8_0(block: &[u8], out: &mut [u8]) {
    q5_0_block_codes(block, out);
    for q in &mut out[2..2 + BLOCK] {
        *q = (*q as i8 - 16) as u8;
    }
}

/// One Q5_0 block (22 bytes) as its f16 scale and its 32 unsigned codes (0..32, the value
/// being `d * (q - 16)`), a byte each: 34 bytes, laid out as a Q8_0 block.
pub fn q5_0_block_codes(block: &[u8], out: &mut [u8]) {
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let qs = &block[6..22];
    out[0..2].copy_from_slice(&block[0..2]);
    let q = &mut out[2..2 + BLOCK];
    for j in 0..BLOCK / 2 {
        let hi0 = ((qh >> j) & 1) as u8;
        let hi1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (qs[j] & 0x0F) | (hi0 << 4);
        q[j + BLOCK / 2] = (qs[j] >> 4) | (hi1 << 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn q5_0_re_encoding_keeps_every_value() {
        let values: Vec<f32> = (0..64 * 8)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Tensor::from_vec(values, (8, 64), &Device::Cpu).unwrap();
        let q5 = QTensor::quantize(&t, GgmlDType::Q5_0).unwrap();
        let before = q5
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let q8 = with_fast_kernel(q5).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        assert_eq!(q8.shape().dims(), &[8, 64]);
        let after = q8
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(before, after);
    }
}
