//! What the hand-written CPU products (`q8`, `packed`) share: reading a linear layer's input
//! from candle's storage, and handing one output buffer to the threads.

use candle_core::{CpuStorage, Layout, Result, Shape};

/// The f32 input `x` `(.., k)` of a product as one slice of `m * k` values, with `m`; `what`
/// names the product in errors.
pub fn input<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    k: usize,
    what: &str,
) -> Result<(&'a [f32], usize)> {
    let CpuStorage::F32(x) = storage else {
        candle_core::bail!("{what}: input must be f32")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: input must be contiguous")
    };
    let dims = layout.shape().dims();
    if dims.last() != Some(&k) {
        candle_core::bail!("{what}: input {dims:?} against {k} columns")
    }
    let x = &x[start..end];
    Ok((x, x.len() / k))
}

/// The product's output: `dst` shaped as the input with its last dimension `n`.
pub fn output(dst: Vec<f32>, layout: &Layout, n: usize) -> (CpuStorage, Shape) {
    let mut dims = layout.shape().dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    (CpuStorage::F32(dst), Shape::from(dims))
}

/// The rows `ids` (any shape of u32) of a `rows x width` matrix, each written by `row(id,
/// dst)`: shape `(ids.., width)`. `what` names the matrix in errors.
pub fn gather_rows(
    ids: &candle_core::Tensor,
    rows: usize,
    width: usize,
    what: &str,
    mut row: impl FnMut(usize, &mut [f32]),
) -> Result<candle_core::Tensor> {
    let mut dims = ids.dims().to_vec();
    let ids = ids.flatten_all()?.to_vec1::<u32>()?;
    let mut out = vec![0f32; ids.len() * width];
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(width)) {
        let id = id as usize;
        if id >= rows {
            candle_core::bail!("{what}: row {id} of {rows}")
        }
        row(id, dst);
    }
    dims.push(width);
    candle_core::Tensor::from_vec(out, dims, &candle_core::Device::Cpu)
}

/// Whether this CPU runs the AVX2 kernels (AVX2, FMA and F16C; every x86 CPU with AVX2 also
/// has the other two).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// The instruction set a hand-written kernel runs with: each kernel module implements its
/// operations on it, the AVX2 path and the scalar one it is tested against.
#[derive(Clone, Copy, Debug)]
pub enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// The best this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            return Isa::Avx2;
        }
        Isa::Scalar
    }
}

/// An output buffer written by several threads, each to cells no other thread writes.
pub struct SharedOut(pub *mut f32);
// SAFETY: users write disjoint cells (see the callers in `q8`, `packed` and `par_chunks`).
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

/// `f(&mut scratch, i, chunk)` for each chunk `i` of `width` values of `data`, the chunks
/// shared among candle's pool threads; `scratch` is made by `scratch()` once per run of chunks
/// a thread takes.
pub fn par_chunks<S>(
    data: &mut [f32],
    width: usize,
    scratch: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [f32]) + Sync,
) {
    assert!(width > 0 && data.len().is_multiple_of(width));
    let n = data.len() / width;
    let ptr = SharedOut(data.as_mut_ptr());
    let run = |range: std::ops::Range<usize>| {
        let ptr = &ptr;
        let mut s = scratch();
        for i in range {
            // SAFETY: chunk `i` lies within `data` and is handed to this one call only.
            let chunk = unsafe { std::slice::from_raw_parts_mut(ptr.0.add(i * width), width) };
            f(&mut s, i, chunk);
        }
    };
    if n < 2 {
        run(0..n);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, run);
    }
}

/// Test helper: `a` equals `b` to 1e-4 relative, element by element.
#[cfg(test)]
pub fn assert_close(a: &candle_core::Tensor, b: &candle_core::Tensor) {
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
