//! Translation with a chat model: each block of the article, chunk by chunk, through the
//! model's translation prompt; a looping or untranslated answer gets one seeded retry.

use super::{add_flag, join, Flag, Piece, TranslatedBlock};
use crate::chat::generate::{Engine, Generated, StopReason};
use crate::chat::prompt::{self, Purpose, Style};
use crate::error::{Error, Result};
use crate::text::chunk::{self, Unit};
use crate::text::BlockKind;

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
        let g = translate_piece(engine, style, index, piece)?;
        if let Some(flag) = failure(&g, piece) {
            add_flag(&mut flags, flag);
        }
        if g.stop == StopReason::Budget {
            add_flag(&mut flags, Flag::BudgetExhausted);
        }
        let text = clean(&g.text);
        if text.is_empty() {
            add_flag(&mut flags, Flag::EmptyOutput);
        }
        pieces.push(Piece {
            source: piece.to_string(),
            text,
        });
    }
    let text = join(&pieces);
    Ok(TranslatedBlock {
        kind,
        findings: crate::check::check_block(source, &text),
        source: source.to_string(),
        text,
        pieces,
        flags,
    })
}

/// One piece through the model. An answer that loops, is still Turkish, or fails the
/// fidelity checks (a number or name lost, a sentence dropped) gets one more try: sampled
/// (seeded, so runs stay reproducible) and barred from starting as the failed answer did. The
/// retry is kept when it is better: no failure, and fewer findings.
fn translate_piece(
    engine: &mut Engine,
    style: &Style,
    index: usize,
    piece: &str,
) -> Result<Generated> {
    let segments = prompt::build(style, Purpose::Translate, piece, 0, "")?;
    let ids = engine.encode(&segments)?;
    let source_tokens = engine.count_tokens(piece);
    engine.start(&ids).map_err(|e| Error::Paragraph {
        paragraph: index + 1,
        message: e.to_string(),
    })?;
    let max_new = answer_budget(source_tokens);
    let before = engine.mark();
    let g = engine.generate(max_new, style.few_shot())?;
    let cost = |g: &Generated| {
        (
            failure(g, piece).is_some(),
            crate::check::check_block(piece, &clean(&g.text)).len(),
        )
    };
    let first = cost(&g);
    if first == (false, 0) || !engine.rewind(&before)? {
        return Ok(g);
    }
    let mut sampler = engine.retry_sampler(index as u64 + 1);
    let banned: Vec<u32> = g.first_token.into_iter().collect();
    let again = engine.generate_with(max_new, style.few_shot(), Some(&mut sampler), &banned)?;
    Ok(if cost(&again) < first { again } else { g })
}

/// Why an answer is no good: `repetition_cut` (the model looped and was cut) or
/// `untranslated` (it copied the Turkish back, or answered in Turkish); `None` when it looks
/// like a translation.
pub(super) fn failure(g: &Generated, source: &str) -> Option<Flag> {
    if g.stop == StopReason::Repetition {
        return Some(Flag::RepetitionCut);
    }
    untranslated(source, &g.text).then_some(Flag::Untranslated)
}

/// Whether `output` is still Turkish, in whole or in part: the fidelity check's
/// [`crate::check::untranslated`]. Names alone do not count: "Putin in Pekin" or
/// "Kılıçdaroğlu said" are English.
pub fn untranslated(source: &str, output: &str) -> bool {
    !crate::check::untranslated::turkish_sentences(source, output).is_empty()
}

/// Drops fences a chat model may echo around its answer.
pub(super) fn clean(text: &str) -> String {
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
    fn turkish_answers_are_caught_but_names_are_not() {
        let src = "Rusya Devlet Başkanı Vladimir Putin, Çin'in başkenti Pekin'de konuştu.";
        assert!(untranslated(
            src,
            "Rusya Devlet Başkanı Vladimir Putin, Çin'in başkenti Pekin'de"
        ));
        // Turkish, but not the source's words.
        assert!(untranslated(
            src,
            "Üyelik anlaşmaya varan delegelerin pozisyonlarını korudu."
        ));
        assert!(!untranslated(
            src,
            "Russian President Vladimir Putin spoke in Beijing."
        ));
        assert!(!untranslated("Putin Pekin'de", "Putin in Pekin"));
        let src = "Kılıçdaroğlu ve Erdoğan görüştü.";
        assert!(!untranslated(src, "Kılıçdaroğlu and Erdoğan met."));
    }

    #[test]
    fn echoed_fences_are_dropped() {
        assert_eq!(clean("<article>\nHello.\n</article>"), "Hello.");
        assert_eq!(clean(" Hello. "), "Hello.");
    }
}
