//! `tercuman check SOURCE TRANSLATION`: the fidelity checks ([`crate::check`]) on any
//! Turkish→English translation, ours, a person's or another engine's, aligned block by block.
//! Exit status as `diff` and `grep`: 0 clean, 1 findings, 2 error.

use crate::check::{self, Finding, Kind};
use crate::cli::{CheckArgs, CheckFormat};
use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;

/// How a `check` ended, when it could run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Findings,
}

/// The blocks of a text: blank-line separated paragraphs, or its lines when `by_line`.
pub fn blocks(text: &str, by_line: bool) -> Vec<&str> {
    let text = text.trim_end_matches(['\n', ' ', '\t']);
    if by_line {
        return text.split('\n').collect();
    }
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    for (at, line) in line_spans(text) {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(at);
            end = at + line.len();
        }
    }
    if let Some(s) = start {
        out.push(text[s..end].trim());
    }
    out
}

fn line_spans(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    text.split('\n').map(move |line| {
        let start = at;
        at += line.len() + 1;
        (start, line)
    })
}

/// Whether `text` has a blank line between two non-blank ones.
fn has_blank_line(text: &str) -> bool {
    let lines: Vec<&str> = text.trim().split('\n').collect();
    lines.iter().any(|l| l.trim().is_empty())
}

/// Both texts cut into aligned blocks: by paragraph when either has blank lines, else by line.
pub fn align<'a>(source: &'a str, translation: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let by_line = !has_blank_line(source) && !has_blank_line(translation);
    (blocks(source, by_line), blocks(translation, by_line))
}

/// One block's report.
#[derive(Serialize)]
struct BlockReport<'a> {
    /// 1-based.
    block: usize,
    source: &'a str,
    translation: &'a str,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct Report<'a> {
    blocks: Vec<BlockReport<'a>>,
    /// Blocks with at least one finding, per kind.
    flagged_by_kind: std::collections::BTreeMap<&'static str, usize>,
    flagged: usize,
    total: usize,
}

/// Runs `tercuman check`.
pub fn run(args: &CheckArgs) -> Result<Verdict> {
    let source = crate::text::read_text(&args.source)?;
    let translation = crate::text::read_text(&args.translation)?;
    let (src, tgt) = align(&source, &translation);
    if src.len() != tgt.len() {
        let (first, why) = first_mismatch(&src, &tgt);
        return Err(Error::Misaligned {
            source_name: args.source.display().to_string(),
            source_blocks: src.len(),
            translation_name: args.translation.display().to_string(),
            translation_blocks: tgt.len(),
            first,
            why,
        });
    }
    let findings: Vec<Vec<Finding>> = src
        .iter()
        .zip(&tgt)
        .map(|(s, t)| check::check_block(s, t))
        .collect();
    let mut by_kind = std::collections::BTreeMap::new();
    for f in &findings {
        let mut kinds: Vec<Kind> = f.iter().map(|f| f.kind).collect();
        kinds.dedup();
        for k in kinds {
            *by_kind.entry(k.as_str()).or_insert(0) += 1;
        }
    }
    let flagged = findings.iter().filter(|f| !f.is_empty()).count();
    let mut out = std::io::stdout().lock();
    match args.format.unwrap_or(CheckFormat::Text) {
        CheckFormat::Text => {
            for (i, f) in findings.iter().enumerate() {
                for f in f {
                    writeln!(out, "block {}: {}: {}", i + 1, f.kind, f.message)?;
                }
            }
        }
        CheckFormat::Json => {
            let report = Report {
                blocks: (0..src.len())
                    .map(|i| BlockReport {
                        block: i + 1,
                        source: src[i],
                        translation: tgt[i],
                        findings: &findings[i],
                    })
                    .collect(),
                flagged_by_kind: by_kind.clone(),
                flagged,
                total: src.len(),
            };
            serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    if !args.quiet {
        let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let detail = match kinds.is_empty() {
            true => String::new(),
            false => format!(" ({})", kinds.join(", ")),
        };
        eprintln!(
            "tercuman: {flagged} of {} blocks flagged{detail}",
            src.len()
        );
    }
    Ok(match flagged {
        0 => Verdict::Clean,
        _ => Verdict::Findings,
    })
}

/// The first block (1-based) from which two block lists of different lengths no longer look
/// like translations of each other, with why: the first pair whose lengths fall outside the
/// band of human translations, else the first block one side lacks.
fn first_mismatch(src: &[&str], tgt: &[&str]) -> (usize, String) {
    for (i, (s, t)) in src.iter().zip(tgt).enumerate() {
        let mut f = Vec::new();
        check::length::check(s, t, &mut f);
        if let Some(f) = f.first() {
            return (i + 1, f.message.clone());
        }
    }
    let n = src.len().min(tgt.len());
    let side = if src.len() > tgt.len() {
        "the translation"
    } else {
        "the source"
    };
    (n + 1, format!("{side} has no block {}", n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_align_by_blank_lines_and_lines_otherwise() {
        let (s, t) = align("Bir.\nİki.\n\nÜç.\n", "One. Two.\n\n\nThree.");
        assert_eq!(s, ["Bir.\nİki.", "Üç."]);
        assert_eq!(t, ["One. Two.", "Three."]);
        let (s, t) = align("Bir.\nİki.\n", "One.\nTwo.");
        assert_eq!(s, ["Bir.", "İki."]);
        assert_eq!(t, ["One.", "Two."]);
    }

    #[test]
    fn a_missing_block_is_located() {
        let src = ["Bir elma.", "İki armut ve bir portakal.", "Üç."];
        let tgt = ["One apple.", "Three."];
        let (first, _) = first_mismatch(&src, &tgt);
        assert_eq!(first, 2);
    }
}
