//! Translation: each block of the article through a model, piece by piece, and the pieces
//! joined back into one English block. Two translators, one result type:
//! [`marian`] (OPUS-MT, sentence by sentence, batched) and [`chat`] (a GGUF chat model,
//! paragraph by paragraph, or sentence by sentence with few-shot prompts).

pub mod chat;
pub mod marian;
pub mod remote;

use crate::check::Finding;
use crate::text::BlockKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A translated block of the article, with what happened on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TranslatedBlock {
    pub kind: BlockKind,
    pub source: String,
    pub text: String,
    /// The chunks the block was translated in, source and translation side by side.
    pub pieces: Vec<Piece>,
    /// Problems met, such as `repetition_cut` or `budget_exhausted`; empty when all went well.
    /// Each flag at most once.
    pub flags: Vec<Flag>,
    /// What the fidelity checks found in the block as kept (after any retry); empty when the
    /// translation passes them.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

impl TranslatedBlock {
    /// Whether anything went wrong with this block: a flag or a finding.
    pub fn is_flagged(&self) -> bool {
        !self.flags.is_empty() || !self.findings.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Piece {
    pub source: String,
    pub text: String,
}

/// A problem met while translating or summarizing, written in JSON and checkpoints as its
/// snake_case name (`untranslated`, `only_2_of_5_bullets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Flag {
    /// The model looped and was cut.
    RepetitionCut,
    /// The answer is still Turkish (copied back, or answered in Turkish).
    Untranslated,
    /// The answer ran out of its token budget before it ended.
    BudgetExhausted,
    /// The answer was empty.
    EmptyOutput,
    /// The summary has fewer bullets than asked.
    ShortSummary { got: usize, asked: usize },
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::RepetitionCut => f.write_str("repetition_cut"),
            Flag::Untranslated => f.write_str("untranslated"),
            Flag::BudgetExhausted => f.write_str("budget_exhausted"),
            Flag::EmptyOutput => f.write_str("empty_output"),
            Flag::ShortSummary { got, asked } => write!(f, "only_{got}_of_{asked}_bullets"),
        }
    }
}

impl Flag {
    /// What the flag means, for a person reading the Review section.
    pub fn describe(&self) -> String {
        match self {
            Flag::RepetitionCut => "the model looped and its answer was cut".into(),
            Flag::Untranslated => "the model's answer was still Turkish".into(),
            Flag::BudgetExhausted => {
                "the answer ran out of its token budget before it ended".into()
            }
            Flag::EmptyOutput => "the model's answer was empty".into(),
            Flag::ShortSummary { got, asked } => {
                format!("the summary has {got} of the {asked} bullets asked for")
            }
        }
    }
}

impl From<Flag> for String {
    fn from(flag: Flag) -> String {
        flag.to_string()
    }
}

impl TryFrom<String> for Flag {
    type Error = String;

    fn try_from(s: String) -> Result<Flag, String> {
        Ok(match s.as_str() {
            "repetition_cut" => Flag::RepetitionCut,
            "untranslated" => Flag::Untranslated,
            "budget_exhausted" => Flag::BudgetExhausted,
            "empty_output" => Flag::EmptyOutput,
            other => {
                let short = other
                    .strip_prefix("only_")
                    .and_then(|r| r.strip_suffix("_bullets"))
                    .and_then(|r| r.split_once("_of_"))
                    .and_then(|(g, a)| Some((g.parse().ok()?, a.parse().ok()?)));
                match short {
                    Some((got, asked)) => Flag::ShortSummary { got, asked },
                    None => return Err(format!("unknown flag `{other}`")),
                }
            }
        })
    }
}

/// Adds `flag` to `flags` unless it is there already.
pub fn add_flag(flags: &mut Vec<Flag>, flag: Flag) {
    if !flags.contains(&flag) {
        flags.push(flag);
    }
}

/// The translated pieces of a block as one text: the non-empty ones, joined by spaces.
pub fn join(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| p.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_keep_their_names_in_json() {
        let flags = vec![
            Flag::RepetitionCut,
            Flag::Untranslated,
            Flag::BudgetExhausted,
            Flag::EmptyOutput,
            Flag::ShortSummary { got: 2, asked: 5 },
        ];
        let json = serde_json::to_string(&flags).unwrap();
        assert_eq!(
            json,
            r#"["repetition_cut","untranslated","budget_exhausted","empty_output","only_2_of_5_bullets"]"#
        );
        let back: Vec<Flag> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, flags);
        assert!(serde_json::from_str::<Flag>(r#""no_such_flag""#).is_err());
    }

    /// translate.rs deduplicated with `Vec::dedup`, which drops only neighbours: a block whose
    /// first and third pieces were untranslated said so twice.
    #[test]
    fn a_flag_met_in_two_pieces_apart_is_listed_once() {
        let mut flags = Vec::new();
        for f in [
            Flag::Untranslated,
            Flag::BudgetExhausted,
            Flag::Untranslated,
        ] {
            add_flag(&mut flags, f);
        }
        assert_eq!(flags, [Flag::Untranslated, Flag::BudgetExhausted]);
    }

    #[test]
    fn pieces_join_without_the_empty_ones() {
        let p = |t: &str| Piece {
            source: String::new(),
            text: t.into(),
        };
        assert_eq!(join(&[p("One."), p(""), p("Two.")]), "One. Two.");
    }
}
