//! Untranslated text: a translation that is (partly) still Turkish.
//!
//! A model may copy its source back, answer in Turkish, or leave one sentence of several
//! untranslated. Each sentence of the English is weighed on its own: words that only Turkish
//! has (function words such as `ve`, `bir`, `için`, `olarak`; the letters `ğ ş ı` in a
//! lower-case word; case and tense endings such as `-ları`, `-iyor`, `-mış`, `-daki`; a case
//! suffix after an apostrophe, `Pekin'de`; a lower-case word copied from the source) against
//! English function words (`the`, `of`, `and`, `said`). Capitalised words count only through
//! their endings or when they are Turkish function words (title-case headlines), so names in an
//! English sentence ("Kılıçdaroğlu said", "Putin in Pekin") are not evidence. A sentence is
//! Turkish when it has at least [`MIN_TURKISH`] Turkish words and under a quarter as many
//! English function words: a Turkish phrase quoted in an English sentence stays English.
//!
//! A sentence that is a verbatim copy of the source counts with a single Turkish sign, capitalised
//! words with Turkish letters included (a copied title-case headline). No line of newstest2017's
//! human English is flagged.
//!
//! [`is_turkish`] gives the same judgement without a source (a summary bullet).

use super::{Finding, Kind, Span};
use std::collections::HashSet;
use std::ops::Range;

/// Turkish words that English text does not use (lower case). `de`, `da`, `her`, `son`, `en`
/// are left out: English has them too (`de Blasio`, `her son`, `en route`).
const TURKISH_WORDS: &[&str] = &[
    "ve",
    "bir",
    "bu",
    "şu",
    "o",
    "için",
    "ile",
    "olarak",
    "ki",
    "çok",
    "daha",
    "gibi",
    "kadar",
    "olan",
    "olduğu",
    "olduğunu",
    "sonra",
    "önce",
    "ama",
    "fakat",
    "ancak",
    "veya",
    "ya",
    "ne",
    "mi",
    "mı",
    "mu",
    "mü",
    "değil",
    "var",
    "yok",
    "tüm",
    "bütün",
    "göre",
    "karşı",
    "diye",
    "dedi",
    "ise",
    "hiç",
    "bile",
    "şey",
    "oldu",
    "üzere",
    "ayrıca",
    "yani",
    "çünkü",
    "eğer",
    "biz",
    "ben",
    "sen",
    "siz",
    "onlar",
    "onun",
    "bunu",
    "buna",
    "bunun",
    "şöyle",
    "böyle",
    "nasıl",
    "neden",
    "yeni",
    "büyük",
    "yıl",
    "gün",
    "kendi",
    "arasında",
    "tarafından",
    "yapılan",
    "edilen",
    "eden",
    "etti",
    "yaptı",
    "yüzde",
    "milyon",
    "milyar",
    "bin",
    "ise",
    "olması",
    "ediyor",
    "açıklama",
    "dolayı",
    "sadece",
    "artık",
    "şimdi",
    "bugün",
    "hem",
];

/// Turkish endings that English words (in newstest2017's English) do not have.
const TURKISH_ENDINGS: &[&str] = &[
    "ları", "leri", "ların", "lerin", "ında", "inde", "ından", "inden", "ndan", "nden", "iyor",
    "ıyor", "uyor", "üyor", "mış", "miş", "muş", "müş", "acak", "ecek", "dır", "dur", "dür", "tır",
    "tir", "tur", "sını", "sini", "ması", "mesi", "nın", "nun", "dığı", "diği", "duğu", "düğü",
    "tığı", "tiği", "daki", "deki", "lık", "lük", "ıyla", "iyle", "ını", "unu", "ünü",
];

/// English function words: the sign that a sentence is English (`her` is Turkish too).
const ENGLISH_WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "an", "in", "is", "was", "that", "for", "on", "with", "as",
    "by", "at", "it", "he", "she", "they", "we", "from", "has", "have", "had", "be", "are", "were",
    "this", "said", "will", "not", "or", "but", "his", "their", "which", "who", "been", "would",
    "its", "after", "also", "there", "than", "about", "says", "more", "can", "could", "when",
    "into", "what", "all", "our", "you", "i", "no", "if", "so", "do", "did",
];

/// English endings after an apostrophe (`Turkey's`, `don't`, `we'll`).
const ENGLISH_CLITICS: &[&str] = &["s", "t", "re", "ll", "ve", "d", "m", "n"];

/// Letters of Turkish that English words do not have (`ç ö ü` appear in a few loanwords,
/// always outnumbered by English function words).
const TURKISH_LETTERS: &[char] = &['ğ', 'ş', 'ı', 'ç', 'ö', 'ü'];

/// Turkish words a sentence needs to count as Turkish.
const MIN_TURKISH: usize = 2;

/// Words of `text` with their byte offsets: letters, with an apostrophe inside a word kept
/// (`Pekin'de`, `don't`).
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let inner_apostrophe = matches!(c, '\'' | '’')
            && start.is_some()
            && chars.get(k + 1).is_some_and(|&(_, n)| n.is_alphabetic());
        if c.is_alphabetic() || inner_apostrophe {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, &text[s..i]));
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Lower case with the Turkish dotted capital I folded to `i`.
fn lower(word: &str) -> String {
    word.chars()
        .map(|c| if c == 'İ' { 'i' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// What one word says about its sentence's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    /// A Turkish word, ending or letter in a lower-case word.
    Turkish,
    /// A capitalised word with Turkish letters: a Turkish name, or a Turkish word in a
    /// title-case headline. Evidence only in a sentence copied from the source.
    Capitalised,
    /// An English function word.
    English,
    None,
}

/// What `word` (one token of [`words`]) says. `copied` holds the source's lower-case words
/// (empty without a source).
fn sign(word: &str, copied: &HashSet<String>) -> Sign {
    let capital = word.starts_with(char::is_uppercase);
    let (base, clitic) = match word.split_once(['\'', '’']) {
        Some((b, c)) => (b, Some(c)),
        None => (word, None),
    };
    let low = if base.chars().count() >= 2 && !base.chars().any(char::is_lowercase) {
        // All capitals (`MAL VARLIKLARINA`): Turkish lower case, dotless I to ı.
        base.chars()
            .map(|c| if c == 'I' { 'ı' } else { c })
            .collect::<String>()
            .to_lowercase()
            .replace('İ', "i")
    } else {
        lower(base)
    };
    if let Some(c) = clitic {
        // `Pekin'de`, `yüzde 75'i`: a Turkish case suffix; `Turkey's` is English.
        let english =
            c.starts_with(char::is_uppercase) || ENGLISH_CLITICS.contains(&lower(c).as_str());
        return if english { Sign::None } else { Sign::Turkish };
    }
    if ENGLISH_WORDS.contains(&low.as_str()) && (low != "i" || word == "I") {
        return Sign::English;
    }
    let long_enough = low.chars().count() >= 5;
    if TURKISH_WORDS.contains(&low.as_str())
        || long_enough && TURKISH_ENDINGS.iter().any(|e| low.ends_with(e))
    {
        return Sign::Turkish;
    }
    let letters = low.contains(TURKISH_LETTERS) || base.contains(['İ', 'Ş', 'Ğ', 'Ç', 'Ö', 'Ü']);
    if !capital && (letters || low.chars().count() >= 3 && copied.contains(&low)) {
        Sign::Turkish
    } else if letters {
        Sign::Capitalised
    } else {
        Sign::None
    }
}

/// How Turkish and how English one sentence is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Evidence {
    turkish: usize,
    capitalised: usize,
    english: usize,
    /// The sentence is a copy of a stretch of the source.
    copy: bool,
}

impl Evidence {
    fn of(sentence: &str, copied: &HashSet<String>, source_letters: &str) -> Evidence {
        let mut ev = Evidence::default();
        let ws = words(sentence);
        for &(at, w) in &ws {
            if in_address(sentence, at, w.len()) {
                continue;
            }
            match sign(w, copied) {
                Sign::Turkish => ev.turkish += 1,
                Sign::Capitalised => ev.capitalised += 1,
                Sign::English => ev.english += 1,
                Sign::None => {}
            }
        }
        let mine = letters_only(sentence);
        ev.copy = ws.len() >= 2 && !mine.is_empty() && source_letters.contains(&mine);
        ev
    }

    fn is_turkish(self) -> bool {
        self.turkish >= MIN_TURKISH && self.english * 2 <= self.turkish
            || self.copy && self.english == 0 && self.turkish + self.capitalised >= 1
    }
}

/// Whether the word at `at..at + len` of `text` is part of a web or mail address or a path
/// (`www.drjoetoday.com`): copied as it is, in any language.
fn in_address(text: &str, at: usize, len: usize) -> bool {
    let before = text[..at].chars().next_back();
    let mut after = text[at + len..].chars();
    let joined = |c: Option<char>| matches!(c, Some('.' | '/' | '@' | ':' | '\\'));
    joined(before) || joined(after.next()) && after.next().is_some_and(char::is_alphanumeric)
}

/// `text` lower-cased, letters and digits only: what a copy keeps.
fn letters_only(text: &str) -> String {
    lower(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Lower-case words of the source that are not English words: copying one is evidence.
fn copied_words(source: &str) -> HashSet<String> {
    words(source)
        .into_iter()
        .filter(|(_, w)| w.starts_with(char::is_lowercase))
        .map(|(_, w)| lower(w))
        .filter(|w| !ENGLISH_WORDS.contains(&w.as_str()))
        .collect()
}

/// The sentences of `text` (byte ranges, trimmed) that are still Turkish, judged against
/// `source` (its lower-case words count when copied) or on their own when `source` is empty.
pub fn turkish_sentences(source: &str, text: &str) -> Vec<Range<usize>> {
    let copied = copied_words(source);
    let source_letters = letters_only(source);
    crate::text::chunk::sentences(text, false)
        .into_iter()
        .filter(|r| Evidence::of(&text[r.clone()], &copied, &source_letters).is_turkish())
        .map(|r| {
            let s = &text[r.clone()];
            let start = r.start + (s.len() - s.trim_start().len());
            start..r.start + s.trim_end().len()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Whether `text` (English with no source, e.g. one summary bullet) is, at least in one
/// sentence, Turkish.
pub fn is_turkish(text: &str) -> bool {
    !turkish_sentences("", text).is_empty()
}

/// The source sentence sharing the most words with `sentence`, if it shares at least half.
fn matching_source(source: &str, sentence: &str) -> Option<Range<usize>> {
    let mine: HashSet<String> = words(sentence).into_iter().map(|(_, w)| lower(w)).collect();
    crate::text::chunk::sentences(source, false)
        .into_iter()
        .map(|r| {
            let shared = words(&source[r.clone()])
                .into_iter()
                .filter(|(_, w)| mine.contains(&lower(w)))
                .count();
            (shared, r)
        })
        .filter(|(shared, _)| *shared * 2 >= mine.len().max(1))
        .max_by_key(|(shared, _)| *shared)
        .map(|(_, r)| r)
}

/// Flags every sentence of `translation` that is still Turkish.
pub fn check(source: &str, translation: &str, out: &mut Vec<Finding>) {
    let found = turkish_sentences(source, translation);
    let whole = found.len() == 1 && translation.trim().len() == found[0].len();
    for r in found {
        let text = &translation[r.clone()];
        let src = matching_source(source, text).map(|s| {
            let t = &source[s.clone()];
            Span::of(source, s.start, s.start + t.trim_end().len())
        });
        let what = if whole {
            "The translation is still Turkish"
        } else {
            "This sentence of the translation is still Turkish"
        };
        let message = match &src {
            Some(s) => format!("{what}: \"{text}\" (source: \"{}\").", s.text),
            None => format!("{what}: \"{text}\"."),
        };
        out.push(Finding {
            kind: Kind::Untranslated,
            message,
            source: src,
            translation: Some(Span::of(translation, r.start, r.end)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(source: &str, translation: &str) -> Vec<String> {
        let mut out = Vec::new();
        check(source, translation, &mut out);
        out.into_iter()
            .map(|f| f.translation.unwrap().text)
            .collect()
    }

    const SRC: &str = "Rusya Devlet Başkanı Vladimir Putin, Çin'in başkenti Pekin'de konuştu.";

    #[test]
    fn a_copied_source_is_untranslated() {
        assert_eq!(flagged(SRC, SRC), [SRC]);
        let headline = "28 Yaşındaki Aşçı San Francisco Alışveriş Merkezinde Ölü Bulundu";
        assert_eq!(flagged(headline, headline).len(), 1);
    }

    #[test]
    fn names_in_english_are_not_turkish() {
        assert!(flagged(SRC, "Russian President Vladimir Putin spoke in Beijing.").is_empty());
        assert!(flagged("Putin Pekin'de", "Putin in Pekin").is_empty());
        let src = "Kılıçdaroğlu ve Erdoğan görüştü.";
        assert!(flagged(src, "Kılıçdaroğlu and Erdoğan met.").is_empty());
        assert!(!is_turkish(
            "Kılıçdaroğlu said the İstanbul meeting went well."
        ));
    }

    #[test]
    fn one_sentence_left_in_turkish_is_found() {
        let src = "Toplantı sona erdi. Bakan, yeni vergi paketinin gelecek ay meclise \
                   sunulacağını söyledi.";
        let en = "The meeting ended. Bakan, yeni vergi paketinin gelecek ay meclise \
                  sunulacağını söyledi.";
        let mut out = Vec::new();
        check(src, en, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .translation
            .as_ref()
            .unwrap()
            .text
            .starts_with("Bakan, yeni"));
        assert!(out[0]
            .source
            .as_ref()
            .unwrap()
            .text
            .starts_with("Bakan, yeni"));
        assert!(out[0].message.contains("This sentence"));
    }

    #[test]
    fn a_quoted_turkish_phrase_in_english_is_fine() {
        let en = "Protesters chanted \"hak, hukuk, adalet\", which means rights, law and \
                  justice, as the march reached the square.";
        assert!(!is_turkish(en));
    }

    #[test]
    fn turkish_without_a_source_is_found() {
        assert!(is_turkish(
            "Üyelik anlaşmaya varan delegelerin pozisyonlarını korudu."
        ));
        assert!(is_turkish("Enflasyon yüzde 3,5 oldu ve faiz değişmedi."));
        assert!(!is_turkish(
            "Inflation was 3.5 percent and rates did not change."
        ));
    }

    #[test]
    fn words_keep_inner_apostrophes() {
        let ws: Vec<&str> = words("Pekin'de, don't 'quote'")
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(ws, ["Pekin'de", "don't", "quote"]);
    }
}
