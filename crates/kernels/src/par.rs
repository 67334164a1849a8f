//! Handing one output buffer to candle's pool threads, each thread writing cells no other
//! thread writes.

/// An output buffer written by several threads, each to cells no other thread touches. The
/// pointer and length stay private: threads write through [`SharedOut::write`], which checks
/// the bounds, so the only promise left to callers is that their cells are disjoint.
pub struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: the buffer is only written through `write` and `chunk_mut`, whose callers promise
// disjoint cells (see their `# Safety`); the `&mut [f32]` it came from outlives the threads.
unsafe impl Sync for SharedOut {}
// SAFETY: as for `Sync`.
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// Borrows `data` for the threads of one product.
    pub fn new(data: &mut [f32]) -> SharedOut {
        SharedOut {
            ptr: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// Borrows uninitialised `data` for the threads of one product, which write every cell.
    pub fn uninit(data: &mut [std::mem::MaybeUninit<f32>]) -> SharedOut {
        SharedOut {
            ptr: data.as_mut_ptr().cast(),
            len: data.len(),
        }
    }

    /// Copies `src` to the cells `at..at + src.len()`; panics if they lie outside the buffer.
    ///
    /// # Safety
    /// No other thread reads or writes those cells while the buffer is shared.
    #[inline]
    pub unsafe fn write(&self, at: usize, src: &[f32]) {
        assert!(at + src.len() <= self.len, "write past the shared buffer");
        // SAFETY: in bounds (checked above); no other thread touches these cells (the
        // caller's promise); `src` is a distinct borrow, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) }
    }

    /// The cells `at..at + len` as a slice; panics if they lie outside the buffer.
    ///
    /// # Safety
    /// No other thread reads or writes those cells while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn chunk_mut(&self, at: usize, len: usize) -> &mut [f32] {
        assert!(at + len <= self.len, "chunk past the shared buffer");
        // SAFETY: in bounds (checked above), and unaliased (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), len) }
    }
}

/// A slice several threads write, each to its own chunks (as [`SharedOut`], for any type).
pub struct SharedSlice<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: as for `SharedOut`: written only through `chunk_mut`, whose callers promise disjoint
// chunks; the `&mut [T]` it came from outlives the threads.
unsafe impl<T: Send> Sync for SharedSlice<T> {}
// SAFETY: as for `Sync`.
unsafe impl<T: Send> Send for SharedSlice<T> {}

impl<T> SharedSlice<T> {
    pub fn new(data: &mut [T]) -> SharedSlice<T> {
        SharedSlice {
            ptr: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// Chunk `i` of `width` elements; panics if it lies outside the slice.
    ///
    /// # Safety
    /// No other thread reads or writes that chunk while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn chunk_mut(&self, i: usize, width: usize) -> &mut [T] {
        assert!((i + 1) * width <= self.len, "chunk past the shared slice");
        // SAFETY: in bounds (checked above), and unaliased (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * width), width) }
    }
}

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
    let ptr = SharedOut::new(data);
    let run = |range: std::ops::Range<usize>| {
        let ptr = &ptr;
        let mut s = scratch();
        for i in range {
            // SAFETY: chunk `i` lies within `data` and is handed to this one call only.
            let chunk = unsafe { ptr.chunk_mut(i * width, width) };
            f(&mut s, i, chunk);
        }
    };
    if n < 2 {
        run(0..n);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, run);
    }
}
