//! Where a model comes from: `--model` names a card (`qwen2.5-1.5b-instruct`), a local file or
//! model directory, or any file on the hub (`hf:OWNER/REPO/FILE.gguf[@REVISION]`). This module
//! turns that into a local GGUF path, downloading through [`super::client`] when needed.

use super::card::{self, Card, Kind};
use super::client::{Hub, HubError, HubFile};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What `--model` named.
#[derive(Debug, Clone)]
pub enum ModelSpec {
    Card(Box<Card>),
    Path(PathBuf),
    Hub(HubFile),
    /// A served model (`openai:URL#MODEL`).
    Remote(crate::remote::Endpoint),
}

impl ModelSpec {
    /// Reads a `--model` value. A card name wins over a file of the same name in the current
    /// directory only when no such file exists.
    pub fn parse(value: &str) -> Result<ModelSpec> {
        if let Some(endpoint) = crate::remote::Endpoint::parse(value) {
            return endpoint.map(ModelSpec::Remote);
        }
        if let Some(rest) = value.strip_prefix("hf:") {
            return parse_hub(rest).map(ModelSpec::Hub);
        }
        let path = Path::new(value);
        if path.exists() {
            return Ok(ModelSpec::Path(path.to_path_buf()));
        }
        if let Some(card) = card::find(value) {
            return Ok(ModelSpec::Card(Box::new(card)));
        }
        if value.contains(std::path::MAIN_SEPARATOR)
            || value.contains('/')
            || value.ends_with(".gguf")
        {
            return Err(Error::ModelNotFound {
                path: path.to_path_buf(),
            });
        }
        Err(Error::UnknownModel {
            name: value.to_string(),
        })
    }

    /// The hub files this spec needs, or none for a local path.
    pub fn hub_files(&self) -> Vec<HubFile> {
        match self {
            ModelSpec::Card(c) => card_files(c),
            ModelSpec::Hub(f) => split_siblings(f),
            ModelSpec::Path(_) | ModelSpec::Remote(_) => Vec::new(),
        }
    }
}

fn parse_hub(spec: &str) -> Result<HubFile> {
    let bad = || Error::BadModelSpec {
        spec: format!("hf:{spec}"),
    };
    let (rest, revision) = match spec.rsplit_once('@') {
        Some((r, rev)) if !rev.is_empty() && !rev.contains('/') || rev.starts_with("refs/") => {
            (r, rev.to_string())
        }
        Some(_) => return Err(bad()),
        None => (spec, "main".to_string()),
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(owner), Some(name), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if owner.is_empty() || name.is_empty() || path.is_empty() || path.ends_with('/') {
        return Err(bad());
    }
    Ok(HubFile {
        repo: format!("{owner}/{name}"),
        revision,
        path: path.to_string(),
        sha256: None,
        size: None,
        gated: false,
    })
}

/// `file`, or every part of the split model whose part `file` is (`NAME-0000K-of-0000N.gguf`),
/// first part first.
fn split_siblings(file: &HubFile) -> Vec<HubFile> {
    let (dir, name) = match file.path.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), file.path.as_str()),
    };
    match crate::model::gguf::split_parts(name) {
        Some(parts) => parts
            .into_iter()
            .map(|p| HubFile {
                path: format!("{dir}{p}"),
                ..file.clone()
            })
            .collect(),
        None => vec![file.clone()],
    }
}

/// The hub files of a card, with what the card knows about them.
pub fn card_files(card: &Card) -> Vec<HubFile> {
    card.files
        .iter()
        .map(|f| HubFile {
            repo: card.repo.clone(),
            revision: card.revision.clone(),
            path: f.path.clone(),
            sha256: f.sha256.clone(),
            size: f.size,
            gated: card.gated,
        })
        .collect()
}

/// The local paths of `spec`'s hub files, each through `get` (the cached copy, or a download):
/// a card's required files first, then those of its optional files that the repository has.
/// An optional file the hub answers 404 for, or one not cached when offline, is left out.
pub fn get_files(
    spec: &ModelSpec,
    mut get: impl FnMut(&HubFile) -> std::result::Result<PathBuf, HubError>,
) -> Result<Vec<PathBuf>> {
    let ModelSpec::Card(card) = spec else {
        return Ok(spec
            .hub_files()
            .iter()
            .map(&mut get)
            .collect::<std::result::Result<_, _>>()?);
    };
    let mut files: Vec<(bool, HubFile)> = card
        .files
        .iter()
        .map(|f| f.optional)
        .zip(card_files(card))
        .collect();
    files.sort_by_key(|(optional, _)| *optional);
    let mut paths = Vec::with_capacity(files.len());
    for (optional, file) in files {
        match get(&file) {
            Ok(path) => paths.push(path),
            Err(HubError::NotFound { .. } | HubError::NotCached { .. }) if optional => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(paths)
}

/// Refuses, before any download, a card whose kind or architecture this build cannot run.
pub fn check_backend(card: &Card) -> Result<()> {
    if !card.kind.has_backend() {
        return Err(Error::BackendNotBuilt {
            name: card.name.clone(),
            kind: card.kind.as_str(),
        });
    }
    match card.architecture.as_deref() {
        Some(arch) if !crate::model::SUPPORTED_ARCHITECTURES.contains(&arch) => Err(Error::Card {
            origin: format!("models/{}.toml", card.name),
            message: format!(
                "architecture {arch} has no backend in this build (it runs {}); choose another model (`tercuman models list`)",
                crate::model::SUPPORTED_ARCHITECTURES.join(", ")
            ),
        }),
        _ => Ok(()),
    }
}

/// The files of a model, by the backend that runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// A GGUF chat model: one file.
    Gguf(PathBuf),
    /// A Marian model directory (config.json, weights, source.spm, vocab.json).
    Marian(PathBuf),
    /// No files: a model a server runs.
    Remote(crate::remote::Endpoint),
}

impl ModelFiles {
    pub fn path(&self) -> &Path {
        match self {
            ModelFiles::Gguf(p) | ModelFiles::Marian(p) => p,
            ModelFiles::Remote(e) => Path::new(&e.base),
        }
    }
}

/// A model ready to load: its files, and its card when it came from one.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub files: ModelFiles,
    pub card: Option<Card>,
    /// How the user named it, for reports.
    pub label: String,
}

/// Finds or downloads the files of `spec`.
pub fn resolve(spec: &ModelSpec, hub: &Hub) -> Result<Resolved> {
    match spec {
        ModelSpec::Remote(endpoint) => Ok(Resolved {
            files: ModelFiles::Remote(endpoint.clone()),
            card: None,
            label: endpoint.base.clone(),
        }),
        ModelSpec::Path(path) => Ok(Resolved {
            files: local_files(path)?,
            card: None,
            label: path.display().to_string(),
        }),
        ModelSpec::Hub(file) => {
            if !file.path.ends_with(".gguf") {
                return Err(Error::BadModelSpec {
                    spec: format!("hf:{}/{}", file.repo, file.path),
                });
            }
            let hint = format!(
                "tercuman models fetch hf:{}/{}@{}",
                file.repo, file.path, file.revision
            );
            let mut paths = Vec::new();
            for part in split_siblings(file) {
                paths.push(hub.get(&part, &hint)?);
            }
            Ok(Resolved {
                files: ModelFiles::Gguf(paths.swap_remove(0)),
                card: None,
                label: format!("hf:{}/{}", file.repo, file.path),
            })
        }
        ModelSpec::Card(card) => {
            check_backend(card)?;
            let hint = format!("tercuman models fetch {}", card.name);
            let paths = get_files(spec, |file| hub.get(file, &hint))?;
            let files = match card.kind {
                Kind::Marian => ModelFiles::Marian(
                    paths[0]
                        .parent()
                        .expect("a cached file lies in its snapshot directory")
                        .to_path_buf(),
                ),
                _ => ModelFiles::Gguf(
                    paths
                        .into_iter()
                        .find(|p| p.extension().is_some_and(|e| e == "gguf"))
                        .expect("a gguf-chat card has one .gguf file (card tests)"),
                ),
            };
            Ok(Resolved {
                files,
                card: Some((**card).clone()),
                label: card.name.clone(),
            })
        }
    }
}

/// A local `--model` path: a .gguf file, a directory holding one, or a Marian model directory.
fn local_files(path: &Path) -> Result<ModelFiles> {
    if path.is_dir() && path.join("config.json").exists() && path.join("source.spm").exists() {
        return Ok(ModelFiles::Marian(path.to_path_buf()));
    }
    local_gguf(path).map(ModelFiles::Gguf)
}

fn local_gguf(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let invalid = |message: String| Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    };
    let entries = std::fs::read_dir(path).map_err(|e| Error::ModelRead {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    let mut ggufs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    ggufs.sort();
    match ggufs.len() {
        1 => Ok(ggufs.remove(0)),
        0 => Err(invalid(
            "holds no .gguf file and no Marian model (config.json, source.spm); pass the path of a .gguf file or of a model directory, or a card name (`tercuman models list`)".into(),
        )),
        _ => Err(invalid(format!(
            "holds several .gguf files ({}); pass the one to use",
            ggufs
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_specs() {
        let f =
            parse_hub("Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf").unwrap();
        assert_eq!(f.repo, "Qwen/Qwen2.5-1.5B-Instruct-GGUF");
        assert_eq!(f.path, "qwen2.5-1.5b-instruct-q4_k_m.gguf");
        assert_eq!(f.revision, "main");
        let f = parse_hub("o/r/sub/dir/m.gguf@0123abc").unwrap();
        assert_eq!(
            (f.path.as_str(), f.revision.as_str()),
            ("sub/dir/m.gguf", "0123abc")
        );
        for bad in ["o/r", "o//m.gguf", "/r/m.gguf", "o/r/m.gguf@"] {
            assert!(parse_hub(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hub_part_of_a_split_model_brings_all_its_parts() {
        let spec = ModelSpec::parse("hf:o/r/sub/m-00001-of-00003.gguf@abc").unwrap();
        let files: Vec<String> = spec.hub_files().into_iter().map(|f| f.path).collect();
        assert_eq!(
            files,
            [
                "sub/m-00001-of-00003.gguf",
                "sub/m-00002-of-00003.gguf",
                "sub/m-00003-of-00003.gguf"
            ]
        );
        let single = ModelSpec::parse("hf:o/r/m.gguf").unwrap();
        assert_eq!(single.hub_files().len(), 1);
    }

    #[test]
    fn names_resolve_to_cards_paths_or_clear_errors() {
        assert!(matches!(
            ModelSpec::parse("gemma-3-270m-it").unwrap(),
            ModelSpec::Card(_)
        ));
        assert!(matches!(
            ModelSpec::parse("Cargo.toml").unwrap(),
            ModelSpec::Path(_)
        ));
        let err = ModelSpec::parse("qwen-9000").unwrap_err().to_string();
        assert!(err.contains("models list"), "{err}");
        let err = ModelSpec::parse("nowhere/m.gguf").unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn a_directory_holding_one_gguf_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = local_gguf(dir.path()).unwrap_err().to_string();
        assert!(err.contains("holds no .gguf file"), "{err}");
        std::fs::write(dir.path().join("m.gguf"), b"").unwrap();
        std::fs::write(dir.path().join("README.md"), b"").unwrap();
        assert_eq!(local_gguf(dir.path()).unwrap(), dir.path().join("m.gguf"));
        std::fs::write(dir.path().join("n.gguf"), b"").unwrap();
        let err = local_gguf(dir.path()).unwrap_err().to_string();
        assert!(err.contains("m.gguf, n.gguf"), "{err}");
        let marian = tempfile::tempdir().unwrap();
        for f in ["config.json", "source.spm"] {
            std::fs::write(marian.path().join(f), b"").unwrap();
        }
        assert_eq!(
            local_files(marian.path()).unwrap(),
            ModelFiles::Marian(marian.path().to_path_buf())
        );
    }

    #[test]
    fn an_optional_file_the_hub_or_cache_lacks_is_left_out_and_a_required_one_is_an_error() {
        let spec = ModelSpec::parse("opus-mt-tr-en").unwrap();
        let not_found = |path: &str| HubError::NotFound {
            what: format!("no file {path}"),
            status: 404,
        };
        let mut asked = Vec::new();
        let paths = get_files(&spec, |f| {
            asked.push(f.path.clone());
            match f.path.as_str() {
                "generation_config.json" => Err(not_found(&f.path)),
                p => Ok(PathBuf::from("/snap").join(p)),
            }
        })
        .unwrap();
        // The optional file last, after every required one.
        assert_eq!(asked.last().unwrap(), "generation_config.json");
        assert_eq!(paths.len(), asked.len() - 1);
        assert!(!paths.iter().any(|p| p.ends_with("generation_config.json")));
        // Offline and not cached: left out too.
        let paths = get_files(&spec, |f| match f.path.as_str() {
            "generation_config.json" => Err(HubError::NotCached {
                file: f.path.clone(),
                cache: PathBuf::from("/cache"),
                hint: String::new(),
            }),
            p => Ok(PathBuf::from(p)),
        })
        .unwrap();
        assert_eq!(paths.len(), 5);
        // A required file the hub lacks, or any other failure of the optional one, fails.
        let err = get_files(&spec, |f| match f.path.as_str() {
            "pytorch_model.bin" => Err(not_found(&f.path)),
            p => Ok(PathBuf::from(p)),
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("no file pytorch_model.bin"),
            "{err}"
        );
        let err = get_files(&spec, |f| match f.path.as_str() {
            "generation_config.json" => Err(HubError::Server {
                status: 500,
                url: String::new(),
                message: None,
            }),
            p => Ok(PathBuf::from(p)),
        })
        .unwrap_err();
        assert!(err.to_string().contains("500"), "{err}");
    }

    #[test]
    fn a_t5_card_is_refused_before_any_download() {
        let hub = Hub::from_env(true, true);
        let card = Card::parse(
            "madlad400-3b-mt.toml",
            include_str!("../../models/unsupported/madlad400-3b-mt.toml"),
        )
        .unwrap();
        let spec = ModelSpec::Card(Box::new(card));
        let err = resolve(&spec, &hub).unwrap_err().to_string();
        assert!(err.contains("not built yet"), "{err}");
    }
}
