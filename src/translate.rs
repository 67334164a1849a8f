//! Translation: each block of the article, chunk by chunk, through the model; the translated
//! chunks of a block are rejoined into one block of the output.

use crate::chunk::{self, Unit};
use crate::error::{Error, Result};
use crate::generate::{Engine, StopReason};
use crate::input::BlockKind;
use crate::prompt::{self, Style, Task};
use serde::Serialize;

/// A translated block of the article, with what happened on the way.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TranslatedBlock {
    pub kind: BlockKind,
    pub source: String,
    pub text: String,
    /// The chunks the block was translated in, source and translation side by side.
    pub pieces: Vec<Piece>,
    /// Problems met, such as `repetition_cut` or `budget_exhausted`; empty when all went well.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Piece {
    pub source: String,
    pub text: String,
}

/// Most source tokens given to the model at once. Smaller chunks keep small models on track;
/// larger ones give context. Paragraphs under this go whole.
pub const MAX_CHUNK_TOKENS: usize = 384;
/// Tokens reserved for the prompt template around a chunk.
const TEMPLATE_TOKENS: usize = 320;

/// The source-token budget of one chunk for a model with `context` tokens: the chunk, its
/// template and an answer up to twice its length must fit.
pub fn chunk_budget(context: usize) -> usize {
    (context.saturating_sub(TEMPLATE_TOKENS) / 3).clamp(16, MAX_CHUNK_TOKENS)
}

/// Generation budget for a chunk of `source_tokens`: English rarely needs more tokens than
/// Turkish, so twice the source plus a margin stops a looping model early.
pub fn answer_budget(source_tokens: usize) -> usize {
    source_tokens * 2 + 16
}

pub fn translate_block(
    engine: &mut Engine,
    style: &Style,
    index: usize,
    kind: BlockKind,
    source: &str,
    context: usize,
) -> Result<TranslatedBlock> {
    let unit = if style.few_shot() {
        Unit::Sentence
    } else {
        Unit::Paragraph
    };
    let budget = chunk_budget(context);
    let ranges = chunk::chunk(source, unit, budget, &|s| engine.count_tokens(s));
    let mut pieces = Vec::with_capacity(ranges.len());
    let mut flags = Vec::new();
    for range in &ranges {
        let piece = source[range.clone()].trim();
        if piece.is_empty() {
            continue;
        }
        let segments = prompt::build(style, Task::Translate, piece, 0, "")?;
        let ids = engine.encode(&segments)?;
        let source_tokens = engine.count_tokens(piece);
        engine.start(&ids).map_err(|e| Error::Paragraph {
            paragraph: index + 1,
            message: e.to_string(),
        })?;
        let g = engine.generate(answer_budget(source_tokens), style.few_shot())?;
        match g.stop {
            StopReason::Repetition => flags.push("repetition_cut".to_string()),
            StopReason::Budget => flags.push("budget_exhausted".to_string()),
            _ => {}
        }
        let text = clean(&g.text);
        if text.is_empty() {
            flags.push("empty_output".to_string());
        }
        pieces.push(Piece {
            source: piece.to_string(),
            text,
        });
    }
    flags.dedup();
    let text = pieces
        .iter()
        .map(|p| p.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(TranslatedBlock {
        kind,
        source: source.to_string(),
        text,
        pieces,
        flags,
    })
}

/// Drops fences a chat model may echo around its answer.
fn clean(text: &str) -> String {
    let mut t = text.trim();
    for (open, close) in [("<article>", "</article>"), ("```", "```")] {
        if let Some(rest) = t.strip_prefix(open) {
            t = rest.trim_start();
            if let Some(rest) = t.strip_suffix(close) {
                t = rest.trim_end();
            }
        }
    }
    t.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_scale_with_context_and_stay_bounded() {
        assert_eq!(chunk_budget(32768), MAX_CHUNK_TOKENS);
        assert!(chunk_budget(1024) < MAX_CHUNK_TOKENS);
        assert!(chunk_budget(1024) * 3 + TEMPLATE_TOKENS <= 1024);
        assert_eq!(chunk_budget(10), 16);
    }

    #[test]
    fn echoed_fences_are_dropped() {
        assert_eq!(clean("<article>\nHello.\n</article>"), "Hello.");
        assert_eq!(clean(" Hello. "), "Hello.");
    }
}
