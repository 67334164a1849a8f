//! Batch runs of the real binary: many articles, one output each under OUTDIR, the manifest,
//! re-runs that skip what is done, shards, and articles another run holds.

use crate::cli::{four_paragraphs, interrupt_after_first_block};
use crate::common::{self, tercuman};
use std::path::{Path, PathBuf};
use std::process::Output;

fn marian() -> String {
    common::fixture("tiny-marian").display().to_string()
}

fn batch(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut cmd = tercuman();
    cmd.arg("translate");
    cmd.args(inputs);
    cmd.arg("-o")
        .arg(out)
        .args(["--model", &marian()])
        .args(extra);
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn manifest(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A feed directory: two articles (one nested) and a binary file named as an article.
fn feed(dir: &Path) -> PathBuf {
    let feed = dir.join("feed");
    std::fs::create_dir_all(feed.join("2026/12")).unwrap();
    std::fs::write(
        feed.join("a.txt"),
        "Ankara'da bugün 3 kişi toplandı.\n\nHava soğuktu.\n",
    )
    .unwrap();
    std::fs::write(feed.join("2026/12/b.md"), "İstanbul'da 12 okul kapandı.\n").unwrap();
    let mut binary = vec![0u8; 64];
    binary.extend_from_slice(b"\x89PNG\r\n");
    std::fs::write(feed.join("bad.txt"), binary).unwrap();
    feed
}

#[test]
fn a_batch_writes_an_output_per_article_records_each_and_goes_on_past_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let feed = feed(dir.path());
    let single = dir.path().join("c.txt");
    std::fs::write(&single, "Meclis 5 yasa kabul etti.\n").unwrap();
    let out = dir.path().join("out");

    let o = batch(&[&feed, &single], &out, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("these articles failed"), "{err}");
    assert!(
        err.contains("bad.txt: ") && err.contains("not text"),
        "{err}"
    );
    for (key, output) in [
        ("2026/12/b.md", "2026/12/b.en.json"),
        ("a.txt", "a.en.json"),
        ("c.txt", "c.en.json"),
    ] {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(output)).unwrap()).unwrap();
        assert!(!json["blocks"].as_array().unwrap().is_empty(), "{key}");
    }
    assert!(!out.join("bad.en.json").exists());
    let path = out.join("tercuman-manifest.jsonl");
    let lines = manifest(&path);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let by_key = |k: &str| lines.iter().find(|l| l["article"] == k).unwrap().clone();
    assert_eq!(by_key("a.txt")["status"], "done");
    assert_eq!(by_key("a.txt")["blocks"], 2);
    assert_eq!(by_key("a.txt")["input_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(by_key("bad.txt")["status"], "failed");
    assert!(by_key("bad.txt")["error"]
        .as_str()
        .unwrap()
        .contains("not text"));

    // The same command again: the finished articles are skipped, the bad one tried again.
    let o = batch(&[&feed, &single], &out, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 already done"), "{}", stderr(&o));
    assert_eq!(manifest(&path).len(), 5);

    // A changed input is done again.
    std::fs::write(feed.join("a.txt"), "Ankara'da bugün 4 kişi toplandı.\n").unwrap();
    let o = batch(&[&feed, &single], &out, &["--format", "json"]);
    assert!(stderr(&o).contains("2 already done"), "{}", stderr(&o));
    let lines = manifest(&path);
    let last_a = lines
        .iter()
        .rev()
        .find(|l| l["article"] == "a.txt")
        .unwrap();
    assert_eq!(last_a["blocks"], 1);
}

#[test]
fn shards_split_a_batch_with_no_article_done_twice() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    for i in 0..12 {
        std::fs::write(
            feed.join(format!("{i:02}.txt")),
            format!("Bugün {i} kişi geldi.\n"),
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    let mut done = Vec::new();
    for shard in ["1/2", "2/2"] {
        let o = batch(&[&feed], &out, &["--shard", shard]);
        assert!(o.status.success(), "{}", stderr(&o));
        let part = out.join(format!(
            "tercuman-manifest.shard-{}-of-2.jsonl",
            &shard[..1]
        ));
        let keys: Vec<String> = manifest(&part)
            .iter()
            .map(|l| l["article"].as_str().unwrap().to_string())
            .collect();
        assert!(!keys.is_empty() && keys.len() < 12, "{shard}: {keys:?}");
        done.extend(keys);
    }
    done.sort();
    let all: Vec<String> = (0..12).map(|i| format!("{i:02}.txt")).collect();
    assert_eq!(done, all);
    for key in &all {
        assert!(out.join(key.replace(".txt", ".en.txt")).exists(), "{key}");
    }
    // An unsharded run reads both parts: nothing is left to do.
    let o = batch(&[&feed], &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 done, 12 already done"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_article_that_another_run_is_writing_is_left_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let feed = feed(dir.path());
    std::fs::remove_file(feed.join("bad.txt")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let held = tercuman::output::lock::acquire(&out.join("a.en.txt")).unwrap();
    let o = batch(&[&feed], &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("another tercuman"), "{}", stderr(&o));
    assert!(!out.join("a.en.txt").exists());
    assert_eq!(manifest(&out.join("tercuman-manifest.jsonl")).len(), 1);
    drop(held);
    let o = batch(&[&feed], &out, &[]);
    assert!(
        stderr(&o).contains("1 done, 1 already done"),
        "{}",
        stderr(&o)
    );
    assert!(out.join("a.en.txt").exists());
}

#[test]
fn a_batch_resumes_an_article_from_the_checkpoint_of_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let article = four_paragraphs(&input);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let target = out.join("dort.en.txt");
    let o = interrupt_after_first_block(&article, &target, libc::SIGTERM);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));

    let gguf = common::test_gguf().display().to_string();
    let o = tercuman()
        .args([
            "translate",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--model", &gguf, "--max-new-tokens", "24"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resumed from the checkpoint"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&target).unwrap();
    assert_eq!(text.trim().split("\n\n").count(), 4, "{text}");
    assert!(!tercuman::output::resume::sidecar(&target).exists());
}

#[test]
fn a_batch_needs_an_output_directory_and_no_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let feed = feed(dir.path());
    let o = tercuman()
        .args(["translate", feed.to_str().unwrap(), "--model", &marian()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give -o OUTDIR"), "{}", stderr(&o));
    let a = feed.join("a.txt");
    let o = tercuman()
        .args(["translate", a.to_str().unwrap(), "-", "-o", "x/"])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("stdin (-) cannot be one article"),
        "{}",
        stderr(&o)
    );
    let o = tercuman()
        .args(["translate", a.to_str().unwrap(), "--shard", "1/2"])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("--shard splits a batch"),
        "{}",
        stderr(&o)
    );
}

/// `--max-words`: an article over the limit is refused before any model runs and recorded as
/// failed with its word count; the batch goes on and exits 1. A single article over it is an
/// input error (exit 2).
#[test]
fn an_article_over_max_words_is_recorded_as_failed_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let feed = feed(dir.path());
    std::fs::remove_file(feed.join("bad.txt")).unwrap();
    let out = dir.path().join("out");
    // a.txt has 7 words, 2026/12/b.md has 4.
    let o = batch(&[&feed], &out, &["--max-words", "6"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("a.txt") && err.contains("has 7 words, more than --max-words 6"),
        "{err}"
    );
    assert!(out.join("2026/12/b.en.txt").exists());
    assert!(!out.join("a.en.txt").exists());
    let lines = manifest(&out.join("tercuman-manifest.jsonl"));
    let a = lines.iter().find(|l| l["article"] == "a.txt").unwrap();
    assert_eq!(a["status"], "failed");
    assert!(a["error"].as_str().unwrap().contains("7 words"), "{a}");

    let o = tercuman()
        .args(["translate", "--max-words", "6", "--model", &marian()])
        .arg(feed.join("a.txt"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("raise the limit"), "{}", stderr(&o));
}
