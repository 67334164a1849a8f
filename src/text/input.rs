//! Reader: turns the bytes of an article file into an [`Article`], a list of blocks (title or
//! dateline, headings, body paragraphs, sign-off) in their original order.
//!
//! The structure is what the output keeps: one translated block per source block, same order,
//! headings stay headings.
//!
//! Decoding: UTF-8 (with or without a BOM), UTF-16 with a BOM, and otherwise the legacy
//! encoding that chardetng finds most likely for Turkish text (Windows-1254, which is also how
//! browsers read ISO-8859-9); `--encoding` overrides. Bytes that are not text (a PDF, a DOCX,
//! an image, anything with NUL bytes) are refused with advice on getting the text out. Line
//! ends become LF, non-breaking spaces and tabs become spaces, and invisible characters that
//! only get in the tokenizer's way (zero-width space, word joiner, soft hyphen, stray BOMs)
//! are dropped; nothing else is altered beyond joining a paragraph's hard-wrapped lines.

use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// The first line of the article when it is a title or dateline.
    Title,
    /// A short stand-alone line between paragraphs (often a quotation used as a sub-heading).
    Heading,
    /// Body text: the unit of translation.
    Paragraph,
    /// A closing dateline such as `- PEKİN`.
    SignOff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Article {
    pub blocks: Vec<Block>,
}

/// Longest line, in characters, that can still be a heading or title rather than a paragraph.
const MAX_HEADING_CHARS: usize = 200;

/// Decoded article text and the encoding it was read as.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub text: String,
    /// The encoding's WHATWG name, e.g. `UTF-8`, `windows-1254`.
    pub encoding: &'static str,
    /// Whether the encoding was guessed from the bytes rather than marked or given.
    pub guessed: bool,
}

/// Decodes article bytes in a detected encoding; see the module docs.
pub fn decode(bytes: &[u8], what: &str) -> Result<String> {
    decode_with(bytes, what, None).map(|d| d.text)
}

/// Decodes article bytes; `label` (e.g. `windows-1254`, `iso-8859-9`, `utf-16le`) forces the
/// encoding instead of detecting it.
pub fn decode_with(bytes: &[u8], what: &str, label: Option<&str>) -> Result<Decoded> {
    use encoding_rs::{Encoding, UTF_8};
    let forced = match label {
        Some(l) => Some(Encoding::for_label(l.trim().as_bytes()).ok_or_else(|| {
            Error::UnknownEncoding {
                label: l.to_string(),
            }
        })?),
        None => None,
    };
    let bom = Encoding::for_bom(bytes);
    if forced.is_none() && bom.is_none() {
        if let Some((looks_like, advice)) = not_text(bytes) {
            return Err(Error::NotText {
                what: what.to_string(),
                looks_like,
                advice,
            });
        }
    }
    let (encoding, body, guessed) = match (forced, bom) {
        (Some(e), Some((b, len))) if e == b => (e, &bytes[len..], false),
        (Some(e), _) => (e, bytes, false),
        (None, Some((e, len))) => (e, &bytes[len..], false),
        (None, None) if std::str::from_utf8(bytes).is_ok() => (UTF_8, bytes, false),
        (None, None) => {
            let mut detector = chardetng::EncodingDetector::new();
            detector.feed(bytes, true);
            (detector.guess(Some(b"tr"), true), bytes, true)
        }
    };
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| {
            let offset = match std::str::from_utf8(body) {
                Err(e) if encoding == UTF_8 => e.valid_up_to(),
                _ => 0,
            };
            Error::Undecodable {
                what: what.to_string(),
                encoding: encoding.name(),
                offset,
            }
        })?;
    Ok(Decoded {
        text: normalize(&text),
        encoding: encoding.name(),
        guessed,
    })
}

/// What non-text bytes look like, and how to get text out of them; `None` for text.
fn not_text(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    const SIGNATURES: &[(&[u8], &str, &str)] = &[
        (b"%PDF-", "a PDF document", "extract the text first, e.g. `pdftotext -layout FILE article.txt`"),
        (b"PK\x03\x04", "a ZIP container (a DOCX, ODT or EPUB document?)", "save it as plain text from the word processor, or convert it with `pandoc FILE -t plain -o article.txt`"),
        (b"\xD0\xCF\x11\xE0", "an old Microsoft Office document (DOC)", "save it as plain text from the word processor, or convert it with `antiword FILE > article.txt`"),
        (b"{\\rtf", "an RTF document", "save it as plain text, or convert it with `pandoc FILE -t plain -o article.txt`"),
        (b"\x89PNG", "a PNG image", "run OCR on it first, e.g. `tesseract FILE article -l tur`"),
        (b"\xFF\xD8\xFF", "a JPEG image", "run OCR on it first, e.g. `tesseract FILE article -l tur`"),
        (b"GIF8", "a GIF image", "run OCR on it first, e.g. `tesseract FILE article -l tur`"),
        (b"\x1F\x8B", "a gzip archive", "decompress it first: `gunzip -k FILE`"),
        (b"\x7FELF", "a program (ELF executable)", "pass the article's text file instead"),
    ];
    for (magic, looks_like, advice) in SIGNATURES {
        if bytes.starts_with(magic) {
            return Some((looks_like, advice));
        }
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if head.contains(&0) {
        return Some((
            "binary data (it contains NUL bytes; UTF-16 text needs a byte-order mark)",
            "pass a plain text file, or name its encoding with --encoding utf-16le",
        ));
    }
    None
}

/// Line ends to LF; non-breaking spaces and tabs to spaces; invisible characters dropped.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{00A0}' | '\u{202F}' | '\u{2007}' | '\t' => out.push(' '),
            '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Splits decoded text into blocks at blank lines and classifies each one.
pub fn parse(text: &str) -> Article {
    let mut raw: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                raw.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line.trim());
        }
    }
    if !current.is_empty() {
        raw.push(current);
    }

    let count = raw.len();
    let blocks = raw
        .into_iter()
        .enumerate()
        .map(|(i, lines)| {
            // Hard-wrapped lines of one paragraph are one text for the model.
            let text = lines.join(" ");
            let single_line = lines.len() == 1;
            let kind = classify(&text, single_line, i == 0, i + 1 == count && count > 1);
            Block { kind, text }
        })
        .collect();
    Article { blocks }
}

fn classify(text: &str, single_line: bool, first: bool, last: bool) -> BlockKind {
    let chars = text.chars().count();
    if last && is_sign_off(text) {
        return BlockKind::SignOff;
    }
    if !single_line || chars > MAX_HEADING_CHARS {
        return BlockKind::Paragraph;
    }
    if first {
        return BlockKind::Title;
    }
    if is_quoted(text) || !ends_sentence(text) {
        return BlockKind::Heading;
    }
    BlockKind::Paragraph
}

/// `- PEKİN`, `– ANKARA (AA)`: a dash and a few words, at the end of the article.
fn is_sign_off(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(['-', '–', '—']) else {
        return false;
    };
    let rest = rest.trim();
    !rest.is_empty() && rest.split_whitespace().count() <= 4 && !ends_sentence(rest)
}

fn is_quoted(text: &str) -> bool {
    let open = ['"', '“', '«', '\''];
    let close = ['"', '”', '»', '\''];
    text.starts_with(open) && text.ends_with(close) && text.chars().count() > 2
}

fn ends_sentence(text: &str) -> bool {
    let trimmed = text.trim_end_matches(['"', '”', '’', '\'', ')', '»']);
    trimmed.ends_with(['.', '!', '?', '…', ':', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_and_crlf_are_normalised() {
        let text = decode(b"\xEF\xBB\xBFBir\r\n\r\nIki\rUc", "x").unwrap();
        assert_eq!(text, "Bir\n\nIki\nUc");
    }

    #[test]
    fn invalid_utf8_names_the_offset_when_utf8_is_forced() {
        let err = decode_with(b"ab\xFEcd", "makale.txt", Some("utf-8")).unwrap_err();
        assert!(err.to_string().contains("offset 2"), "{err}");
        assert!(err.to_string().contains("makale.txt"), "{err}");
    }

    const TURKISH: &str = "Şişli'de ığdır çiçekçisi: Ağaç, gümüş, İstanbul, ÇÖĞÜŞ ıİ. \
        Belediye başkanı, yağışların şiddetlendiğini söyledi ve üç ilçede okullar tatil edildi.";

    #[test]
    fn legacy_turkish_encodings_are_detected() {
        let (bytes, _, bad) = encoding_rs::WINDOWS_1254.encode(TURKISH);
        assert!(!bad);
        let d = decode_with(&bytes, "x", None).unwrap();
        assert_eq!(d.text, TURKISH);
        assert_eq!(d.encoding, "windows-1254");
        assert!(d.guessed);
        // ISO-8859-9 differs from Windows-1254 only in C1 controls, unused in text.
        let d = decode_with(&bytes, "x", Some("iso-8859-9")).unwrap();
        assert_eq!(d.text, TURKISH);
        assert!(!d.guessed);
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        for (bom, le) in [([0xFF, 0xFE], true), ([0xFE, 0xFF], false)] {
            let mut bytes = bom.to_vec();
            for unit in TURKISH.encode_utf16() {
                bytes.extend(if le {
                    unit.to_le_bytes()
                } else {
                    unit.to_be_bytes()
                });
            }
            let d = decode_with(&bytes, "x", None).unwrap();
            assert_eq!(d.text, TURKISH);
        }
    }

    #[test]
    fn binary_files_are_refused_with_advice() {
        for (bytes, says) in [
            (&b"%PDF-1.7\n%\xE2\xE3"[..], "pdftotext"),
            (&b"PK\x03\x04\x14\x00"[..], "DOCX"),
            (&b"\x89PNG\r\n\x1A\n"[..], "tesseract"),
            (&b"abc\x00def"[..], "NUL"),
        ] {
            let err = decode(bytes, "makale").unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("makale"), "{err}");
        }
    }

    #[test]
    fn invisible_characters_and_odd_spaces_are_normalised() {
        let text = decode(
            "Ko\u{00AD}nuş\u{200B}ma\tbaşladı\u{00A0}bugün\u{FEFF}.".as_bytes(),
            "x",
        )
        .unwrap();
        assert_eq!(text, "Konuşma başladı bugün.");
    }

    #[test]
    fn an_unknown_encoding_label_is_an_error() {
        let err = decode_with(b"x", "x", Some("klingon-8"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("klingon-8"), "{err}");
    }

    #[test]
    fn structure_of_a_news_article() {
        let text = " date 2025-09-03 Putin Pekin'de\n\nBirinci paragraf. İkinci cümle.\n\n\"Alıntı başlık\"\n\nSon paragraf burada\nikinci satırda sürüyor.\n\n- PEKİN\n";
        let article = parse(text);
        let kinds: Vec<_> = article.blocks.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                BlockKind::Title,
                BlockKind::Paragraph,
                BlockKind::Heading,
                BlockKind::Paragraph,
                BlockKind::SignOff
            ]
        );
        assert_eq!(article.blocks[0].text, "date 2025-09-03 Putin Pekin'de");
        assert_eq!(
            article.blocks[3].text,
            "Son paragraf burada ikinci satırda sürüyor."
        );
    }

    #[test]
    fn whitespace_only_lines_separate_blocks() {
        let article = parse("Bir.\n \t \nIki.\n");
        assert_eq!(article.blocks.len(), 2);
    }

    #[test]
    fn a_lone_paragraph_is_not_a_sign_off() {
        let article = parse("- PEKİN");
        assert_eq!(article.blocks[0].kind, BlockKind::Title);
    }
}
