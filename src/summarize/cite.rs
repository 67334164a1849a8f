//! Citations: which paragraphs of the article a summary bullet comes from, and whether the
//! bullet says only what they say.
//!
//! The model is not asked to cite (small models number paragraphs unreliably, and a citation
//! the model wrote is one more thing it can invent). Instead each bullet is matched against the
//! article's paragraphs afterwards: its numbers and names must be found in a paragraph, in the
//! Turkish source (values compared across Turkish and English forms, names through folding and
//! exonyms) or in the English translation when there is one; its other words count for the
//! paragraphs whose translation shares them. The cited paragraphs are the fewest that hold
//! everything the bullet's numbers and names need, best first (at most [`MAX_CITES`]). A number
//! or name found in none of them is a finding: the bullet says something the article does not.
//! Because matching reads the article itself, citations survive a map-reduce summary.

use crate::check::{names, numbers, untranslated, Finding, Kind, Lang, Span};
use std::collections::HashSet;

/// Most paragraphs one bullet cites.
pub const MAX_CITES: usize = 3;

/// A paragraph of the article as citations see it.
#[derive(Debug, Clone, Copy)]
pub struct Paragraph<'a> {
    /// The Turkish text.
    pub source: &'a str,
    /// Its English translation, when the run translated.
    pub translation: Option<&'a str>,
}

/// What a bullet cites and what does not hold up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    /// 1-based paragraph numbers, best first.
    pub paragraphs: Vec<usize>,
    pub findings: Vec<Finding>,
}

/// Words too common to tell paragraphs apart.
const STOP: &[&str] = &[
    "the", "and", "that", "with", "from", "this", "have", "has", "had", "were", "was", "will",
    "would", "said", "says", "also", "their", "they", "been", "which", "about", "after", "into",
    "more", "than", "other", "over", "there", "these", "those", "while", "when", "where", "what",
];

fn content_words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// The numbers of a paragraph, both sides, read once per bullet.
fn paragraph_numbers(p: &Paragraph) -> Vec<numbers::Quantity> {
    let mut q = numbers::extract(p.source, Lang::Tr);
    if let Some(t) = p.translation {
        q.extend(numbers::extract(t, Lang::En));
    }
    q
}

/// Whether the name `name` of a bullet is in paragraph `p`.
fn name_in(name: &str, p: &Paragraph) -> bool {
    names::traced(name, p.source) || p.translation.is_some_and(|t| t.contains(name))
}

/// The paragraphs `bullet` comes from, and its findings: Turkish left in it, numbers and
/// names that none of its cited paragraphs holds.
pub fn ground(bullet: &str, paragraphs: &[Paragraph]) -> Grounding {
    let mut findings = Vec::new();
    if untranslated::is_turkish(bullet) {
        findings.push(Finding {
            kind: Kind::Untranslated,
            message: format!("the bullet is not English: \"{bullet}\""),
            source: None,
            translation: Some(Span::of(bullet, 0, bullet.len())),
        });
    }
    let nums: Vec<numbers::Quantity> = numbers::extract(bullet, Lang::En)
        .into_iter()
        .filter(|q| !q.weak)
        .collect();
    let nms: Vec<names::Name> = names::names(bullet, Lang::En);
    // Each paragraph: which numbers and names it holds, and shared words.
    let words = content_words(bullet);
    let holds: Vec<Holds> = paragraphs
        .iter()
        .map(|p| {
            let text = p.translation.unwrap_or(p.source);
            let theirs = match nums.is_empty() {
                true => Vec::new(),
                false => paragraph_numbers(p),
            };
            Holds {
                numbers: nums.iter().map(|q| numbers::found_in(q, &theirs)).collect(),
                names: nms.iter().map(|x| name_in(&x.span.text, p)).collect(),
                shared: content_words(text).intersection(&words).count(),
            }
        })
        .collect();
    let paragraphs = cover(&holds);
    let held = |i: usize, which: fn(&Holds) -> &[bool]| {
        paragraphs.iter().any(|&p| which(&holds[p - 1])[i])
    };
    for (i, q) in nums.iter().enumerate() {
        if !held(i, |h| &h.numbers) {
            let text = &bullet[q.span.clone()];
            findings.push(Finding {
                kind: Kind::Number,
                message: format!(
                    "\"{text}\" ({}) is in no paragraph of the article",
                    q.describe()
                ),
                source: None,
                translation: Some(Span::of(bullet, q.span.start, q.span.end)),
            });
        }
    }
    for (i, n) in nms.iter().enumerate() {
        if !held(i, |h| &h.names) {
            findings.push(Finding {
                kind: Kind::InventedName,
                message: format!("\"{}\" is in no paragraph of the article", n.span.text),
                source: None,
                translation: Some(n.span.clone()),
            });
        }
    }
    Grounding {
        paragraphs,
        findings,
    }
}

/// What one paragraph holds of a bullet: each of its numbers and names, and how many of its
/// other words.
struct Holds {
    numbers: Vec<bool>,
    names: Vec<bool>,
    shared: usize,
}

/// The fewest paragraphs (1-based, best first, at most [`MAX_CITES`]) that together hold the
/// numbers and names any paragraph holds, chosen greedily by what each adds, then by shared
/// words; at least the paragraph sharing most, when any shares anything.
fn cover(holds: &[Holds]) -> Vec<usize> {
    let items = |h: &Holds| -> Vec<bool> { h.numbers.iter().chain(&h.names).copied().collect() };
    let n_items = holds.first().map_or(0, |h| items(h).len());
    let mut covered = vec![false; n_items];
    let mut chosen: Vec<usize> = Vec::new();
    while chosen.len() < MAX_CITES {
        let gain = |i: usize| -> (usize, usize) {
            let new = items(&holds[i])
                .iter()
                .zip(&covered)
                .filter(|(h, c)| **h && !**c)
                .count();
            (new, holds[i].shared)
        };
        let best = (0..holds.len())
            .filter(|i| !chosen.contains(&(i + 1)))
            .max_by_key(|&i| (gain(i), std::cmp::Reverse(i)));
        let Some(best) = best else { break };
        let (new, shared) = gain(best);
        if new == 0 && (!chosen.is_empty() || shared == 0) {
            break;
        }
        for (c, h) in covered.iter_mut().zip(items(&holds[best])) {
            *c |= h;
        }
        chosen.push(best + 1);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article() -> Vec<Paragraph<'static>> {
        vec![
            Paragraph {
                source: "Rusya Devlet Başkanı Vladimir Putin, Kuzey Kore lideri Kim Jong Un ile Pekin'de görüştü.",
                translation: None,
            },
            Paragraph {
                source: "Zafer Günü kutlamalarına 26 ülkenin lideri katıldı.",
                translation: None,
            },
            Paragraph {
                source: "Törende 10 bin asker yürüdü.",
                translation: None,
            },
        ]
    }

    #[test]
    fn a_bullet_cites_the_paragraphs_that_hold_its_numbers_and_names() {
        let g = ground("Putin met Kim Jong Un in Beijing.", &article());
        assert_eq!(g.paragraphs, [1], "{g:?}");
        assert!(g.findings.is_empty(), "{g:?}");
        let g = ground(
            "Leaders of 26 countries attended, and 10,000 soldiers marched.",
            &article(),
        );
        assert_eq!(g.paragraphs, [2, 3], "{g:?}");
        assert!(g.findings.is_empty(), "{g:?}");
    }

    #[test]
    fn invented_names_and_numbers_are_findings() {
        let g = ground("Xi Jinping hosted Putin in Dalian.", &article());
        let kinds: Vec<_> = g
            .findings
            .iter()
            .map(|f| (f.kind, f.message.clone()))
            .collect();
        assert!(
            kinds
                .iter()
                .any(|(k, m)| *k == Kind::InventedName && m.contains("Xi Jinping")),
            "{kinds:?}"
        );
        assert!(
            kinds
                .iter()
                .any(|(k, m)| *k == Kind::InventedName && m.contains("Dalian")),
            "{kinds:?}"
        );
        let g = ground("Leaders of 62 countries attended.", &article());
        assert!(g.findings.iter().any(|f| f.kind == Kind::Number), "{g:?}");
    }

    #[test]
    fn a_turkish_bullet_is_untranslated() {
        let g = ground(
            "Putin, Kim Jong Un ile Pekin'de görüştü ve iki lider anlaştı.",
            &article(),
        );
        assert!(
            g.findings.iter().any(|f| f.kind == Kind::Untranslated),
            "{g:?}"
        );
    }
}
