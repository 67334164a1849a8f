//! The f32 product kernel (`PackedLinear`) on the shapes of the tc-big Marian model, in
//! GFLOP/s: the encoder's products (942 rows, the sample article), a beam-4 decoding step
//! (13 sentences x 4 beams = 52 rows) and a greedy one (13 rows), through the layers and the
//! 57000-word output layer. Each shape runs 7 times and the fastest counts (these machines
//! are noisy). Compare runs of this with each other, on the same machine, in one session.
//!
//!     cargo bench -p tercuman-kernels --bench kernels
//!     RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=2 cargo bench -p tercuman-kernels --bench kernels

use std::time::Instant;
use tercuman_kernels::packed::PackedLinear;

fn main() {
    for (m, k, n) in [
        (942, 1024, 1024),
        (942, 1024, 4096),
        (942, 4096, 1024),
        (52, 1024, 1024),
        (52, 1024, 4096),
        (52, 4096, 1024),
        (52, 1024, 57000),
        (13, 1024, 4096),
        (13, 1024, 57000),
    ] {
        let w: Vec<f32> = (0..n * k).map(|i| (i % 97) as f32 * 0.01).collect();
        let lin = PackedLinear::from_rows(w, n, k, None).unwrap();
        let x: Vec<f32> = (0..m * k).map(|i| (i % 89) as f32 * 0.01).collect();
        let flop = 2.0 * (m * n * k) as f64;
        let reps = (10e9 / flop).ceil() as usize;
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(lin.apply(&x));
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "{m:4} x {k:5} x {n:6}: {:8.2} ms {:7.1} GFLOP/s",
            best * 1e3,
            flop / best / 1e9
        );
    }
}
