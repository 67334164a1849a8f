//! Summary: exactly N one-sentence English bullets. The answer is made to start with `- ` and
//! generated one line at a time, so the count is ours to keep, not the model's. An article too
//! long for the model's context is summarized from notes on its parts (map-reduce), never
//! truncated.

use crate::chat::generate::{Engine, StopReason};
use crate::chat::prompt::{self, Purpose, Style};
use crate::error::Result;
use crate::text::chunk::{self, Unit};
use crate::text::Article;
use crate::translate::Flag;

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
    pub flags: Vec<Flag>,
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
        let mut s = bullet_list(engine, style, Purpose::Summarize, &text, bullets)?;
        s.parts = 1;
        return Ok(s);
    }
    // Map: notes on parts that fit the context, each part's notes given an equal share of
    // the room left for the reduce prompt, so that one reduce step can take them all.
    let budget = context
        .saturating_sub(TEMPLATE_TOKENS + NOTES_TOKENS)
        .max(64);
    let ranges = chunk::chunk(&text, Unit::Paragraph, budget, &|s| engine.count_tokens(s));
    let parts = ranges.len();
    let parts_text: Vec<&str> = ranges.into_iter().map(|r| text[r].trim()).collect();
    let mut notes = take_notes(engine, style, &parts_text, room, bullets)?;
    drop(text);
    // An article so long that even its notes overflow (where the share per part hits its
    // floor): notes on groups of notes, until they fit. Each round at least halves them.
    while notes.len() > 1 && engine.count_tokens(&notes.join("\n")) > room {
        let groups = group_notes(&notes, budget, &|s| engine.count_tokens(s));
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        notes = take_notes(engine, style, &groups, room, bullets)?;
    }
    let material = notes.join("\n");
    let mut s = bullet_list(engine, style, Purpose::SummarizeReduce, &material, bullets)?;
    s.parts = parts;
    Ok(s)
}

/// Notes on each of `parts`, each given an equal share of `room`; stops between parts when
/// the user asks.
fn take_notes(
    engine: &mut Engine,
    style: &Style,
    parts: &[&str],
    room: usize,
    bullets: usize,
) -> Result<Vec<String>> {
    let share = (room / parts.len().max(1)).clamp(24, NOTES_TOKENS);
    let mut notes = Vec::with_capacity(parts.len());
    for part in parts {
        crate::cancel::check()?;
        let segments = prompt::build(
            style,
            Purpose::SummarizeNotes,
            part,
            bullets,
            list_start(style),
        )?;
        let ids = engine.encode(&segments)?;
        engine.start(&ids)?;
        let g = engine.generate(share, false)?;
        notes.push(format!("- {}", g.text.trim()));
    }
    Ok(notes)
}

/// Packs consecutive notes into groups of at most `budget` tokens, at least two notes to a
/// group (so that every round of notes on notes shrinks them).
fn group_notes(notes: &[String], budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    let mut in_group = 0;
    let mut tokens = 0;
    for note in notes {
        let n = count(note) + 1;
        if in_group >= 2 && tokens + n > budget {
            in_group = 0;
            tokens = 0;
        }
        if in_group == 0 {
            groups.push(note.clone());
        } else {
            let g = groups.last_mut().expect("a group is open");
            g.push('\n');
            g.push_str(note);
        }
        in_group += 1;
        tokens += n;
    }
    groups
}

fn bullet_list(
    engine: &mut Engine,
    style: &Style,
    task: Purpose,
    text: &str,
    n: usize,
) -> Result<Summary> {
    let segments = prompt::build(style, task, text, n, list_start(style))?;
    let ids = engine.encode(&segments)?;
    engine.start(&ids)?;
    let mut out: Vec<String> = Vec::with_capacity(n);
    let mut flags = Vec::new();
    let mut retries = 0u64;
    // First tokens of the failed tries at the current bullet.
    let mut banned: Vec<u32> = Vec::new();
    // Greedy first. A bullet that comes out empty or repeats an earlier one is generated again
    // from the same point, with seeded sampling and never starting the way a failed try
    // started, a bounded number of times.
    while out.len() < n && retries <= 4 * n as u64 {
        let cp = engine.mark();
        let g = if banned.is_empty() {
            engine.generate(BULLET_TOKENS, true)?
        } else {
            let mut sampler = engine.retry_sampler(retries);
            engine.generate_with(BULLET_TOKENS, true, Some(&mut sampler), &banned)?
        };
        let bullet = one_sentence(&g.text);
        if !bullet.is_empty() && !out.iter().any(|b| b.eq_ignore_ascii_case(&bullet)) {
            out.push(bullet);
            banned.clear();
            continue_list(engine, g.stop, out.len() < n)?;
            continue;
        }
        retries += 1;
        if engine.rewind(&cp)? {
            banned.extend(g.first_token);
        } else {
            // The cache cannot go back: carry on to the next line instead.
            continue_list(engine, g.stop, true)?;
        }
    }
    if out.len() < n {
        flags.push(Flag::ShortSummary {
            got: out.len(),
            asked: n,
        });
    }
    Ok(Summary {
        bullets: out,
        parts: 1,
        flags,
    })
}

/// What the answer is made to start with: the first bullet's marker (on a new line after a
/// few-shot prompt's heading).
fn list_start(style: &Style) -> &'static str {
    if style.few_shot() {
        "\n- "
    } else {
        "- "
    }
}

/// Feeds the start of the next bullet after one that stopped for `stop`.
fn continue_list(engine: &mut Engine, stop: StopReason, more: bool) -> Result<()> {
    if !more {
        return Ok(());
    }
    let next = match stop {
        StopReason::LineEnd => "- ",
        _ => "\n- ",
    };
    let ids = engine.encode_continuation(next)?;
    engine.feed(&ids)
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
    use super::{group_notes, one_sentence};

    #[test]
    fn notes_are_grouped_within_budget_two_at_least_and_none_lost() {
        let notes: Vec<String> = (0..9)
            .map(|i| format!("- note {i} {}", "x ".repeat(i * 3)))
            .collect();
        let words = |s: &str| s.split_whitespace().count();
        let groups = group_notes(&notes, 12, &words);
        assert!(groups.len() < notes.len());
        assert!(
            groups.len() * 2 <= notes.len() + 1,
            "every group but the last has two notes or more"
        );
        assert_eq!(groups.join("\n"), notes.join("\n"));
        for g in &groups {
            assert!(
                words(g) + g.lines().count() <= 12 || g.lines().count() <= 2,
                "{g}"
            );
        }
    }

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
