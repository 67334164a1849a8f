// The vocabulary of the checks: languages, kinds of finding, spans, findings. (Plain `//`
// comments: test harnesses include this file inside an inline module.)

use std::fmt;

/// Which language a piece of text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Tr,
    En,
}

/// What a finding is about. The names (`as_str`) are the ones output formats use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A number of the source missing or changed in the translation, or a number of the
    /// translation that the source lacks.
    Number,
    /// A proper name of the source not found in the translation.
    Name,
    /// A name in the translation that traces to nothing in the source.
    InventedName,
    /// The translation is too short for its source: sentences or content dropped.
    Omission,
    /// The translation is too long for its source: content added.
    Addition,
    /// The translation is (partly) still Turkish.
    Untranslated,
    /// A loop or repeated n-grams that the source does not have.
    Repetition,
    /// A quoted passage missing or added.
    Quote,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Number,
        Kind::Name,
        Kind::InventedName,
        Kind::Omission,
        Kind::Addition,
        Kind::Untranslated,
        Kind::Repetition,
        Kind::Quote,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Number => "number",
            Kind::Name => "name",
            Kind::InventedName => "invented_name",
            Kind::Omission => "omission",
            Kind::Addition => "addition",
            Kind::Untranslated => "untranslated",
            Kind::Repetition => "repetition",
            Kind::Quote => "quote",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stretch of one side of a block: byte offsets into that side's text, and the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Span {
    /// The span `start..end` of `text`.
    pub fn of(text: &str, start: usize, end: usize) -> Span {
        Span {
            start,
            end,
            text: text[start..end].to_string(),
        }
    }
}

/// One thing that differs between a source block and its translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// What differs, in a sentence a person reads ("12.5 in the source is 12,5 in the
    /// translation"), quoting both sides where it can.
    pub message: String,
    /// Where in the source block, when the finding points at something there.
    pub source: Option<Span>,
    /// Where in the translation block, when the finding points at something there.
    pub translation: Option<Span>,
}
