//! Which instruction set the kernels run with, detected at run time.

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
