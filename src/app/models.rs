//! `tercuman models ...`: the model cards as a user sees them (list, info) and downloading
//! models ahead of time (fetch).

use crate::cli::ModelsCommand;
use crate::error::{Error, Result};
use crate::hub::card::{self, Card, TokenizerSource};
use crate::hub::spec::{self, ModelSpec};
use crate::hub::Hub;
use std::io::Write;

pub fn run(command: &ModelsCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::List => list(&mut out, &Hub::from_env(true, true))?,
        ModelsCommand::Info { name } => {
            let card =
                card::find(name).ok_or_else(|| Error::UnknownModel { name: name.clone() })?;
            info(&mut out, &card, &Hub::from_env(true, true))?;
        }
        ModelsCommand::Fetch { models, quiet } => {
            // Parse every name first, so that a typo in the third does not come after two
            // long downloads.
            let specs = models
                .iter()
                .map(|m| match ModelSpec::parse(m)? {
                    ModelSpec::Path(_) | ModelSpec::Remote(_) => Err(Error::BadModelSpec {
                        spec: m.to_string(),
                    }),
                    spec => Ok((m, spec)),
                })
                .collect::<Result<Vec<_>>>()?;
            let hub = Hub::from_env(false, *quiet);
            for (name, spec) in specs {
                if let ModelSpec::Card(card) = &spec {
                    if !card.kind.has_backend() && !quiet {
                        eprintln!(
                            "tercuman: note: {name} is a {} model; this build cannot run it yet",
                            card.kind.as_str()
                        );
                    }
                }
                for path in spec::get_files(&spec, |file| hub.download(file))? {
                    writeln!(out, "{name}\t{}", path.display())?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Whether all, some or none of a card's required files are in the cache.
fn cached_state(card: &Card, hub: &Hub) -> &'static str {
    let files: Vec<_> = card
        .files
        .iter()
        .zip(spec::card_files(card))
        .filter(|(f, _)| !f.optional)
        .map(|(_, hf)| hf)
        .collect();
    let have = files.iter().filter(|f| hub.cached(f).is_some()).count();
    match have {
        0 => "no",
        n if n == files.len() => "yes",
        _ => "partly",
    }
}

fn list(out: &mut impl Write, hub: &Hub) -> Result<()> {
    let cards = card::all();
    let width = cards.iter().map(|c| c.name.len()).max().unwrap_or(4);
    writeln!(
        out,
        "  {:width$}  {:9}  {:19}  {:>8}  {:6}  NOTES",
        "NAME", "KIND", "TASKS", "SIZE", "CACHED"
    )?;
    for c in &cards {
        let mark = if c.default_for.is_empty() { ' ' } else { '*' };
        let tasks = c
            .tasks
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut notes = Vec::new();
        if !c.default_for.is_empty() {
            let d = c.default_for.iter().map(|t| t.as_str()).collect::<Vec<_>>();
            notes.push(format!("default for {}", d.join(" and ")));
        }
        if c.gated {
            notes.push("gated: licence + HF_TOKEN".into());
        }
        if !c.kind.has_backend() {
            notes.push("backend not built yet".into());
        }
        writeln!(
            out,
            "{mark} {:width$}  {:9}  {:19}  {:>8}  {:6}  {}",
            c.name,
            c.kind.as_str(),
            tasks,
            human_mb(c.download_mb),
            cached_state(c, hub),
            notes.join("; ")
        )?;
    }
    writeln!(out, "\n* default model. Cache: {}", hub.cache.display())?;
    Ok(())
}

fn human_mb(mb: u64) -> String {
    if mb >= 1000 {
        format!("{:.1} GB", mb as f64 / 1000.0)
    } else {
        format!("{mb} MB")
    }
}

/// The size to expect: exact when the card records every file's (a download of another size is
/// refused), else the card's estimate.
fn download_size(c: &Card) -> String {
    match c.exact_size() {
        Some(bytes) => format!(
            "{} ({} bytes; a download of another size is refused)",
            human_mb((bytes as f64 / 1e6).round() as u64),
            thousands(bytes)
        ),
        None => format!(
            "about {} (exact size not recorded; checked against the hub's checksum)",
            human_mb(c.download_mb)
        ),
    }
}

/// `1117320736` as `1,117,320,736`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn info(out: &mut impl Write, c: &Card, hub: &Hub) -> Result<()> {
    writeln!(out, "{}\n  {}\n", c.name, c.description)?;
    let pinned = if c.is_pinned() {
        ""
    } else {
        " (a branch, not pinned to a commit; files are checked against their checksums)"
    };
    let backend = if c.kind.has_backend() {
        ""
    } else {
        " (backend not built yet)"
    };
    let rows = [
        (
            "kind",
            match &c.architecture {
                Some(arch) => format!("{}, architecture {arch}{backend}", c.kind.as_str()),
                None => format!("{}{backend}", c.kind.as_str()),
            },
        ),
        ("repository", c.page(&hub.endpoint)),
        ("revision", format!("{}{pinned}", c.revision)),
        (
            "tasks",
            c.tasks
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("languages", c.languages.join(", ")),
        ("licence", format!("{} <{}>", c.license, c.license_url)),
        (
            "gated",
            if c.gated {
                format!(
                    "yes: accept the licence at {}, then set HF_TOKEN",
                    c.page(&hub.endpoint)
                )
            } else {
                "no".into()
            },
        ),
        ("download", download_size(c)),
        (
            "tokenizer",
            match &c.tokenizer {
                TokenizerSource::Embedded(_) => "inside the GGUF file".into(),
                TokenizerSource::Files(f) => f.join(", "),
            },
        ),
    ];
    for (k, v) in rows {
        writeln!(out, "  {k:11} {v}")?;
    }
    if let Some(p) = &c.prompts {
        let chat = match p.chat_template.as_str() {
            "none" => "none (a base model: few-shot completion prompts)".to_string(),
            "gguf" => "the one inside the GGUF file".to_string(),
            f => format!("prompts/{f}"),
        };
        writeln!(out, "  {:11} chat template: {chat}", "prompts")?;
        for (task, file) in [
            ("translate", &p.translate),
            ("summarize", &p.summarize),
            ("notes", &p.summarize_notes),
            ("reduce", &p.summarize_reduce),
        ] {
            writeln!(out, "  {:11} {task}: prompts/{file}", "")?;
        }
    }
    writeln!(out, "  files")?;
    for (f, hf) in c.files.iter().zip(spec::card_files(c)) {
        let where_ = hub
            .cached(&hf)
            .map(|p| format!("cached at {}", p.display()))
            .unwrap_or_else(|| "not cached".into());
        let sha = f
            .sha256
            .as_deref()
            .map(|s| format!(" sha256 {s}"))
            .unwrap_or_default();
        let size = f
            .size
            .map(|s| format!(" ({} bytes)", thousands(s)))
            .unwrap_or_default();
        let optional = if f.optional { " (optional)" } else { "" };
        writeln!(out, "    {}{size}{optional}{sha}\n      {where_}", f.path)?;
    }
    Ok(())
}
