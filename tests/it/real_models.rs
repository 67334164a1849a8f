//! `scripts/check-real-models.sh`, unchanged, against the stand-in hub
//! (`scripts/stand-in-hub.py`) serving the tiny Qwen2 fixture whole and split in two: the same
//! download, translate and report path a connected machine runs on the real cards.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The stand-in hub, stopped when dropped.
struct StandIn(Child);

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn the_real_model_script_reports_model_revision_sha256_time_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let single = served.join("test/tiny-qwen2");
    let split = served.join("test/tiny-qwen2-split");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::create_dir_all(&split).unwrap();
    std::fs::copy(
        common::fixture("tiny-qwen2/tiny-qwen2.gguf"),
        single.join("tiny-qwen2.gguf"),
    )
    .unwrap();
    let parts = [
        "tiny-qwen2-00001-of-00002.gguf",
        "tiny-qwen2-00002-of-00002.gguf",
    ];
    for p in parts {
        std::fs::copy(
            common::fixture(&format!("tiny-qwen2-split/{p}")),
            split.join(p),
        )
        .unwrap();
    }
    let mut child = Command::new("python3")
        .arg(repo_root().join("scripts/stand-in-hub.py"))
        .arg(&served)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the stand-in hub");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let _hub = StandIn(child);
    let out = dir.path().join("report");
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/check-real-models.sh"))
        .arg("--out")
        .arg(&out)
        .args([
            "hf:test/tiny-qwen2/tiny-qwen2.gguf",
            "hf:test/tiny-qwen2-split/tiny-qwen2-00001-of-00002.gguf",
            "hf:test/absent/model.gguf",
        ])
        .env("TERCUMAN", env!("CARGO_BIN_EXE_tercuman"))
        .env("TERCUMAN_ARGS", "--max-new-tokens 4")
        .env("HF_ENDPOINT", url.trim())
        .env("HF_HOME", dir.path().join("hf"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // The absent repo fails; the others are still run and reported.
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("report.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let (whole, parted, absent) = (&lines[0], &lines[1], &lines[2]);
    for r in [whole, parted] {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["architecture"], "qwen2");
        assert!(r["wall_seconds"].as_f64().unwrap() > 0.0);
        assert!(r["revision"].as_str().unwrap().len() == 40, "{r}");
        assert_eq!(r["blocks"], 9, "the sample article has 9 blocks: {r}");
        assert!(r["findings"].as_object().is_some());
    }
    assert_eq!(
        whole["files"][0]["sha256"],
        sha256(&common::fixture("tiny-qwen2/tiny-qwen2.gguf"))
    );
    let files = parted["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for (f, p) in files.iter().zip(parts) {
        assert_eq!(f["path"], p);
        assert_eq!(f["sha256"], sha256(&split.join(p)));
    }
    // Split or not, the same weights translate the same way.
    assert_eq!(whole["findings"], parted["findings"]);
    assert_eq!(whole["first_block"], parted["first_block"]);
    assert_eq!(absent["status"], "fetch failed");
    assert!(
        absent["error"]
            .as_str()
            .unwrap()
            .contains("no repository test/absent"),
        "{absent}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| hf:")).count(),
        3,
        "{md}"
    );
    assert!(md.contains(whole["revision"].as_str().unwrap()), "{md}");
}
