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
    /// A decoder-only chat or base model in one GGUF file (Gemma 3, Qwen2.5).
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
    /// few-shot completion; else a template file such as `"chat/gemma.jinja"`.
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
                let ggufs = self
                    .files
                    .iter()
                    .filter(|f| f.path.ends_with(".gguf"))
                    .count();
                if ggufs != 1 {
                    return Err(format!(
                        "a gguf-chat card needs exactly one .gguf file, not {ggufs}"
                    ));
                }
                if self.prompts.is_none() {
                    return Err("a gguf-chat card needs a [prompts] table".into());
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

    /// The weights file of a `gguf-chat` card.
    pub fn gguf_file(&self) -> Option<&CardFile> {
        self.files.iter().find(|f| f.path.ends_with(".gguf"))
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
        assert!(embedded::EMBEDDED.len() >= 9, "cards missing from models/");
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

    #[test]
    fn every_kind_has_a_backend_or_says_it_has_none() {
        for card in all() {
            match card.kind {
                Kind::GgufChat | Kind::Marian => assert!(card.kind.has_backend()),
                Kind::T5 => {
                    assert!(!card.kind.has_backend());
                    let err = crate::hub::spec::check_backend(&card)
                        .unwrap_err()
                        .to_string();
                    assert!(err.contains("not built yet"), "{err}");
                    assert!(err.contains(&card.name), "{err}");
                }
            }
        }
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
            "gemma-3-270m",
            "gemma-3-1b-it",
            "gemma-3-4b-it",
            "opus-mt-tc-big-tr-en",
            "opus-mt-tr-en",
            "madlad400-3b-mt",
        ] {
            assert!(find(name).is_some(), "no card {name}");
        }
        assert!(find("gemma-3-4b-it").unwrap().gated);
        let test_model = find("gemma-3-270m").unwrap();
        assert_eq!(
            test_model.gguf_file().unwrap().sha256.as_deref(),
            Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
        );
    }

    #[test]
    fn bad_cards_are_refused_with_the_reason() {
        let base = find("gemma-3-270m").unwrap();
        let (_, text) = embedded::EMBEDDED
            .iter()
            .find(|(f, _)| *f == "gemma-3-270m.toml")
            .unwrap();
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
        ];
        for (bad, why) in cases {
            let err = Card::parse("bad.toml", &bad).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
            assert!(err.contains("bad.toml"), "{err}");
        }
    }
}
