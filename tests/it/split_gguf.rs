//! A model split in parts (`NAME-00001-of-00002.gguf`, llama.cpp's `gguf-split` layout) loads as
//! one model: the tiny Qwen2 fixture, split in two by `scripts/make_split_gguf.py`, gives the
//! same logits, bit for bit, as the single file it was split from; a missing or foreign part is
//! an error that names it.

use crate::common;

use std::path::{Path, PathBuf};
use tercuman::model::gguf;
use tercuman::model::load_gguf;

fn single() -> PathBuf {
    common::fixture("tiny-qwen2/tiny-qwen2.gguf")
}

fn part(k: usize) -> PathBuf {
    common::fixture(&format!("tiny-qwen2-split/tiny-qwen2-{k:05}-of-00002.gguf"))
}

/// Greedy decoding of a few steps, returning every step's logits.
fn logits(path: &Path, prompt: &[u32], steps: usize) -> Vec<Vec<f32>> {
    let mut model = load_gguf(path).unwrap();
    let mut out = Vec::new();
    let mut ids = prompt.to_vec();
    let mut pos = 0;
    for _ in 0..steps {
        let l = model
            .network
            .forward(&ids[pos..], pos)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let next = (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap() as u32;
        pos = ids.len();
        ids.push(next);
        out.push(l);
    }
    out
}

#[test]
fn the_fixture_really_is_split() {
    let (first, _) = gguf::read_header(&part(1)).unwrap();
    let (second, _) = gguf::read_header(&part(2)).unwrap();
    let (whole, _) = gguf::read_header(&single()).unwrap();
    assert!(!first.tensor_infos.is_empty() && !second.tensor_infos.is_empty());
    assert_eq!(
        first.tensor_infos.len() + second.tensor_infos.len(),
        whole.tensor_infos.len()
    );
    // The second part carries no model metadata, only the split keys.
    assert!(!second.metadata.contains_key("tokenizer.ggml.tokens"));
    assert!(second.metadata.contains_key("split.no"));
}

#[test]
fn a_split_model_gives_the_single_files_logits_exactly() {
    let prompt = [1u32, 40, 72, 300, 17, 2];
    let ours = logits(&part(1), &prompt, 6);
    let theirs = logits(&single(), &prompt, 6);
    assert_eq!(ours.len(), 6);
    for (step, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "step {step}: logits differ"
        );
    }
    let (joined, weights) = gguf::open(&part(1)).unwrap();
    assert_eq!(weights.part_count(), 2);
    let (whole, _) = gguf::read_header(&single()).unwrap();
    assert_eq!(joined.tensor_infos.len(), whole.tensor_infos.len());
    let model = load_gguf(&part(1)).unwrap();
    assert!(
        model.info.chat_template.is_some(),
        "metadata of part 1 is kept"
    );
}

fn copy_parts(dir: &Path, which: &[usize]) -> PathBuf {
    for &k in which {
        std::fs::copy(part(k), dir.join(part(k).file_name().unwrap())).unwrap();
    }
    dir.join(part(1).file_name().unwrap())
}

fn load_err(path: &Path) -> String {
    match load_gguf(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = copy_parts(dir.path(), &[1]);
    let err = load_err(&first);
    assert!(err.contains("tiny-qwen2-00002-of-00002.gguf"), "{err}");
    assert!(err.contains("is missing"), "{err}");
}

#[test]
fn the_second_part_alone_points_to_the_first() {
    let err = load_err(&part(2));
    assert!(err.contains("part 2 of 2"), "{err}");
    assert!(err.contains("tiny-qwen2-00001-of-00002.gguf"), "{err}");
}

#[test]
fn a_renamed_or_foreign_part_is_refused() {
    // A first part renamed out of the pattern cannot tell where its other parts are.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("model.gguf");
    std::fs::copy(part(1), &renamed).unwrap();
    let err = load_err(&renamed);
    assert!(err.contains("split in 2 files"), "{err}");
    // A single-file model standing where part 2 should be is not a part.
    let dir = tempfile::tempdir().unwrap();
    let first = copy_parts(dir.path(), &[1]);
    std::fs::copy(single(), dir.path().join("tiny-qwen2-00002-of-00002.gguf")).unwrap();
    let err = load_err(&first);
    assert!(err.contains("do not belong together"), "{err}");
}

#[test]
fn a_truncated_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = copy_parts(dir.path(), &[1, 2]);
    let second = dir.path().join(part(2).file_name().unwrap());
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_err(&first);
    assert!(err.contains("tiny-qwen2-00002-of-00002.gguf"), "{err}");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn part_names_follow_gguf_split() {
    assert_eq!(
        gguf::split_parts("qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf").unwrap(),
        [
            "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
            "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf"
        ]
    );
    for not_a_part in [
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        "m-1-of-2.gguf",
        "m-00003-of-00002.gguf",
        "m-00000-of-00002.gguf",
        "-00001-of-00002.gguf",
    ] {
        assert!(gguf::split_parts(not_a_part).is_none(), "{not_a_part}");
    }
}
