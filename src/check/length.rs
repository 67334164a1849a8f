//! Omission and addition: a translation much shorter or longer than its source.
//!
//! A model that drops a sentence, stops early or runs on into text of its own leaves a trace
//! in the length: human English translations of Turkish news keep to a band of length ratios.
//! With `r = ln(English chars / Turkish chars)` and `L` the source's characters (both sides
//! trimmed), human translations of newstest2017 keep to
//!
//! `-(LOW_A + LOW_B/√L) <= r <= HIGH_A + HIGH_B/√L`, never narrower than `-LOW_FLOOR..HIGH_FLOOR`
//!
//! (fitted through the 1% and 99% quantiles of buckets of 300 lines; short lines have noisy
//! ratios, so the band widens for them: at L = 30 a translation may be 0.58 to 2.0 times the
//! source's length, at L = 300 0.72 to 1.32 times). `scripts/length_band.py` prints the
//! constants; 0.9% of its lines fall below the band and 0.8% above.
//!
//! Two more signs narrow the band where they point the same way. Fewer (more) English sentences
//! than Turkish ones, counted with [`crate::text::chunk::sentences`]: on newstest2017 99.5% of
//! lines have equal counts, so a missing sentence pulls the lower edge in by [`OMISSION_SLACK`]
//! and an extra one the upper edge by [`ADDITION_SLACK`] (the slacks are judgement: a dropped
//! sentence of two or three removes a third to a half of the text, ln 0.67 = -0.4; the tuning
//! set has only 15 lines with unequal counts to fit them on; the omission slack was 0.25 until
//! FLORES devtest showed translators merging two sentences into one at 80-90% of the length,
//! so FLORES is not held out for that rule). And an English block that stops
//! on a word where the source ends a sentence, or on a word no English sentence ends with
//! ("the", "with"), was cut off: one line of newstest2017 does that, so it is an omission
//! whatever its length.

use super::{Finding, Kind, Span};

/// Lower edge of the band: `r >= -(LOW_A + LOW_B / sqrt(L))`.
const LOW_A: f64 = 0.22;
const LOW_B: f64 = 1.78;
/// Upper edge of the band: `r <= HIGH_A + HIGH_B / sqrt(L)`.
const HIGH_A: f64 = -0.01;
const HIGH_B: f64 = 3.94;
/// The band is never narrower than the one of the longest tuning lines (234+ characters).
const LOW_FLOOR: f64 = 0.32;
const HIGH_FLOOR: f64 = 0.28;
/// How far fewer English sentences than Turkish ones pull the band's lower edge in.
const OMISSION_SLACK: f64 = 0.15;
/// How far more English sentences than Turkish ones pull the band's upper edge in.
const ADDITION_SLACK: f64 = 0.25;

/// The band of `ln(English chars / Turkish chars)` seen on human translations of a source of
/// `source_chars` characters: `(lowest, highest)`.
pub fn band(source_chars: usize) -> (f64, f64) {
    let x = 1.0 / (source_chars.max(1) as f64).sqrt();
    let low = (-(LOW_A + LOW_B * x)).min(-LOW_FLOOR);
    let high = (HIGH_A + HIGH_B * x).max(HIGH_FLOOR);
    (low, high)
}

/// Number of non-blank sentences of `text`.
fn sentence_count(text: &str) -> usize {
    crate::text::chunk::sentences(text, false)
        .into_iter()
        .filter(|r| !text[r.clone()].trim().is_empty())
        .count()
}

/// Whether `text` ends a sentence: final punctuation, maybe followed by closing quotes.
fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '”' | '’' | '\'' | '»' | ')' | ']')
    });
    t.ends_with(['.', '!', '?', '…'])
}

/// English words that do not end a sentence or a headline: a block ending on one was cut off.
const DANGLING: &[&str] = &[
    "a", "an", "the", "of", "to", "in", "into", "with", "from", "for", "on", "at", "by", "as",
    "than", "and", "or", "but", "my", "his", "her", "their", "its", "our", "your", "that", "which",
    "whose", "when", "while", "if", "because", "between", "during", "very",
];

/// Whether the translation looks cut off: it stops on a word or a comma where the source ends
/// a sentence, or it ends on a word that cannot end an English sentence ("with", "the").
fn cut_off(source: &str, translation: &str) -> bool {
    let t = translation.trim_end();
    let last_word = t
        .rsplit(|c: char| !c.is_alphanumeric() && c != '\'')
        .next()
        .unwrap_or("")
        .to_lowercase();
    if t.len() > last_word.len() && DANGLING.contains(&last_word.as_str()) {
        return true;
    }
    let last = t.chars().last();
    ends_sentence(source)
        && !ends_sentence(translation)
        && last.is_some_and(|c| c.is_alphanumeric() || matches!(c, ',' | ';' | ':' | '-'))
}

/// Up to `max` characters of `text`, with an ellipsis when cut.
fn excerpt(text: &str, max: usize) -> String {
    let t = text.trim();
    match t.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// Whole-block span of one side (trimmed).
fn whole(text: &str) -> Span {
    let start = text.len() - text.trim_start().len();
    let end = text.trim_end().len();
    Span::of(text, start, end.max(start))
}

/// Checks `translation` against `source` for omitted or added content (see the module docs).
pub fn check(source: &str, translation: &str, out: &mut Vec<Finding>) {
    let (src_chars, tgt_chars) = (
        source.trim().chars().count(),
        translation.trim().chars().count(),
    );
    if src_chars == 0 || tgt_chars == 0 {
        return;
    }
    let r = (tgt_chars as f64 / src_chars as f64).ln();
    let (low, high) = band(src_chars);
    let (src_sents, tgt_sents) = (sentence_count(source), sentence_count(translation));
    let cut = cut_off(source, translation);
    let percent = (100.0 * tgt_chars as f64 / src_chars as f64).round();
    let quote = format!(
        "source: \"{}\"; translation: \"{}\"",
        excerpt(source, 80),
        excerpt(translation, 80)
    );
    let short = r < low || cut || tgt_sents < src_sents && r < low + OMISSION_SLACK;
    if short {
        let why = if cut {
            "it stops without finishing its last sentence".to_string()
        } else if tgt_sents < src_sents {
            format!("it has {tgt_sents} sentence(s) where the source has {src_sents}")
        } else {
            format!(
                "human translations of a source this long are at least {:.0}% of its length",
                100.0 * low.exp()
            )
        };
        out.push(Finding {
            kind: Kind::Omission,
            message: format!(
                "The translation is {percent}% of the source's length and {why}: part of \
                 the source may be missing ({quote})."
            ),
            source: Some(whole(source)),
            translation: Some(whole(translation)),
        });
    }
    let long = r > high || tgt_sents > src_sents && r > high - ADDITION_SLACK;
    if long {
        let why = if tgt_sents > src_sents {
            format!("it has {tgt_sents} sentences where the source has {src_sents}")
        } else {
            format!(
                "human translations of a source this long are at most {:.0}% of its length",
                100.0 * high.exp()
            )
        };
        out.push(Finding {
            kind: Kind::Addition,
            message: format!(
                "The translation is {percent}% of the source's length and {why}: it may add \
                 text the source does not have ({quote})."
            ),
            source: Some(whole(source)),
            translation: Some(whole(translation)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str, translation: &str) -> Vec<Kind> {
        let mut out = Vec::new();
        check(source, translation, &mut out);
        out.into_iter().map(|f| f.kind).collect()
    }

    const TR: &str = "Hükümet yeni vergi paketini meclise sundu. Muhalefet partileri pakete \
                      karşı çıktı ve oylamanın ertelenmesini istedi. Oylama gelecek hafta yapılacak.";
    const EN: &str = "The government submitted the new tax package to parliament. Opposition \
                      parties objected to the package and asked for the vote to be postponed. \
                      The vote will take place next week.";

    #[test]
    fn a_faithful_translation_passes() {
        assert!(kinds(TR, EN).is_empty());
    }

    #[test]
    fn a_dropped_sentence_is_an_omission() {
        let dropped = "The government submitted the new tax package to parliament. The vote \
                       will take place next week.";
        assert_eq!(kinds(TR, dropped), [Kind::Omission]);
    }

    #[test]
    fn an_appended_sentence_is_an_addition() {
        let added = format!("{EN} The central bank kept interest rates unchanged on Thursday.");
        assert_eq!(kinds(TR, &added), [Kind::Addition]);
    }

    #[test]
    fn a_cut_off_translation_is_an_omission() {
        let src = "Kısa süre önce San Francisco'ya taşınmış olan 28 yaşındaki aşçı, bu hafta \
                   içinde yerel bir alışveriş merkezinin merdiven boşluğunda ölü bulundu.";
        let cut = "A 28-year-old chef who had recently moved to San Francisco was found dead in";
        assert_eq!(kinds(src, cut), [Kind::Omission]);
        let full = "A 28-year-old chef who had recently moved to San Francisco was found dead \
                    in the stairwell of a local mall this week.";
        assert!(kinds(src, full).is_empty());
    }

    #[test]
    fn the_band_widens_for_short_sources() {
        let (low_short, high_short) = band(20);
        let (low_long, high_long) = band(400);
        assert!(low_short < low_long && high_short > high_long);
        // Headlines vary a lot: twice the source's length is still fine at 20 characters.
        assert!(kinds("Erdoğan Rusya'da", "Erdoğan visits Russia for talks").is_empty());
        assert_eq!(band(100_000), (-LOW_FLOOR, HIGH_FLOOR));
    }

    #[test]
    fn findings_quote_both_sides() {
        let mut out = Vec::new();
        check(TR, "The government submitted it.", &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("Hükümet yeni vergi"));
        assert!(out[0].message.contains("The government submitted it."));
        assert_eq!(out[0].translation.as_ref().unwrap().start, 0);
    }
}
