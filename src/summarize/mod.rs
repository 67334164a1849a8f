//! Summary: exactly N one-sentence English bullets. The answer is made to start with `- ` and
//! generated one line at a time, so the count is ours to keep, not the model's. An article too
//! long for the model's context is summarized from notes on its parts (map-reduce), never
//! truncated. Each bullet cites the paragraphs it comes from ([`cite`]); a bullet that is not
//! English, or has a number or name that its paragraphs lack, is generated once more, and
//! kept with its findings if it still fails.

pub mod cite;
pub mod remote;

use crate::chat::generate::{Engine, Generated, Mark, StopReason};
use crate::chat::prompt::{self, Purpose, Style};
use crate::check::Finding;
use crate::error::Result;
use crate::text::chunk::{self, Unit};
use crate::translate::Flag;

/// Tokens one bullet may take.
const BULLET_TOKENS: usize = 80;
/// Tokens for the notes on one part of a long article.
const NOTES_TOKENS: usize = 200;
/// Tokens reserved for the prompt template.
const TEMPLATE_TOKENS: usize = 320;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub bullets: Vec<Bullet>,
    /// How many parts the article was summarized in (1: in one go).
    pub parts: usize,
    /// What the summary was made from: `source` (the Turkish) or `translation`.
    pub from: SummaryFrom,
    pub flags: Vec<Flag>,
    /// Whether text and Markdown output show the citations.
    #[serde(skip)]
    pub cite: bool,
}

/// One bullet point, with the paragraphs it comes from.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Bullet {
    pub text: String,
    /// 1-based paragraph (block) numbers of the article, best first.
    pub paragraphs: Vec<usize>,
    /// What does not hold up: Turkish left in it, a number or name none of its paragraphs
    /// has.
    pub findings: Vec<Finding>,
}

impl Bullet {
    /// The bullet as text and Markdown show it: `Text. [¶2, ¶5]`.
    pub fn render(&self, cite: bool) -> String {
        if !cite || self.paragraphs.is_empty() {
            return self.text.clone();
        }
        let marks: Vec<String> = self.paragraphs.iter().map(|p| format!("¶{p}")).collect();
        format!("{} [{}]", self.text, marks.join(", "))
    }
}

/// What a summary is made from when the run also translates (`--summary-from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryFrom {
    /// The Turkish article (what `summarize` alone always uses).
    #[default]
    Source,
    /// Its English translation.
    Translation,
}

/// What to summarize and how.
pub struct Request<'a> {
    /// The article's blocks, with their translations when the run translated.
    pub paragraphs: Vec<cite::Paragraph<'a>>,
    /// Summarize the translation (when every block has one) or the source.
    pub from: SummaryFrom,
    pub bullets: usize,
    /// The model's context, in tokens.
    pub context: usize,
    /// Show citations in text and Markdown.
    pub cite: bool,
}

pub fn summarize(engine: &mut Engine, style: &Style, req: &Request) -> Result<Summary> {
    let (text, from) = material(req);
    let english = from == SummaryFrom::Translation;
    let mut s = summarize_text(engine, style, req, &text, english)?;
    s.from = from;
    s.cite = req.cite;
    Ok(s)
}

/// What the summary is made from: the translation when asked for and every block has one,
/// else the source.
fn material(req: &Request) -> (String, SummaryFrom) {
    let english = req.from == SummaryFrom::Translation
        && req.paragraphs.iter().all(|p| p.translation.is_some());
    let text = req
        .paragraphs
        .iter()
        .map(|p| match english {
            true => p.translation.unwrap_or(p.source),
            false => p.source,
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    match english {
        true => (text, SummaryFrom::Translation),
        false => (text, SummaryFrom::Source),
    }
}

/// A one-part summary of `bullets`, flagged when it has fewer than the `n` asked for.
fn listed(bullets: Vec<Bullet>, n: usize) -> Summary {
    let mut flags = Vec::new();
    if bullets.len() < n {
        flags.push(Flag::ShortSummary {
            got: bullets.len(),
            asked: n,
        });
    }
    Summary {
        bullets,
        parts: 1,
        flags,
        ..Summary::default()
    }
}

/// The summary of `text` (English when `english`, else Turkish).
fn summarize_text(
    engine: &mut Engine,
    style: &Style,
    req: &Request,
    text: &str,
    english: bool,
) -> Result<Summary> {
    let (bullets, context) = (req.bullets, req.context);
    let language = if english { "English" } else { "Turkish" };
    let list = |task, text: &str, engine: &mut Engine| {
        let prompt = (task, text, language);
        bullet_list(engine, style, prompt, bullets, &req.paragraphs)
    };
    let room = context.saturating_sub(TEMPLATE_TOKENS + bullets * BULLET_TOKENS);
    if engine.count_tokens(text) <= room {
        let mut s = list(Purpose::Summarize, text, engine)?;
        s.parts = 1;
        return Ok(s);
    }
    // Map: notes on parts that fit the context, each part's notes given an equal share of
    // the room left for the reduce prompt, so that one reduce step can take them all.
    let budget = context
        .saturating_sub(TEMPLATE_TOKENS + NOTES_TOKENS)
        .max(64);
    let ranges = chunk::chunk(text, Unit::Paragraph, budget, &|s| engine.count_tokens(s));
    let parts = ranges.len();
    let parts_text: Vec<&str> = ranges.into_iter().map(|r| text[r].trim()).collect();
    let mut notes = take_notes(engine, style, &parts_text, language, room, bullets)?;
    // An article so long that even its notes overflow (where the share per part hits its
    // floor): notes on groups of notes, until they fit. Each round at least halves them.
    while notes.len() > 1 && engine.count_tokens(&notes.join("\n")) > room {
        let groups = group_notes(&notes, budget, &|s| engine.count_tokens(s));
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        notes = take_notes(engine, style, &groups, "English", room, bullets)?;
    }
    let material = notes.join("\n");
    let mut s = list(Purpose::SummarizeReduce, &material, engine)?;
    s.parts = parts;
    Ok(s)
}

/// Notes on each of `parts`, each given an equal share of `room`; stops between parts when
/// the user asks.
fn take_notes(
    engine: &mut Engine,
    style: &Style,
    parts: &[&str],
    language: &str,
    room: usize,
    bullets: usize,
) -> Result<Vec<String>> {
    let share = (room / parts.len().max(1)).clamp(24, NOTES_TOKENS);
    let mut notes = Vec::with_capacity(parts.len());
    for part in parts {
        crate::cancel::check()?;
        let segments = prompt::build_in(
            style,
            Purpose::SummarizeNotes,
            part,
            language,
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

/// The bullet list for a prompt of `(task, text, language)`. Greedy first. A bullet that
/// comes out empty or repeats an earlier one is generated again from the same point, with
/// seeded sampling and never starting the way a failed try started, a bounded number of
/// times; one whose grounding in `paragraphs` has findings gets one such try, and the one
/// with fewer findings is kept.
fn bullet_list(
    engine: &mut Engine,
    style: &Style,
    (task, text, language): (Purpose, &str, &str),
    n: usize,
    paragraphs: &[cite::Paragraph],
) -> Result<Summary> {
    let segments = prompt::build_in(style, task, text, language, n, list_start(style))?;
    let ids = engine.encode(&segments)?;
    engine.start(&ids)?;
    let mut out: Vec<Bullet> = Vec::with_capacity(n);
    let mut retries = 0u64;
    // First tokens of the failed tries at the current bullet.
    let mut banned: Vec<u32> = Vec::new();
    // A bullet that failed its grounding, with its stop reason, waiting for its one retry.
    let mut unfaithful: Option<(Bullet, StopReason)> = None;
    while out.len() < n && retries <= 4 * n as u64 {
        let cp = engine.mark();
        let g = if banned.is_empty() {
            engine.generate(BULLET_TOKENS, true)?
        } else {
            let mut sampler = engine.retry_sampler(retries);
            engine.generate_with(BULLET_TOKENS, true, Some(&mut sampler), &banned)?
        };
        let text = one_sentence(&g.text);
        let fresh = !text.is_empty() && !out.iter().any(|b| b.text.eq_ignore_ascii_case(&text));
        if fresh {
            let grounding = cite::ground(&text, paragraphs);
            let bullet = Bullet {
                text,
                paragraphs: grounding.paragraphs,
                findings: grounding.findings,
            };
            let Some((keep, stop)) = settle(engine, &cp, bullet, &g, &mut unfaithful)? else {
                // Unfaithful, first try: rewound for its one retry.
                banned.extend(g.first_token);
                retries += 1;
                continue;
            };
            out.push(keep);
            banned.clear();
            continue_list(engine, stop, out.len() < n)?;
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
    // Tries ran out while an unfaithful bullet waited for its retry: it is kept, with its
    // findings, rather than lost.
    if let Some((first, _)) = unfaithful {
        out.push(first);
    }
    Ok(listed(out, n))
}

/// Decides on a fresh bullet generated from `cp`: the bullet to keep and the stop to continue
/// the list from, or `None` when it fails its grounding on a first try and the sequence was
/// rewound to `cp` for its retry (it waits in `unfaithful`). A retry is compared with the
/// first try, and the one with fewer findings is kept.
fn settle(
    engine: &mut Engine,
    cp: &Mark,
    bullet: Bullet,
    g: &Generated,
    unfaithful: &mut Option<(Bullet, StopReason)>,
) -> Result<Option<(Bullet, StopReason)>> {
    Ok(match unfaithful.take() {
        Some((first, stop)) if first.findings.len() <= bullet.findings.len() => {
            if !engine.rewind(cp)? {
                Some((first, stop))
            } else {
                // Go on after the first try's text instead of the retry's; its line end is not
                // in the sequence, so the next bullet starts a new line.
                let ids = engine.encode_continuation(&first.text)?;
                engine.feed(&ids)?;
                Some((first, StopReason::Budget))
            }
        }
        Some(_) => Some((bullet, g.stop)),
        None if !bullet.findings.is_empty() && engine.rewind(cp)? => {
            *unfaithful = Some((bullet, g.stop));
            None
        }
        None => Some((bullet, g.stop)),
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

/// The rest of a numbered list line (`2. …`, `3) …`), or `None` when `line` is not one.
pub(crate) fn after_number(line: &str) -> Option<&str> {
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    let rest = line[digits..].strip_prefix(['.', ')'])?;
    (digits > 0 && rest.starts_with(char::is_whitespace)).then(|| rest.trim_start())
}

/// The first sentence of a generated line, without list markers.
fn one_sentence(line: &str) -> String {
    let line = line
        .trim()
        .trim_start_matches(|c: char| matches!(c, '-' | '*' | '•') || c.is_whitespace());
    let line = after_number(line).unwrap_or(line);
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
        // A small base model numbers its list, even backwards, after the marker it was given.
        assert_eq!(
            one_sentence("- 3)  Putin and Kim Jong Un were together."),
            "Putin and Kim Jong Un were together."
        );
        assert_eq!(one_sentence("12. Bir."), "Bir.");
        assert_eq!(one_sentence("2025 yılında."), "2025 yılında.");
        assert_eq!(one_sentence("3.5 percent."), "3.5 percent.");
    }
}
