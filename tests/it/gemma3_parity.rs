//! The vendored Gemma 3 (`src/model/gemma3.rs`) against two references, on the real test model.
//!
//! 1. **The math, tightly:** with every weight dequantized to f32 and no activation rounding
//!    (`Precision::Dequantized`), our logits equal transformers' float64 forward pass of the
//!    same GGUF weights (scripts/record_transformers_gemma3.py) to 1e-3; measured 0.00005.
//!    This catches what the comparison with llama.cpp cannot: the exact (erf) GELU in place of
//!    Gemma's tanh form (0.007 to 0.019 off), a sliding window one key too wide (0.009), and
//!    every grosser bug (SiLU for GELU: over 3; no window while decoding: 19).
//! 2. **The quantized path against llama.cpp** (scripts/record_llamacpp.py, its default F16 KV
//!    cache), fed llama.cpp's own tokens, at bounds above the noise of 8-bit activations.
//!
//! Why (2) cannot be tight. Both engines round every activation to 8 bits before each
//! quantized product, and on this model that rounding turns the smallest change into logit
//! changes of up to ~1.5. Measured, fed llama.cpp's tokens over its 48 recorded steps (3
//! prompts x 16 steps), the worst |diff| of llama.cpp's top-5 logits at each step:
//!
//! | run | first position (3 prompts) | worst step | mean of steps | greedy differs at llama.cpp margins |
//! |---|---|---|---|---|
//! | ours | 0.29 / 0.19 / 0.36 | 1.16 | 0.39 | 0.004, 0.06, 0.19 |
//! | ours, input embeddings x (1 +- 1e-6), 10 seeds | 0.16 .. 1.08 | 0.89 .. 1.55 | 0.39 .. 0.43 | up to 0.42 |
//!
//! So a perturbation of one part in a million moves our own logits as far as llama.cpp is from
//! us. llama.cpp is no closer to the exact model than we are: against transformers' float64
//! logits on the same tokens (23 steps, until llama.cpp's greedy leaves the exact one at a
//! margin of 0.19), llama.cpp is off by up to 1.18 (mean 0.40), our quantized path by up to
//! 0.72 (mean 0.34). Copying llama.cpp's f16 KV cache, f16 attention operands and f16 GELU
//! table (tried) moved these figures within the same noise. The bounds for (2) (0.25 at
//! the first position, 0.5 later, greedy equal down to a margin of 0.2) lie inside that
//! noise, so they are not what this test asserts; see the closing notes.

use crate::common;

use tercuman::model::{load_gguf, Network};

/// Bounds for the quantized path against llama.cpp, set above the noise measured in the module
/// comment: every top-5 logit within NOISE_MAX (measured up to 1.55), their worst per step
/// NOISE_MEAN on average (measured 0.39 .. 0.43), the same top token wherever llama.cpp's
/// margin is at least NOISE_MARGIN (flips measured up to 0.42), and a token in one top 5 but
/// not the other within NOISE_MARGIN of the other's 5th (measured up to 0.71). SiLU for GELU
/// moves the top logits by more than 3 and changes the top 5.
const NOISE_MAX: f32 = 2.0;
const NOISE_MEAN: f32 = 0.6;
const NOISE_MARGIN: f32 = 1.0;

/// Top-`n` of `logits`, best first.
fn top_n(logits: &[f32], n: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    idx.truncate(n);
    idx
}

/// A recorded step's top (id, logit) pairs, best first.
fn reference_top(step: &serde_json::Value) -> Vec<(u32, f32)> {
    step["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
        .collect()
}

/// Largest |ours - reference| over the given reference (id, logit) pairs.
fn worst_diff(logits: &[f32], top: &[(u32, f32)]) -> f32 {
    top.iter()
        .map(|&(id, l)| (logits[id as usize] - l).abs())
        .fold(0f32, f32::max)
}

/// Runs each recorded case (a prompt, then its greedy steps) through `model`: every step's
/// recorded top logits within `tol`, the same greedy token. Returns the steps compared.
fn follow_reference(
    model: &mut tercuman::model::gemma3::Model,
    cases: &[serde_json::Value],
    tol: f32,
) -> usize {
    let logits_of = |m: &mut tercuman::model::gemma3::Model, ids: &[u32], pos: usize| {
        m.forward(ids, pos).unwrap().to_vec1::<f32>().unwrap()
    };
    let mut compared = 0;
    for case in cases {
        let prompt = common::ids(&case["prompt_ids"]);
        model.clear_kv_cache();
        let mut logits = logits_of(model, &prompt, 0);
        for (step, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            let d = worst_diff(&logits, &reference_top(s));
            let at = format!("{} tokens, step {step}", prompt.len());
            assert!(d < tol, "{at}: logits off by {d}");
            let chosen = s["chosen"].as_u64().unwrap() as u32;
            assert_eq!(top_n(&logits, 1)[0], chosen, "{at}: greedy differs");
            logits = logits_of(model, &[chosen], prompt.len() + step);
            compared += 1;
        }
    }
    compared
}

fn forward(net: &mut Network, ids: &[u32], pos: usize) -> Vec<f32> {
    net.forward(ids, pos).unwrap().to_vec1::<f32>().unwrap()
}

/// The quantized path against llama.cpp, fed llama.cpp's greedy tokens at every step (so both
/// see the same context throughout), at the noise bounds above.
#[test]
fn gemma3_logits_match_llama_cpp() {
    let mut model = load_gguf(&common::test_gguf()).unwrap();
    let reference = common::reference();
    let mut report = Vec::new();
    let mut worsts = Vec::new();
    for case in reference["model_cases"].as_array().unwrap() {
        let prompt: Vec<u32> = common::ids(&case["prompt_ids"]);
        model.network.clear_kv_cache();
        let mut logits = forward(&mut model.network, &prompt, 0);
        for (step, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            let top = reference_top(s);
            let ours = top_n(&logits, 5);
            // The fixture holds llama.cpp's top 10; the comparison is on its top 5.
            let (top, below) = top.split_at(5);
            let worst = worst_diff(&logits, top);
            let margin = top[0].1 - top[1].1;
            report.push(format!(
                "prompt {:?} step {step}: worst |diff| {worst:.3}, llama.cpp margin {margin:.3}, ours {:?}",
                &case["sentence"].as_str().unwrap()[..20],
                ours.iter()
                    .map(|&i| (i, logits[i as usize]))
                    .collect::<Vec<_>>()
            ));
            let context = || report.join("\n");
            assert!(worst <= NOISE_MAX, "logit off by {worst}\n{}", context());
            if margin >= NOISE_MARGIN {
                assert_eq!(ours[0], top[0].0, "top token differs\n{}", context());
            }
            // Same top 5, up to ties at the boundary.
            let their_fifth = top[4].1;
            let our_fifth = logits[ours[4] as usize];
            for &id in &ours {
                if !top.iter().any(|t| t.0 == id) {
                    let theirs = below.iter().find(|t| t.0 == id).map(|t| t.1);
                    assert!(
                        theirs.is_some_and(|l| their_fifth - l <= NOISE_MARGIN),
                        "our top-5 token {id} is not near llama.cpp's top 5 ({theirs:?})\n{}",
                        context()
                    );
                }
            }
            for &(id, _) in top {
                assert!(
                    ours.contains(&id) || our_fifth - logits[id as usize] <= NOISE_MARGIN,
                    "llama.cpp's top-5 token {id} is far below our top 5\n{}",
                    context()
                );
            }
            worsts.push(worst);
            let chosen = s["chosen"].as_u64().unwrap() as u32;
            logits = forward(&mut model.network, &[chosen], prompt.len() + step);
        }
    }
    eprintln!("{}", report.join("\n"));
    assert_eq!(worsts.len(), 48, "steps compared");
    let mean = worsts.iter().sum::<f32>() / worsts.len() as f32;
    eprintln!("{} steps, mean worst |diff| {mean:.3}", worsts.len());
    assert!(
        mean <= NOISE_MEAN,
        "mean worst |diff| {mean} > {NOISE_MEAN}"
    );
}

/// The quantized path's cache: a prompt fed in two parts, or decoded one token at a time past
/// the 512-token sliding window, gives the prompt's logits fed at once, to the noise of the
/// 8-bit activations (the kernels sum in an order that depends on the number of rows; the tight
/// version of this check runs on the dequantized weights, in the test after this one). On an
/// f32 cache the last token decoded alone after the rest is exact: every kernel then sees the
/// rows of the whole pass. On the f16 cache (the default) the decoding step's attention runs in
/// its own kernel (`attend_f16_cache`), whose sums run in another order than the pass's
/// product: measured 0.22 on the last token (0.29 before the query and weights were rounded
/// to f16 as llama.cpp rounds them), within the noise bound of
/// the other checks.
#[test]
fn gemma3_cache_and_sliding_window_agree_with_one_pass() {
    for dtype in [candle_core::DType::F32, candle_core::DType::F16] {
        cache_agrees_with_one_pass(dtype);
    }
}

fn cache_agrees_with_one_pass(dtype: candle_core::DType) {
    let mut model = load_gguf(&common::test_gguf()).unwrap();
    let reference = common::reference();
    let base = common::ids(&reference["model_cases"][0]["prompt_ids"]);
    // ~600 tokens: past the sliding window of 512.
    let mut ids = base.clone();
    while ids.len() < 600 {
        ids.extend_from_slice(&base[1..]);
    }
    ids.truncate(600);
    let net = &mut model.network;
    net.set_kv_dtype(dtype);

    net.clear_kv_cache();
    let whole = forward(net, &ids, 0);
    // Its top token leads by 7.6 in transformers' exact logits; a broken mask moves logits by
    // several units.
    let top: Vec<(u32, f32)> = top_n(&whole, 5)
        .into_iter()
        .map(|i| (i, whole[i as usize]))
        .collect();
    let check = |logits: &[f32], how: String| {
        let d = worst_diff(logits, &top);
        eprintln!("{how}: top-5 logits differ by {d}");
        assert!(d <= NOISE_MAX, "{how} differs by {d}");
        assert_eq!(top_n(logits, 1)[0], top[0].0, "{how} changes the top token");
    };
    for at in [540, 560, 590] {
        net.clear_kv_cache();
        forward(net, &ids[..at], 0);
        let split = forward(net, &ids[at..], at);
        check(&split, format!("prompt split at {at}"));
    }
    for from in [560, 590, 595] {
        net.clear_kv_cache();
        forward(net, &ids[..from], 0);
        let mut decoded = Vec::new();
        for (i, &t) in ids[from..].iter().enumerate() {
            decoded = forward(net, &[t], from + i);
        }
        check(&decoded, format!("token-by-token decoding from {from}"));
    }
    net.clear_kv_cache();
    forward(net, &ids[..599], 0);
    let last = forward(net, &ids[599..], 599);
    let d = worst_diff(&last, &top);
    eprintln!("{dtype:?} cache: the last token decoded alone differs by {d}");
    // The exact bound holds where the prompt's rows and the lone token go through kernels that
    // add the same integer sums in the same order. On a CPU with AMX they do not: the prompt's
    // products run on the tiles (per block, all 16 weight rows at once) and the lone token's on
    // AVX-512 (per row, in lanes), and the 8-bit rounding of the next layer's activations turns
    // those last-bit differences into the noise above (measured: 0.22 on a Xeon with AMX, 0
    // with TERCUMAN_ISA=avx512 on the same machine). There the noise bound is what holds.
    let same_order = !tercuman_kernels::Isa::detect().uses_tiles();
    match dtype {
        candle_core::DType::F32 if same_order => {
            assert!(d < 0.01, "the last token decoded alone differs by {d}")
        }
        _ => check(&last, "the last token decoded alone".to_string()),
    }
}

/// The GGUF's model computed without 8-bit activation rounding (`Precision::Dequantized`)
/// equals transformers run in float64 on the same dequantized weights
/// (scripts/record_transformers_gemma3.py), to the rounding of f32. This is the tight check of
/// the math that the comparison with llama.cpp above cannot be (its noise reaches 1.5): measured
/// worst 0.00005 over the reference's top 10 at every step of four prompts, one of them 600
/// tokens (past the 512-token sliding window). The exact GELU (erf) in place of Gemma's tanh
/// form is 0.007 to 0.019 off, a sliding window one key too wide 0.009, no window while
/// decoding 19. The prompt fed in parts and decoded token by token past the window gives the
/// same logits.
#[test]
fn gemma3_dequantized_matches_transformers_float64() {
    use candle_core::Device;
    use tercuman::model::gemma3::{Model, Precision};
    const TOL: f32 = 1e-3;

    let path = common::test_gguf();
    let (ct, mut file) = tercuman::model::gguf::read_header(&path).unwrap();
    let mut model = Model::load(&ct, &mut file, &Device::Cpu, Precision::Dequantized).unwrap();
    let text = std::fs::read_to_string(common::fixture("transformers-gemma3-270m.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let logits_of = |m: &mut Model, ids: &[u32], pos: usize| -> Vec<f32> {
        m.forward(ids, pos).unwrap().to_vec1::<f32>().unwrap()
    };
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(
        follow_reference(&mut model, cases, TOL),
        32,
        "steps compared"
    );

    // The long prompt fed in two parts, and decoded one token at a time past the window.
    let long = cases.last().unwrap();
    let prompt = common::ids(&long["prompt_ids"]);
    assert!(
        prompt.len() > 512 + 64,
        "the long case must pass the sliding window"
    );
    let first = &long["steps"][0];
    model.clear_kv_cache();
    logits_of(&mut model, &prompt[..540], 0);
    let split = logits_of(&mut model, &prompt[540..], 540);
    let d = worst_diff(&split, &reference_top(first));
    assert!(d < TOL, "prompt split at 540: off by {d}");
    model.clear_kv_cache();
    let mut decoded = logits_of(&mut model, &prompt[..560], 0);
    for (i, &t) in prompt[560..].iter().enumerate() {
        decoded = logits_of(&mut model, &[t], 560 + i);
    }
    let d = worst_diff(&decoded, &reference_top(first));
    assert!(d < TOL, "decoded token by token from 560: off by {d}");
}

/// The sliding layers' cache drops keys their window no longer sees; that changes nothing:
/// on the dequantized weights (where no 8-bit rounding amplifies the order of float sums), a
/// 1100-token prompt (three prefill chunks, past the point where the cache drops rows) and 20
/// tokens decoded after it give the logits of a cache that keeps every position. Going back
/// within the window keeps the cache; going back before what it dropped empties it, and the
/// sequence run again gives the same logits.
#[test]
fn gemma3_windowed_cache_equals_keeping_every_position() {
    use candle_core::Device;
    use tercuman::model::gemma3::{Model, Precision};
    const TOL: f32 = 1e-4;

    let path = common::test_gguf();
    let (ct, mut file) = tercuman::model::gguf::read_header(&path).unwrap();
    let mut model = Model::load(&ct, &mut file, &Device::Cpu, Precision::Dequantized).unwrap();
    let base = common::ids(&common::reference()["model_cases"][0]["prompt_ids"]);
    let mut ids = base.clone();
    while ids.len() < 1120 {
        ids.extend_from_slice(&base[1..]);
    }
    ids.truncate(1120);
    let logits_of = |m: &mut Model, ids: &[u32], pos: usize| -> Vec<f32> {
        m.forward(ids, pos).unwrap().to_vec1::<f32>().unwrap()
    };
    let run = |m: &mut Model| -> Vec<Vec<f32>> {
        let mut out = vec![logits_of(m, &ids[..1100], 0)];
        for (i, &t) in ids[1100..].iter().enumerate() {
            out.push(logits_of(m, &[t], 1100 + i));
        }
        out
    };
    let close = |a: &[f32], b: &[f32], what: &str| {
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d < TOL, "{what}: logits differ by {d}");
    };
    model.set_windowed_cache(false);
    let whole = run(&mut model);
    model.set_windowed_cache(true);
    let windowed = run(&mut model);
    for (step, (a, b)) in whole.iter().zip(&windowed).enumerate() {
        close(a, b, &format!("step {step}"));
    }
    // Back 10 positions (within the window): kept, and the same logits again.
    assert_eq!(model.truncate_kv_cache(1110), 1110);
    let again = logits_of(&mut model, &ids[1110..1111], 1110);
    close(&again, &whole[11], "after going back 10 positions");
    // Back to 600: the sliding layers no longer hold its window, so the cache empties.
    assert_eq!(model.truncate_kv_cache(600), 0);
    let rerun = logits_of(&mut model, &ids[..1100], 0);
    close(&rerun, &whole[0], "the prompt run again");
}

/// The generator going back to a mark whose window the sliding layers have since dropped (600
/// tokens fed after it) runs the 600 tokens up to the mark again, and then goes on exactly as
/// a fresh run from the same point does.
#[test]
fn a_rewind_past_the_dropped_window_runs_the_prefix_again() {
    use tercuman::chat::generate::{Engine, Params};

    let base = common::ids(&common::reference()["model_cases"][0]["prompt_ids"]);
    let mut ids = base.clone();
    while ids.len() < 1200 {
        ids.extend_from_slice(&base[1..]);
    }
    let params = Params {
        max_new_tokens: 8,
        temperature: 0.0,
        seed: 1,
    };
    let mut fresh = Engine::new(load_gguf(&common::test_gguf()).unwrap(), params.clone());
    fresh.start(&ids[..600]).unwrap();
    let want = fresh.generate(8, false).unwrap();

    let mut engine = Engine::new(load_gguf(&common::test_gguf()).unwrap(), params);
    engine.start(&ids[..600]).unwrap();
    let mark = engine.mark();
    engine.feed(&ids[600..1200]).unwrap();
    let fed = engine.stats.prompt_tokens;
    assert!(engine.rewind(&mark).unwrap());
    assert_eq!(
        engine.stats.prompt_tokens - fed,
        600,
        "the tokens up to the mark run again"
    );
    let got = engine.generate(8, false).unwrap();
    assert!(got.tokens > 0);
    assert_eq!(got.text, want.text);
}

/// The hand-written kernels give candle's products on the test model's own Q8_0 and Q5_0
/// tensors (`q8::Q8Matrix`), and on its weights made Q4_0 (the same) and its table made F16
/// (`f16w::F16Matrix`) as Google's QAT files hold them, for one row (decoding) and several (a
/// prompt).
#[test]
fn q8_kernels_match_candle_on_the_models_tensors() {
    use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};
    use tercuman_kernels::f16w::F16Matrix;
    use tercuman_kernels::q8::Q8Matrix;

    let path = common::test_gguf();
    let mut file = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut file).unwrap();
    for name in [
        "blk.0.attn_q.weight",
        "blk.0.attn_v.weight",
        "blk.3.ffn_up.weight",
        "token_embd.weight",
    ] {
        let mine = Q8Matrix::from_gguf(&ct, &mut file, name).unwrap().unwrap();
        let q = ct.tensor(&mut file, name, &Device::Cpu).unwrap();
        let q = tercuman_kernels::requant::with_fast_kernel(q).unwrap();
        let theirs = QMatMul::from_qtensor(q).unwrap();
        for m in [1usize, 5] {
            let x: Vec<f32> = (0..m * mine.cols())
                .map(|i| ((i * 7919 % 613) as f32 - 306.0) / 97.0)
                .collect();
            let x = Tensor::from_vec(x, (m, mine.cols()), &Device::Cpu).unwrap();
            let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let a = values(mine.forward(&x).unwrap());
            let b = values(theirs.forward(&x).unwrap());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{name}, {m} rows: off by {worst}");
        }
    }
    // The types of Google's QAT files on the same weights: Q4_0 layers, an F16 table.
    for (name, dtype) in [
        ("blk.0.attn_q.weight", GgmlDType::Q4_0),
        ("blk.3.ffn_down.weight", GgmlDType::Q4_0),
        ("token_embd.weight", GgmlDType::F16),
    ] {
        let w = ct.tensor(&mut file, name, &Device::Cpu).unwrap();
        let w = w.dequantize(&Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let mut gguf = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut gguf, &[], &[(name, &q)]).unwrap();
        gguf.set_position(0);
        let one = gguf_file::Content::read(&mut gguf).unwrap();
        let mine: Box<dyn Fn(&Tensor) -> Tensor> = match dtype {
            GgmlDType::Q4_0 => {
                let m = Q8Matrix::from_gguf(&one, &mut gguf, name).unwrap().unwrap();
                Box::new(move |x| m.forward(x).unwrap())
            }
            _ => {
                let m = F16Matrix::from_gguf(&one, &mut gguf, name)
                    .unwrap()
                    .unwrap();
                Box::new(move |x| m.forward(x).unwrap())
            }
        };
        let cols = w.dim(1).unwrap();
        let theirs = QMatMul::from_qtensor(q).unwrap();
        for m in [1usize, 5] {
            let x: Vec<f32> = (0..m * cols)
                .map(|i| ((i * 7919 % 613) as f32 - 306.0) / 97.0)
                .collect();
            let x = Tensor::from_vec(x, (m, cols), &Device::Cpu).unwrap();
            let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let a = values(mine(&x));
            let b = values(theirs.forward(&x).unwrap());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{name} as {dtype:?}, {m} rows: off by {worst}"
            );
        }
    }
}

/// The types of Google's QAT Gemma 3 files (the `gemma-3-1b-it` and `gemma-3-4b-it` cards):
/// every layer weight Q4_0, the embedding table (and tied output) F16. No such file can be
/// downloaded here, so the test model's own weights are written that way, and the network on
/// our kernels (`Q8Matrix`'s 4-bit layout, `F16Matrix`) is compared with the same network on
/// candle's (`vec_dot_q4_0_q8_0`, and the table made f32). Each product is candle's to 1e-5
/// (`q8_kernels_match_candle_on_the_models_tensors`); over the network, sums in another float
/// order flip some 8-bit activation roundings, the noise the bounds above are set for:
/// measured, logits within 0.61 over a prompt and five greedy steps (mean worst 0.53), the one
/// greedy difference at a margin of 0.05.
#[test]
fn gemma3_on_q4_0_weights_and_an_f16_table_matches_candles_kernels() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    use candle_core::{DType, Device};
    use tercuman::model::gemma3::{Model, Precision};

    let path = common::test_gguf();
    let (ct, mut file) = tercuman::model::gguf::read_header(&path).unwrap();
    let dev = Device::Cpu;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let t = ct.tensor(&mut file, name, &dev).unwrap();
        let to = match (name.as_str(), t.shape().dims().len()) {
            ("token_embd.weight", _) => GgmlDType::F16,
            (_, 2) => GgmlDType::Q4_0,
            _ => GgmlDType::F32,
        };
        let w = t.dequantize(&dev).unwrap();
        tensors.push((name.clone(), QTensor::quantize(&w, to).unwrap()));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> =
        ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut qat = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut qat, &metadata, &tensors).unwrap();
    drop(tensors);

    let mut load = |precision| {
        qat.set_position(0);
        let ct = gguf_file::Content::read(&mut qat).unwrap();
        let mut m = Model::load(&ct, &mut qat, &dev, precision).unwrap();
        // The same cache on both sides: only the products differ.
        m.set_kv_dtype(DType::F32);
        m
    };
    let mut ours = load(Precision::Quantized);
    let mut candles = load(Precision::CandleKernels);
    // Our table stays 16-bit where candle's became f32 (262144 x 640 values).
    let table = 262_144 * 640;
    assert_eq!(
        candles.weight_bytes_per_token() - ours.weight_bytes_per_token(),
        2 * table,
        "the F16 table is held at 2 bytes a weight"
    );

    let logits = |m: &mut Model, ids: &[u32], pos: usize| -> Vec<f32> {
        m.forward(ids, pos).unwrap().to_vec1::<f32>().unwrap()
    };
    // BOS and a Turkish sentence, as a prompt would be.
    let mut tokenizer = tercuman::model::gguf_tokenizer::from_gguf(&ct).unwrap();
    let text = "Pekin'deki zirvede iki lider, ticaret anlaşmasını 3 Eylül'de imzaladı.";
    let mut prompt = vec![2u32];
    prompt.extend(tercuman::model::gguf_tokenizer::encode(&mut tokenizer, text, false).unwrap());
    let (mut a, mut b) = (
        logits(&mut ours, &prompt, 0),
        logits(&mut candles, &prompt, 0),
    );
    let mut worst = 0f32;
    for step in 0..6 {
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        worst = worst.max(d);
        // The same greedy token wherever candle's top two are NOISE_MARGIN apart; where they
        // are closer either may win, and both networks go on with ours.
        let (ta, top2) = (top_n(&a, 1)[0], top_n(&b, 2));
        let margin = b[top2[0] as usize] - b[top2[1] as usize];
        if margin >= NOISE_MARGIN {
            assert_eq!(
                ta, top2[0],
                "step {step}: greedy differs at margin {margin}"
            );
        }
        let tb = ta;
        a = logits(&mut ours, &[ta], prompt.len() + step);
        b = logits(&mut candles, &[tb], prompt.len() + step);
    }
    eprintln!("Q4_0 + F16 against candle's kernels: logits within {worst}");
    assert!(worst < NOISE_MAX, "logits off by {worst}");
}

/// Linear rope scaling on the global layers (`gemma3.rope.scaling.factor`, 8 in Gemma 3 4B
/// and larger): the test model's own weights and metadata with that key added, dequantized,
/// against transformers in float64 with the same scaling in its config
/// (`scripts/record_transformers_gemma3.py --rope-linear 8`), to the tolerance of the unscaled
/// test. Without the scaling the first step's top logit is 2.4 off (26.85 against 24.48).
#[test]
fn gemma3_linear_rope_scaling_matches_transformers_float64() {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::QTensor;
    use candle_core::Device;
    use tercuman::model::gemma3::{Model, Precision};
    const TOL: f32 = 1e-3;

    let path = common::test_gguf();
    let (ct, mut file) = tercuman::model::gguf::read_header(&path).unwrap();
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(String, QTensor)> = names
        .into_iter()
        .map(|n| (n.clone(), ct.tensor(&mut file, n, &Device::Cpu).unwrap()))
        .collect();
    let scaling = [
        ("gemma3.rope.scaling.type", Value::String("linear".into())),
        ("gemma3.rope.scaling.factor", Value::F32(8.0)),
    ];
    let metadata: Vec<(&str, &Value)> = ct
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain(scaling.iter().map(|(k, v)| (*k, v)))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut scaled = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut scaled, &metadata, &refs).unwrap();
    drop(tensors);
    scaled.set_position(0);
    let sct = gguf_file::Content::read(&mut scaled).unwrap();
    let mut model = Model::load(&sct, &mut scaled, &Device::Cpu, Precision::Dequantized).unwrap();
    assert_eq!(model.config().rope_scale, 8.0);

    let text =
        std::fs::read_to_string(common::fixture("transformers-gemma3-270m-rope-linear.json"))
            .unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reference["rope_linear_factor"].as_f64(), Some(8.0));
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(
        follow_reference(&mut model, cases, TOL),
        16,
        "steps compared"
    );
}
