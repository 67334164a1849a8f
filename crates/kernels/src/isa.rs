//! Which instruction set the kernels run with, detected at run time.

use std::sync::OnceLock;

/// Whether this CPU runs the AVX2 kernels (AVX2, FMA and F16C; every x86 CPU with AVX2 also
/// has the other two).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// Whether this CPU also runs the AVX-512 kernels: 512-bit integer and float operations
/// (F, BW, VL) and VNNI's `vpdpbusd` (Intel from Ice Lake, AMD from Zen 4).
#[cfg(target_arch = "x86_64")]
fn has_avx512_vnni() -> bool {
    has_avx2()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// The instruction set a hand-written kernel runs with: each kernel module implements its
/// operations on it, the vector paths and the scalar one they are tested against. A module
/// with no AVX-512 kernel runs its AVX2 one under `Avx512` (the CPU has both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX-512 with VNNI, and Intel's AMX tiles for the quantized products of prompts
    /// (`crate::amx`): what runs with a few activation rows (decode) is `Avx512`'s.
    #[cfg(target_arch = "x86_64")]
    Amx,
}

impl Isa {
    /// The best this CPU runs, or less when `TERCUMAN_ISA` asks for it (`avx512`, `avx2`,
    /// `scalar`: to compare kernels in one build, or to step around a fault in one of them).
    pub fn detect() -> Self {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let best = Self::best();
            match std::env::var("TERCUMAN_ISA").as_deref() {
                Ok("scalar") => Isa::Scalar,
                #[cfg(target_arch = "x86_64")]
                Ok("avx2") if best != Isa::Scalar => Isa::Avx2,
                #[cfg(target_arch = "x86_64")]
                Ok("avx512") if best == Isa::Amx => Isa::Avx512,
                _ => best,
            }
        })
    }

    /// The best this CPU runs.
    pub fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx512_vnni() && crate::amx::usable() {
                return Isa::Amx;
            }
            if has_avx512_vnni() {
                return Isa::Avx512;
            }
            if has_avx2() {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Whether a quantized product with `m` activation rows runs on AMX's tiles: under `Amx`,
    /// from 16 rows (a tile's; fewer would leave most of one empty, and decode's one row takes
    /// the AVX-512 kernels).
    pub(crate) fn on_tiles(self, m: usize) -> bool {
        self.uses_tiles() && m >= 16
    }

    /// Whether a decoding step's k-quant products run on the AVX-512 one-row kernels.
    pub(crate) fn one_row_on_avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Isa::Avx512 | Isa::Amx) {
            return true;
        }
        false
    }

    /// Whether prompts' quantized products run on AMX's tiles (and so add their integer sums
    /// in another order than decoding's one row does).
    pub fn uses_tiles(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Amx {
            return true;
        }
        false
    }
}
