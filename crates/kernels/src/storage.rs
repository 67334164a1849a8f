//! Reading a linear layer's input from candle's storage and shaping its output: what the
//! products' `CustomOp1` implementations (`q8`, `packed`) share. And the weights' own bytes:
//! read into memory, or the model file's pages mapped in place ([`Bytes`], [`Source`]).

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::{CpuStorage, Layout, Result, Shape};

/// A weight matrix's bytes as the GGUF stores them: read into memory, or the model file's own
/// pages, mapped. Mapped, they are the page cache's: loading copies nothing, and every process
/// that maps the same file shares one copy (as llama.cpp's default `mmap` does).
pub enum Bytes {
    Owned(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl Bytes {
    /// Whether these are a mapped file's pages.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Bytes::Mapped(_))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Where the loaders read a GGUF's tensors from: a reader that may also hand out a tensor's
/// bytes mapped in place.
pub trait Source: Read + Seek {
    /// The `len` bytes at `offset` as mapped file pages, or `None` where this source cannot
    /// map them (then the loader reads them).
    fn mapped(&mut self, _offset: u64, _len: usize) -> Option<Bytes> {
        None
    }
}

impl Source for std::fs::File {
    fn mapped(&mut self, offset: u64, len: usize) -> Option<Bytes> {
        map_range(self, offset, len).ok()
    }
}

impl<T: AsRef<[u8]>> Source for std::io::Cursor<T> {}

/// Maps `len` bytes of `file` from `offset`, read-only, their pages faulted in now (so the
/// first product does not take the faults, as llama.cpp's prefetching `mmap`). Off when
/// `TERCUMAN_NO_MMAP` is set (a model on a network file system, say): then an error, and the
/// caller reads the bytes.
pub fn map_range(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    if std::env::var_os("TERCUMAN_NO_MMAP").is_some() || len == 0 {
        return Err(std::io::Error::other("mapping is off"));
    }
    // SAFETY: the map is read-only and private to this process. What `memmap2` cannot promise
    // is that no other process truncates or rewrites the model file while it is mapped; then
    // reads see the new bytes, or the process gets SIGBUS. The same holds for llama.cpp's
    // default. tercuman's hub client only renames a model file into its cache once it is
    // complete and its checksum matches, and never writes it again.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)?
    };
    Ok(Bytes::Mapped(Arc::new(map)))
}

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

#[cfg(test)]
mod tests {
    use crate::f16w::F16Matrix;
    use crate::kquant::KMatrix;
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};

    /// A k-quant and an F16 tensor from a GGUF file are the file's mapped pages, and give the
    /// products of the same tensors read into memory (from a byte buffer, which cannot map).
    #[test]
    fn tensors_in_a_file_are_mapped_and_give_the_read_ones_products() {
        let w = crate::test_weights(16, 512, 7);
        let k = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let h = QTensor::quantize(&w, GgmlDType::F16).unwrap();
        let mut bytes = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &[], &[("k", &k), ("h", &h)]).unwrap();
        let path = std::env::temp_dir().join(format!("tercuman-map-{}.gguf", std::process::id()));
        std::fs::write(&path, bytes.get_ref()).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let ct = gguf_file::Content::read(&mut file).unwrap();
        bytes.set_position(0);
        let x = crate::test_input(3, 512);

        let mapped = KMatrix::from_gguf(&ct, &mut file, "k").unwrap().unwrap();
        let read = KMatrix::from_gguf(&ct, &mut bytes, "k").unwrap().unwrap();
        assert!(mapped.is_mapped() && !read.is_mapped());
        crate::assert_close(&mapped.forward(&x).unwrap(), &read.forward(&x).unwrap());

        let mapped = F16Matrix::from_gguf(&ct, &mut file, "h").unwrap().unwrap();
        let read = F16Matrix::from_gguf(&ct, &mut bytes, "h").unwrap().unwrap();
        assert!(mapped.is_mapped() && !read.is_mapped());
        crate::assert_close(&mapped.forward(&x).unwrap(), &read.forward(&x).unwrap());
        std::fs::remove_file(&path).unwrap();
    }
}
