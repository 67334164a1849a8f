//! Marian model directories as the hub publishes them, on the tiny model in the forms
//! scripts/make_tiny_marian_variants.py wrote and recorded with transformers: f16 weights (as
//! opus-mt-tc-big-tr-en ships them), the legacy PyTorch pickle (as opus-mt-tr-en ships it),
//! safetensors beside a `.bin`, and a `generation_config.json` that disagrees with
//! `config.json`.

use crate::common;

use common::{fixture, ids};
use tercuman::model::marian::Marian;
use tercuman::translate::marian::MarianEngine;

fn reference(dir: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture(dir).join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// A model directory in `dir`: `files` linked from where they lie under tests/fixtures, each
/// as `(name in the model directory, fixture path)`.
fn model_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, from) in files {
        std::os::unix::fs::symlink(fixture(from), dir.path().join(name)).unwrap();
    }
    dir
}

/// The tiny model's tokenizer and configs beside `weights` (name, fixture path).
fn tiny_with(weights: &[(&'static str, &'static str)]) -> tempfile::TempDir {
    let mut files = vec![
        ("config.json", "tiny-marian/config.json"),
        (
            "generation_config.json",
            "tiny-marian/generation_config.json",
        ),
        ("source.spm", "tiny-marian/source.spm"),
        ("target.spm", "tiny-marian/target.spm"),
        ("vocab.json", "tiny-marian/vocab.json"),
    ];
    files.extend_from_slice(weights);
    model_dir(&files)
}

fn assert_matches(model: &Marian, cases: &[serde_json::Value], runs: &[(&str, usize)]) {
    for case in cases {
        let src = ids(&case["ids"]);
        for &(name, beams) in runs {
            let want = ids(case[name].get("ids").unwrap_or(&case[name]));
            let got = model.generate(std::slice::from_ref(&src), beams).unwrap();
            assert_eq!(got[0], want, "{name} on {:?}", case["text"]);
        }
    }
}

#[test]
fn f16_weights_give_the_ids_transformers_gives_on_them() {
    let dir = tiny_with(&[("model.safetensors", "tiny-marian-f16/model.safetensors")]);
    let model = Marian::load(dir.path()).unwrap();
    let cases = reference("tiny-marian-f16");
    assert_eq!(cases.len(), 24);
    assert_matches(&model, &cases, &[("greedy", 1), ("beam4", 4)]);
}

#[test]
fn safetensors_is_read_before_a_pytorch_model_bin_beside_it() {
    // tc-big ships both; the .bin here is not a checkpoint at all, so reading it would fail.
    let dir = tiny_with(&[("model.safetensors", "tiny-marian-f16/model.safetensors")]);
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not read").unwrap();
    let model = Marian::load(dir.path()).unwrap();
    assert_matches(&model, &reference("tiny-marian-f16")[..4], &[("beam4", 4)]);
    // Without the safetensors file, the .bin is read, and its error names it.
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = Marian::load(dir.path()).err().unwrap().to_string();
    assert!(err.contains("pytorch_model.bin: is neither"), "{err}");
}

#[test]
fn a_legacy_pickle_translates_as_the_model_it_was_saved_from() {
    let dir = tiny_with(&[(
        "pytorch_model.bin",
        "tiny-marian-pth/legacy/pytorch_model.bin",
    )]);
    let model = Marian::load(dir.path()).unwrap();
    assert_matches(
        &model,
        &reference("tiny-marian"),
        &[("greedy", 1), ("beam4", 4)],
    );
}

/// The generation-config fixture: config.json says beam 4 and bans `<pad>`;
/// generation_config.json says beam 6, bans a second token, stops at 24 tokens and
/// renormalizes.
fn genconfig_dir(with_generation_config: bool) -> tempfile::TempDir {
    let mut files = vec![
        ("config.json", "tiny-marian-genconfig/config.json"),
        ("model.safetensors", "tiny-marian/model.safetensors"),
        ("source.spm", "tiny-marian/source.spm"),
        ("target.spm", "tiny-marian/target.spm"),
        ("vocab.json", "tiny-marian/vocab.json"),
    ];
    if with_generation_config {
        files.push((
            "generation_config.json",
            "tiny-marian-genconfig/generation_config.json",
        ));
    }
    model_dir(&files)
}

#[test]
fn decoding_defaults_come_from_generation_config_over_config() {
    let text = std::fs::read_to_string(fixture("tiny-marian-genconfig/reference.json")).unwrap();
    let banned = serde_json::from_str::<serde_json::Value>(&text).unwrap()["banned"]
        .as_u64()
        .unwrap() as u32;
    let cases = reference("tiny-marian-genconfig");
    let dir = genconfig_dir(true);
    let mut model = Marian::load(dir.path()).unwrap();
    let g = &model.generation;
    assert_eq!((g.num_beams, g.max_length, g.renormalize), (6, 24, true));
    assert!(g.banned.contains(&banned) && g.banned.contains(&720));
    assert_matches(&model, &cases, &[("default", 6), ("greedy", 1)]);
    for case in &cases {
        assert!(!ids(&case["default"]).contains(&banned));
    }
    model.generation.renormalize = false;
    assert_matches(&model, &cases, &[("no_renormalize", 6)]);

    // config.json alone: beam 4, only <pad> banned, 512 tokens; most outputs differ.
    let dir = genconfig_dir(false);
    let plain = Marian::load(dir.path()).unwrap();
    let g = &plain.generation;
    assert_eq!(
        (g.num_beams, g.max_length, g.renormalize, g.banned.clone()),
        (4, 512, false, vec![720])
    );
    let differ = cases
        .iter()
        .filter(|c| {
            let src = ids(&c["ids"]);
            plain.generate(&[src], 4).unwrap()[0] != ids(&c["default"])
        })
        .count();
    assert!(differ >= 12, "only {differ} of {} differ", cases.len());
}

#[test]
fn beams_given_by_the_user_win_over_the_generation_config() {
    let dir = genconfig_dir(true);
    let engine = MarianEngine::load(dir.path(), None, 8, Default::default()).unwrap();
    assert_eq!(engine.beams, 6);
    let engine = MarianEngine::load(dir.path(), Some(2), 8, Default::default()).unwrap();
    assert_eq!(engine.beams, 2);
}
