//! Summary: exactly N one-sentence English bullets. The answer is made to start with `- ` and
//! generated one line at a time, so the count is ours to keep, not the model's. An article too
//! long for the model's context is summarized from notes on its parts (map-reduce), never
//! truncated.

use crate::chunk::{self, Unit};
use crate::error::Result;
use crate::generate::{Engine, StopReason};
use crate::input::Article;
use crate::prompt::{self, Style, Task};

/// Tokens one bullet may take.
const BULLET_TOKENS: usize = 80;
/// Tokens for the notes on one part of a long article.
const NOTES_TOKENS: usize = 200;
/// Tokens reserved for the prompt template.
const TEMPLATE_TOKENS: usize = 320;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub bullets: Vec<String>,
    /// How many parts the article was summarized in (1: in one go).
    pub parts: usize,
    pub flags: Vec<String>,
}

pub fn summarize(
    engine: &mut Engine,
    style: &Style,
    article: &Article,
    bullets: usize,
    context: usize,
) -> Result<Summary> {
    let text = article
        .blocks
        .iter()
        .map(|b| b.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let room = context.saturating_sub(TEMPLATE_TOKENS + bullets * BULLET_TOKENS);
    if engine.count_tokens(&text) <= room {
        let mut s = bullet_list(engine, style, Task::Summarize, &text, bullets)?;
        s.parts = 1;
        return Ok(s);
    }
    // Map: notes on parts that fit; reduce: bullets from the notes (again in parts if needed).
    let mut material = text;
    let mut parts = 0;
    loop {
        let budget = context
            .saturating_sub(TEMPLATE_TOKENS + NOTES_TOKENS)
            .max(64);
        let ranges = chunk::chunk(&material, Unit::Paragraph, budget, &|s| {
            engine.count_tokens(s)
        });
        parts += ranges.len();
        let mut notes = Vec::with_capacity(ranges.len());
        for r in ranges {
            let part = material[r].trim();
            let segments = prompt::build(style, Task::SummarizeNotes, part, bullets, "- ")?;
            let ids = engine.encode(&segments)?;
            engine.start(&ids)?;
            let g = engine.generate(NOTES_TOKENS, false)?;
            notes.push(format!("- {}", g.text));
        }
        material = notes.join("\n");
        if engine.count_tokens(&material) <= room {
            break;
        }
    }
    let mut s = bullet_list(engine, style, Task::SummarizeReduce, &material, bullets)?;
    s.parts = parts;
    Ok(s)
}

fn bullet_list(
    engine: &mut Engine,
    style: &Style,
    task: Task,
    text: &str,
    n: usize,
) -> Result<Summary> {
    let prefix = if style.few_shot() { "\n- " } else { "- " };
    let segments = prompt::build(style, task, text, n, prefix)?;
    let ids = engine.encode(&segments)?;
    engine.start(&ids)?;
    let mut out: Vec<String> = Vec::with_capacity(n);
    let mut flags = Vec::new();
    // A model may end early or repeat itself; a few extra tries keep the count without looping.
    for _attempt in 0..n * 3 {
        if out.len() == n {
            break;
        }
        let g = engine.generate(BULLET_TOKENS, true)?;
        let bullet = one_sentence(&g.text);
        let fresh = !bullet.is_empty() && !out.iter().any(|b| b.eq_ignore_ascii_case(&bullet));
        if fresh {
            out.push(bullet);
        }
        if out.len() == n {
            break;
        }
        let next = match g.stop {
            StopReason::LineEnd => "- ",
            _ => "\n- ",
        };
        let ids = engine.encode(&[prompt::Segment::Template(next.to_string())])?;
        let bos = engine.model.info.bos;
        let ids: Vec<u32> = ids.into_iter().skip_while(|id| Some(*id) == bos).collect();
        engine.feed(&ids)?;
    }
    if out.len() < n {
        flags.push(format!("only_{}_of_{}_bullets", out.len(), n));
    }
    Ok(Summary {
        bullets: out,
        parts: 1,
        flags,
    })
}

/// The first sentence of a generated line, without list markers.
fn one_sentence(line: &str) -> String {
    let line = line
        .trim()
        .trim_start_matches(|c: char| matches!(c, '-' | '*' | '•') || c.is_whitespace());
    let line = match line.find(". ") {
        Some(i) if line[..i].chars().all(|c| c.is_ascii_digit()) => &line[i + 2..],
        _ => line,
    };
    let first = chunk::sentences(line, false)
        .into_iter()
        .next()
        .map(|r| line[r].trim().to_string())
        .unwrap_or_default();
    first
}

#[cfg(test)]
mod tests {
    use super::one_sentence;

    #[test]
    fn bullets_are_one_sentence_without_markers() {
        assert_eq!(
            one_sentence("- Putin met Kim. They talked."),
            "Putin met Kim."
        );
        assert_eq!(
            one_sentence("2. Putin met Kim in Beijing."),
            "Putin met Kim in Beijing."
        );
        assert_eq!(one_sentence("   "), "");
    }
}
