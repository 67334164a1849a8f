//! Assembler and output: puts the translated blocks and the summary together as plain text,
//! Markdown or JSON, and writes them to stdout or atomically to a file (a temporary file in the
//! same directory, renamed over the destination only once complete).

use crate::error::{Error, Result};
use crate::input::BlockKind;
use crate::summarize::Summary;
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

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// As `--model` named it: a card name, a path, or an hf: spec.
    pub source: String,
    pub name: String,
    pub architecture: String,
    pub path: String,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: ModelReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<TranslatedBlock>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    pub stats: crate::generate::Stats,
    pub wall_seconds: f64,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("report serializes");
            s.push('\n');
            s
        }
        Format::Text | Format::Markdown => {
            let mut out = render_parts(report, format == Format::Markdown).join("\n\n");
            out.push('\n');
            out
        }
    }
}

/// One translated block as text or Markdown.
pub fn render_block(b: &TranslatedBlock, markdown: bool) -> String {
    match (b.kind, markdown) {
        (BlockKind::Title, true) => format!("# {}", b.text),
        (BlockKind::Heading, true) => format!("### {}", b.text),
        _ => b.text.clone(),
    }
}

/// The text or Markdown output as its parts (one per block, then the summary), which are
/// joined by blank lines; a run that streams its output prints them one by one.
pub fn render_parts(report: &Report, markdown: bool) -> Vec<String> {
    let mut parts: Vec<String> = report
        .blocks
        .iter()
        .flatten()
        .map(|b| render_block(b, markdown))
        .collect();
    if let Some(s) = &report.summary {
        let list = s
            .bullets
            .iter()
            .map(|b| format!("- {b}"))
            .collect::<Vec<_>>()
            .join("\n");
        if report.blocks.is_some() {
            parts.push(format!("## Summary\n\n{list}"));
        } else {
            parts.push(list);
        }
    }
    parts
}

/// Writes `content` to `path` atomically: readers see the old file or the whole new one.
pub fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let err = |source| Error::WriteOutput {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tercuman-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(content.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Checks before any model work that `path` can be written: its directory exists and takes a
/// new file.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(Error::WriteOutput {
            path: path.to_path_buf(),
            source: std::io::Error::other("is a directory"),
        });
    }
    tempfile::Builder::new()
        .prefix(".tercuman-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| Error::WriteOutput {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let block = |kind, text: &str| TranslatedBlock {
            kind,
            source: String::new(),
            text: text.into(),
            pieces: vec![],
            flags: vec![],
        };
        Report {
            model: ModelReport {
                source: "m.gguf".into(),
                name: "m".into(),
                architecture: "gemma3".into(),
                path: "m.gguf".into(),
            },
            blocks: Some(vec![
                block(BlockKind::Title, "Putin in Beijing"),
                block(BlockKind::Paragraph, "He met Kim."),
                block(BlockKind::Heading, "\"Friends\""),
            ]),
            summary: Some(Summary {
                bullets: vec!["Putin met Kim.".into(), "They talked.".into()],
                parts: 1,
                flags: vec![],
            }),
            stats: Default::default(),
            wall_seconds: 1.0,
        }
    }

    #[test]
    fn markdown_layout() {
        assert_eq!(
            render(&report(), Format::Markdown),
            "# Putin in Beijing\n\nHe met Kim.\n\n### \"Friends\"\n\n## Summary\n\n- Putin met Kim.\n- They talked.\n"
        );
    }

    #[test]
    fn text_layout_keeps_blocks_plain() {
        let out = render(&report(), Format::Text);
        assert!(out.starts_with("Putin in Beijing\n\nHe met Kim.\n\n\"Friends\"\n\n## Summary\n"));
    }

    #[test]
    fn json_has_blocks_bullets_and_model() {
        let v: serde_json::Value = serde_json::from_str(&render(&report(), Format::Json)).unwrap();
        assert_eq!(v["blocks"].as_array().unwrap().len(), 3);
        assert_eq!(v["blocks"][0]["kind"], "title");
        assert_eq!(v["summary"]["bullets"][1], "They talked.");
        assert_eq!(v["model"]["architecture"], "gemma3");
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
