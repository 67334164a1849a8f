//! Reader: turns the bytes of an article file into an [`Article`], a list of blocks (title or
//! dateline, headings, body paragraphs, sign-off) in their original order.
//!
//! The structure is what the output keeps: one translated block per source block, same order,
//! headings stay headings. Decoding is strict UTF-8 (a BOM is dropped, CRLF and CR become LF);
//! text is never silently altered beyond that and joining a paragraph's hard-wrapped lines.

use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// Decodes article bytes: UTF-8 with an optional BOM; CRLF and lone CR line ends become LF.
pub fn decode(bytes: &[u8], what: &str) -> Result<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        what: what.to_string(),
        offset: e.valid_up_to(),
    })?;
    Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
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
    fn invalid_utf8_names_the_offset() {
        let err = decode(b"ab\xFEcd", "makale.txt").unwrap_err();
        assert!(err.to_string().contains("offset 2"), "{err}");
        assert!(err.to_string().contains("makale.txt"), "{err}");
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
