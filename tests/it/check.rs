//! `tercuman check` on real files: exit status as diff and grep (0 clean, 1 findings, 2
//! error), its text and JSON output, and the README's sample translation by the 270M model,
//! whose invented names it must find.

use crate::common;
use std::path::Path;
use std::process::Output;

fn check(args: &[&str]) -> Output {
    common::tercuman().arg("check").args(args).output().unwrap()
}

fn fixture(name: &str) -> String {
    common::fixture(&format!("check/{name}"))
        .display()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn exit_status_is_0_when_clean_1_with_findings_2_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let tr = write(
        dir.path(),
        "a.tr",
        "Ankara'da 3 kişi yaralandı.\nErdoğan İstanbul'da konuştu.\n",
    );
    let good = write(
        dir.path(),
        "good.en",
        "Three people were injured in Ankara.\nErdogan spoke in Istanbul.\n",
    );
    let o = check(&[&tr, &good]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("0 of 2 blocks flagged"),
        "{}",
        stderr(&o)
    );

    let bad = write(
        dir.path(),
        "bad.en",
        "Four people were injured in Ankara.\nErdogan spoke in Izmir.\n",
    );
    let o = check(&[&tr, &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("block 1: number: "), "{out}");
    assert!(out.contains("block 2: name: "), "{out}");
    assert!(out.contains("block 2: invented_name: "), "{out}");
    assert!(out.contains("Izmir"), "{out}");
    // --quiet: no summary line.
    let o = check(&["--quiet", &tr, &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");

    // Different block counts: both counts and where they stop matching.
    let short = write(
        dir.path(),
        "short.en",
        "Three people were injured in Ankara.\n",
    );
    let o = check(&[&tr, &short]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("has 2 blocks but"), "{err}");
    assert!(err.contains("has 1"), "{err}");
    assert!(err.contains("block 2"), "{err}");

    let o = check(&[&tr, &dir.path().join("none.en").display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("could not read"), "{}", stderr(&o));
}

#[test]
fn json_lists_every_block_with_findings_and_spans() {
    let dir = tempfile::tempdir().unwrap();
    let tr = write(
        dir.path(),
        "a.tr",
        "Fiyatlar yüzde 12 arttı.\n\nHava güzeldi.\n",
    );
    let en = write(
        dir.path(),
        "a.en",
        "Prices rose by 21 percent.\n\nThe weather was nice.\n",
    );
    let o = check(&["--format", "json", &tr, &en]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"], 2);
    assert_eq!(v["flagged"], 1);
    assert_eq!(v["flagged_by_kind"]["number"], 1);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1]["findings"].as_array().unwrap().len(), 0);
    let f = &blocks[0]["findings"];
    let numbers: Vec<&serde_json::Value> = f
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "number")
        .collect();
    assert!(!numbers.is_empty(), "{f}");
    // Spans point into the texts they quote.
    for n in numbers {
        for side in ["source", "translation"] {
            if let Some(span) = n[side].as_object() {
                let text = blocks[0][side].as_str().unwrap();
                let (s, e) = (
                    span["start"].as_u64().unwrap(),
                    span["end"].as_u64().unwrap(),
                );
                assert_eq!(
                    &text[s as usize..e as usize],
                    span["text"].as_str().unwrap()
                );
            }
        }
    }
}

/// The README's sample: the 270M base model's translation of the first three blocks of the
/// sample article invents Xi Jinping and Dalian and drops Kim Jong Un and North Korea.
#[test]
fn the_readme_sample_translation_is_caught_inventing_names() {
    let o = check(&[
        &fixture("pekin-3.tr.txt"),
        &fixture("pekin-3.readme.en.txt"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    for (block, kind, name) in [
        (1, "invented_name", "Xi Jinping"),
        (2, "invented_name", "Dalian"),
        (1, "name", "Kim Jong Un"),
        (2, "name", "Kuzey Kore"),
    ] {
        let line = format!("block {block}: {kind}: ");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&line) && l.contains(name)),
            "no {kind} finding for {name} in block {block}:\n{out}"
        );
    }
}

/// Human translations mostly pass: of the first 40 newstest2018 lines (a set the checks were
/// not tuned on), at most 3 are flagged.
#[test]
fn human_translations_mostly_pass() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testsets");
    let head = |name: &str| {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let lines: Vec<&str> = text.lines().take(40).collect();
        write(dir.path(), name, &(lines.join("\n") + "\n"))
    };
    let (tr, en) = (head("newstest2018.tr"), head("newstest2018.en"));
    let o = check(&["--format", "json", &tr, &en]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"], 40);
    assert!(
        v["flagged"].as_u64().unwrap() <= 3,
        "{}",
        v["flagged_by_kind"]
    );
}

/// Every translated block carries the findings of the same checks `tercuman check` runs, the
/// summary bullets cite paragraphs, and --strict turns what remains into exit status 1: on the
/// first three blocks of the sample article with the real 270M test model.
#[test]
fn a_run_checks_every_block_and_strict_fails_on_what_remains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let o = common::tercuman()
        .args([
            &fixture("pekin-3.tr.txt"),
            "--model",
            &common::test_gguf().display().to_string(),
            "--bullets",
            "2",
            "--strict",
            "-o",
            &out.display().to_string(),
        ])
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let blocks = json["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    let bullets = json["summary"]["bullets"].as_array().unwrap();
    assert_eq!(bullets.len(), 2);
    assert_eq!(json["summary"]["from"], "translation");
    let block_findings: usize = blocks
        .iter()
        .map(|b| b["findings"].as_array().unwrap().len())
        .sum();
    let bullet_findings: usize = bullets
        .iter()
        .map(|b| b["findings"].as_array().unwrap().len())
        .sum();
    let flags = blocks
        .iter()
        .chain([&json["summary"]])
        .any(|b| !b["flags"].as_array().unwrap().is_empty());
    let expect = if block_findings + bullet_findings > 0 || flags {
        1
    } else {
        0
    };
    assert_eq!(o.status.code(), Some(expect), "{}", stderr(&o));
    // Every paragraph number a bullet cites is a block of the article.
    for b in bullets {
        for p in b["paragraphs"].as_array().unwrap() {
            assert!((1..=3).contains(&p.as_u64().unwrap()), "{b}");
        }
    }
    // The run's findings are `tercuman check`'s on the same two sides.
    let join = |key: &str| {
        blocks
            .iter()
            .map(|b| b[key].as_str().unwrap().replace("\n\n", "\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let src = write(dir.path(), "src.tr", &join("source"));
    let tgt = write(dir.path(), "tgt.en", &join("text"));
    let o = check(&["--format", "json", &src, &tgt]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (run, checked) in blocks.iter().zip(v["blocks"].as_array().unwrap()) {
        assert_eq!(run["findings"], checked["findings"], "{}", run["source"]);
    }
}
