//! Model cards: one TOML file per model under `models/`, embedded at build time. A card says
//! where a model lives on the hub (repo, revision, files and their checksums), what it is (its
//! `kind`, which picks the backend), what it is for (tasks, languages), how it is prompted, and
//! its licence and size. Cards are data: a model of a known kind is added by adding a file.

use super::client::is_hex;
use crate::error::{Error, Result};
use serde::Deserialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/cards.rs"));
}

/// What a card's weights are, and so which backend runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A decoder-only chat or base model in one GGUF file or split in parts (Gemma 3, Qwen2.5).
    GgufChat,
    /// A Marian encoder-decoder translation model (OPUS-MT).
    Marian,
    /// A T5 encoder-decoder model (MADLAD-400).
    T5,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GgufChat => "gguf-chat",
            Kind::Marian => "marian",
            Kind::T5 => "t5",
        }
    }

    /// Whether this build has a backend for the kind. A card of a kind without one is listed,
    /// and choosing it is a clear error.
    pub fn has_backend(self) -> bool {
        matches!(self, Kind::GgufChat | Kind::Marian)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Translate,
    Summarize,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Translate => "translate",
            Task::Summarize => "summarize",
        }
    }
}

/// One file of a model repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardFile {
    /// Path inside the repository.
    pub path: String,
    /// Expected sha256 (hex), where known. Without it, LFS files are checked against the hub's
    /// ETag, which is their sha256.
    pub sha256: Option<String>,
    /// Exact size in bytes, where known.
    pub size: Option<u64>,
    /// A file the model runs without (`generation_config.json`, which older repos lack): left
    /// out when the hub has no such file, or when offline and it is not in the cache.
    #[serde(default)]
    pub optional: bool,
}

/// Where the tokenizer comes from: `"gguf"` (inside the weights file) or a list of files.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenizerSource {
    Embedded(String),
    Files(Vec<String>),
}

/// Prompt files of a `gguf-chat` card, by name under `prompts/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// `"gguf"`: the chat template stored in the GGUF; `"none"`: a base model, prompted with
    /// few-shot completion; else a template file such as `"chat/gemma-3-it.jinja"`.
    pub chat_template: String,
    pub translate: String,
    pub summarize: String,
    pub summarize_notes: String,
    pub summarize_reduce: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub name: String,
    pub description: String,
    pub kind: Kind,
    /// The network, as the weights spell it (`general.architecture` of a GGUF): required for
    /// `gguf-chat` cards, so that a card whose architecture this build cannot run is refused
    /// before anything is downloaded.
    pub architecture: Option<String>,
    /// Hub repository, `owner/name`.
    pub repo: String,
    /// A commit sha (pinned), or a branch such as `main`.
    pub revision: String,
    pub tasks: Vec<Task>,
    pub languages: Vec<String>,
    pub license: String,
    pub license_url: String,
    /// Whether the hub asks users to accept a licence (and send a token) before downloading.
    pub gated: bool,
    /// Approximate download size, in MB, for `models list` before anything is fetched.
    pub download_mb: u64,
    pub tokenizer: TokenizerSource,
    /// Tasks this card is the default model for.
    #[serde(default)]
    pub default_for: Vec<Task>,
    pub files: Vec<CardFile>,
    pub prompts: Option<Prompts>,
}

impl Card {
    /// Parses and checks one card; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Card> {
        let invalid = |message: String| Error::Card {
            origin: origin.to_string(),
            message,
        };
        let card: Card = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        card.check().map_err(invalid)?;
        Ok(card)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.contains(char::is_whitespace) || n.contains('/') {
            return Err(format!("name {n:?} must be one word without `/`"));
        }
        if self.repo.split('/').count() != 2 || self.repo.split('/').any(str::is_empty) {
            return Err(format!("repo {:?} must be `owner/name`", self.repo));
        }
        if self.revision.is_empty() {
            return Err("revision is empty".into());
        }
        if self.files.is_empty() {
            return Err("lists no files".into());
        }
        for f in &self.files {
            if let Some(sha) = &f.sha256 {
                if !is_hex(sha, 64) {
                    return Err(format!(
                        "{}: sha256 must be 64 lowercase hex digits",
                        f.path
                    ));
                }
            }
        }
        if self.tasks.is_empty() {
            return Err("lists no tasks".into());
        }
        if let Some(t) = self.default_for.iter().find(|t| !self.tasks.contains(t)) {
            return Err(format!(
                "default for {} but does not list it in tasks",
                t.as_str()
            ));
        }
        match &self.tokenizer {
            TokenizerSource::Embedded(s) if s == "gguf" => {
                if self.kind != Kind::GgufChat {
                    return Err("tokenizer = \"gguf\" needs kind = \"gguf-chat\"".into());
                }
            }
            TokenizerSource::Embedded(s) => {
                return Err(format!("tokenizer {s:?}: use \"gguf\" or a list of files"))
            }
            TokenizerSource::Files(files) => {
                if let Some(f) = files
                    .iter()
                    .find(|f| !self.files.iter().any(|c| &c.path == *f))
                {
                    return Err(format!("tokenizer file {f} is not among the card's files"));
                }
            }
        }
        match self.kind {
            Kind::GgufChat => {
                let ggufs: Vec<&str> = self
                    .files
                    .iter()
                    .filter(|f| f.path.ends_with(".gguf"))
                    .map(|f| f.path.as_str())
                    .collect();
                let split = ggufs
                    .first()
                    .and_then(|f| crate::model::gguf::split_parts(f))
                    .is_some_and(|parts| parts == ggufs);
                if ggufs.len() != 1 && !split {
                    return Err(format!(
                        "a gguf-chat card needs one .gguf file, or every part of a split one in order (NAME-00001-of-0000N.gguf ...), not {ggufs:?}"
                    ));
                }
                if self.prompts.is_none() {
                    return Err("a gguf-chat card needs a [prompts] table".into());
                }
                if self.architecture.is_none() {
                    return Err("a gguf-chat card needs its architecture (general.architecture of the GGUF, e.g. \"qwen2\")".into());
                }
            }
            Kind::Marian | Kind::T5 => {
                if self.prompts.is_some() {
                    return Err(format!("a {} card takes no [prompts]", self.kind.as_str()));
                }
            }
        }
        Ok(())
    }

    /// Whether the revision is a commit sha rather than a branch or tag.
    pub fn is_pinned(&self) -> bool {
        is_hex(&self.revision, 40)
    }

    /// The weights file of a `gguf-chat` card (the first part of a split model).
    pub fn gguf_file(&self) -> Option<&CardFile> {
        self.files.iter().find(|f| f.path.ends_with(".gguf"))
    }

    /// The download size in bytes, when the card records the size of every file.
    pub fn exact_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The hub page where a gated model's licence is accepted.
    pub fn page(&self, endpoint: &str) -> String {
        format!("{}/{}", endpoint.trim_end_matches('/'), self.repo)
    }
}

/// All cards built into this binary, sorted by name.
pub fn all() -> Vec<Card> {
    let mut cards: Vec<Card> = embedded::EMBEDDED
        .iter()
        .map(|(file, text)| {
            Card::parse(&format!("models/{file}"), text).unwrap_or_else(|e| {
                panic!("built-in card is invalid (the card tests catch this): {e}")
            })
        })
        .collect();
    cards.sort_by(|a, b| a.name.cmp(&b.name));
    cards
}

/// The card called `name`.
pub fn find(name: &str) -> Option<Card> {
    all().into_iter().find(|c| c.name == name)
}

/// The default card for `task`.
pub fn default_for(task: Task) -> Card {
    all()
        .into_iter()
        .find(|c| c.default_for.contains(&task))
        .expect("the card tests check that every task has a default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_card_parses_and_is_named_after_its_file() {
        assert!(embedded::EMBEDDED.len() >= 8, "cards missing from models/");
        for (file, text) in embedded::EMBEDDED {
            let card = Card::parse(file, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{}.toml", card.name), *file);
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let (file, text) = embedded::EMBEDDED[0];
        let with_typo = format!("revison = \"abc\"\n{text}");
        let err = Card::parse(file, &with_typo).unwrap_err().to_string();
        assert!(err.contains("revison"), "{err}");
        let in_files = text.replacen("[[files]]\n", "[[files]]\nsha265 = \"x\"\n", 1);
        assert!(Card::parse(file, &in_files).is_err());
    }

    /// No card fails after the user chose it: every card's kind has a backend, and every
    /// GGUF card names an architecture this build runs (the loader checks the file against it).
    #[test]
    fn every_card_resolves_to_a_backend_this_build_has() {
        for card in all() {
            crate::hub::spec::check_backend(&card).unwrap_or_else(|e| panic!("{e}"));
            assert!(card.kind.has_backend(), "{}", card.name);
            match card.kind {
                Kind::GgufChat => {
                    let arch = card.architecture.as_deref().unwrap();
                    assert!(
                        crate::model::SUPPORTED_ARCHITECTURES.contains(&arch),
                        "{}: {arch}",
                        card.name
                    );
                    assert!(card.gguf_file().is_some() && card.prompts.is_some());
                }
                Kind::Marian => {
                    assert!(matches!(
                        card.architecture.as_deref(),
                        None | Some("marian")
                    ));
                    assert!(card.files.iter().any(|f| f.path == "config.json"));
                }
                Kind::T5 => panic!(
                    "{}: no T5 backend; models/unsupported/ is its place",
                    card.name
                ),
            }
        }
    }

    #[test]
    fn cards_without_a_backend_are_refused_before_any_download() {
        let madlad = Card::parse(
            "models/unsupported/madlad400-3b-mt.toml",
            include_str!("../../models/unsupported/madlad400-3b-mt.toml"),
        )
        .unwrap();
        assert!(
            find(&madlad.name).is_none(),
            "an unsupported card is built in"
        );
        let err = crate::hub::spec::check_backend(&madlad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t5 backend is not built yet"), "{err}");
        let mut llama = find("qwen2.5-1.5b-instruct").unwrap();
        llama.architecture = Some("llama".into());
        let err = crate::hub::spec::check_backend(&llama)
            .unwrap_err()
            .to_string();
        assert!(err.contains("architecture llama has no backend"), "{err}");
    }

    #[test]
    fn every_prompt_file_exists_and_renders() {
        for card in all() {
            let Some(p) = &card.prompts else { continue };
            for name in [
                &p.translate,
                &p.summarize,
                &p.summarize_notes,
                &p.summarize_reduce,
            ] {
                assert!(
                    crate::chat::prompt::TEMPLATES
                        .iter()
                        .any(|(n, _)| n == name),
                    "{}: no prompts/{name}",
                    card.name
                );
            }
            let style = crate::chat::prompt::Style::for_card(p, None, "<bos>").unwrap();
            for task in [
                crate::chat::prompt::Purpose::Translate,
                crate::chat::prompt::Purpose::Summarize,
                crate::chat::prompt::Purpose::SummarizeNotes,
                crate::chat::prompt::Purpose::SummarizeReduce,
            ] {
                let s = crate::chat::prompt::build(&style, task, "Merhaba.", 3, "")
                    .unwrap_or_else(|e| panic!("{}: {e}", card.name));
                assert!(crate::chat::prompt::to_string(&s).contains("Merhaba."));
            }
        }
    }

    #[test]
    fn each_task_has_exactly_one_default() {
        for task in [Task::Translate, Task::Summarize] {
            let n = all()
                .iter()
                .filter(|c| c.default_for.contains(&task))
                .count();
            assert_eq!(n, 1, "{} defaults for {}", n, task.as_str());
        }
        assert_eq!(default_for(Task::Summarize).name, "qwen2.5-1.5b-instruct");
        assert_eq!(default_for(Task::Translate).name, "opus-mt-tc-big-tr-en");
    }

    #[test]
    fn the_cards_the_project_promises_are_there() {
        for name in [
            "qwen2.5-1.5b-instruct",
            "qwen2.5-3b-instruct",
            "qwen2.5-7b-instruct",
            "gemma-3-270m-it",
            "gemma-3-1b-it",
            "gemma-3-4b-it",
            "opus-mt-tc-big-tr-en",
            "opus-mt-tr-en",
        ] {
            assert!(find(name).is_some(), "no card {name}");
        }
        assert!(find("gemma-3-4b-it").unwrap().gated);
        assert!(find("gemma-3-1b-it").unwrap().gated);
        assert!(!find("gemma-3-270m-it").unwrap().gated);
    }

    /// Sizes and revisions as the hub's public records give them (issue 17).
    #[test]
    fn cards_carry_the_recorded_sizes_and_revisions() {
        let file = |card: &str, path: &str| {
            let c = find(card).unwrap();
            let f = c.files.iter().find(|f| f.path == path).cloned();
            (c, f.unwrap_or_else(|| panic!("{card}: no file {path}")))
        };
        let (c, f) = file("qwen2.5-1.5b-instruct", "qwen2.5-1.5b-instruct-q4_k_m.gguf");
        assert_eq!(f.size, Some(1_117_320_736));
        assert_eq!(c.revision, "91cad51170dc346986eccefdc2dd33a9da36ead9");
        assert!(c.is_pinned());
        let (c, f) = file("gemma-3-1b-it", "gemma-3-1b-it-q4_0.gguf");
        assert_eq!(f.size, Some(1_003_541_152));
        assert_eq!(c.revision, "d1be121d36172a4b0b964657e2ee859d61138593");
        let (c, f) = file("gemma-3-270m-it", "gemma-3-270m-it-Q4_K_M.gguf");
        assert_eq!(
            (c.repo.as_str(), f.size),
            ("unsloth/gemma-3-270m-it-GGUF", Some(253_115_424))
        );
        let c = find("qwen2.5-7b-instruct").unwrap();
        assert_eq!(c.repo, "Qwen/Qwen2.5-7B-Instruct-GGUF");
        assert_eq!(c.exact_size(), Some(3_993_201_344 + 689_872_288));
        assert_eq!(
            c.gguf_file().unwrap().path,
            "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf"
        );
        // download_mb (shown before anything is fetched) agrees with an exact size.
        for c in all() {
            if let Some(bytes) = c.exact_size() {
                let mb = (bytes as f64 / 1e6).round() as u64;
                assert!(
                    c.download_mb.abs_diff(mb) <= 1,
                    "{}: {} MB vs {mb}",
                    c.name,
                    c.download_mb
                );
            }
        }
    }

    #[test]
    fn bad_cards_are_refused_with_the_reason() {
        let base = find("qwen2.5-1.5b-instruct").unwrap();
        let (_, text) = embedded::EMBEDDED
            .iter()
            .find(|(f, _)| *f == "qwen2.5-1.5b-instruct.toml")
            .unwrap();
        let text = &text.replace(
            "size = 1117320736",
            "size = 1117320736\nsha256 = \"a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818\"",
        );
        let cases = [
            (
                text.replace("kind = \"gguf-chat\"", "kind = \"onnx\""),
                "onnx",
            ),
            (text.replace(&base.repo, "no-owner"), "owner/name"),
            (text.replace("a5fd3b62", "A5FD3B62"), "sha256"),
            (
                text.replace("tasks = [\"translate\", \"summarize\"]", "tasks = []"),
                "no tasks",
            ),
            (
                text.replace("architecture = \"qwen2\"\n", ""),
                "needs its architecture",
            ),
            (
                text.replace("[prompts]", "[[files]]\npath = \"other.gguf\"\n\n[prompts]"),
                "one .gguf file, or every part",
            ),
        ];
        for (bad, why) in cases {
            let err = Card::parse("bad.toml", &bad).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
            assert!(err.contains("bad.toml"), "{err}");
        }
    }
}
