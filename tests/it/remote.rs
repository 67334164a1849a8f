//! Remote engines (`--model openai:URL`) against the stand-in OpenAI-compatible server: order,
//! requests in flight, the key, faults that pass and faults that do not, and a server that dies
//! mid-run leaving the finished blocks for `--resume`.

use crate::common::openai::{Fault, OpenAiServer, MODEL};
use crate::common::tercuman;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const DICTIONARY: &[(&str, &str)] = &[
    (
        "Ankara'da bugün 3 kişi toplandı.",
        "3 people gathered in Ankara today.",
    ),
    (
        "İstanbul'da 12 okul kapandı.",
        "12 schools closed in Istanbul.",
    ),
    ("Meclis 5 yasa kabul etti.", "Parliament passed 5 laws."),
    ("Hava yarın ısınacak.", "The weather will warm up tomorrow."),
];

/// An article of the dictionary's sentences, a paragraph each, from `first` on (cyclically).
fn article(dir: &Path, name: &str, first: usize) -> std::path::PathBuf {
    let text: Vec<&str> = (0..DICTIONARY.len())
        .map(|i| DICTIONARY[(first + i) % DICTIONARY.len()].0)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text.join("\n\n") + "\n").unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn translate(model: &str, args: &[&str]) -> Output {
    tercuman()
        .args(["translate", "--model", model])
        .args(args)
        .env("TERCUMAN_REMOTE_RETRIES", "3")
        .env_remove("OPENAI_API_KEY")
        .env_remove("TERCUMAN_API_KEY")
        .output()
        .unwrap()
}

/// A batch of `feed` into `out` through the server, with this many requests in flight.
fn batch(
    feed: &Path,
    out: &Path,
    server: &OpenAiServer,
    concurrency: &str,
    key: Option<&str>,
) -> Output {
    let mut cmd = tercuman();
    cmd.arg("translate").arg(feed).arg("-o").arg(out);
    cmd.args([
        "--model",
        &format!("openai:{}", server.url),
        "--concurrency",
        concurrency,
    ]);
    cmd.env_remove("OPENAI_API_KEY")
        .env_remove("TERCUMAN_API_KEY");
    if let Some(key) = key {
        cmd.env("OPENAI_API_KEY", key);
    }
    cmd.output().unwrap()
}

#[test]
fn a_served_model_translates_a_batch_in_order_with_requests_in_flight_together() {
    let server = OpenAiServer::start(DICTIONARY, Duration::from_millis(150));
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    for i in 0..3 {
        article(&feed, &format!("{i}.txt"), i);
    }
    let out = dir.path().join("out");
    let o = batch(&feed, &out, &server, "3", Some("sekret-key"));
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..3 {
        let text = std::fs::read_to_string(out.join(format!("{i}.en.txt"))).unwrap();
        let expected: Vec<&str> = (0..4).map(|k| DICTIONARY[(i + k) % 4].1).collect();
        assert_eq!(text.trim(), expected.join("\n\n"), "article {i}");
    }
    // Each sentence is in three articles; each asked once per article: nothing twice.
    for (tr, _) in DICTIONARY {
        assert_eq!(server.asked(tr), 3, "{tr}");
    }
    assert_eq!(server.completions(), 12);
    let most = server.most_in_flight();
    assert!((2..=3).contains(&most), "{most} requests in flight at once");
    // The key went to the server, and nowhere else.
    assert!(server
        .auth_headers()
        .iter()
        .all(|h| h == "Bearer sekret-key"));
    assert!(!server.auth_headers().is_empty());
    assert!(!stderr(&o).contains("sekret"));
    let manifest = std::fs::read_to_string(out.join("tercuman-manifest.jsonl")).unwrap();
    assert!(!manifest.contains("sekret"));
}

#[test]
fn a_base_model_is_driven_through_completions_with_few_shot_prompts() {
    let server = OpenAiServer::start(DICTIONARY, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let a = article(dir.path(), "a.txt", 0);
    let model = format!("openai-completions:{}#{MODEL}", server.url);
    let o = translate(&model, &[a.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let blocks = json["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"], DICTIONARY[0].1);
    assert!(blocks
        .iter()
        .all(|b| b["findings"].as_array().unwrap().is_empty()));
    assert_eq!(json["model"]["name"], MODEL);
}

#[test]
fn faults_that_pass_are_retried_and_a_429_waits_as_the_server_asks() {
    let server = OpenAiServer::start(DICTIONARY, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.txt");
    std::fs::write(&path, format!("{}\n", DICTIONARY[0].0)).unwrap();
    server.fault(&[
        Fault::Status(429, r#"{"error":{"message":"slow down"}}"#.into(), Some(1)),
        Fault::Status(503, "overloaded".into(), None),
        Fault::Drop,
    ]);
    let started = Instant::now();
    let o = translate(&format!("openai:{}", server.url), &[path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), DICTIONARY[0].1);
    assert_eq!(server.completions(), 4);
}

#[test]
fn refusals_and_answers_that_are_not_completions_are_errors_naming_the_server() {
    let server = OpenAiServer::start(DICTIONARY, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = article(dir.path(), "a.txt", 0);
    let path = path.to_str().unwrap();
    let model = format!("openai:{}", server.url);

    let o = translate(&format!("{model}#no-such-model"), &[path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("does not serve a model `no-such-model`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(MODEL), "{}", stderr(&o));

    let context = r#"{"error":{"message":"This model's maximum context length is 2048 tokens"}}"#;
    server.fault(&[Fault::Status(400, context.into(), None)]);
    let o = translate(&model, &[path, "--concurrency", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&server.url) && err.contains("maximum context length"),
        "{err}"
    );
    assert!(err.contains("--context"), "{err}");

    server.fault(&[Fault::Malformed]);
    let o = translate(&model, &[path, "--concurrency", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));

    let o = translate("openai:not-a-url", &[path]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_server_that_dies_mid_run_leaves_the_finished_blocks_for_resume() {
    let server = OpenAiServer::start(DICTIONARY, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let path = article(dir.path(), "a.txt", 0);
    let out = dir.path().join("a.en.txt");
    let model = format!("openai:{}", server.url);
    let args = [
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--concurrency",
        "1",
    ];
    server.die_after(2);
    let o = translate(&model, &args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is the server up?"), "{}", stderr(&o));
    let sidecar = tercuman::output::resume::sidecar(&out);
    let saved = std::fs::read_to_string(&sidecar).unwrap();
    assert_eq!(saved.lines().count() - 1, 2, "{saved}");

    // Back up at the same address: --resume asks only for what is missing.
    server.revive();
    let before = server.completions();
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let o = translate(&model, &resumed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.completions() - before, 2);
    assert_eq!(server.asked(DICTIONARY[0].0), 1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.trim().split("\n\n").count(), 4, "{text}");
}

#[test]
fn pieces_of_different_articles_are_in_flight_together() {
    let server = OpenAiServer::start(DICTIONARY, Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir_all(&feed).unwrap();
    // One sentence an article: only other articles can fill the requests in flight.
    for i in 0..6 {
        std::fs::write(
            feed.join(format!("{i}.txt")),
            format!("{}\n", DICTIONARY[i % 4].0),
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    let o = batch(&feed, &out, &server, "3", None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.most_in_flight(), 3);
    assert_eq!(server.completions(), 6);
    for i in 0..6 {
        let text = std::fs::read_to_string(out.join(format!("{i}.en.txt"))).unwrap();
        assert_eq!(text.trim(), DICTIONARY[i % 4].1);
    }
    let manifest = std::fs::read_to_string(out.join("tercuman-manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 6);
}

#[test]
fn a_served_model_translates_and_writes_a_cited_summary() {
    let server = OpenAiServer::start(DICTIONARY, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let a = article(dir.path(), "a.txt", 0);
    for scheme in ["openai", "openai-completions"] {
        let o = tercuman()
            .args([a.to_str().unwrap(), "--format", "json", "--bullets", "3"])
            .args(["--model", &format!("{scheme}:{}", server.url)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{scheme}: {}", stderr(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let bullets = json["summary"]["bullets"].as_array().unwrap();
        assert_eq!(bullets.len(), 3, "{scheme}: {bullets:?}");
        for (i, b) in bullets.iter().enumerate() {
            assert_eq!(b["text"], DICTIONARY[i].1, "{scheme}");
            assert_eq!(b["paragraphs"], serde_json::json!([i + 1]), "{scheme}");
            assert!(
                b["findings"].as_array().unwrap().is_empty(),
                "{scheme}: {b}"
            );
        }
        assert_eq!(json["summary"]["from"], "translation");
    }
    // Four pieces and one list, twice; nothing asked again.
    assert_eq!(server.completions(), 10);
}
