//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hub;
pub mod openai;

use std::path::PathBuf;

/// The real Gemma 3 270M test model. Tests that need it fail, loudly, when it is missing: a
/// skipped parity test would hide exactly the regressions it exists for.
pub fn test_gguf() -> PathBuf {
    let path = std::env::var_os("TERCUMAN_TEST_GGUF")
        .map(PathBuf::from)
        .expect(
            "TERCUMAN_TEST_GGUF is not set. Install the test model and export its path:\n  \
         export TERCUMAN_TEST_GGUF=$(bash scripts/test-model.sh)\n\
         (bash .ci/run does this for you)",
        );
    assert!(
        path.is_file(),
        "TERCUMAN_TEST_GGUF={} is not a file; run `bash scripts/test-model.sh`",
        path.display()
    );
    path
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("llamacpp-gemma3-270m.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of token ids, as the reference fixtures store them.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of token ids")
        .iter()
        .map(|x| x.as_u64().expect("a token id") as u32)
        .collect()
}

/// The `tercuman` binary under test, with no model preset from the environment and no hub
/// settings inherited; the hub endpoint is a closed local port, so no test reaches the internet
/// (tests that download point HF_ENDPOINT at a [`hub::FakeHub`]).
pub fn tercuman() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tercuman"));
    cmd.env_remove("TERCUMAN_MODEL");
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_OFFLINE",
        "HF_HUB_DOWNLOAD_TIMEOUT",
        "HF_HUB_ETAG_TIMEOUT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_ENDPOINT", "http://127.0.0.1:9");
    cmd
}
