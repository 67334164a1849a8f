//! Chunker: cuts a paragraph into pieces the model can take, at Turkish sentence boundaries.
//!
//! The paragraph is the unit of translation; a paragraph over the model's budget (or any
//! paragraph, for a model that works one sentence at a time) is cut into sentences, and a sentence
//! still over budget into clauses, then words, then characters. Chunks are byte ranges that tile
//! the paragraph, so concatenating them gives back exactly the paragraph: nothing is dropped.
//!
//! Sentence boundaries know Turkish text: abbreviations (`Dr.`, `Prof.`, `vb.`), initials and
//! dotted acronyms (`T.C.`, `A.Ş.`), ordinals (`1. Dünya Savaşı`), decimals (`3,5`, `3.5`) and
//! quotations (a full stop inside a quotation is only a weak boundary: the paragraph path cuts
//! there only when the quotation alone is too long, the sentence path always does, because
//! sentence-level models drop content when given several sentences at once). A `"` typed for
//! the apostrophe before a suffix (`yüzde 75"i`, `Beşiktaş"a`) is not taken for a quotation.

use std::ops::Range;

/// Abbreviations that end with a full stop without ending the sentence (lower-cased, no dot).
const ABBREVIATIONS: &[&str] = &[
    "dr", "prof", "doç", "doc", "yrd", "öğr", "gör", "uzm", "av", "sn", "müh", "vb", "vs", "vd",
    "örn", "bkz", "krş", "s", "sy", "no", "nr", "tel", "cad", "sok", "mah", "apt", "blv", "bşk",
    "gen", "org", "korg", "tümg", "tuğg", "alb", "yzb", "ütğm", "tğm", "mr", "mrs", "ms", "jr",
    "st", "inc", "ltd", "şti", "tic", "san", "co", "yy", "mö", "ms", "age", "bk", "ed", "çev",
    "haz", "bl",
];

const OPENING_QUOTES: &[char] = &['"', '“', '«', '‘', '(', '['];
const CLOSING_QUOTES: &[char] = &['"', '”', '»', '’', '\'', ')', ']'];

/// A place where a paragraph may be cut: the byte offset where the next piece starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    pub at: usize,
    /// Inside a quotation: cut there only when the quotation alone is too long.
    pub weak: bool,
}

/// Finds the sentence boundaries of `text` (offsets of the first byte of each next sentence,
/// after the whitespace that follows a sentence end).
pub fn sentence_boundaries(text: &str) -> Vec<Boundary> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if c == '"' {
            in_quote = quote_state(&chars, i, in_quote);
        } else if c == '“' || c == '«' {
            in_quote = true;
        } else if c == '”' || c == '»' {
            in_quote = false;
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            i += 1;
            continue;
        }
        // The run of terminal punctuation and closing quotes that ends the sentence.
        let mut j = i + 1;
        while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '…') {
            j += 1;
        }
        let mut closes_quote = false;
        while j < chars.len() && CLOSING_QUOTES.contains(&chars[j].1) {
            if matches!(chars[j].1, '"' | '”' | '»') {
                closes_quote = true;
            }
            j += 1;
        }
        // A boundary needs whitespace, then the start of a new sentence.
        let mut k = j;
        while k < chars.len() && chars[k].1.is_whitespace() {
            k += 1;
        }
        if k == j || k == chars.len() {
            if closes_quote {
                in_quote = false;
            }
            i = j;
            continue;
        }
        let next = chars[k].1;
        let starts_sentence = next.is_uppercase()
            || next.is_ascii_digit()
            || OPENING_QUOTES.contains(&next)
            || next == '\'' && chars.get(k + 1).is_some_and(|&(_, c)| c.is_alphanumeric())
            || matches!(next, '-' | '–' | '—');
        let ends_here = c != '.' || j > i + 1 || !is_non_final_dot(text, &chars, i, next);
        if closes_quote {
            // `... katıldık" dedi.` – the quotation closed; the sentence goes on unless a new
            // one starts.
            in_quote = false;
        }
        if starts_sentence && ends_here {
            out.push(Boundary {
                at: chars[k].0,
                weak: in_quote,
            });
        }
        i = j;
    }
    out
}

/// How a straight double quote `chars[at]` leaves the quotation state: whether a quotation is
/// open after it, given whether one was open before.
///
/// Turkish web text often types `"` for the apostrophe before a suffix (`yüzde 75"i`,
/// `Beşiktaş"a`); such a `"` must not open a quotation, or the sentences after it would all be
/// taken as quoted. A closing quote takes a suffix the same way (`"Kara Kitap"ı okudum`), so
/// inside a quotation a `"` of that shape closes it unless a later `"` closes it instead.
fn quote_state(chars: &[(usize, char)], at: usize, in_quote: bool) -> bool {
    match quote_shape(chars, at) {
        QuoteShape::Opening => true,
        QuoteShape::Closing => false,
        QuoteShape::Suffix if !in_quote => false,
        QuoteShape::Suffix => {
            // Open before: the first later `"` that is not another suffix decides.
            let later = (at + 1..chars.len())
                .filter(|&j| chars[j].1 == '"')
                .map(|j| quote_shape(chars, j))
                .find(|shape| *shape != QuoteShape::Suffix);
            matches!(later, Some(QuoteShape::Closing))
        }
        QuoteShape::Unclear => !in_quote,
    }
}

/// What the characters around a straight double quote make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteShape {
    /// After a space (or at the start), before a word: `dedi ki "Biz`.
    Opening,
    /// After a word, before a space or punctuation (or at the end): `geldik" dedi`.
    Closing,
    /// Between a letter, digit or `%` and a lower-case letter: `75"i`, `Ankara"da`.
    Suffix,
    /// Anything else (`:"Biz`, a quote between spaces): it toggles the state.
    Unclear,
}

fn quote_shape(chars: &[(usize, char)], at: usize) -> QuoteShape {
    let before = at.checked_sub(1).map(|i| chars[i].1);
    let after = chars.get(at + 1).map(|&(_, c)| c);
    let space_before = before.is_none_or(|c| c.is_whitespace() || OPENING_QUOTES.contains(&c));
    let space_after = after.is_none_or(|c| c.is_whitespace());
    match (before, after) {
        (Some(b), Some(a)) if (b.is_alphanumeric() || b == '%') && a.is_lowercase() => {
            QuoteShape::Suffix
        }
        _ if space_before && !space_after => QuoteShape::Opening,
        (Some(_), _) if !space_before && (space_after || after.is_some_and(is_punctuation)) => {
            QuoteShape::Closing
        }
        _ => QuoteShape::Unclear,
    }
}

fn is_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '…' | ')' | ']' | '\'' | '’' | '-' | '–' | '—'
    )
}

/// Whether the full stop at `chars[dot]` belongs to an abbreviation, an initial or an ordinal.
fn is_non_final_dot(text: &str, chars: &[(usize, char)], dot: usize, next: char) -> bool {
    let dot_byte = chars[dot].0;
    let word_start = text[..dot_byte]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace() || OPENING_QUOTES.contains(c))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let word = &text[word_start..dot_byte];
    if word.is_empty() {
        return false;
    }
    let lower = word.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    let letters: Vec<char> = word.chars().collect();
    // Initials and dotted acronyms: `M.`, `T.C.`, `A.Ş.`
    if letters.len() == 1 && letters[0].is_uppercase() {
        return true;
    }
    if word.contains('.') && word.split('.').all(|p| p.chars().count() <= 2) {
        return true;
    }
    // Ordinals: `1. Dünya Savaşı`, `19. yüzyıl`. Four digits are taken as a year ending a sentence.
    if word.chars().all(|c| c.is_ascii_digit()) && word.len() <= 3 {
        return next.is_alphabetic();
    }
    false
}

/// Splits `text` into sentences: ranges that tile `text`. Weak boundaries (inside quotations)
/// are used only when `use_weak` is set.
pub fn sentences(text: &str, use_weak: bool) -> Vec<Range<usize>> {
    let cuts: Vec<usize> = sentence_boundaries(text)
        .into_iter()
        .filter(|b| use_weak || !b.weak)
        .map(|b| b.at)
        .collect();
    tile(text.len(), &cuts)
}

fn tile(len: usize, cuts: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &c in cuts {
        if c > start && c < len {
            out.push(start..c);
            start = c;
        }
    }
    if start < len || out.is_empty() {
        out.push(start..len);
    }
    out
}

/// How pieces are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whole paragraphs, cut into sentences only when over budget.
    Paragraph,
    /// One sentence at a time, a quotation of several sentences cut at its sentence ends too
    /// (base models prompted few-shot); cut further only when over budget.
    Sentence,
    /// The same cuts as [`Unit::Sentence`], named for sentence-level MT models such as Marian:
    /// they drop content when given several sentences at once, quoted ones included. The quote
    /// marks stay on the first and last piece of the quotation.
    WholeSentence,
}

/// Cuts `text` into chunks whose cost (as measured by `cost`, e.g. a token count) is at most
/// `budget`, preferring sentence boundaries. The chunks tile `text`.
pub fn chunk(
    text: &str,
    unit: Unit,
    budget: usize,
    cost: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let fits = |r: &Range<usize>| cost(&text[r.clone()]) <= budget;
    let whole = 0..text.len();
    if unit == Unit::Paragraph && fits(&whole) {
        return vec![whole];
    }
    let mut out = Vec::new();
    if unit != Unit::Paragraph {
        // One sentence a chunk: a quotation is cut at its sentence ends too.
        for s in sentences(text, true) {
            split_to_fit(text, s, budget, cost, &mut out);
        }
        return out;
    }
    for strong in sentences(text, false) {
        if fits(&strong) {
            out.push(strong);
            continue;
        }
        // An over-long sentence: the quotations in it are cut too.
        for s in sentences(&text[strong.clone()], true) {
            split_to_fit(text, shift(s, strong.start), budget, cost, &mut out);
        }
    }
    pack(text, out, budget, cost)
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

/// Greedily merges neighbouring chunks while the merged chunk fits.
fn pack(
    text: &str,
    pieces: Vec<Range<usize>>,
    budget: usize,
    cost: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for p in pieces {
        if let Some(last) = out.last_mut() {
            if cost(&text[last.start..p.end]) <= budget {
                last.end = p.end;
                continue;
            }
        }
        out.push(p);
    }
    out
}

/// Pushes `range` if it fits, else cuts it at clause punctuation, then spaces, then characters.
fn split_to_fit(
    text: &str,
    range: Range<usize>,
    budget: usize,
    cost: &dyn Fn(&str) -> usize,
    out: &mut Vec<Range<usize>>,
) {
    let piece = &text[range.clone()];
    if cost(piece) <= budget || piece.chars().count() <= 1 {
        out.push(range);
        return;
    }
    for level in [Level::Clause, Level::Word, Level::Char] {
        let cuts = cut_points(piece, level);
        if cuts.is_empty() {
            continue;
        }
        let parts = tile(piece.len(), &cuts);
        let packed = pack(piece, parts, budget, cost);
        if packed.len() > 1 {
            for p in packed {
                split_to_fit(text, shift(p, range.start), budget, cost, out);
            }
            return;
        }
    }
    out.push(range);
}

#[derive(Clone, Copy)]
enum Level {
    Clause,
    Word,
    Char,
}

fn cut_points(piece: &str, level: Level) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in piece.char_indices() {
        let cut = match level {
            Level::Clause => {
                matches!(prev, Some(',' | ';' | ':')) && c.is_whitespace() || {
                    matches!(prev, Some(p) if p.is_whitespace()) && !c.is_whitespace() && {
                        let before = piece[..i].trim_end();
                        before.ends_with([',', ';', ':'])
                    }
                }
            }
            Level::Word => matches!(prev, Some(p) if p.is_whitespace()) && !c.is_whitespace(),
            Level::Char => i > 0,
        };
        if cut && i > 0 {
            cuts.push(i);
        }
        prev = Some(c);
    }
    if let Level::Clause = level {
        cuts.dedup();
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, ranges: &[Range<usize>]) -> Vec<String> {
        ranges.iter().map(|r| text[r.clone()].to_string()).collect()
    }

    fn split(text: &str) -> Vec<String> {
        texts(text, &sentences(text, true))
    }

    #[test]
    fn plain_sentences() {
        assert_eq!(
            split("Bugün hava güzel. Yarın yağmur var! Neden? Bilmiyorum."),
            [
                "Bugün hava güzel. ",
                "Yarın yağmur var! ",
                "Neden? ",
                "Bilmiyorum."
            ]
        );
    }

    #[test]
    fn abbreviations_and_titles_do_not_end_sentences() {
        assert_eq!(
            split("Prof. Dr. Ahmet Yılmaz geldi. Kitap, defter vb. Eşyalar alındı."),
            [
                "Prof. Dr. Ahmet Yılmaz geldi. ",
                "Kitap, defter vb. Eşyalar alındı."
            ]
        );
    }

    #[test]
    fn acronyms_and_initials() {
        assert_eq!(
            split(
                "T.C. Cumhurbaşkanlığı açıklama yaptı. Şirket A.Ş. Olarak kuruldu. M. Kemal geldi."
            ),
            [
                "T.C. Cumhurbaşkanlığı açıklama yaptı. ",
                "Şirket A.Ş. Olarak kuruldu. ",
                "M. Kemal geldi."
            ]
        );
    }

    #[test]
    fn ordinals_and_decimals() {
        assert_eq!(
            split("1. Dünya Savaşı 1914'te başladı. Enflasyon 3,5 puan, faiz 2.5 oldu. Yıl 1923. Sonra cumhuriyet."),
            [
                "1. Dünya Savaşı 1914'te başladı. ",
                "Enflasyon 3,5 puan, faiz 2.5 oldu. ",
                "Yıl 1923. ",
                "Sonra cumhuriyet."
            ]
        );
    }

    #[test]
    fn quotations_are_weak_boundaries() {
        let text = "Putin, \"Birlikte vakit geçirdik. Törenlere katıldık\" dedi. Sonra ayrıldı.";
        assert_eq!(
            texts(text, &sentences(text, false)),
            [
                "Putin, \"Birlikte vakit geçirdik. Törenlere katıldık\" dedi. ",
                "Sonra ayrıldı."
            ]
        );
        assert_eq!(
            split(text),
            [
                "Putin, \"Birlikte vakit geçirdik. ",
                "Törenlere katıldık\" dedi. ",
                "Sonra ayrıldı."
            ]
        );
    }

    #[test]
    fn sentence_ending_inside_a_closing_quote() {
        assert_eq!(
            split("O \"Geldik.\" Dedi ki gitti."),
            ["O \"Geldik.\" ", "Dedi ki gitti."]
        );
    }

    #[test]
    fn paragraph_mode_keeps_a_fitting_paragraph_whole() {
        let text = "Bir. İki. Üç.";
        let chunks = chunk(text, Unit::Paragraph, 100, &|s| s.len());
        assert_eq!(chunks, vec![0..text.len()]);
    }

    #[test]
    fn paragraph_mode_packs_sentences_under_budget() {
        let text = "Birinci cümle. İkinci cümle. Üçüncü cümle.";
        let chunks = chunk(text, Unit::Paragraph, 32, &|s| s.len());
        assert_eq!(
            texts(text, &chunks),
            ["Birinci cümle. İkinci cümle. ", "Üçüncü cümle."]
        );
    }

    fn strong(text: &str) -> Vec<String> {
        texts(text, &sentences(text, false))
    }

    #[test]
    fn a_double_quote_for_an_apostrophe_does_not_open_a_quotation() {
        assert_eq!(
            strong("Canlıların yüzde 75\"i yok oldu. Beşiktaş\"a gitti. Ankara\"da kaldı. Döndü."),
            [
                "Canlıların yüzde 75\"i yok oldu. ",
                "Beşiktaş\"a gitti. ",
                "Ankara\"da kaldı. ",
                "Döndü."
            ]
        );
    }

    #[test]
    fn a_closing_quote_with_a_suffix_closes_the_quotation() {
        assert_eq!(
            strong("\"Kara Kitap\"ı okudum. Sonra \"Beyaz Kale\"yi aldım. Uyudum."),
            [
                "\"Kara Kitap\"ı okudum. ",
                "Sonra \"Beyaz Kale\"yi aldım. ",
                "Uyudum."
            ]
        );
    }

    #[test]
    fn an_apostrophe_quote_inside_a_quotation_leaves_it_open() {
        let text = "O, \"Beşiktaş\"a gittik. Maç güzeldi\" dedi. Sonra döndü.";
        assert_eq!(
            strong(text),
            [
                "O, \"Beşiktaş\"a gittik. Maç güzeldi\" dedi. ",
                "Sonra döndü."
            ]
        );
        let bounds = sentence_boundaries(text);
        assert_eq!(bounds.iter().filter(|b| b.weak).count(), 1);
    }

    #[test]
    fn a_single_quote_opens_a_sentence() {
        assert_eq!(
            split("Komutan geldi. 'Ayağa kalk' dedi. 'Tamam' dedim."),
            ["Komutan geldi. ", "'Ayağa kalk' dedi. ", "'Tamam' dedim."]
        );
    }

    #[test]
    fn sentence_units_cut_a_quotation_at_its_sentence_ends() {
        let text = "Putin, \"Birlikte vakit geçirdik. Törenlere katıldık\" dedi. Sonra ayrıldı.";
        let want = [
            "Putin, \"Birlikte vakit geçirdik. ",
            "Törenlere katıldık\" dedi. ",
            "Sonra ayrıldı.",
        ];
        for unit in [Unit::Sentence, Unit::WholeSentence] {
            assert_eq!(texts(text, &chunk(text, unit, 1000, &|s| s.len())), want);
        }
        // The paragraph path keeps the quotation whole while it fits.
        let chunks = chunk(text, Unit::Paragraph, 70, &|s| s.len());
        assert_eq!(
            texts(text, &chunks),
            [
                "Putin, \"Birlikte vakit geçirdik. Törenlere katıldık\" dedi. ",
                "Sonra ayrıldı."
            ]
        );
    }

    #[test]
    fn chunks_tile_the_paragraph() {
        let cases = [
            "Hakan\"ın bilgisayarı incelendi. \"TRT 2016\"da peşkeş çekti.\" Dedi. Bitti.",
            "\"Açık kalan tırnak. Hiç kapanmıyor. Sonu yok",
            "Yüzde 5\". \"\" . \" \"A. B\"c. 'd' E.",
        ];
        for text in cases {
            for unit in [Unit::Paragraph, Unit::Sentence, Unit::WholeSentence] {
                for budget in [4, 20, 1000] {
                    let chunks = chunk(text, unit, budget, &|s| s.len());
                    assert_eq!(texts(text, &chunks).concat(), text, "{unit:?} {budget}");
                }
            }
        }
    }

    #[test]
    fn a_long_unpunctuated_run_is_cut_at_words() {
        let text = "kelime ".repeat(50);
        let chunks = chunk(&text, Unit::Sentence, 40, &|s| s.len());
        assert!(chunks.len() > 5);
        assert!(chunks.iter().all(|r| r.len() <= 40));
        assert_eq!(texts(&text, &chunks).concat(), text);
    }
}
