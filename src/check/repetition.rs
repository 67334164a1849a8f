//! Repetition: decoding loops and repeated phrases that the source does not have.
//!
//! A model caught in a loop writes the same word, phrase or sentence again and again ("the the
//! the", "local mall this week. local mall this week. …"), or loops inside one token
//! ("connectconnectconnect"), often at the end of a block where it ran out of things to say.
//! Human translations almost never do this (newstest2017: no line repeats a phrase three times
//! in a row), but a source may: a slogan chanted three times is translated three times. So a
//! repetition is reported only when the translation repeats something more often than the
//! source repeats anything.
//!
//! Three shapes are looked for, all on words compared case-blind and without punctuation:
//! an n-gram (1 to [`MAX_N`] words) [`MIN_RUN`] or more times in a row; a phrase of
//! [`LONG_PHRASE`]+ words twice in a row at the very end of the block; and a letter sequence
//! looped [`MIN_RUN`]+ times inside one word (five times for a single letter).

use super::{Finding, Kind, Span};
use std::ops::Range;

/// Longest n-gram looked for, in words.
const MAX_N: usize = 12;
/// Times in a row that make a loop.
const MIN_RUN: usize = 3;
/// A phrase this long (in words) repeated twice at the end of a block is a loop too.
const LONG_PHRASE: usize = 4;

/// A repetition found in one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Bytes of the whole run, all repeats included.
    pub range: Range<usize>,
    /// Bytes of one unit (the first).
    pub unit: Range<usize>,
    /// How many times the unit occurs in a row.
    pub times: usize,
}

/// Words of `text`: byte range and lower-cased letters and digits. Punctuation-only tokens are
/// skipped.
fn words(text: &str) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for token in text.split_whitespace() {
        let start = pos + text[pos..].find(token).unwrap_or(0);
        pos = start + token.len();
        let key: String = token
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if !key.is_empty() {
            out.push((start..pos, key));
        }
    }
    out
}

/// Every maximal run of an n-gram repeated at least twice in a row in `ws`:
/// `(first word, n, times)`.
fn ngram_runs(ws: &[(Range<usize>, String)]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for n in 1..=MAX_N.min(ws.len() / 2) {
        let same = |a: usize, b: usize| (0..n).all(|k| ws[a + k].1 == ws[b + k].1);
        let mut i = 0;
        while i + 2 * n <= ws.len() {
            let mut times = 1;
            while i + (times + 1) * n <= ws.len() && same(i, i + times * n) {
                times += 1;
            }
            if times >= 2 {
                out.push((i, n, times));
                i += (times - 1) * n;
            }
            i += 1;
        }
    }
    out
}

/// The worst repetition of `text` (most repeats, then most words): an n-gram [`MIN_RUN`]+
/// times in a row, or a phrase of [`LONG_PHRASE`]+ words twice at the end.
pub fn ngram_run(text: &str) -> Option<Run> {
    let ws = words(text);
    let (i, n, times) = ngram_runs(&ws)
        .into_iter()
        .filter(|&(i, n, times)| times >= MIN_RUN || n >= LONG_PHRASE && i + n * times == ws.len())
        .max_by_key(|&(_, n, times)| (times, n))?;
    Some(Run {
        range: ws[i].0.start..ws[i + n * times - 1].0.end,
        unit: ws[i].0.start..ws[i + n - 1].0.end,
        times,
    })
}

/// Whether `c` can be part of a looped letter sequence: a letter or a combining mark (the dot
/// of a lower-cased `İ`).
fn letter(c: char) -> bool {
    c.is_alphabetic() || ('\u{300}'..='\u{36f}').contains(&c)
}

/// How many times the `unit` letters from `chars[start]` occur in a row there (0 when they
/// are not all letters).
fn times_at(chars: &[char], start: usize, unit: usize) -> usize {
    if !chars[start..start + unit].iter().all(|&c| letter(c)) {
        return 0;
    }
    let mut end = start + unit;
    while end < chars.len() && chars[end] == chars[end - unit] {
        end += 1;
    }
    (end - start) / unit
}

/// A letter sequence looped inside one word ("connectconnectconnect", "aaaaaa"): the longest
/// loop of any word of `text`.
pub fn token_loop(text: &str) -> Option<Run> {
    let mut best: Option<Run> = None;
    for (range, _) in words(text) {
        let token = &text[range.clone()];
        let chars: Vec<char> = token.chars().collect();
        let offsets: Vec<usize> = token.char_indices().map(|(i, _)| i).collect();
        let byte = |k: usize| range.start + offsets.get(k).copied().unwrap_or(token.len());
        for unit in 1..=chars.len() / MIN_RUN {
            let need = if unit == 1 { 5 } else { MIN_RUN };
            for start in 0..=chars.len() - unit * need.min(chars.len() / unit) {
                let times = times_at(&chars, start, unit);
                if times >= need && best.as_ref().is_none_or(|b| times > b.times) {
                    best = Some(Run {
                        range: byte(start)..byte(start + times * unit),
                        unit: byte(start)..byte(start + unit),
                        times,
                    });
                }
            }
        }
    }
    best
}

/// Reports loops and repeated phrases of `translation` that `source` does not have: a
/// repeated n-gram beyond the source's most repeated n-gram, a looped word beyond the source's
/// most looped word (Turkish endings loop by themselves: `sakininin`).
pub fn check(source: &str, translation: &str, out: &mut Vec<Finding>) {
    let source_ngrams = ngram_runs(&words(source))
        .into_iter()
        .map(|(_, _, times)| times)
        .max()
        .unwrap_or(1);
    let source_loops = token_loop(source).map_or(1, |r| r.times);
    let found = [
        ngram_run(translation).map(|r| (r, source_ngrams, "in a row")),
        token_loop(translation).map(|r| (r, source_loops, "in a row inside one word")),
    ];
    for (run, allowed, how) in found.into_iter().flatten() {
        if run.times <= allowed {
            continue;
        }
        let unit = translation[run.unit.clone()].trim();
        let source_has = if allowed > 1 {
            format!("the source repeats nothing more than {allowed} times")
        } else {
            "the source has no such repetition".to_string()
        };
        out.push(Finding {
            kind: Kind::Repetition,
            message: format!(
                "The translation repeats \"{unit}\" {} times {how}; {source_has}: a loop?",
                run.times
            ),
            source: None,
            translation: Some(Span::of(translation, run.range.start, run.range.end)),
        });
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: &str, translation: &str) -> Vec<String> {
        let mut out = Vec::new();
        check(source, translation, &mut out);
        out.into_iter()
            .map(|f| f.translation.unwrap().text)
            .collect()
    }

    const SRC: &str = "Bu hafta yerel bir alışveriş merkezinde ölü bulundu.";

    #[test]
    fn a_plain_sentence_passes() {
        assert!(found(SRC, "He was found dead in a local mall this week.").is_empty());
        // Doubled words happen in human text.
        assert!(found(SRC, "He was found dead in in a local mall.").is_empty());
    }

    #[test]
    fn repeated_words_and_phrases_are_loops() {
        assert_eq!(
            found(SRC, "He was found the the the dead."),
            ["the the the"]
        );
        let looped = "He was found dead this week. this week. this week. this week.";
        assert_eq!(
            found(SRC, looped),
            ["this week. this week. this week. this week."]
        );
    }

    #[test]
    fn a_long_phrase_twice_at_the_end_is_a_loop() {
        let t = "He was found dead in a local mall in a local mall";
        assert_eq!(found(SRC, t), ["in a local mall in a local mall"]);
    }

    #[test]
    fn a_word_looping_on_itself_is_found() {
        let t = "They will connectconnectconnectconnect";
        assert_eq!(found(SRC, t), ["connectconnectconnectconnect"]);
        assert!(found(SRC, "Cheers erupted: hahaha, said the crowd.").len() == 1);
        assert!(found(SRC, "A committee of the Mississippi assessed it.").is_empty());
    }

    #[test]
    fn a_repetition_in_the_source_is_fine() {
        let src = "Kalabalık \"Hak, hukuk, adalet! Hak, hukuk, adalet! Hak, hukuk, adalet!\" diye \
                   bağırdı.";
        let en = "The crowd shouted \"Rights, law, justice! Rights, law, justice! Rights, law, \
                  justice!\"";
        assert!(found(src, en).is_empty());
        let more = format!("{en} justice! justice! justice! justice!");
        assert_eq!(found(src, &more).len(), 1);
    }

    #[test]
    fn runs_report_their_count() {
        let run = ngram_run("go go go go now").unwrap();
        assert_eq!(run.times, 4);
        assert_eq!(&"go go go go now"[run.range], "go go go go");
    }
}
