//! Numbers: every number of the Turkish source comes back in the English translation with the
//! same value, and the translation brings no number the source lacks.
//!
//! A wrong number is the costliest error a news translation can make, and the easiest to miss
//! when reading the English alone. Both sides are read into [`Quantity`]s (a value, what kind of
//! number it is, where it stands) by rules that know each language's forms: Turkish `3,5`,
//! `1.250.000`, `%12`, `yüzde 12`, `2,5 milyar`, `iki yüz elli`, `3'üncü`, `3. kez`,
//! `3 Eylül'de`, `03.09.2025`, `saat 14.30`, `1990'larda`; English `3.5`, `1,250,000`, `12 per
//! cent`, `$2.5bn`, `two hundred and fifty`, `3rd`, `September 3`, `2:30 p.m.`, `1990s`.
//!
//! Matching is by value and forgiving where human translators legitimately differ: `1,5
//! milyon`, `1.5 million` and `1,500,000` are one value; a date matches a date with the same
//! day and month (the year is a number of its own); a clock time matches in 12- or 24-hour form;
//! a year range `2015-16` reads as 2015 and 2016. Each distinct value must be present on the
//! other side; beyond that, only a value the source writes in digits more often than the
//! translation has it in any form is reported (`Ali (19) ve Veli (19)` against `Ali () and
//! Veli (19)`): translators merge and repeat words, rarely digits.
//!
//! A spelled-out one (`bir`, `one`, `birinci`, `first`) is *weak*: Turkish `bir` is also the
//! indefinite article and English `one` a pronoun, so neither has to be found on the other side,
//! though either may match a `1`. Approximate plurals (`binlerce`, `thousands`, `onlarca`,
//! `dozens`) are not numbers here.

use std::ops::Range;

use super::{Finding, Kind, Lang, Span};

/// What kind of number a [`Quantity`] is. Matching is by value; the kind shapes how dates and
/// clock times match and how a finding describes the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QKind {
    /// A count or amount: `3,5`, `1.250.000`, `2,5 milyar`, `üç`, `1.5 million`.
    Plain,
    /// `%12`, `yüzde 12`, `12 per cent`.
    Percent,
    /// `3'üncü`, `3. kez`, `üçüncü`, `3rd`, `third`.
    Ordinal,
    /// A plain integer from 1000 to 2100: `2025'te`.
    Year,
    /// `1990'larda`, `90'lı yıllar`, `1990s`, `'90s`.
    Decade,
    /// A day of a month (`3 Eylül`, `03.09.2025`, `Sept. 3`); the year, if any, is a quantity
    /// of its own.
    Date { day: u8, month: u8 },
    /// A clock time, 24-hour: `14.30`, `saat 3'te`, `2:30 p.m.`.
    Time { hour: u8, minute: u8 },
}

/// One number found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    /// The value: scaled (`2,5 milyar` is 2.5e9); the day for a date; `hour + minute / 100` for
    /// a time (14.30).
    pub value: f64,
    pub kind: QKind,
    /// Byte range in the text, including the words that make the number (`yüzde 12`,
    /// `2,5 milyar`, `3 Eylül'de`).
    pub span: Range<usize>,
    /// Written in words (`üç`, `three`), not digits.
    pub spelled: bool,
    /// A second reading of an ambiguous form: `5m` is 5 (metres) or 5 million, `10k` 10 or
    /// 10,000, `FY17` 17 or 2017.
    pub alt: Option<f64>,
    /// Need not be found on the other side, though it may match there: a spelled-out one or
    /// zero, a number word in an idiom (`her iki` both, `iki katı` double, `kılı kırk yaran`),
    /// in a name (`Magnificent Seven`), or a possessive form (`ikisi` the two of them).
    pub weak: bool,
}

impl Quantity {
    fn new(value: f64, kind: QKind, span: Range<usize>) -> Quantity {
        Quantity {
            value,
            kind,
            span,
            spelled: false,
            alt: None,
            weak: false,
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        std::iter::once(self.value).chain(self.alt)
    }

    /// The value in words a reader checks against: `2.5 billion`, `12%`, `14:30`, `3 September`.
    pub fn describe(&self) -> String {
        match self.kind {
            QKind::Date { day, month } => format!("{day} {}", MONTHS_EN[usize::from(month) - 1]),
            QKind::Time { hour, minute } => format!("{hour}:{minute:02}"),
            QKind::Percent => format!("{}%", plain(self.value)),
            QKind::Decade => format!("{}s", plain(self.value)),
            QKind::Ordinal => format!("{}{}", plain(self.value), ordinal_suffix(self.value)),
            QKind::Plain | QKind::Year => plain(self.value),
        }
    }
}

/// A value as a person writes it: `2.5 billion`, `1.25 million`, `250000`, `3.5`.
fn plain(v: f64) -> String {
    let trim = |x: f64| {
        let s = format!("{:.6}", x);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match v.abs() {
        a if a >= 1e12 => format!("{} trillion", trim(v / 1e12)),
        a if a >= 1e9 => format!("{} billion", trim(v / 1e9)),
        a if a >= 1e6 => format!("{} million", trim(v / 1e6)),
        _ => trim(v),
    }
}

fn ordinal_suffix(v: f64) -> &'static str {
    let n = v as u64;
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// Whether two values are the same number (exact up to floating-point noise).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Whether `a` and `b` say the same number, forgiving the forms translators change: a date
/// against a date compares day and month; a clock time matches 12- or 24-hour forms and, on the
/// hour, a bare hour; a decade matches with or without its century.
fn matches(a: &Quantity, b: &Quantity) -> bool {
    match (a.kind, b.kind) {
        (QKind::Date { day, month }, QKind::Date { day: d, month: m }) => day == d && month == m,
        (QKind::Date { day, .. }, _) => b.values().any(|v| same(v, f64::from(day))),
        (_, QKind::Date { day, .. }) => a.values().any(|v| same(v, f64::from(day))),
        (QKind::Time { hour, minute }, QKind::Time { hour: h, minute: m }) => {
            hour % 12 == h % 12 && minute == m
        }
        (QKind::Time { hour, minute }, _) => time_matches(hour, minute, b),
        (_, QKind::Time { hour, minute }) => time_matches(hour, minute, a),
        (QKind::Decade, QKind::Decade) => {
            same(a.value, b.value) || (a.value % 100.0 == b.value % 100.0)
        }
        _ => a.values().any(|v| b.values().any(|w| same(v, w))),
    }
}

/// Whether a number `q` reads as the clock time `hour:minute` (`14.30` as a decimal, `3` for
/// 3 o'clock).
fn time_matches(hour: u8, minute: u8, q: &Quantity) -> bool {
    let (h, m) = (f64::from(hour), f64::from(minute));
    let h12 = f64::from(hour % 12);
    q.values().any(|v| {
        same(v, h + m / 100.0) || same(v, h12 + m / 100.0) || (minute == 0 && same(v, h12))
    })
}

/// Whether `q` is found among `others`, with the equivalences of [`matches`]: `1,5 milyon` is
/// found in `1.5 million`, `3 Eylül` in `September 3`, `saat 14.30` in `2:30 p.m.`.
pub fn found_in(q: &Quantity, others: &[Quantity]) -> bool {
    others.iter().any(|o| matches(q, o))
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokKind {
    Num,
    Word,
    Sym(char),
}

/// A run of digits (with inner `.`, `,`, `:`), of letters, or one other character. A number or
/// word may carry a suffix: after an apostrophe (`2025'te`, `Eylül'de`), or letters glued to
/// digits (`3rd`, `1990s`, `5bn`). `body` ends the number or word, `end` the suffix.
#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: TokKind,
    start: usize,
    body: usize,
    end: usize,
    /// Whitespace (or the start of the text) comes before it.
    gap: bool,
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

fn tokenize(text: &str) -> Vec<Tok> {
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| cs.get(i).map(|&(_, c)| c);
    let pos = |i: usize| cs.get(i).map_or(text.len(), |&(p, _)| p);
    let is = |i: usize, f: fn(char) -> bool| at(i).is_some_and(f);
    let mut toks = Vec::new();
    let (mut i, mut gap) = (0, true);
    while let Some(c) = at(i) {
        if c.is_whitespace() {
            (gap, i) = (true, i + 1);
            continue;
        }
        let start = i;
        let kind = if c.is_ascii_digit() {
            while is(i, |c| c.is_ascii_digit())
                || (is(i, |c| matches!(c, '.' | ',' | ':')) && is(i + 1, |c| c.is_ascii_digit()))
            {
                i += 1;
            }
            TokKind::Num
        } else if c.is_alphabetic() {
            while is(i, char::is_alphabetic) {
                i += 1;
            }
            TokKind::Word
        } else {
            i += 1;
            TokKind::Sym(c)
        };
        let body = i;
        if kind != TokKind::Sym(c) {
            let glued = kind == TokKind::Num && is(i, char::is_alphabetic);
            if glued || (is(i, is_apostrophe) && is(i + 1, char::is_alphabetic)) {
                i += 1;
                while is(i, char::is_alphabetic) {
                    i += 1;
                }
            }
        }
        let (start, body, end) = (pos(start), pos(body), pos(i));
        toks.push(Tok {
            kind,
            start,
            body,
            end,
            gap,
        });
        gap = false;
    }
    toks
}

/// Lower case, with Turkish dotted and dotless i on the Turkish side.
fn lower(s: &str, lang: Lang) -> String {
    s.chars()
        .flat_map(|c| match (lang, c) {
            (Lang::Tr, 'I') => vec!['ı'],
            (Lang::Tr, 'İ') => vec!['i'],
            _ => c.to_lowercase().collect(),
        })
        .collect()
}

/// The tokens of one text, with the lookups the rules need.
struct Cx<'a> {
    text: &'a str,
    toks: Vec<Tok>,
    lang: Lang,
}

impl Cx<'_> {
    fn tok(&self, i: usize) -> Option<Tok> {
        self.toks.get(i).copied()
    }

    /// The lower-cased body of word token `i`.
    fn word(&self, i: usize) -> Option<String> {
        let t = self.tok(i).filter(|t| t.kind == TokKind::Word)?;
        Some(lower(&self.text[t.start..t.body], self.lang))
    }

    /// The lower-cased word token `i` with its suffix, apostrophe dropped (`eylülde`).
    fn word_full(&self, i: usize) -> Option<String> {
        let t = self.tok(i).filter(|t| t.kind == TokKind::Word)?;
        Some(lower(&self.word_text(t), self.lang))
    }

    fn word_text(&self, t: Tok) -> String {
        let body = &self.text[t.start..t.body];
        format!("{body}{}", self.suffix(t))
    }

    /// The suffix of a token, apostrophe dropped, lower-cased.
    fn suffix(&self, t: Tok) -> String {
        lower(
            self.text[t.body..t.end].trim_start_matches(is_apostrophe),
            self.lang,
        )
    }

    /// Whether token `i` is the symbol `c`, touching the token before it.
    fn sym(&self, i: usize, c: char) -> bool {
        self.tok(i).is_some_and(|t| t.kind == TokKind::Sym(c))
    }

    /// The text after byte `at`, whitespace skipped, lower-cased.
    fn rest_after(&self, at: usize) -> String {
        self.text[at..]
            .trim_start()
            .chars()
            .take(6)
            .collect::<String>()
            .to_lowercase()
    }
}

// ---------------------------------------------------------------------------------------------
// Words

/// The month names of each language, January first.
const MONTHS_TR: [&str; 12] = [
    "ocak", "şubat", "mart", "nisan", "mayıs", "haziran", "temmuz", "ağustos", "eylül", "ekim",
    "kasım", "aralık",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The month word token `i` names (`Eylül'de`, `September`, `Sept`), 1-based.
fn month(cx: &Cx, i: usize) -> Option<u8> {
    let t = cx.tok(i).filter(|t| t.kind == TokKind::Word)?;
    let found = match cx.lang {
        Lang::Tr => {
            let w = cx.word_full(i)?;
            MONTHS_TR.iter().position(|m| w.starts_with(m))
        }
        Lang::En => {
            let w = &cx.text[t.start..t.body];
            let capital = w.starts_with(|c: char| c.is_uppercase());
            let abbr = w.len() >= 3 && (w.len() <= 4 || w.len() == 9 || w == "Sept");
            MONTHS_EN.iter().position(|m| {
                capital && (*m == w || (abbr && m.starts_with(w) && w != "Ma" && w.len() < m.len()))
            })
        }
    };
    found.map(|m| m as u8 + 1)
}

/// One number word's part in a spelled number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum W {
    /// 0-90: adds.
    Add(u64),
    /// `yüz`, `hundred`, `dozen`: multiplies what came since the last scale.
    Mul(u64),
    /// `bin`, `milyon`, `thousand`, `million`: closes a group.
    Scale(u64),
}

/// Turkish number words. `dörd` is the stem of `dört` before a vowel (`dörde`, `dördüncü`).
const TR_WORDS: [(&str, W); 26] = [
    ("sıfır", W::Add(0)),
    ("bir", W::Add(1)),
    ("iki", W::Add(2)),
    ("üç", W::Add(3)),
    ("dört", W::Add(4)),
    ("dörd", W::Add(4)),
    ("beş", W::Add(5)),
    ("altı", W::Add(6)),
    ("yedi", W::Add(7)),
    ("sekiz", W::Add(8)),
    ("dokuz", W::Add(9)),
    ("on", W::Add(10)),
    ("yirmi", W::Add(20)),
    ("otuz", W::Add(30)),
    ("kırk", W::Add(40)),
    ("elli", W::Add(50)),
    ("altmış", W::Add(60)),
    ("yetmiş", W::Add(70)),
    ("seksen", W::Add(80)),
    ("doksan", W::Add(90)),
    ("yüz", W::Mul(100)),
    ("bin", W::Scale(1_000)),
    ("milyon", W::Scale(1_000_000)),
    ("milyar", W::Scale(1_000_000_000)),
    ("trilyon", W::Scale(1_000_000_000_000)),
    ("düzine", W::Mul(12)),
];

/// Stems that are also other words when suffixed (`ona` him, `biri` someone, `yüzü` face,
/// `altında` under, `bina` building): these take only ordinal suffixes.
const TR_NO_CASE: &[&str] = &["bir", "on", "yüz", "altı", "yedi", "sıfır"];

/// Case endings a Turkish number word may carry and stay a plain number (`üçe`, `beşten`,
/// `milyonluk`). Possessive `-si` (`ikisi` both), `-li` (`ikili` bilateral) and plurals
/// (`binlerce`) are left out on purpose.
const TR_CASE: &[&str] = &[
    "e", "a", "ye", "ya", "de", "da", "te", "ta", "den", "dan", "ten", "tan", "i", "ı", "u", "ü",
    "yi", "yı", "yu", "yü", "in", "ın", "un", "ün", "le", "la", "yle", "yla", "deki", "daki",
    "teki", "taki", "dir", "dır", "dur", "dür", "tir", "tır", "tur", "tür", "dan", "dır",
];

const TR_ORDINAL: &[&str] = &["inci", "ıncı", "uncu", "üncü", "nci", "ncı", "ncu", "ncü"];

/// Other endings that leave a number word a number, but one a translation may well render
/// without it: `ikisi` (the two of them, both), `üçlü` (trio), `ikişer` (two each).
const TR_LOOSE: &[&str] = &[
    "si", "sı", "su", "sü", "i", "ı", "u", "ü", "e", "a", "li", "lı", "lu", "lü", "şer", "er", "ar",
];

/// One number word read: its part in the number, whether it is an ordinal (`üçüncü`), whether
/// a suffix ends the number with it, whether it is weak (`ikisi`, `second`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct WordRead {
    part: W,
    ordinal: bool,
    ends: bool,
    weak: bool,
}

/// Reads a Turkish number word (lower-cased, suffix included).
fn tr_word(w: &str) -> Option<WordRead> {
    let read = |part, ordinal, ends, weak| WordRead {
        part,
        ordinal,
        ends,
        weak,
    };
    if w == "ilk" {
        // `first`: weak, like `birinci`.
        return Some(read(W::Add(1), true, true, true));
    }
    for &(stem, part) in &TR_WORDS {
        let Some(rest) = w.strip_prefix(stem) else {
            continue;
        };
        if rest.is_empty() {
            return (stem != "dörd").then(|| read(part, false, false, false));
        }
        if let Some(o) = TR_ORDINAL.iter().find(|o| rest.starts_with(*o)) {
            // `ikincil` secondary, `üçüncülük` third place: a translation may say neither.
            let weak = rest[o.len()..].starts_with('l');
            return Some(read(part, true, true, weak));
        }
        let plural = rest.starts_with("lar") || rest.starts_with("ler");
        let case_ok = match stem {
            "bin" => ["e", "i", "in", "den", "le"].contains(&rest),
            // Not `milyoner` (millionaire), `milyarder`, `milyonlarca` (millions of).
            "milyon" | "milyar" | "trilyon" | "düzine" => {
                !plural && !rest.starts_with("er") && !rest.starts_with("der")
            }
            s => !TR_NO_CASE.contains(&s) && TR_CASE.contains(&rest),
        };
        if case_ok {
            return Some(read(part, false, true, false));
        }
        let loose = !plural && TR_LOOSE.iter().any(|l| rest.starts_with(l)) && rest.len() <= 8;
        // `altı`, `yedi` only as `altısı`, `yediyi`: `altında` is under, `yediği` eaten.
        let sy = rest.starts_with(['s', 'y']);
        let ok_stem = match stem {
            "bir" | "on" | "bin" | "milyon" | "milyar" | "trilyon" => false,
            "altı" | "yedi" => sy,
            _ => true,
        };
        if loose && ok_stem {
            return Some(read(part, false, true, true));
        }
    }
    None
}

const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const EN_ORDINALS: [&str; 20] = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];

/// English words that stand for a number without being one (weak but for `twice`).
const EN_LOOSE: [&str; 5] = ["twice", "both", "double", "triple", "quadruple"];

/// Reads an English number word (lower-cased): its part and whether it is an ordinal.
fn en_word(w: &str) -> Option<(W, bool)> {
    match w {
        "twice" | "both" | "double" => return Some((W::Add(2), false)),
        "triple" => return Some((W::Add(3), false)),
        "quadruple" => return Some((W::Add(4), false)),
        _ => {}
    }
    if let Some(n) = EN_UNITS.iter().position(|u| *u == w) {
        return Some((W::Add(n as u64), false));
    }
    if let Some(n) = EN_ORDINALS.iter().position(|u| *u == w) {
        return Some((W::Add(n as u64), true));
    }
    for (k, t) in EN_TENS.iter().enumerate() {
        let n = 20 + 10 * k as u64;
        if *t == w {
            return Some((W::Add(n), false));
        }
        if w == format!("{}ieth", &t[..t.len() - 1]) {
            return Some((W::Add(n), true));
        }
    }
    let part = match w.trim_end_matches("th") {
        "decade" | "decades" => W::Mul(10),
        "hundred" => W::Mul(100),
        "dozen" => W::Mul(12),
        "thousand" => W::Scale(1_000),
        "million" => W::Scale(1_000_000),
        "billion" => W::Scale(1_000_000_000),
        "trillion" => W::Scale(1_000_000_000_000),
        _ => return None,
    };
    Some((part, w.ends_with("th")))
}

/// The scale word at token `i` after a number in digits (`2,5 milyar`, `1.5 million`, `5 bn`).
fn scale_word(cx: &Cx, i: usize) -> Option<f64> {
    let w = cx.word_full(i)?;
    match cx.lang {
        Lang::Tr => {
            // After digits a plural is still a scale: `700 binleri` is 700 thousand.
            let plural = ["binler", "milyonlar", "milyarlar"]
                .iter()
                .any(|p| w.starts_with(p));
            match tr_word(&w) {
                _ if plural => Some(if w.starts_with("bin") { 1e3 } else { 1e6 }),
                Some(WordRead {
                    part: W::Scale(s),
                    ordinal: false,
                    ..
                }) => Some(s as f64),
                _ => None,
            }
        }
        Lang::En => match w.as_str() {
            "thousand" => Some(1e3),
            "million" | "mn" | "mln" => Some(1e6),
            "billion" | "bn" => Some(1e9),
            "trillion" | "tn" => Some(1e12),
            _ => None,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers in digits

/// What the digits of one number token say.
#[derive(Debug, Clone, PartialEq)]
enum Digits {
    Value(f64),
    Time(u8, u8),
    /// Day, month, year: `03.09.2025`.
    Date(u8, u8, Option<f64>),
    /// Not one number: `3:2`, `1,2,3`; the parts, as byte ranges within the token.
    Parts(Vec<Range<usize>>),
}

/// Reads the digits of a number token by the conventions of `lang`: Turkish `1.250.000,5`,
/// English `1,250,000.5`; `14:30` (and Turkish `14.30`) a time, `03.09.2025` a date.
fn read_digits(raw: &str, lang: Lang) -> Digits {
    let (group, decimal) = match lang {
        Lang::Tr => ('.', ','),
        Lang::En => (',', '.'),
    };
    if let Some(d) = read_clock(raw, lang) {
        return d;
    }
    let dots: Vec<&str> = raw.split('.').collect();
    if dots.len() == 3 && !raw.contains([',', ':']) {
        let (d, m) = (dots[0].parse().unwrap_or(0), dots[1].parse().unwrap_or(0));
        if (1..=31).contains(&d) && (1..=12).contains(&m) && matches!(dots[2].len(), 2 | 4) {
            let y: f64 = dots[2].parse().unwrap_or(0.0);
            let y = if y < 100.0 { y + 2000.0 } else { y };
            return Digits::Date(d, m, Some(y));
        }
    }
    let (int, frac) = raw.split_once(decimal).unwrap_or((raw, ""));
    let groups: Vec<&str> = int.split(group).collect();
    let grouped =
        groups.len() == 1 || groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3);
    let clean = !frac.contains([group, decimal, ':']) && !int.contains([decimal, ':']);
    if clean && grouped {
        return Digits::Value(
            format!("{}.{frac}0", groups.concat())
                .parse()
                .unwrap_or(0.0),
        );
    }
    if clean && groups.len() == 2 && frac.is_empty() {
        // A stray decimal point of the other convention: Turkish `2.5`, English `3,5`.
        return Digits::Value(
            format!("{}.{}", groups[0], groups[1])
                .parse()
                .unwrap_or(0.0),
        );
    }
    parts(raw)
}

/// `14:30` on either side, `14.30` in Turkish: a clock time.
fn read_clock(raw: &str, lang: Lang) -> Option<Digits> {
    let sep = if raw.contains(':') { ':' } else { '.' };
    if sep == '.' && lang == Lang::En {
        return None;
    }
    let (h, m) = raw.split_once(sep)?;
    if m.contains(['.', ',', ':']) || (sep == ':' && h.contains(['.', ','])) {
        return (sep == ':').then(|| parts(raw));
    }
    let (hour, minute): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    if m.len() == 2 && h.len() <= 2 && hour <= 24 && minute < 60 {
        Some(Digits::Time(hour, minute))
    } else {
        (sep == ':').then(|| parts(raw))
    }
}

fn parts(raw: &str) -> Digits {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in raw.char_indices().chain([(raw.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    Digits::Parts(out)
}

// ---------------------------------------------------------------------------------------------
// Extraction

/// Every number in `text`, read by the conventions of `lang`, in text order.
pub fn extract(text: &str, lang: Lang) -> Vec<Quantity> {
    let cx = Cx {
        text,
        toks: tokenize(text),
        lang,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < cx.toks.len() {
        let t = cx.toks[i];
        let next = match t.kind {
            TokKind::Num => digits_at(&cx, i, &mut out),
            TokKind::Word => words_at(&cx, i, &mut out),
            TokKind::Sym(_) => None,
        };
        i = next.unwrap_or(i + 1);
    }
    soften(text, lang, &mut out);
    share_scale(text, lang, &mut out);
    out
}

/// In a range the scale word comes once: the `2` of `2-2.5 million`, `2 ile 3 milyar` also
/// reads as 2 million.
fn share_scale(text: &str, lang: Lang, qs: &mut [Quantity]) {
    for k in 1..qs.len() {
        let (a, b) = (&qs[k - 1], &qs[k]);
        if a.span.end > b.span.start {
            continue;
        }
        let between = text[a.span.end..b.span.start].trim();
        let joined =
            ["-", "–", "to", "or", "and", "ile", "ila", "veya", "ya da"].contains(&between);
        let digits = &text[b.span.clone()];
        let first = tokenize(digits)
            .into_iter()
            .find(|t| t.kind == TokKind::Num);
        let mantissa = first.and_then(|t| match read_digits(&digits[t.start..t.body], lang) {
            Digits::Value(m) if m > 0.0 => Some(m),
            _ => None,
        });
        let Some(m) = mantissa.filter(|_| joined && !a.spelled && a.kind == QKind::Plain) else {
            continue;
        };
        let ratio = b.value / m;
        if [1e3, 1e6, 1e9, 1e12].iter().any(|&r| same(ratio, r)) && a.alt.is_none() {
            qs[k - 1].alt = Some(a.value * ratio);
        }
    }
}

/// Marks as weak the spelled numbers a translation renders without a number: idioms (`her
/// iki` both, `iki katı` double, `dört bir yan` all around, `kılı kırk yaran` meticulous, `yedi.`
/// ate,
/// fractions `dörtte bir` a quarter) and names (a capitalized number word inside a sentence:
/// `Magnificent Seven`, `Fifth Avenue`).
fn soften(text: &str, lang: Lang, qs: &mut [Quantity]) {
    for k in 0..qs.len() {
        let q = &qs[k];
        if !q.spelled {
            continue;
        }
        let before = lower(word_before(text, q.span.start), lang);
        let after = lower(word_after(text, q.span.end), lang);
        let shown = lower(&text[q.span.clone()], lang);
        let capital = text[q.span.clone()].starts_with(char::is_uppercase);
        let idiom = lang == Lang::Tr
            && (before == "her" && q.value == 2.0
                || before == "kılı"
                || ["kat", "taraflı", "yönlü"].iter().any(|a| after.starts_with(a))
                || (q.value == 4.0 && after == "bir")
                // `yemek yedi`: he ate, at the end of its clause.
                || (shown == "yedi" && after.is_empty()));
        let fraction = lang == Lang::Tr
            && ["de", "da", "te", "ta"].iter().any(|l| shown.ends_with(l))
            && (after.starts_with("bir") || tr_word(&after).is_some());
        let name = capital && !sentence_start(text, q.span.start);
        let numerator = fraction
            && qs
                .get(k + 1)
                .is_some_and(|n| n.spelled && text[q.span.end..n.span.start].trim().is_empty());
        if idiom || name || fraction {
            qs[k].weak = true;
        }
        if numerator {
            qs[k + 1].weak = true;
        }
    }
}

/// The word (letters) right before byte `at`, punctuation and spaces skipped.
fn word_before(text: &str, at: usize) -> &str {
    let head = text[..at].trim_end_matches(|c: char| !c.is_alphabetic());
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(0, |(p, c)| p + c.len_utf8());
    &head[start..]
}

/// The word (letters) right after byte `at`, spaces skipped.
fn word_after(text: &str, at: usize) -> &str {
    let tail = text[at..].trim_start();
    let end = tail
        .find(|c: char| !c.is_alphabetic())
        .unwrap_or(tail.len());
    &tail[..end]
}

/// Whether byte `at` begins a sentence: only spaces, quotes and brackets since the start of
/// the text or a sentence end (`.`, `!`, `?`, `:`, a dash).
fn sentence_start(text: &str, at: usize) -> bool {
    let head = text[..at].trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '“' | '‘' | '(' | '«' | '[')
    });
    head.is_empty() || head.ends_with(['.', '!', '?', ':', '…', '-', '–', '—'])
}

/// Reads the number in digits at token `i` (with what surrounds it: `%`, a scale word, a
/// month, an ordinal or decade suffix) into `out`; returns the next token to read.
fn digits_at(cx: &Cx, i: usize, out: &mut Vec<Quantity>) -> Option<usize> {
    let t = cx.toks[i];
    let raw = &cx.text[t.start..t.body];
    match read_digits(raw, cx.lang) {
        Digits::Parts(ps) => {
            out.extend(ps.into_iter().map(|r| {
                let v = raw[r.clone()].parse().unwrap_or(0.0);
                Quantity::new(v, QKind::Plain, t.start + r.start..t.start + r.end)
            }));
            Some(i + 1)
        }
        Digits::Date(day, month, year) => {
            out.push(Quantity::new(
                f64::from(day),
                QKind::Date { day, month },
                t.start..t.end,
            ));
            if let Some(y) = year {
                out.push(Quantity::new(y, QKind::Year, t.start..t.end));
            }
            Some(i + 1)
        }
        Digits::Time(hour, minute) => {
            let v = f64::from(hour) + f64::from(minute) / 100.0;
            let q = Quantity::new(v, QKind::Time { hour, minute }, t.start..t.end);
            let (q, next) = clock_suffix(cx, i, q);
            out.push(q);
            Some(next)
        }
        Digits::Value(_) if cx.lang == Lang::En && en_dotted_time(cx, i).is_some() => {
            let (hour, minute) = en_dotted_time(cx, i)?;
            let v = f64::from(hour) + f64::from(minute) / 100.0;
            let q = Quantity::new(v, QKind::Time { hour, minute }, t.start..t.end);
            let (q, next) = clock_suffix(cx, i, q);
            out.push(q);
            Some(next)
        }
        Digits::Value(v) => {
            let v = year_range(cx, i, v);
            let (q, next) = value_at(cx, i, v);
            out.push(q);
            Some(next)
        }
    }
}

/// `2015-16` is 2015 to 2016: a two-digit number right after a year and a dash takes the
/// year's century.
fn year_range(cx: &Cx, i: usize, v: f64) -> f64 {
    let t = cx.toks[i];
    let dash = i >= 2 && ['-', '–', '/'].iter().any(|&c| cx.sym(i - 1, c)) && !t.gap;
    if !dash || t.body - t.start != 2 || cx.toks[i - 1].gap {
        return v;
    }
    let p = cx.toks[i - 2];
    let prev = &cx.text[p.start..p.body];
    match prev.parse::<f64>() {
        Ok(y) if p.kind == TokKind::Num && prev.len() == 4 && (1000.0..2100.0).contains(&y) => {
            let century = (y / 100.0).floor() * 100.0;
            let full = century + v;
            if full > y {
                full
            } else {
                v
            }
        }
        _ => v,
    }
}

/// A plain value at token `i`, with its neighbours: scale words, suffixes, percent signs,
/// months, `am`/`pm`. Returns the quantity and the next token to read.
fn value_at(cx: &Cx, i: usize, v: f64) -> (Quantity, usize) {
    let t = cx.toks[i];
    let suffix = cx.suffix(t);
    let mut q = Quantity::new(v, QKind::Plain, t.start..t.end);
    let mut next = i + 1;
    if let Some((date, n)) = date_after(cx, i, v).or_else(|| date_before(cx, i, v)) {
        return (date, n.max(next));
    }
    if let Some(k) = suffix_kind(&suffix, v, cx.lang) {
        q.kind = k;
    }
    if cx.lang == Lang::En {
        glued_scale(cx, i, &suffix, &mut q);
    }
    if let Some(s) = scale_word(cx, next) {
        (q.value, q.span.end, next) = (v * s, cx.toks[next].end, next + 1);
        next = compound(cx, next, s, &mut q);
    }
    next = half(cx, next, &mut q);
    if q.kind == QKind::Plain || q.kind == QKind::Percent {
        next = percent(cx, i, next, &mut q);
    }
    if q.kind == QKind::Plain {
        next = ordinal_dot(cx, next, &mut q);
        if let Some((time, n)) = hour_at(cx, i, next, &q) {
            return (time, n);
        }
        if q.value.fract() == 0.0 && (1000.0..=2100.0).contains(&q.value) {
            q.kind = QKind::Year;
        }
        q.alt = q.alt.or_else(|| short_year(cx, i, v));
    }
    (q, next)
}

/// A year in two digits (`FY17`, `fiscal year 17`, `class of '17`) also reads as the full year.
fn short_year(cx: &Cx, i: usize, v: f64) -> Option<f64> {
    let t = cx.toks[i];
    if t.body - t.start != 2 || i == 0 {
        return None;
    }
    let glued_fy = !t.gap && cx.word(i - 1).is_some_and(|w| w == "fy");
    let apostrophe = !t.gap && (cx.sym(i - 1, '\'') || cx.sym(i - 1, '’'));
    let year = cx.word(i - 1).as_deref() == Some("year");
    let fiscal = i >= 2 && matches!(cx.word(i - 2).as_deref(), Some("fiscal" | "financial"));
    (glued_fy || apostrophe || (year && fiscal))
        .then_some(v + if v <= 40.0 { 2000.0 } else { 1900.0 })
}

/// The kind a suffix on digits gives: `3'üncü`, `3rd` ordinal; `1990'larda`, `1990s` decade.
fn suffix_kind(suffix: &str, v: f64, lang: Lang) -> Option<QKind> {
    let decade = v % 10.0 == 0.0 && v.fract() == 0.0;
    match lang {
        Lang::Tr if TR_ORDINAL.iter().any(|o| suffix.starts_with(o)) => Some(QKind::Ordinal),
        Lang::Tr
            if decade
                && ["lar", "ler", "lı", "li"]
                    .iter()
                    .any(|s| suffix.starts_with(s)) =>
        {
            Some(QKind::Decade)
        }
        Lang::En if ["st", "nd", "rd", "th"].contains(&suffix) => Some(QKind::Ordinal),
        Lang::En if decade && suffix == "s" => Some(QKind::Decade),
        _ => None,
    }
}

/// English scale letters glued to digits: `5bn`, `$5m` (million after a currency sign, else
/// also metres), `10k`.
fn glued_scale(cx: &Cx, i: usize, suffix: &str, q: &mut Quantity) {
    let money = i > 0 && ['$', '£', '€'].iter().any(|&c| cx.sym(i - 1, c));
    match suffix {
        "bn" | "b" => q.value *= 1e9,
        "tn" | "trn" => q.value *= 1e12,
        "mn" | "mln" => q.value *= 1e6,
        "m" if money => q.value *= 1e6,
        "m" => q.alt = Some(q.value * 1e6),
        "k" if money => q.value *= 1e3,
        "k" => q.alt = Some(q.value * 1e3),
        _ => {}
    }
}

/// Further groups of a compound amount: `1 milyon 200 bin` is 1,200,000, `bin 99` 1,099. `scale` is the last
/// scale read; returns the next token to read.
fn compound(cx: &Cx, mut next: usize, mut scale: f64, q: &mut Quantity) -> usize {
    while let Some(t) = cx.tok(next).filter(|t| t.kind == TokKind::Num) {
        let Digits::Value(v) = read_digits(&cx.text[t.start..t.body], cx.lang) else {
            break;
        };
        match scale_word(cx, next + 1) {
            Some(s) if s < scale => {
                (q.value, q.span.end) = (q.value + v * s, cx.toks[next + 1].end);
                (next, scale) = (next + 2, s);
            }
            // `bin 99`, `2 bin 500`, `39 thousand 287`: the last group in digits (not the
            // `10` of `$5 billion 10-year`).
            None if v < scale && v.fract() == 0.0 && t.end == t.body && !cx.sym(next + 1, '-') => {
                (q.value, q.span.end) = (q.value + v, t.end);
                return next + 1;
            }
            _ => break,
        }
    }
    next
}

/// `buçuk` (`iki buçuk` 2.5) and `and a half` (`three-and-a-half`): adds one half.
fn half(cx: &Cx, next: usize, q: &mut Quantity) -> usize {
    let last = match cx.lang {
        Lang::Tr if cx.word_full(next).is_some_and(|w| w.starts_with("buçu")) => next,
        Lang::En => {
            let mut k = next;
            for w in ["and", "a", "half"] {
                k += usize::from(cx.sym(k, '-'));
                if cx.word(k).as_deref() != Some(w) {
                    return next;
                }
                k += 1;
            }
            k - 1
        }
        _ => return next,
    };
    q.value += 0.5;
    q.span.end = cx.toks[last].end;
    last + 1
}

/// `%12`, `% 12`, `yüzde 12` before; `12%`, `12 percent`, `12 per cent` after.
fn percent(cx: &Cx, i: usize, next: usize, q: &mut Quantity) -> usize {
    if i > 0 && (cx.sym(i - 1, '%') || cx.word(i - 1).as_deref() == Some("yüzde")) {
        q.kind = QKind::Percent;
        q.span.start = cx.toks[i - 1].start;
    }
    let after = match (cx.word(next).as_deref(), cx.word(next + 1).as_deref()) {
        _ if cx.sym(next, '%') => 1,
        (Some("percent" | "percentage"), _) => 1,
        (Some("per"), Some("cent")) => 2,
        _ => 0,
    };
    if after > 0 {
        q.kind = QKind::Percent;
        q.span.end = cx.toks[next + after - 1].end;
    }
    next + after
}

/// Turkish `3. kez`: digits, a full stop, then a lower-case word make an ordinal.
fn ordinal_dot(cx: &Cx, next: usize, q: &mut Quantity) -> usize {
    let lower_word = cx.tok(next + 1).is_some_and(|t| {
        t.kind == TokKind::Word && cx.text[t.start..].starts_with(|c: char| c.is_lowercase())
    });
    let dot = cx.sym(next, '.') && !cx.toks[next].gap && q.value.fract() == 0.0;
    if cx.lang == Lang::Tr && dot && lower_word && q.span.end == cx.toks[next].start {
        q.kind = QKind::Ordinal;
        q.span.end = cx.toks[next].end;
        return next + 1;
    }
    next
}

/// A clock hour: Turkish `saat 3'te`, English `3pm`, `3 p.m.`, `3 o'clock`.
fn hour_at(cx: &Cx, i: usize, next: usize, q: &Quantity) -> Option<(Quantity, usize)> {
    let v = q.value;
    if v.fract() != 0.0 || !(0.0..=24.0).contains(&v) {
        return None;
    }
    let t = cx.toks[i];
    let saat = i > 0 && cx.word(i - 1).as_deref() == Some("saat");
    let (pm, end, next) = match cx.lang {
        Lang::Tr if saat => (false, t.end, next),
        Lang::En => {
            let (pm, len) = meridiem(cx, t)?;
            let (end, n) = skip_to(cx, t.body + len);
            (pm, end, n.max(next))
        }
        Lang::Tr => return None,
    };
    let hour = (v as u8 % 12) + if pm { 12 } else { 0 };
    let hour = if pm || v as u8 == 12 || cx.lang == Lang::Tr {
        hour.max(v as u8)
    } else {
        hour
    };
    let kind = QKind::Time { hour, minute: 0 };
    let start = if saat { cx.toks[i - 1].start } else { t.start };
    Some((Quantity::new(f64::from(hour), kind, start..end), next))
}

/// `am`, `pm`, `a.m.`, `p.m.`, `o'clock` after the digits ending at byte `t.body`: whether
/// afternoon, and the length of the marker from `t.body` (spaces included).
fn meridiem(cx: &Cx, t: Tok) -> Option<(bool, usize)> {
    let after = &cx.text[t.body..];
    let spaces = after.len() - after.trim_start().len();
    let rest = cx.rest_after(t.body);
    for (mark, pm) in [("a.m.", false), ("p.m.", true), ("am", false), ("pm", true)] {
        let tail = rest.strip_prefix(mark).map(|t| t.chars().next());
        if tail.is_some_and(|c| !c.is_some_and(char::is_alphabetic)) {
            return Some((pm, spaces + mark.len()));
        }
    }
    let o_clock = rest.starts_with("o'cloc") || rest.starts_with("o’cloc");
    o_clock.then(|| {
        (
            false,
            spaces + after.trim_start().find('k').unwrap_or(0) + 1,
        )
    })
}

/// The token that starts at or after byte `at`, and the end of the token covering `at`.
fn skip_to(cx: &Cx, at: usize) -> (usize, usize) {
    let n = cx
        .toks
        .iter()
        .position(|t| t.start >= at)
        .unwrap_or(cx.toks.len());
    let end = n.checked_sub(1).map_or(at, |k| cx.toks[k].end.max(at));
    (end.min(cx.text.len()), n)
}

/// `3 Eylül`, `3 September`, `3rd of September`: a day then a month.
fn date_after(cx: &Cx, i: usize, v: f64) -> Option<(Quantity, usize)> {
    let day = day_of(v)?;
    let t = cx.toks[i];
    let suffix = cx.suffix(t);
    let of = cx.lang == Lang::En && cx.word(i + 1).as_deref() == Some("of");
    let m_at = if of { i + 2 } else { i + 1 };
    let ordinal_ok = suffix.is_empty() || ["st", "nd", "rd", "th"].contains(&suffix.as_str());
    let month = month(cx, m_at).filter(|_| ordinal_ok || cx.lang == Lang::Tr)?;
    let span = t.start..cx.toks[m_at].end;
    Some((Quantity::new(v, QKind::Date { day, month }, span), m_at + 1))
}

/// `September 3`, `Sept. 3`, `September 3rd`: a month then a day (English).
fn date_before(cx: &Cx, i: usize, v: f64) -> Option<(Quantity, usize)> {
    let day = day_of(v)?;
    let t = cx.toks[i];
    let suffix = cx.suffix(t);
    if cx.lang != Lang::En || !(suffix.is_empty() || ["st", "nd", "rd", "th"].contains(&&*suffix)) {
        return None;
    }
    let m_at = if i >= 2 && cx.sym(i - 1, '.') {
        i - 2
    } else {
        i.checked_sub(1)?
    };
    let month = month(cx, m_at)?;
    let span = cx.toks[m_at].start..t.end;
    Some((Quantity::new(v, QKind::Date { day, month }, span), i + 1))
}

fn day_of(v: f64) -> Option<u8> {
    (v.fract() == 0.0 && (1.0..=31.0).contains(&v)).then_some(v as u8)
}

/// A time in digits may still take `pm` (`2.30pm`, `2:30 p.m.`); a Turkish `.`-time only
/// after a full reading. Returns the (possibly shifted) time and the next token.
fn clock_suffix(cx: &Cx, i: usize, mut q: Quantity) -> (Quantity, usize) {
    let t = cx.toks[i];
    let QKind::Time { hour, minute } = q.kind else {
        return (q, i + 1);
    };
    if cx.lang == Lang::Tr {
        if i > 0 && cx.word(i - 1).as_deref() == Some("saat") {
            q.span.start = cx.toks[i - 1].start;
        }
        return (q, i + 1);
    }
    match meridiem(cx, t) {
        Some((pm, len)) => {
            let (end, next) = skip_to(cx, t.body + len);
            let hour = if pm && hour < 12 { hour + 12 } else { hour };
            q.kind = QKind::Time { hour, minute };
            q.span.end = end;
            (q, next.max(i + 1))
        }
        None => (q, i + 1),
    }
}

/// English `2.30pm`: digits with a decimal point read as a clock time when `am`/`pm` follows.
fn en_dotted_time(cx: &Cx, i: usize) -> Option<(u8, u8)> {
    let t = cx.toks[i];
    let (h, m) = cx.text[t.start..t.body].split_once('.')?;
    let (hour, minute): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    let ok = m.len() == 2 && hour <= 12 && minute < 60 && meridiem(cx, t).is_some();
    ok.then_some((hour, minute))
}

/// Reads a spelled number at word token `i` (`iki yüz elli`, `twenty-five`, `a dozen`,
/// `üçüncü`, `bin 99`) into `out`; returns the next token to read, or `None` when `i` is not one.
fn words_at(cx: &Cx, i: usize, out: &mut Vec<Quantity>) -> Option<usize> {
    if let Some(q) = roman(cx, i) {
        out.push(q);
        return Some(i + 1);
    }
    let (mut total, mut cur, mut j) = (0u64, 0u64, i);
    let (mut last, mut words, mut weak) = (None, 0, false);
    if cx.lang == Lang::En && matches!(cx.word(i).as_deref(), Some("a" | "an")) {
        match cx.word(i + 1).as_deref().and_then(en_word) {
            Some((W::Mul(_) | W::Scale(_), _)) => (cur, j) = (1, i + 1),
            _ => return None,
        }
    }
    while let Some(r) = word_part(cx, j) {
        let fits = match r.part {
            W::Add(n) if n < 10 => cur % 10 == 0 && (n > 0 || cur == 0),
            W::Add(_) => cur % 100 == 0,
            // Turkish says `yüz`, `bin`, never `bir yüz` (a face), `bir bin`.
            W::Mul(_) => cur < 100 && !(cx.lang == Lang::Tr && cur == 1),
            W::Scale(s) => {
                (total == 0 || total % (s * 1000) == 0)
                    && !(cx.lang == Lang::Tr && s == 1000 && cur == 1 && total == 0)
            }
        };
        if !fits && last.is_some() {
            break;
        }
        match r.part {
            W::Add(n) => cur += n,
            W::Mul(m) => cur = cur.max(1) * m,
            W::Scale(s) => (total, cur) = (total + cur.max(1) * s, 0),
        }
        (j, last, words, weak) = (j + 1, Some(r), words + 1, weak || r.weak);
        if r.ends {
            break;
        }
        j = joiner(cx, j);
    }
    let last = last?;
    let kind = if last.ordinal {
        QKind::Ordinal
    } else {
        QKind::Plain
    };
    let mut q = Quantity::new(
        (total + cur) as f64,
        kind,
        cx.toks[i].start..cx.toks[j - 1].end,
    );
    // `yüz` alone is as often a face; English `million` alone is not how one says a number.
    let lone_multiplier = words == 1
        && j == i + 1
        && (matches!(last.part, W::Mul(_))
            || cx.lang == Lang::En && matches!(last.part, W::Scale(_)));
    q.spelled = true;
    q.weak = weak || q.value <= 1.0 || lone_multiplier;
    let mut next = j;
    if let (W::Scale(s), false) = (last.part, last.ends) {
        next = compound(cx, next, s as f64, &mut q);
    }
    let next = half(cx, next, &mut q);
    let next = if kind == QKind::Plain {
        percent(cx, i, next, &mut q)
    } else {
        next
    };
    out.push(q);
    Some(next)
}

/// A Roman numeral after a name (`World War I`, `Elizabeth II`) or, in Turkish, before a
/// full stop (`II. Dünya Savaşı`): weak, an ordinal of names more than a number.
fn roman(cx: &Cx, i: usize) -> Option<Quantity> {
    let t = cx.tok(i)?;
    let w = &cx.text[t.start..t.body];
    if w.len() > 5 || t.end > t.body || !w.chars().all(|c| matches!(c, 'I' | 'V' | 'X')) {
        return None;
    }
    let before = word_before(cx.text, t.start);
    let ok = match cx.lang {
        Lang::Tr => cx.sym(i + 1, '.'),
        Lang::En if w == "I" => before == "War",
        Lang::En => before.starts_with(char::is_uppercase) && w.len() > 1 || before == "War",
    };
    let digit = |c| match c {
        'I' => 1,
        'V' => 5,
        _ => 10,
    };
    let digits: Vec<i32> = w.chars().map(digit).collect();
    let value: i32 = (0..digits.len())
        .map(|k| {
            if digits.get(k + 1).is_some_and(|&n| n > digits[k]) {
                -digits[k]
            } else {
                digits[k]
            }
        })
        .sum();
    let mut q = Quantity::new(f64::from(value), QKind::Ordinal, t.start..t.end);
    (q.spelled, q.weak) = (true, true);
    (ok && value > 0).then_some(q)
}

/// The number word at token `j`.
fn word_part(cx: &Cx, j: usize) -> Option<WordRead> {
    match cx.lang {
        Lang::Tr => tr_word(&cx.word_full(j)?),
        Lang::En => {
            let t = cx.tok(j)?;
            let w = cx.word(j)?;
            let (part, ordinal) = en_word(&w)?;
            Some(WordRead {
                part,
                ordinal,
                ends: ordinal || t.end > t.body || EN_LOOSE.contains(&w.as_str()),
                weak: w == "second" || EN_LOOSE[1..].contains(&w.as_str()),
            })
        }
    }
}

/// Skips what may join English number words (`twenty-five`, `hundred and five`): returns
/// the token after the joiner when a number word follows it, else `j`.
fn joiner(cx: &Cx, j: usize) -> usize {
    if cx.lang != Lang::En {
        return j;
    }
    let hyphen = cx.sym(j, '-') && cx.tok(j + 1).is_some_and(|t| !t.gap);
    let and = cx.word(j).as_deref() == Some("and");
    if (hyphen || and) && word_part(cx, j + 1).is_some() {
        j + 1
    } else {
        j
    }
}

// ---------------------------------------------------------------------------------------------
// The check

/// The first of each distinct value among the numbers of `qs` that `other` lacks.
fn unmatched<'a>(qs: &'a [Quantity], other: &[Quantity]) -> Vec<&'a Quantity> {
    let mut out: Vec<&Quantity> = Vec::new();
    for q in qs.iter().filter(|q| !q.weak && !found_in(q, other)) {
        if !out.iter().any(|o| matches(o, q)) {
            out.push(q);
        }
    }
    out
}

/// The numbers written in digits more often in `src` than `tgt` has them in any form (a
/// repeated `19` of which the translation kept one): the first occurrence of each, with both
/// counts. Values missing altogether are left to [`unmatched`].
fn fewer<'a>(src: &'a [Quantity], tgt: &[Quantity]) -> Vec<(&'a Quantity, usize, usize)> {
    let strong = |q: &&Quantity| !q.weak && !q.spelled;
    let mut out: Vec<(&Quantity, usize, usize)> = Vec::new();
    for q in src.iter().filter(strong) {
        if out.iter().any(|(o, _, _)| matches(o, q)) {
            continue;
        }
        let ns = src.iter().filter(strong).filter(|o| matches(q, o)).count();
        let nt = tgt.iter().filter(|o| matches(q, o)).count();
        if nt > 0 && nt < ns {
            out.push((q, ns, nt));
        }
    }
    out
}

/// `"2,5 milyar" (2.5 billion)`: the text, and the value where it reads differently.
fn quote(text: &str, q: &Quantity) -> String {
    let shown = &text[q.span.clone()];
    let value = q.describe();
    if value == shown {
        format!("\"{shown}\"")
    } else {
        format!("\"{shown}\" ({value})")
    }
}

/// The number check: each number of `source` (Turkish) must be found in `translation`
/// (English), and each number of the translation in the source. When as many source numbers
/// are missing as translation numbers are extra, they are reported in pairs, as changed
/// values; otherwise each on its own.
pub fn check(source: &str, translation: &str, out: &mut Vec<Finding>) {
    let src = extract(source, Lang::Tr);
    let tgt = extract(translation, Lang::En);
    let missing = unmatched(&src, &tgt);
    let extra = unmatched(&tgt, &src);
    let finding = |message, s: Option<&Quantity>, t: Option<&Quantity>| Finding {
        kind: Kind::Number,
        message,
        source: s.map(|q| Span::of(source, q.span.start, q.span.end)),
        translation: t.map(|q| Span::of(translation, q.span.start, q.span.end)),
    };
    for (q, ns, nt) in fewer(&src, &tgt) {
        let message = format!(
            "{} occurs {ns} times in the source but {nt} {} in the translation",
            quote(source, q),
            if nt == 1 { "time" } else { "times" }
        );
        out.push(finding(message, Some(q), None));
    }
    if missing.len() == extra.len() {
        for (s, t) in missing.into_iter().zip(extra) {
            let (a, b) = (quote(source, s), quote(translation, t));
            let message = format!("{a} in the source is {b} in the translation");
            out.push(finding(message, Some(s), Some(t)));
        }
        return;
    }
    for s in missing {
        let message = format!(
            "{} in the source is missing from the translation",
            quote(source, s)
        );
        out.push(finding(message, Some(s), None));
    }
    for t in extra {
        let message = format!(
            "{} in the translation is not in the source",
            quote(translation, t)
        );
        out.push(finding(message, None, Some(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(text, value, kind)` of each number of `text`.
    fn read(text: &str, lang: Lang) -> Vec<(String, f64, QKind)> {
        extract(text, lang)
            .into_iter()
            .map(|q| (text[q.span.clone()].to_string(), q.value, q.kind))
            .collect()
    }

    fn one(text: &str, lang: Lang) -> Quantity {
        let qs = extract(text, lang);
        assert_eq!(qs.len(), 1, "{text}: {qs:?}");
        qs.into_iter().next().unwrap()
    }

    fn messages(source: &str, translation: &str) -> Vec<String> {
        let mut out = Vec::new();
        check(source, translation, &mut out);
        out.into_iter().map(|f| f.message).collect()
    }

    fn clean(source: &str, translation: &str) {
        assert_eq!(
            messages(source, translation),
            Vec::<String>::new(),
            "{source} / {translation}"
        );
    }

    #[test]
    fn turkish_decimal_comma_and_thousands_dots() {
        assert_eq!(one("3,5 kişi", Lang::Tr).value, 3.5);
        assert_eq!(one("1.250.000 lira", Lang::Tr).value, 1_250_000.0);
        assert_eq!(one("2025", Lang::Tr).kind, QKind::Year);
    }

    #[test]
    fn english_decimal_point_and_thousands_commas() {
        assert_eq!(one("3.5 people", Lang::En).value, 3.5);
        assert_eq!(one("1,250,000 lira", Lang::En).value, 1_250_000.0);
    }

    #[test]
    fn percent_forms() {
        for tr in ["%12", "% 12", "yüzde 12", "%12'lik artış"] {
            let q = one(tr, Lang::Tr);
            assert_eq!((q.value, q.kind), (12.0, QKind::Percent), "{tr}");
        }
        for en in ["12%", "12 percent", "12 per cent"] {
            let q = one(en, Lang::En);
            assert_eq!((q.value, q.kind), (12.0, QKind::Percent), "{en}");
        }
        assert_eq!(one("yüzde elli", Lang::Tr).value, 50.0);
    }

    #[test]
    fn scale_words_multiply() {
        assert_eq!(one("2,5 milyar dolar", Lang::Tr).value, 2.5e9);
        assert_eq!(one("10 milyonluk", Lang::Tr).value, 1e7);
        assert_eq!(one("700 binleri", Lang::Tr).value, 7e5);
        assert_eq!(one("1.5 million", Lang::En).value, 1.5e6);
        assert_eq!(one("$5bn", Lang::En).value, 5e9);
        assert_eq!(one("£5m", Lang::En).value, 5e6);
        let metres = one("5m", Lang::En);
        assert_eq!((metres.value, metres.alt), (5.0, Some(5e6)));
    }

    #[test]
    fn compound_amounts() {
        assert_eq!(one("1 milyon 200 bin", Lang::Tr).value, 1_200_000.0);
        assert_eq!(one("bin 99 subay", Lang::Tr).value, 1099.0);
        assert_eq!(one("2 bin 500", Lang::Tr).value, 2500.0);
        assert_eq!(one("39 thousand 287", Lang::En).value, 39_287.0);
        let plan = read("a $5 billion 10-year plan", Lang::En);
        assert_eq!(plan.len(), 2, "the 10 of 10-year stays apart: {plan:?}");
    }

    #[test]
    fn turkish_number_words() {
        assert_eq!(one("iki yüz elli kişi", Lang::Tr).value, 250.0);
        assert_eq!(one("on iki", Lang::Tr).value, 12.0);
        assert_eq!(one("bir milyon", Lang::Tr).value, 1e6);
        assert_eq!(one("beş yüz bin", Lang::Tr).value, 500_000.0);
        assert_eq!(one("iki buçuk saat", Lang::Tr).value, 2.5);
        assert_eq!(one("İKİ KİŞİ", Lang::Tr).value, 2.0);
        assert_eq!(one("üçe", Lang::Tr).value, 3.0);
        // Two numbers, not 23: `iki üç gün` is two or three days.
        assert_eq!(read("iki üç gün", Lang::Tr).len(), 2);
    }

    #[test]
    fn turkish_words_that_are_not_numbers() {
        for text in [
            "binlerce kişi",
            "onlarca",
            "ona söyledi",
            "masanın altında",
            "milyoner",
        ] {
            assert_eq!(read(text, Lang::Tr), vec![], "{text}");
        }
        assert!(one("bir adam", Lang::Tr).weak);
        assert!(extract("yüz yüze", Lang::Tr).iter().all(|q| q.weak));
        assert!(one("yemek yedi.", Lang::Tr).weak);
        assert!(one("her iki taraf", Lang::Tr).weak);
        assert!(one("iki katına çıktı", Lang::Tr).weak);
        assert!(one("ikisi geldi", Lang::Tr).weak);
    }

    #[test]
    fn english_number_words() {
        assert_eq!(one("two hundred and fifty", Lang::En).value, 250.0);
        assert_eq!(one("twenty-five", Lang::En).value, 25.0);
        assert_eq!(one("a dozen eggs", Lang::En).value, 12.0);
        assert_eq!(one("a thousand people", Lang::En).value, 1000.0);
        assert_eq!(one("two decades", Lang::En).value, 20.0);
        assert_eq!(one("three-and-a-half years", Lang::En).value, 3.5);
        assert!(one("one of them", Lang::En).weak);
        assert!(one("the Magnificent Seven", Lang::En).weak);
        assert!(!one("Seven people died.", Lang::En).weak);
    }

    #[test]
    fn ordinals() {
        for tr in ["3'üncü", "3. kez", "üçüncü"] {
            let q = extract(tr, Lang::Tr).remove(0);
            assert_eq!((q.value, q.kind), (3.0, QKind::Ordinal), "{tr}");
        }
        assert_eq!(one("dördüncü", Lang::Tr).value, 4.0);
        assert!(one("birinci", Lang::Tr).weak);
        assert_eq!(one("3rd", Lang::En).kind, QKind::Ordinal);
        assert_eq!(one("twenty-first", Lang::En).value, 21.0);
        // A sentence-final `3.` is a plain number.
        assert_eq!(one("Sayı 3. Sonra", Lang::Tr).kind, QKind::Plain);
    }

    #[test]
    fn dates() {
        let sept3 = QKind::Date { day: 3, month: 9 };
        let tr = read("3 Eylül 2025'te", Lang::Tr);
        assert_eq!((tr[0].2, tr[1].1), (sept3, 2025.0));
        let numeric = read("03.09.2025", Lang::Tr);
        assert_eq!((numeric[0].2, numeric[1].1), (sept3, 2025.0));
        assert_eq!(one("Eylül'ün 3'ü", Lang::Tr).kind, QKind::Plain);
        for en in [
            "September 3, 2025",
            "3 September",
            "Sept. 3",
            "the 3rd of September",
        ] {
            assert_eq!(extract(en, Lang::En)[0].kind, sept3, "{en}");
        }
        assert_eq!(one("they may 3", Lang::En).kind, QKind::Plain);
    }

    #[test]
    fn clock_times() {
        let t1430 = QKind::Time {
            hour: 14,
            minute: 30,
        };
        for tr in ["14.30", "saat 14.30'da", "14:30"] {
            assert_eq!(one(tr, Lang::Tr).kind, t1430, "{tr}");
        }
        for en in ["14:30", "2:30 p.m.", "2.30pm"] {
            assert_eq!(one(en, Lang::En).kind, t1430, "{en}");
        }
        assert_eq!(
            one("saat 3'te", Lang::Tr).kind,
            QKind::Time { hour: 3, minute: 0 }
        );
        assert_eq!(
            one("3pm", Lang::En).kind,
            QKind::Time {
                hour: 15,
                minute: 0
            }
        );
    }

    #[test]
    fn years_decades_and_ranges() {
        assert_eq!(one("1990'larda", Lang::Tr).kind, QKind::Decade);
        assert_eq!(one("the 1990s", Lang::En).kind, QKind::Decade);
        let season: Vec<f64> = read("2015-16", Lang::En).iter().map(|r| r.1).collect();
        assert_eq!(season, [2015.0, 2016.0]);
        assert_eq!(read("3-5 kişi", Lang::Tr).len(), 2);
        assert_eq!(one("FY17", Lang::En).alt, Some(2017.0));
        let range = extract("2-2.5 million", Lang::En);
        assert_eq!(range[0].alt, Some(2e6));
    }

    #[test]
    fn equivalent_forms_match() {
        clean("1,5 milyon kişi", "1.5 million people");
        clean("1,5 milyon kişi", "1,500,000 people");
        clean("yüzde 12 arttı", "rose 12 per cent");
        clean("üç kişi", "3 people");
        clean("üç kişi", "three people");
        clean("3 Eylül 2025'te", "on September 3, 2025");
        clean("3 Eylül'de", "on Sept. 3");
        clean("saat 14.30'da", "at 2:30 p.m.");
        clean("1990'larda", "in the 1990s");
        clean("90'lı yıllarda", "in the 1990s");
        clean("3 ile 5 arasında", "between 3 and 5");
        clean("2,5 milyar dolar", "$2.5bn");
        clean("iki buçuk yıl", "2.5 years");
        clean("bin 99 subay", "1,099 officers");
        clean("2015-2016 sezonu", "the 2015-16 season");
        clean("1. Dünya Savaşı", "World War I");
        clean("iki kez oy", "vote twice");
        clean("her iki taraf", "both sides");
        clean("on yıl", "a decade");
    }

    #[test]
    fn bare_one_needs_no_counterpart() {
        clean("Bir adam geldi.", "A man came.");
        clean("Bir adam geldi.", "One man came.");
        clean("Adam geldi.", "One of them came.");
    }

    #[test]
    fn changed_value_is_reported_in_pairs() {
        let m = messages("50.000 kişi", "25,000 people");
        assert_eq!(
            m,
            ["\"50.000\" (50000) in the source is \"25,000\" (25000) in the translation"]
        );
        let mut out = Vec::new();
        check("2,5 milyar dolar", "$25bn", &mut out);
        let f = &out[0];
        assert_eq!(f.kind, Kind::Number);
        assert_eq!(f.source.as_ref().unwrap().text, "2,5 milyar");
        assert_eq!(f.translation.as_ref().unwrap().text, "25bn");
    }

    #[test]
    fn missing_and_added_numbers_are_reported() {
        let m = messages("2,5 milyar dolar ve 3 kişi", "$2.5bn");
        assert_eq!(m, ["\"3\" in the source is missing from the translation"]);
        let m = messages("Ekonomi büyüdü.", "The economy grew 25,000 times.");
        assert_eq!(
            m,
            ["\"25,000\" (25000) in the translation is not in the source"]
        );
        let m = messages("2,5 milyar", "2.5 billion and 3 and 4");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_repeated_number_must_stay_repeated() {
        let m = messages("Ali (19) ve Veli (19) öldü.", "Ali () and Veli (19) died.");
        assert_eq!(
            m,
            ["\"19\" occurs 2 times in the source but 1 time in the translation"]
        );
        // A number said once in digits and once in words is not a repeat.
        clean("Bir adam ve bir kadın", "A man and a woman");
    }

    #[test]
    fn odd_text_does_not_panic() {
        for text in [
            "’’1’",
            "–60 mi’s",
            "3.",
            "1,",
            ":30",
            "12:",
            "9.99.99.99",
            "%",
            "yüzde",
            "İı",
        ] {
            for lang in [Lang::Tr, Lang::En] {
                let _ = extract(text, lang);
            }
        }
    }
}
