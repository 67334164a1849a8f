//! Assembler and output: puts the translated blocks and the summary together as plain text,
//! Markdown or JSON, and writes them to stdout or atomically to a file ([`atomic`]). While a
//! run goes, its finished blocks are kept in a checkpoint ([`resume`]) that `--resume` reads.

pub mod atomic;
pub mod lock;
pub mod manifest;
pub mod resume;

pub use atomic::{check_writable, write_atomic, write_atomic_with};

use crate::error::{Error, Result};
use crate::summarize::Summary;
use crate::text::BlockKind;
use crate::translate::TranslatedBlock;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Markdown,
    Json,
}

impl Format {
    /// The format implied by an output file's extension: `.md` Markdown, `.json` JSON, else text.
    pub fn for_path(path: Option<&Path>) -> Format {
        match path
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("md" | "markdown") => Format::Markdown,
            Some("json") => Format::Json,
            _ => Format::Text,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// As `--model` named it: a card name, a path, or an hf: spec.
    pub source: String,
    pub name: String,
    pub architecture: String,
    pub path: String,
}

/// The translated blocks of a run: in memory, or read back from the checkpoint they were saved
/// to as they finished (so that a long article's translation is not held in memory).
#[derive(Clone, Copy)]
pub enum Blocks<'a> {
    Slice(&'a [TranslatedBlock]),
    Saved(&'a resume::Checkpoint),
    /// Blocks printed as they finished (text or Markdown streamed to stdout): only how many,
    /// so that what follows them is numbered and headed as after a translation.
    Printed(usize),
}

impl Blocks<'_> {
    pub fn for_each(&self, f: impl FnMut(&TranslatedBlock) -> Result<()>) -> Result<()> {
        match self {
            Blocks::Slice(blocks) => blocks.iter().try_for_each(f),
            Blocks::Saved(cp) => cp.for_each(f),
            Blocks::Printed(_) => Ok(()),
        }
    }
}

impl Serialize for Blocks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = s.serialize_seq(None)?;
        let mut failed = None;
        let read = self.for_each(|b| {
            seq.serialize_element(b).map_err(|e| {
                failed = Some(e);
                Error::Stopped
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(|e| S::Error::custom(format!("{:#}", anyhow::Error::from(e))))?;
        seq.end()
    }
}

/// Everything a run produced.
#[derive(Clone, Serialize)]
pub struct Report<'a> {
    /// The model that translated (or, for a summary alone, summarized).
    pub model: ModelReport,
    /// The model that summarized, when it is not `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_model: Option<ModelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Blocks<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    pub stats: crate::stats::Stats,
    pub wall_seconds: f64,
    /// The flagged blocks, for the Review section of Markdown output (JSON has the findings
    /// on each block).
    #[serde(skip)]
    pub review: Vec<Flagged>,
}

/// A block that kept a flag or a finding, with both sides, for review by a person.
#[derive(Debug, Clone)]
pub struct Flagged {
    /// 1-based, as in the output.
    pub block: usize,
    pub source: String,
    pub text: String,
    pub what: Vec<String>,
}

impl Flagged {
    /// The review entry of block `index` (0-based), when it is flagged.
    pub fn of(index: usize, b: &TranslatedBlock) -> Option<Flagged> {
        if !b.is_flagged() {
            return None;
        }
        let what = b
            .flags
            .iter()
            .map(|f| format!("{f}: {}", f.describe()))
            .chain(
                b.findings
                    .iter()
                    .map(|f| format!("{}: {}", f.kind, f.message)),
            )
            .collect();
        Some(Flagged {
            block: index + 1,
            source: b.source.clone(),
            text: b.text.clone(),
            what,
        })
    }
}

/// The whole output as one string.
pub fn render(report: &Report, format: Format) -> Result<String> {
    let mut out = Vec::new();
    write(report, format, &mut out)?;
    Ok(String::from_utf8(out).expect("rendered output is UTF-8"))
}

/// Writes the output to `w` (after the blocks already printed, for [`Blocks::Printed`]).
pub fn write(report: &Report, format: Format, w: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, report).map_err(|e| match e.io_error_kind() {
                Some(kind) => Error::Io(std::io::Error::new(kind, e)),
                None => Error::Io(std::io::Error::other(e)),
            })?;
            w.write_all(b"\n")?;
        }
        Format::Text | Format::Markdown => {
            let markdown = format == Format::Markdown;
            let mut index = match report.blocks {
                Some(Blocks::Printed(n)) => n,
                _ => 0,
            };
            let mut part = |text: &str| -> Result<()> {
                write_part(w, index, text)?;
                index += 1;
                Ok(())
            };
            if let Some(blocks) = &report.blocks {
                blocks.for_each(|b| part(&render_block(b, markdown)))?;
            }
            if let Some(s) = &report.summary {
                part(&render_summary(s, report.blocks.is_some()))?;
            }
            if markdown {
                if let Some(review) = render_review(&report.review, report.summary.as_ref()) {
                    part(&review)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes part number `index` of text or Markdown output: parts are separated by a blank line,
/// and the output ends with a newline.
pub fn write_part(w: &mut dyn Write, index: usize, text: &str) -> Result<()> {
    if index > 0 {
        w.write_all(b"\n")?;
    }
    w.write_all(text.as_bytes())?;
    w.write_all(b"\n")?;
    Ok(())
}

/// One translated block as text or Markdown.
pub fn render_block(b: &TranslatedBlock, markdown: bool) -> String {
    match (b.kind, markdown) {
        (BlockKind::Title, true) => format!("# {}", b.text),
        (BlockKind::Heading, true) => format!("### {}", b.text),
        _ => b.text.clone(),
    }
}

/// The summary's bullets, under a heading when they follow a translation; each names the
/// paragraphs it comes from (`[¶2, ¶5]`) unless citations are off.
fn render_summary(s: &Summary, after_translation: bool) -> String {
    let list = s
        .bullets
        .iter()
        .map(|b| format!("- {}", b.render(s.cite)))
        .collect::<Vec<_>>()
        .join("\n");
    match after_translation {
        true => format!("## Summary\n\n{list}"),
        false => list,
    }
}

/// The Review section of Markdown output: every flagged block with what was found and both
/// sides, and the summary's flagged bullets; `None` when nothing was flagged.
fn render_review(flagged: &[Flagged], summary: Option<&Summary>) -> Option<String> {
    let bullets: Vec<String> = summary
        .map(|s| {
            s.bullets
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.findings.is_empty())
                .map(|(i, b)| {
                    let what: Vec<String> = b
                        .findings
                        .iter()
                        .map(|f| format!("{}: {}", f.kind, f.message))
                        .collect();
                    format!(
                        "### Summary bullet {}\n\n- {}\n\n> {}",
                        i + 1,
                        what.join("\n- "),
                        b.text
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if flagged.is_empty() && bullets.is_empty() {
        return None;
    }
    let mut out = format!(
        "## Review\n\n{} flagged by the checks: compare them with the source before use.",
        match flagged.len() {
            1 => "1 block was".to_string(),
            n => format!("{n} blocks were"),
        }
    );
    let quote = |t: &str| {
        t.lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for f in flagged {
        out.push_str(&format!(
            "\n\n### Block {}\n\n- {}\n\nSource:\n\n{}\n\nTranslation:\n\n{}",
            f.block,
            f.what.join("\n- "),
            quote(&f.source),
            quote(&f.text)
        ));
    }
    for b in bullets {
        out.push_str("\n\n");
        out.push_str(&b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<TranslatedBlock> {
        let block = |kind, text: &str| TranslatedBlock {
            kind,
            source: String::new(),
            text: text.into(),
            pieces: vec![],
            flags: vec![],
            findings: vec![],
        };
        vec![
            block(BlockKind::Title, "Putin in Beijing"),
            block(BlockKind::Paragraph, "He met Kim."),
            block(BlockKind::Heading, "\"Friends\""),
        ]
    }

    fn report(blocks: &[TranslatedBlock]) -> Report<'_> {
        Report {
            model: ModelReport {
                source: "m.gguf".into(),
                name: "m".into(),
                architecture: "gemma3".into(),
                path: "m.gguf".into(),
            },
            summary_model: None,
            blocks: Some(Blocks::Slice(blocks)),
            summary: Some(Summary {
                bullets: vec![bullet("Putin met Kim."), bullet("They talked.")],
                parts: 1,
                cite: true,
                ..Summary::default()
            }),
            stats: Default::default(),
            wall_seconds: 1.0,
            review: vec![],
        }
    }

    fn bullet(text: &str) -> crate::summarize::Bullet {
        crate::summarize::Bullet {
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn markdown_layout() {
        assert_eq!(
            render(&report(&blocks()), Format::Markdown).unwrap(),
            "# Putin in Beijing\n\nHe met Kim.\n\n### \"Friends\"\n\n## Summary\n\n- Putin met Kim.\n- They talked.\n"
        );
    }

    #[test]
    fn text_layout_keeps_blocks_plain() {
        let out = render(&report(&blocks()), Format::Text).unwrap();
        assert!(out.starts_with("Putin in Beijing\n\nHe met Kim.\n\n\"Friends\"\n\n## Summary\n"));
    }

    #[test]
    fn json_has_blocks_bullets_and_model() {
        let blocks = blocks();
        let mut r = report(&blocks);
        r.summary.as_mut().unwrap().bullets[0].paragraphs = vec![2];
        let v: serde_json::Value =
            serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
        assert_eq!(v["blocks"].as_array().unwrap().len(), 3);
        assert_eq!(v["blocks"][0]["kind"], "title");
        // Bullets are objects since they cite their paragraphs.
        assert_eq!(v["summary"]["bullets"][1]["text"], "They talked.");
        assert_eq!(
            v["summary"]["bullets"][0]["paragraphs"],
            serde_json::json!([2])
        );
        assert_eq!(v["model"]["architecture"], "gemma3");
    }

    #[test]
    fn bullets_cite_their_paragraphs_unless_told_not_to() {
        let blocks = blocks();
        let mut r = report(&blocks);
        r.summary.as_mut().unwrap().bullets[0].paragraphs = vec![2];
        let out = render(&r, Format::Markdown).unwrap();
        assert!(
            out.contains("- Putin met Kim. [¶2]\n- They talked.\n"),
            "{out}"
        );
        r.summary.as_mut().unwrap().cite = false;
        let out = render(&r, Format::Markdown).unwrap();
        assert!(out.contains("- Putin met Kim.\n- They talked.\n"), "{out}");
    }

    #[test]
    fn markdown_ends_with_a_review_of_flagged_blocks_and_text_stays_clean() {
        let mut blocks = blocks();
        blocks[1].source = "Kim ile 3 kez görüştü.".into();
        blocks[1].findings = crate::check::check_block(&blocks[1].source, &blocks[1].text);
        assert!(!blocks[1].findings.is_empty());
        // A flag from the generation itself is said in words, not only by its name.
        blocks[2].flags = vec![crate::translate::Flag::Untranslated];
        let mut r = report(&blocks);
        r.review = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| Flagged::of(i, b))
            .collect();
        let md = render(&r, Format::Markdown).unwrap();
        let review = &md[md.find("## Review").expect("a Review section")..];
        assert!(review.contains("2 blocks were flagged"), "{review}");
        assert!(review.contains("### Block 2"), "{review}");
        assert!(
            review
                .contains("### Block 3\n\n- untranslated: the model's answer was still Turkish\n"),
            "{review}"
        );
        assert!(review.contains("number: "), "{review}");
        assert!(review.contains("> Kim ile 3 kez görüştü."), "{review}");
        assert!(review.contains("> He met Kim."), "{review}");
        assert!(md.find("## Summary").unwrap() < md.find("## Review").unwrap());
        let text = render(&r, Format::Text).unwrap();
        assert!(!text.contains("Review"), "{text}");
        let json = render(&r, Format::Json).unwrap();
        assert!(json.contains("\"kind\": \"number\""), "{json}");
    }

    #[test]
    fn blocks_read_back_from_a_checkpoint_render_as_those_in_memory() {
        let mut cp = resume::Checkpoint::spool("sha", "settings").unwrap();
        for b in blocks() {
            cp.push(&b).unwrap();
        }
        let saved = Report {
            blocks: Some(Blocks::Saved(&cp)),
            ..report(&[])
        };
        for format in [Format::Text, Format::Markdown, Format::Json] {
            assert_eq!(
                render(&saved, format).unwrap(),
                render(&report(&blocks()), format).unwrap(),
                "{format:?}"
            );
        }
    }

    #[test]
    fn what_follows_printed_blocks_completes_the_same_output() {
        let blocks = blocks();
        let whole = render(&report(&blocks), Format::Markdown).unwrap();
        let mut printed = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            write_part(&mut printed, i, &render_block(b, true)).unwrap();
        }
        let rest = Report {
            blocks: Some(Blocks::Printed(blocks.len())),
            ..report(&[])
        };
        write(&rest, Format::Markdown, &mut printed).unwrap();
        assert_eq!(String::from_utf8(printed).unwrap(), whole);
        assert!(whole.contains("## Summary\n\n- Putin met Kim."));
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::for_path(Some(Path::new("a.MD"))), Format::Markdown);
        assert_eq!(Format::for_path(Some(Path::new("a.json"))), Format::Json);
        assert_eq!(Format::for_path(Some(Path::new("a.txt"))), Format::Text);
        assert_eq!(Format::for_path(None), Format::Text);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.md");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, "new content").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new content");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }
}
