//! `tercuman eval`: the built-in test sets, scoring a translation file exactly as sacreBLEU
//! (its recorded scores in tests/fixtures/sacrebleu), and a small slice end to end on the real
//! 270M test model.

use crate::common;
use std::process::Output;

fn eval(args: &[&str]) -> Output {
    common::tercuman().arg("eval").args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn testset_without_a_name_lists_the_built_in_ones() {
    let o = eval(&["--testset"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in ["flores200-devtest", "newstest2018", "newstest2017"] {
        assert!(out.contains(name), "{out}");
    }
    let o = eval(&["--testset", "wmt18", "--model", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not known"), "{}", stderr(&o));
}

/// A sacreBLEU fixture's pairs through the command line give sacreBLEU's scores.
#[test]
fn a_translation_file_is_scored_as_sacrebleu_scores_it() {
    let fixture = std::fs::read_to_string(common::fixture("sacrebleu/basic.txt")).unwrap();
    let mut hyps = Vec::new();
    let mut refs = Vec::new();
    let mut want = std::collections::HashMap::new();
    for line in fixture.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "pair" => {
                hyps.push(serde_json::from_str::<String>(fields[1]).unwrap());
                refs.push(serde_json::from_str::<String>(fields[2]).unwrap());
            }
            key => {
                want.insert(key.to_string(), fields[1].to_string());
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.en");
    let r = dir.path().join("r.en");
    std::fs::write(&h, hyps.join("\n") + "\n").unwrap();
    std::fs::write(&r, refs.join("\n") + "\n").unwrap();
    let o = eval(&[
        "--hypothesis",
        h.to_str().unwrap(),
        "--reference",
        r.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["models"][0];
    let close = |got: &serde_json::Value, key: &str| {
        let want: f64 = want[key].parse().unwrap();
        assert!(
            (got.as_f64().unwrap() - want).abs() < 0.01,
            "{key}: {got} vs {want}"
        );
    };
    close(&m["bleu"], "bleu_score");
    close(&m["chrf"], "chrf_score");
    close(&m["chrf_pp"], "chrfpp_score");
    assert_eq!(v["signatures"]["bleu"], want["bleu_signature"].as_str());
    assert_eq!(v["signatures"]["chrf++"], want["chrfpp_signature"].as_str());
}

/// Three FLORES sentences through the 270M test model: scores, speed, the checks' shares, the
/// hypotheses file, and the report file.
#[test]
fn a_model_is_evaluated_end_to_end_on_a_slice() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval.json");
    let gguf = common::test_gguf().display().to_string();
    let o = eval(&[
        "--model",
        &gguf,
        "--testset",
        "flores200-devtest",
        "--limit",
        "3",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let m = &v["models"][0];
    assert_eq!(m["sentences"], 3);
    for key in ["bleu", "chrf", "chrf_pp"] {
        let s = m[key].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&s), "{key} {s}");
    }
    // A base 270M model still gets some characters right.
    assert!(m["chrf"].as_f64().unwrap() > 10.0, "{m}");
    assert!(m["sentences_per_s"].as_f64().unwrap() > 0.0);
    assert!(m["peak_rss_bytes"].as_u64().unwrap() > 100_000_000);
    assert_eq!(m["flagged"].as_object().unwrap().len(), 8);
    let hyp_files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hyp.txt"))
        .collect();
    assert_eq!(hyp_files.len(), 1, "{hyp_files:?}");
    let hyps = std::fs::read_to_string(dir.path().join(&hyp_files[0])).unwrap();
    assert_eq!(hyps.lines().count(), 3);
    // Nothing left to resume after a finished run.
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".partial.json")));
}

/// Ctrl-C keeps the finished sentences in the model's checkpoint and `--resume` continues from
/// them: a sentence edited in the checkpoint comes back as edited, so it was not translated
/// again.
#[test]
fn an_interrupted_evaluation_resumes_from_its_finished_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval.json");
    let gguf = common::test_gguf().display().to_string();
    let args = |resume: bool| {
        let mut a = vec![
            "--model".to_string(),
            gguf.clone(),
            "--testset".into(),
            "flores200-devtest".into(),
            "--limit".into(),
            "4".into(),
            "--max-new-tokens".into(),
            "24".into(),
            "--json".into(),
            "-o".into(),
            out.display().to_string(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let partial = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".partial.json"))
    };
    let child = common::tercuman()
        .arg("eval")
        .args(args(false))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // Header line and one finished sentence.
    while partial().is_none_or(|p| std::fs::read_to_string(p).unwrap().lines().count() < 2) {
        assert!(started.elapsed().as_secs() < 120, "no sentence finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sends a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    let path = partial().expect("the checkpoint is kept");
    let saved = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = saved.lines().map(str::to_string).collect();
    let mut first: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    first["text"] = "SAVED BEFORE THE STOP".into();
    lines[1] = first.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let o = common::tercuman()
        .arg("eval")
        .args(args(true))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["models"][0]["sentences"], 4);
    let hyp = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".hyp.txt"))
        .unwrap();
    let hyps = std::fs::read_to_string(hyp).unwrap();
    assert_eq!(hyps.lines().next(), Some("SAVED BEFORE THE STOP"));
    assert_eq!(hyps.lines().count(), 4);
    assert!(
        partial().is_none(),
        "a finished evaluation removes its checkpoint"
    );
}
