//! Two parts. The products with weights kept as the GGUF stores them, beside candle's
//! `QMatMul` on the same weights: the k-quants (`KMatrix`, Q4_K and Q6_K) on Qwen2.5 1.5B's
//! FFN shapes, Q4_0 (`Q8Matrix`) on Gemma 3 1B's, and F16 (`F16Matrix`) on a 32768-row slice of
//! Gemma 3 1B's embedding table (the output projection of Google's QAT files; candle turns it
//! into f32); one row (a decode step: GB/s of weights read, as stored) and 128 rows (a prompt:
//! GFLOP/s). Then the f32 product kernel (`PackedLinear`) and the int8 one (`Int8Linear`,
//! `--quantize int8`) on the shapes of the tc-big Marian model, in GFLOP/s (`-- marian`: these
//! only): the encoder's products (942 rows, the sample article), a beam-4 decoding step
//! (13 sentences x 4 beams = 52 rows) and a greedy one (13 rows), through the layers and the
//! 57000-word output layer. Each shape runs 7 times and the fastest counts (these machines
//! are noisy). Compare runs of this with each other, on the same machine, in one session.
//!
//!     cargo bench -p tercuman-kernels --bench kernels
//!     RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=2 cargo bench -p tercuman-kernels --bench kernels
//!     cargo bench -p tercuman-kernels --bench kernels -- gguf    # the GGUF weights only

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use std::time::Instant;
use tercuman_kernels::f16w::F16Matrix;
use tercuman_kernels::int8::Int8Linear;
use tercuman_kernels::kquant::KMatrix;
use tercuman_kernels::packed::PackedLinear;
use tercuman_kernels::q8::Q8Matrix;

/// The fastest of 7 rounds of `reps` calls of `f`, in seconds per call.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

/// A `rows x cols` weight matrix of values in [-1, 1), the same in every run.
fn weights(rows: usize, cols: usize) -> Tensor {
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap()
}

/// `m` input rows of `cols` values in [-0.4, 0.48].
fn input(m: usize, cols: usize) -> Tensor {
    let x: Vec<f32> = (0..m * cols)
        .map(|i| (i % 89) as f32 * 0.01 - 0.4)
        .collect();
    Tensor::from_vec(x, (m, cols), &Device::Cpu).unwrap()
}

/// A product of ours: `x @ W^T`.
type Product = Box<dyn Fn(&Tensor) -> Tensor>;

/// Ours against candle's on `rows x cols` weights of `dtype`.
fn stored_weights(dtype: GgmlDType, rows: usize, cols: usize) {
    let w = weights(rows, cols);
    let q = QTensor::quantize(&w, dtype).unwrap();
    let bytes = q.storage_size_in_bytes();
    let ours: Product = match dtype {
        GgmlDType::Q4K | GgmlDType::Q6K => {
            let m = KMatrix::from_gguf_blocks(&q).unwrap().unwrap();
            Box::new(move |x| m.forward(x).unwrap())
        }
        GgmlDType::Q4_0 => {
            let m = Q8Matrix::from_q4_0_rows(rows, cols, &q.data().unwrap()).unwrap();
            Box::new(move |x| m.forward(x).unwrap())
        }
        GgmlDType::F16 => {
            let v = w.to_dtype(candle_core::DType::F16).unwrap();
            let v = v.flatten_all().unwrap().to_vec1().unwrap();
            let m = F16Matrix::from_f16(rows, cols, v).unwrap();
            Box::new(move |x| m.forward(x).unwrap())
        }
        other => panic!("no kernel of ours for {other:?}"),
    };
    let theirs = QMatMul::from_qtensor(q).unwrap();
    for m in [1, 128, 512] {
        let x = input(m, cols);
        let reps = match m {
            1 => 50,
            128 => 3,
            _ => 1,
        };
        let a = best_of(reps, || {
            std::hint::black_box(ours(&x));
        });
        let b = best_of(reps, || {
            std::hint::black_box(theirs.forward(&x).unwrap());
        });
        let unit = if m == 1 { "GB/s of weights" } else { "GFLOP/s" };
        let of = |s: f64| match m {
            1 => bytes as f64 / s / 1e9,
            _ => 2.0 * (m * rows * cols) as f64 / s / 1e9,
        };
        println!(
            "{dtype:?} {m:3} x {cols:4} x {rows:5}: ours {:7.2} ms ({:6.1} {unit}), candle {:7.2} ms ({:6.1})",
            a * 1e3,
            of(a),
            b * 1e3,
            of(b)
        );
    }
}

/// Q5_0 held as its codes (`Q8Matrix`'s own kernel) against the same values re-encoded as
/// Q8_0 (the 8-bit kernel, how Q5_0 ran before), on Gemma 3 270M's FFN shape.
fn q5_0_codes_against_q8_0(rows: usize, cols: usize) {
    let w = weights(rows, cols);
    let q5 = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
    let codes = Q8Matrix::from_q5_0_rows(rows, cols, &q5.data().unwrap()).unwrap();
    let q8 = tercuman_kernels::requant::with_fast_kernel(q5).unwrap();
    let int8 = Q8Matrix::from_q8_0_rows(rows, cols, &q8.data().unwrap()).unwrap();
    for m in [1, 128] {
        let x = input(m, cols);
        let reps = if m == 1 { 200 } else { 10 };
        let a = best_of(reps, || {
            std::hint::black_box(codes.forward(&x).unwrap());
        });
        let b = best_of(reps, || {
            std::hint::black_box(int8.forward(&x).unwrap());
        });
        let gflops = |s: f64| 2.0 * (m * rows * cols) as f64 / s / 1e9;
        println!(
            "Q5_0 {m:3} x {cols:4} x {rows:5}: codes {:7.3} ms ({:6.1} GFLOP/s), as Q8_0 {:7.3} ms ({:6.1})",
            a * 1e3,
            gflops(a),
            b * 1e3,
            gflops(b)
        );
    }
}

fn main() {
    // `-- marian`: the Marian shapes only.
    if !std::env::args().any(|a| a == "marian") {
        stored_weights(GgmlDType::Q4K, 8960, 1536);
        stored_weights(GgmlDType::Q6K, 1536, 8960);
        stored_weights(GgmlDType::Q4K, 1536, 8960);
        q5_0_codes_against_q8_0(2048, 640);
        stored_weights(GgmlDType::Q4_0, 6912, 1152);
        stored_weights(GgmlDType::Q4_0, 1152, 6912);
        stored_weights(GgmlDType::F16, 32768, 1152);
    }
    // `-- gguf`: the GGUF weights only.
    if std::env::args().any(|a| a == "gguf") {
        return;
    }
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
        let int8 = Int8Linear::from_rows(&w, n, k, None).unwrap();
        let lin = PackedLinear::from_rows(w, n, k, None).unwrap();
        let x: Vec<f32> = (0..m * k).map(|i| (i % 89) as f32 * 0.01).collect();
        let flop = 2.0 * (m * n * k) as f64;
        let reps = (10e9 / flop).ceil() as usize;
        let f32_s = best_of(reps, || {
            std::hint::black_box(lin.apply(&x));
        });
        let int8_s = best_of(reps, || {
            std::hint::black_box(int8.apply(&x));
        });
        println!(
            "{m:4} x {k:5} x {n:6}: f32 {:8.2} ms {:6.1} GFLOP/s, int8 {:8.2} ms {:6.1} GOP/s ({:.2}x)",
            f32_s * 1e3,
            flop / f32_s / 1e9,
            int8_s * 1e3,
            flop / int8_s / 1e9,
            f32_s / int8_s
        );
    }
}
