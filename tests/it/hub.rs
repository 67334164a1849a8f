//! The model loader against a local stand-in for the Hugging Face hub ([`common::hub`]): first
//! download into the standard cache, later runs from the cache with the server gone, offline
//! mode, and each fault (404, 401/403, 500, a dropped connection, wrong bytes, a slow and a
//! stalled server) ending in a clear error with nothing left in the cache that a later run
//! would trust. One test serves the real Gemma 270M GGUF under its card's repo.

use crate::common;

use common::hub::{FakeHub, Fault, COMMIT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const REPO: &str = "test/tiny-qwen2";
const FILE: &str = "tiny-qwen2.gguf";

fn tiny() -> Vec<u8> {
    std::fs::read(common::fixture("tiny-qwen2/tiny-qwen2.gguf")).unwrap()
}

fn spec() -> String {
    format!("hf:{REPO}/{FILE}")
}

fn cmd(hub_url: &str, home: &Path) -> Command {
    let mut c = common::tercuman();
    c.env("HF_HOME", home)
        .env("HF_ENDPOINT", hub_url)
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "1");
    c
}

fn fetch(hub: &FakeHub, home: &Path, what: &str) -> Output {
    cmd(&hub.url, home)
        .args(["models", "fetch", what])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo_dir(home: &Path, repo: &str) -> PathBuf {
    home.join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
}

/// Files in the repo's blob store, by name.
fn blobs(home: &Path, repo: &str) -> Vec<String> {
    match std::fs::read_dir(repo_dir(home, repo).join("blobs")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Asserts that nothing in the cache would be loaded by a later run.
fn nothing_trusted(home: &Path, repo: &str, file: &str) {
    let pointer = repo_dir(home, repo)
        .join("snapshots")
        .join(COMMIT)
        .join(file);
    assert!(!pointer.exists(), "{} exists", pointer.display());
    let complete: Vec<String> = blobs(home, repo)
        .into_iter()
        .filter(|b| !b.ends_with(".incomplete"))
        .collect();
    assert!(complete.is_empty(), "complete blobs left: {complete:?}");
}

/// The CACHED column of `tercuman models list` for the card `name`.
fn cached_column(home: &Path, name: &str) -> String {
    let o = common::tercuman()
        .env("HF_HOME", home)
        .args(["models", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = list
        .lines()
        .find(|l| {
            l.get(2..)
                .is_some_and(|l| l.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| panic!("no {name} in\n{list}"));
    line.split_whitespace()
        .filter(|w| *w != "*")
        .nth(5)
        .unwrap_or_default()
        .to_string()
}

fn tiny_article(dir: &Path) -> PathBuf {
    let path = dir.join("haber.txt");
    std::fs::write(&path, "Başlık\n\nAnkara'da bugün hava güzeldi.\n").unwrap();
    path
}

fn translate(hub_url: &str, home: &Path, article: &Path, extra: &[&str]) -> Output {
    cmd(hub_url, home)
        .arg("translate")
        .arg(article)
        .args([
            "--model",
            &spec(),
            "--max-new-tokens",
            "4",
            "--format",
            "json",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn downloads_once_into_the_hf_cache_then_runs_from_it_with_the_server_gone() {
    let hub = FakeHub::start();
    let sha = hub.add(REPO, FILE, tiny(), true);
    let home = tempfile::tempdir().unwrap();
    let article = tiny_article(home.path());

    let first = translate(&hub.url, home.path(), &article, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains(&format!("downloading {REPO}/{FILE}")),
        "{}",
        stderr(&first)
    );

    // The layout huggingface_hub uses, so Python tools find the file too.
    let dir = repo_dir(home.path(), REPO);
    assert_eq!(blobs(home.path(), REPO), vec![sha.clone()]);
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        COMMIT
    );
    let pointer = dir.join("snapshots").join(COMMIT).join(FILE);
    assert_eq!(
        std::fs::read_link(&pointer).unwrap(),
        Path::new("../../blobs").join(&sha)
    );
    assert_eq!(std::fs::read(&pointer).unwrap(), tiny());

    let hub_url = hub.url.clone();
    hub.stop();
    let second = translate(&hub_url, home.path(), &article, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        !stderr(&second).contains("downloading"),
        "{}",
        stderr(&second)
    );
    let offline = translate(&hub_url, home.path(), &article, &["--offline"]);
    assert!(offline.status.success(), "{}", stderr(&offline));
    let json: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(json["model"]["source"], spec());
    assert_eq!(json["blocks"].as_array().unwrap().len(), 2);
}

#[test]
fn offline_names_the_missing_file_and_how_to_fetch_it_without_touching_the_network() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    let home = tempfile::tempdir().unwrap();
    let article = tiny_article(home.path());
    for offline in [
        translate(&hub.url, home.path(), &article, &["--offline"]),
        cmd(&hub.url, home.path())
            .env("HF_HUB_OFFLINE", "1")
            .arg("translate")
            .arg(&article)
            .args(["--model", "gemma-3-270m-it"])
            .output()
            .unwrap(),
    ] {
        assert_eq!(offline.status.code(), Some(2));
        let err = stderr(&offline);
        assert!(err.contains("offline"), "{err}");
        assert!(err.contains("not in the cache"), "{err}");
        assert!(err.contains("tercuman models fetch"), "{err}");
    }
    let err = stderr(&translate(&hub.url, home.path(), &article, &["--offline"]));
    assert!(err.contains(&format!("{REPO}/{FILE}")), "{err}");
    assert!(
        hub.seen().is_empty(),
        "offline runs made requests: {:?}",
        hub.seen()
    );
}

#[test]
fn missing_repo_revision_and_file_each_say_what_is_missing() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    let home = tempfile::tempdir().unwrap();
    let cases = [
        (
            "hf:nobody/nothing/x.gguf".to_string(),
            "no repository nobody/nothing",
        ),
        (
            format!("hf:{REPO}/{FILE}@v9"),
            "no revision v9 in test/tiny-qwen2",
        ),
        (
            format!("hf:{REPO}/other.gguf"),
            "no file other.gguf in test/tiny-qwen2 at revision main",
        ),
    ];
    for (what, says) in cases {
        let o = fetch(&hub, home.path(), &what);
        assert_eq!(o.status.code(), Some(2), "{what}");
        assert!(stderr(&o).contains(says), "{what}: {}", stderr(&o));
    }
    nothing_trusted(home.path(), REPO, FILE);
}

#[test]
fn a_gated_repo_asks_for_the_licence_and_a_token_which_never_reaches_the_cdn() {
    let hub = FakeHub::start();
    let repo = "google/gated";
    hub.add(repo, FILE, tiny(), true);
    hub.gate(repo, "hf_right");
    let home = tempfile::tempdir().unwrap();
    let what = format!("hf:{repo}/{FILE}");

    let anonymous = fetch(&hub, home.path(), &what);
    assert_eq!(anonymous.status.code(), Some(2));
    let err = stderr(&anonymous);
    assert!(
        err.contains(&format!("accept the licence at {}/{repo}", hub.url)),
        "{err}"
    );
    assert!(err.contains("set HF_TOKEN"), "{err}");

    let wrong = cmd(&hub.url, home.path())
        .env("HF_TOKEN", "hf_wrong")
        .args(["models", "fetch", &what])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("answered 403"),
        "{}",
        stderr(&wrong)
    );
    assert!(
        stderr(&wrong).contains("refused the token"),
        "{}",
        stderr(&wrong)
    );
    nothing_trusted(home.path(), repo, FILE);

    // The token is also read from $HF_HOME/token, as huggingface-cli login leaves it.
    std::fs::write(home.path().join("token"), "hf_right\n").unwrap();
    let ok = fetch(&hub, home.path(), &what);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let seen = hub.seen();
    assert!(seen
        .iter()
        .any(|s| !s.cdn && s.authorization.as_deref() == Some("Bearer hf_right")));
    assert!(seen.iter().any(|s| s.cdn));
    assert!(
        seen.iter()
            .filter(|s| s.cdn)
            .all(|s| s.authorization.is_none()),
        "the token was sent to the storage host: {seen:?}"
    );
}

#[test]
fn a_server_error_is_reported_with_its_status() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    hub.fault(Fault::Status(500));
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("answered 500"), "{}", stderr(&o));
    assert!(stderr(&o).contains("try again later"), "{}", stderr(&o));
    nothing_trusted(home.path(), REPO, FILE);
}

#[test]
fn no_server_at_all_suggests_offline_or_a_local_path() {
    let home = tempfile::tempdir().unwrap();
    let o = cmd("http://127.0.0.1:9", home.path())
        .args(["models", "fetch", &spec()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("could not reach http://127.0.0.1:9"), "{err}");
    assert!(
        err.contains("--offline") && err.contains("--model PATH"),
        "{err}"
    );
}

#[test]
fn a_dropped_connection_is_resumed_and_never_leaves_a_trusted_file() {
    let hub = FakeHub::start();
    let sha = hub.add(REPO, FILE, tiny(), true);
    let size = tiny().len() as u64;
    let home = tempfile::tempdir().unwrap();

    // Each request breaks off after 40 000 bytes; three attempts get 120 000 of 163 584.
    hub.fault(Fault::DropAfter(40_000));
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("broke off after"), "{err}");
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    nothing_trusted(home.path(), REPO, FILE);
    let partial = repo_dir(home.path(), REPO).join(format!("blobs/{sha}.incomplete"));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 120_000);
    let ranges: Vec<Option<String>> = hub
        .seen()
        .into_iter()
        .filter(|s| s.cdn)
        .map(|s| s.range)
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=40000-".into()),
            Some("bytes=80000-".into())
        ]
    );

    // The next run asks only for the rest, and checks the whole file.
    hub.fault(Fault::None);
    let o = fetch(&hub, home.path(), &spec());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming at"), "{}", stderr(&o));
    let last = hub.seen().into_iter().rfind(|s| s.cdn).unwrap();
    assert_eq!(last.range.as_deref(), Some("bytes=120000-"));
    let pointer = repo_dir(home.path(), REPO)
        .join("snapshots")
        .join(COMMIT)
        .join(FILE);
    assert_eq!(std::fs::read(pointer).unwrap().len() as u64, size);
    assert_eq!(
        std::fs::read(pointer_blob(home.path(), &sha)).unwrap(),
        tiny()
    );
    assert!(!partial.exists());
}

fn pointer_blob(home: &Path, sha: &str) -> PathBuf {
    repo_dir(home, REPO).join("blobs").join(sha)
}

#[test]
fn wrong_bytes_fail_the_checksum_and_are_discarded() {
    let hub = FakeHub::start();
    let sha = hub.add(REPO, FILE, tiny(), true);
    hub.fault(Fault::WrongBytes);
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("do not match the expected sha256 {sha}")),
        "{err}"
    );
    nothing_trusted(home.path(), REPO, FILE);
    assert!(
        blobs(home.path(), REPO).is_empty(),
        "{:?}",
        blobs(home.path(), REPO)
    );
}

#[test]
fn a_small_file_is_checked_against_its_git_blob_id() {
    let hub = FakeHub::start();
    hub.add(REPO, "config.json", b"{\"d_model\": 8}\n".to_vec(), false);
    let home = tempfile::tempdir().unwrap();
    let what = format!("hf:{REPO}/config.json");
    hub.fault(Fault::WrongBytes);
    let o = fetch(&hub, home.path(), &what);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("expected git blob sha1"),
        "{}",
        stderr(&o)
    );
    nothing_trusted(home.path(), REPO, "config.json");
    assert!(blobs(home.path(), REPO).is_empty());
    hub.fault(Fault::None);
    let o = fetch(&hub, home.path(), &what);
    assert!(o.status.success(), "{}", stderr(&o));
    // Served by the hub itself (no CDN), at the commit its answer named.
    let seen = hub.seen();
    assert!(seen.iter().all(|s| !s.cdn));
    assert!(seen
        .iter()
        .any(|s| s.method == "GET" && s.path.contains(&format!("/resolve/{COMMIT}/config.json"))));
}

#[test]
fn a_refused_storage_link_is_fetched_again_and_not_called_gated() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    hub.fault(Fault::CdnStatus(403));
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("storage host refused the download link"),
        "{err}"
    );
    assert!(!err.contains("gated"), "{err}");
    // Each retry asked the hub for a fresh link first.
    let heads = hub.seen().iter().filter(|s| s.method == "HEAD").count();
    assert_eq!(heads, 3, "{:?}", hub.seen());
    nothing_trusted(home.path(), REPO, FILE);
}

#[test]
fn a_card_pin_that_disagrees_with_the_hub_is_refused_before_downloading() {
    let hub = FakeHub::start();
    let card = "unsloth/gemma-3-270m-it-GGUF";
    // The card records 253,115,424 bytes; the hub serves another size.
    hub.add(card, "gemma-3-270m-it-Q4_K_M.gguf", tiny(), true);
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), "gemma-3-270m-it");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("but the model card pins"),
        "{}",
        stderr(&o)
    );
    assert!(hub.seen().iter().all(|s| !s.cdn));
    nothing_trusted(home.path(), card, "gemma-3-270m-it-Q4_K_M.gguf");
}

#[test]
fn a_slow_server_still_delivers() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    // 16 KiB every 150 ms: slow, but never silent for the 1 s read timeout.
    hub.fault(Fault::Slow(Duration::from_millis(150)));
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), &spec());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(hub.seen().iter().filter(|s| s.cdn).count(), 1);
}

#[test]
fn a_stalled_server_times_out_and_says_how_to_go_on() {
    let hub = FakeHub::start();
    hub.add(REPO, FILE, tiny(), true);
    hub.fault(Fault::Stall);
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("no data for 1 s"), "{err}");
    assert!(err.contains("resume"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    nothing_trusted(home.path(), REPO, FILE);
}

/// The gemma-3-270m-it card end to end. The real file cannot be had here, so the test model
/// (the same network, base weights, 2,400 bytes smaller) stands in for it, padded with zeros to
/// the card's recorded size: GGUF readers ignore bytes after the last tensor. The stand-in has
/// no chat template, so the card's prompts go through Gemma 3's built-in one.
#[test]
fn the_gemma_card_downloads_once_then_translates_offline() {
    let hub = FakeHub::start();
    let repo = "unsloth/gemma-3-270m-it-GGUF";
    let home = tempfile::tempdir().unwrap();
    let stand_in = home.path().join("stand-in.gguf");
    std::fs::copy(common::test_gguf(), &stand_in).unwrap();
    let card_size = 253_115_424;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&stand_in)
        .unwrap()
        .set_len(card_size)
        .unwrap();
    hub.add_file(repo, "gemma-3-270m-it-Q4_K_M.gguf", stand_in);
    let article = home.path().join("haber.txt");
    std::fs::write(&article, "Türkiye'de yeni bir köprü açıldı.\n").unwrap();
    let run = |hub_url: &str, extra: &[&str]| {
        // The form the loader issue asks for: options before the subcommand.
        cmd(hub_url, home.path())
            .args(["--model", "gemma-3-270m-it", "translate"])
            .arg(&article)
            .args(["--max-new-tokens", "24"])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&hub.url, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains(&format!("downloading {repo}/gemma-3-270m-it-Q4_K_M.gguf")),
        "{}",
        stderr(&first)
    );
    let hub_url = hub.url.clone();
    hub.stop();
    let second = run(&hub_url, &["--offline"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(!stderr(&second).contains("downloading"));
    // Greedy decoding: the cached model gives the same translation.
    assert_eq!(first.stdout, second.stdout);
    assert!(!String::from_utf8_lossy(&second.stdout).trim().is_empty());

    assert_eq!(cached_column(home.path(), "gemma-3-270m-it"), "yes");
}

#[test]
fn fetch_gets_every_file_of_a_marian_card_ahead_of_time_then_it_translates_offline() {
    let hub = FakeHub::start();
    // The tiny Marian model served under the opus-mt-tr-en card's repo and file names
    // (weights as a legacy-format pytorch_model.bin, as that repo ships them). No
    // generation_config.json: the card's optional file is left out, not an error.
    let repo = "Helsinki-NLP/opus-mt-tr-en";
    for (file, from) in [
        ("config.json", "tiny-marian/config.json"),
        (
            "pytorch_model.bin",
            "tiny-marian-pth/legacy/pytorch_model.bin",
        ),
        ("source.spm", "tiny-marian/source.spm"),
        ("target.spm", "tiny-marian/target.spm"),
        ("vocab.json", "tiny-marian/vocab.json"),
    ] {
        hub.add_file(repo, file, common::fixture(from));
    }
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), "opus-mt-tr-en");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.lines().count(), 5, "{out}");
    for line in out.lines() {
        let path = line.split('\t').nth(1).unwrap();
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        let from = if name == "pytorch_model.bin" {
            "tiny-marian-pth/legacy"
        } else {
            "tiny-marian"
        };
        assert_eq!(
            std::fs::read(path).unwrap(),
            std::fs::read(common::fixture(&format!("{from}/{name}"))).unwrap()
        );
    }
    assert_eq!(cached_column(home.path(), "opus-mt-tr-en"), "yes");

    let hub_url = hub.url.clone();
    hub.stop();
    let article = tiny_article(home.path());
    let o = cmd(&hub_url, home.path())
        .args([
            "translate",
            "--model",
            "opus-mt-tr-en",
            "--offline",
            "--format",
            "json",
        ])
        .arg(&article)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["model"]["source"], "opus-mt-tr-en");
    assert_eq!(json["model"]["architecture"], "marian");
    let source = std::fs::read_to_string(&article).unwrap();
    assert_eq!(
        json["blocks"].as_array().unwrap().len(),
        source
            .split("\n\n")
            .filter(|b| !b.trim().is_empty())
            .count()
    );
}

#[test]
fn the_tc_big_card_fetches_its_generation_config_and_safetensors_and_decodes_by_them() {
    let hub = FakeHub::start();
    // tc-big's layout: model.safetensors beside a pytorch_model.bin the card does not fetch,
    // and a generation_config.json (here the fixture's beam 6, one more token banned; the
    // weights are f32 because that fixture's reference was recorded on them).
    let repo = "Helsinki-NLP/opus-mt-tc-big-tr-en";
    for (file, from) in [
        ("config.json", "tiny-marian-genconfig/config.json"),
        (
            "generation_config.json",
            "tiny-marian-genconfig/generation_config.json",
        ),
        ("model.safetensors", "tiny-marian/model.safetensors"),
        ("pytorch_model.bin", "tiny-marian-pth/pytorch_model.bin"),
        ("source.spm", "tiny-marian/source.spm"),
        ("target.spm", "tiny-marian/target.spm"),
        ("vocab.json", "tiny-marian/vocab.json"),
    ] {
        hub.add_file(repo, file, common::fixture(from));
    }
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), "opus-mt-tc-big-tr-en");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut names: Vec<&str> = out.lines().map(|l| l.rsplit('/').next().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "source.spm",
            "target.spm",
            "vocab.json"
        ]
    );
    let info = common::tercuman()
        .env("HF_HOME", home.path())
        .args(["models", "info", "opus-mt-tc-big-tr-en"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.contains("generation_config.json (optional)"), "{info}");

    // The snapshot directory is what a run loads: the generation config's beam 6 and ban
    // decide the output (a whole translation of the random-weight model is retried in
    // pieces by the checks, so the ids are compared here, and the run below only has to
    // succeed offline).
    let snapshot = Path::new(out.lines().next().unwrap().split('\t').nth(1).unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let model = tercuman::model::marian::Marian::load(&snapshot).unwrap();
    assert_eq!(model.generation.num_beams, 6);
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("tiny-marian-genconfig/reference.json")).unwrap(),
    )
    .unwrap();
    for case in reference["cases"].as_array().unwrap().iter().take(6) {
        let src = common::ids(&case["ids"]);
        assert_eq!(
            model.generate(&[src], 6).unwrap()[0],
            common::ids(&case["default"])
        );
    }
    let hub_url = hub.url.clone();
    hub.stop();
    let article = tiny_article(home.path());
    let o = cmd(&hub_url, home.path())
        .args(["translate", "--offline", "--format", "json"])
        .arg(&article)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["model"]["source"], "opus-mt-tc-big-tr-en");
}

#[test]
fn a_disk_that_fills_up_is_reported_and_the_partial_file_removed() {
    let hub = FakeHub::start();
    let sha = hub.add(REPO, FILE, tiny(), true);
    let home = tempfile::tempdir().unwrap();
    // Where the download goes is a link to /dev/full: every write fails with "no space left
    // on device", as on a full disk, without needing a small file system.
    let blobs = repo_dir(home.path(), REPO).join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{sha}.incomplete"));
    std::os::unix::fs::symlink("/dev/full", &partial).unwrap();
    let o = fetch(&hub, home.path(), &spec());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("filled up while downloading"), "{err}");
    assert!(err.contains("HF_HUB_CACHE"), "{err}");
    assert!(
        std::fs::symlink_metadata(&partial).is_err(),
        "partial file left behind"
    );
    nothing_trusted(home.path(), REPO, FILE);
}

/// A model split in two on the hub: naming its first part fetches both, and it translates; a
/// part the hub does not have is named in the error.
#[test]
fn a_split_model_is_fetched_whole_and_a_missing_part_is_named() {
    let repo = "test/tiny-qwen2-split";
    let part = |k: usize| format!("tiny-qwen2-{k:05}-of-00002.gguf");
    let bytes = |k: usize| {
        std::fs::read(common::fixture(&format!("tiny-qwen2-split/{}", part(k)))).unwrap()
    };
    let hub = FakeHub::start();
    hub.add(repo, &part(1), bytes(1), true);
    hub.add(repo, &part(2), bytes(2), true);
    let home = tempfile::tempdir().unwrap();
    let first = format!("hf:{repo}/{}", part(1));
    let o = fetch(&hub, home.path(), &first);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        listed.contains(&part(1)) && listed.contains(&part(2)),
        "{listed}"
    );
    let article = tiny_article(home.path());
    let run = cmd(&hub.url, home.path())
        .arg("translate")
        .arg(&article)
        .args(["--model", &first, "--max-new-tokens", "4", "--offline"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));

    let hub = FakeHub::start();
    hub.add(repo, &part(1), bytes(1), true);
    let home = tempfile::tempdir().unwrap();
    let o = fetch(&hub, home.path(), &first);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&part(2)), "{}", stderr(&o));
    let snapshot = repo_dir(home.path(), repo).join("snapshots").join(COMMIT);
    assert!(!snapshot.join(part(2)).exists());
}

/// A card's file that is not the architecture the card names is refused at load, naming both.
#[test]
fn a_file_of_another_architecture_than_its_card_says_is_refused() {
    let hub = FakeHub::start();
    let home = tempfile::tempdir().unwrap();
    let impostor = home.path().join("impostor.gguf");
    std::fs::copy(common::fixture("tiny-qwen2/tiny-qwen2.gguf"), &impostor).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&impostor)
        .unwrap()
        .set_len(253_115_424)
        .unwrap();
    hub.add_file(
        "unsloth/gemma-3-270m-it-GGUF",
        "gemma-3-270m-it-Q4_K_M.gguf",
        impostor,
    );
    let article = tiny_article(home.path());
    let o = cmd(&hub.url, home.path())
        .arg("translate")
        .arg(&article)
        .args(["--model", "gemma-3-270m-it", "--max-new-tokens", "4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("is a qwen2 model, but the card gemma-3-270m-it says gemma3"),
        "{err}"
    );
}
