//! Reading a linear layer's input from candle's storage and shaping its output: what the
//! products' `CustomOp1` implementations (`q8`, `packed`) share.

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

/// Where each row (the last dimension) of a tensor with `layout` starts in its storage; the
/// rows themselves must be contiguous (a view that narrows the last dimension is fine).
/// `what` names the operation in errors.
pub fn row_starts(layout: &Layout, what: &str) -> Result<Vec<usize>> {
    let dims = layout.shape().dims();
    let stride = layout.stride();
    let Some((&width, lead)) = dims.split_last() else {
        return Ok(vec![layout.start_offset()]);
    };
    if width > 1 && stride[dims.len() - 1] != 1 {
        candle_core::bail!("{what}: rows must be contiguous, strides {stride:?}")
    }
    let mut starts = vec![layout.start_offset()];
    for (&n, &s) in lead.iter().zip(stride).rev() {
        starts = (0..n)
            .flat_map(|i| starts.iter().map(move |&o| o + i * s))
            .collect();
    }
    // Built from the innermost leading dimension out, so the outer index varies slowest.
    Ok(starts)
}
