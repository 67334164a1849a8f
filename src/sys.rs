//! The crate's only calls into the C library, each behind a safe function: the rest of the
//! crate is `#![deny(unsafe_code)]` (the SIMD kernels live in the `tercuman-kernels` crate).

/// Free bytes on the file system holding `dir`, where the platform says.
pub fn available_space(dir: &std::path::Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs is plain old data, for which all zero bytes is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Lets glibc's allocator reuse freed buffers instead of handing them back to the kernel.
/// Every decoding step allocates logits and activations of a few megabytes; by default
/// glibc maps each from the kernel and unmaps it when freed, so every step paid page
/// faults and page zeroing for them again (perf: `clear_page_erms` 5-20% of a Marian run).
/// Peak memory is unchanged: the buffers are reused, not added to. Call it first thing in
/// `main`, before any other thread starts.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread.
    unsafe {
        // The largest threshold glibc accepts on 64-bit (32 MiB): blocks below it come from
        // the heap, and a heap top up to 1 GiB stays mapped for the next step.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Hands the memory glibc kept for reuse (see [`keep_freed_memory`]) back to the kernel, so
/// that the next model's peak memory is its own: `eval` calls it between models.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}
