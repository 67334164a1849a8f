//! Hugging Face Hub client: finds model files in the standard Hugging Face cache, and downloads
//! the missing ones, verified, into that same cache, so that files fetched by Python tools are
//! reused and the other way round.
//!
//! The cache layout (`models--owner--name/{blobs,snapshots,refs}`) comes from `hf-hub`. The
//! transfer is done here, on ureq, because `hf-hub` 0.5's downloader moves a file into the blob
//! store before anything checks it (no size or checksum test, so a cut or altered download
//! would be trusted by the next run), appends a whole `200` body to a partial file when a server
//! ignores `Range`, and turns every error status into a bare code, losing the hub's
//! `X-Error-Code` that tells a gated repo from a missing one. Here a file only enters `blobs/`
//! after its size and checksum match; until then it is `blobs/<etag>.incomplete`, which later
//! runs resume and never load.
//!
//! Environment, as `huggingface_hub` reads it: `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`,
//! `HF_TOKEN` (or `HF_TOKEN_PATH`, else `$HF_HOME/token`), `HF_HUB_OFFLINE`,
//! `HF_HUB_DOWNLOAD_TIMEOUT` and `HF_HUB_ETAG_TIMEOUT` (seconds).

use hf_hub::{Repo, RepoType};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::Digest;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Attempts per file when the connection breaks or stalls; each resumes where the last stopped.
const ATTEMPTS: u32 = 3;

/// A file in a hub repository, as a card or a `hf:` model spec names it.
#[derive(Debug, Clone)]
pub struct HubFile {
    pub repo: String,
    pub revision: String,
    pub path: String,
    /// Expected sha256, when the card records it.
    pub sha256: Option<String>,
    /// Expected size in bytes, when the card records it.
    pub size: Option<u64>,
    /// Whether the card says the repo is gated (licence acceptance needed).
    pub gated: bool,
}

impl HubFile {
    fn describe(&self) -> String {
        format!("{}/{} (revision {})", self.repo, self.path, self.revision)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("offline, and {file} is not in the cache at {cache}; {hint}")]
    NotCached {
        file: String,
        cache: PathBuf,
        hint: String,
    },
    #[error("{repo} is gated: the hub answered {status} {}", gated_advice(.page, *.token_sent))]
    Gated {
        repo: String,
        page: String,
        status: u16,
        token_sent: bool,
    },
    #[error("the hub refused the token in HF_TOKEN ({message}); check that it is a valid read token (https://huggingface.co/settings/tokens), or unset it for public models")]
    TokenRefused { message: String },
    #[error("{what} (hub answered {status}); check the model name, or set HF_TOKEN if the repository is private")]
    NotFound { what: String, status: u16 },
    #[error("the hub answered {status} for {url}{}; it may be having trouble: try again later, or use --offline for models already in the cache", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Server {
        status: u16,
        url: String,
        message: Option<String>,
    },
    #[error("could not reach {endpoint} ({cause}); check the network, or pass --offline to use models already in the cache, or --model PATH for a local .gguf file")]
    Unreachable { endpoint: String, cause: String },
    #[error("the download of {file} broke off after {} of {} ({cause}); run the same command again to resume it", HumanBytes(*.done), HumanBytes(*.total))]
    Interrupted {
        file: String,
        done: u64,
        total: u64,
        cause: String,
    },
    #[error("{file}: the downloaded bytes do not match the expected {algorithm} {expected} (got {actual}); the download was discarded. Run again to fetch it afresh; if this repeats, something between you and the hub is altering files, or the model card is out of date")]
    Checksum {
        file: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{file}: the hub now serves {what} {hub} but the model card pins {card}; the card is out of date, or the repository was changed")]
    CardMismatch {
        file: String,
        what: &'static str,
        card: String,
        hub: String,
    },
    #[error("not enough disk space in {dir}: {file} needs {} more, {} free; free some space or set HF_HUB_CACHE to a larger disk", HumanBytes(*.needed), HumanBytes(*.available))]
    DiskFull {
        dir: PathBuf,
        file: String,
        needed: u64,
        available: u64,
    },
    #[error("the disk holding {dir} filled up while downloading {file}; the partial download was removed. Free some space, or set HF_HUB_CACHE to a larger disk, and run again")]
    DiskFilled { dir: PathBuf, file: String },
    #[error(
        "{url} did not answer like a Hugging Face hub (no {header} header); check HF_ENDPOINT"
    )]
    NotAHub { url: String, header: &'static str },
    #[error("cache file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn gated_advice(page: &str, token_sent: bool) -> String {
    if token_sent {
        format!("and refused the token in HF_TOKEN: accept the licence at {page} with the account that token belongs to (or use a token with read access), then run again")
    } else {
        format!("and no token was sent: accept the licence at {page}, create a read token at https://huggingface.co/settings/tokens, set HF_TOKEN to it, then run again")
    }
}

/// Where files come from and go to; read from the environment once per run.
#[derive(Debug, Clone)]
pub struct Hub {
    pub endpoint: String,
    /// The hub cache directory (`.../huggingface/hub`).
    pub cache: PathBuf,
    token: Option<String>,
    pub offline: bool,
    quiet: bool,
    read_timeout: Duration,
    head_timeout: Duration,
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn env_true(key: &str) -> bool {
    env_nonempty(key)
        .is_some_and(|v| ["1", "on", "yes", "true"].contains(&v.trim().to_lowercase().as_str()))
}

fn env_seconds(key: &str, default: f64) -> Duration {
    let secs = env_nonempty(key)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

impl Hub {
    /// Reads the hub settings from the environment; `offline` adds to `HF_HUB_OFFLINE`.
    pub fn from_env(offline: bool, quiet: bool) -> Hub {
        let home = env_nonempty("HF_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                env_nonempty("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| env_nonempty("HOME").map(|h| Path::new(&h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from(".cache"))
                    .join("huggingface")
            });
        let cache = env_nonempty("HF_HUB_CACHE")
            .or_else(|| env_nonempty("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("hub"));
        let token = env_nonempty("HF_TOKEN")
            .or_else(|| env_nonempty("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = env_nonempty("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join("token"));
                std::fs::read_to_string(path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            })
            .map(|t| t.trim().to_string());
        Hub {
            endpoint: env_nonempty("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            cache,
            token,
            offline: offline || env_true("HF_HUB_OFFLINE"),
            quiet,
            read_timeout: env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10.0),
            head_timeout: env_seconds("HF_HUB_ETAG_TIMEOUT", 10.0),
        }
    }

    fn repo(&self, file: &HubFile) -> hf_hub::CacheRepo {
        hf_hub::Cache::new(self.cache.clone()).repo(Repo::with_revision(
            file.repo.clone(),
            RepoType::Model,
            file.revision.clone(),
        ))
    }

    fn repo_dir(&self, file: &HubFile) -> PathBuf {
        self.cache
            .join(Repo::model(file.repo.clone()).folder_name())
    }

    /// The cached copy of `file`, if there is one: `snapshots/<commit>/<path>`, with the commit
    /// taken from `refs/<revision>` unless the revision is itself a commit.
    pub fn cached(&self, file: &HubFile) -> Option<PathBuf> {
        let commit = if is_hex(&file.revision, 40) {
            file.revision.clone()
        } else {
            let refs = self.repo_dir(file).join("refs").join(&file.revision);
            std::fs::read_to_string(refs).ok()?.trim().to_string()
        };
        let path = self.repo(file).pointer_path(&commit).join(&file.path);
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || file.size.is_some_and(|s| s != meta.len()) {
            return None;
        }
        // With a pinned sha256, the link must lead to that blob (blobs are named by ETag, which
        // is the sha256 of an LFS file): another tool may have moved the branch.
        if let Some(sha) = &file.sha256 {
            let target = std::fs::read_link(&path).ok()?;
            if target.file_name()? != sha.as_str() {
                return None;
            }
        }
        Some(path)
    }

    /// The local path of `file`: the cached copy, else (unless offline) a verified download.
    /// `fetch_hint` says how to fetch it ahead of time, for the offline error.
    pub fn get(&self, file: &HubFile, fetch_hint: &str) -> Result<PathBuf, HubError> {
        if let Some(path) = self.cached(file) {
            return Ok(path);
        }
        if self.offline {
            return Err(HubError::NotCached {
                file: file.describe(),
                cache: self.cache.clone(),
                hint: format!(
                    "run `{fetch_hint}` while online (without --offline and HF_HUB_OFFLINE), or pass --model PATH"
                ),
            });
        }
        self.download(file)
    }

    /// Asks the hub for the current version of `file` and downloads it unless that version is
    /// already in the cache.
    pub fn download(&self, file: &HubFile) -> Result<PathBuf, HubError> {
        if self.offline {
            return self.get(file, "tercuman models fetch");
        }
        let meta = self.metadata(file)?;
        if let Some(size) = file.size.filter(|s| *s != meta.size) {
            return Err(HubError::CardMismatch {
                file: file.describe(),
                what: "a size of",
                card: format!("{size} bytes"),
                hub: format!("{} bytes", meta.size),
            });
        }
        let expected = match (&file.sha256, is_hex(&meta.etag, 64)) {
            (Some(card), true) if *card != meta.etag => {
                return Err(HubError::CardMismatch {
                    file: file.describe(),
                    what: "sha256",
                    card: card.clone(),
                    hub: meta.etag.clone(),
                })
            }
            (Some(card), _) => Check::Sha256(card.clone()),
            (None, true) => Check::Sha256(meta.etag.clone()),
            (None, false) if is_hex(&meta.etag, 40) => Check::GitSha1(meta.etag.clone()),
            (None, false) => Check::SizeOnly,
        };
        let cache_repo = self.repo(file);
        let blob = cache_repo.blob_path(&meta.etag);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HubError::Io { path, source }
        };
        let blobs = blob.parent().expect("blob path has a parent").to_path_buf();
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;

        // One process downloads a blob at a time; the lock sits where huggingface_hub puts its.
        let locks = self
            .cache
            .join(".locks")
            .join(Repo::model(file.repo.clone()).folder_name());
        std::fs::create_dir_all(&locks).map_err(io(&locks))?;
        let lock_path = locks.join(format!("{}.lock", meta.etag));
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;

        let have = std::fs::metadata(&blob).map(|m| m.len()).ok();
        if have != Some(meta.size) {
            self.fetch_blob(file, &meta, &blob, &expected)?;
        }

        // Still under the lock, so that two processes do not race on the link.
        let pointer = cache_repo.pointer_path(&meta.commit).join(&file.path);
        link_pointer(&blob, &pointer, &file.path).map_err(io(&pointer))?;
        if !is_hex(&file.revision, 40) {
            cache_repo
                .create_ref(&meta.commit)
                .map_err(io(&self.repo_dir(file).join("refs")))?;
        }
        drop(lock);
        Ok(pointer)
    }

    fn resolve_url(&self, file: &HubFile) -> String {
        self.resolve_url_at(file, &file.revision)
    }

    fn resolve_url_at(&self, file: &HubFile, revision: &str) -> String {
        let repo = Repo::model(file.repo.clone());
        format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            repo.url(),
            percent_encode(revision, false),
            percent_encode(&file.path, true)
        )
    }

    fn request(
        &self,
        method: &str,
        url: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let agent = ureq::Agent::new_with_defaults();
        let mut req = match method {
            "HEAD" => agent.head(url),
            _ => agent.get(url),
        };
        req = req
            .header(
                "User-Agent",
                concat!("tercuman/", env!("CARGO_PKG_VERSION")),
            )
            .header("Accept-Encoding", "identity");
        // The token goes to the hub only, never to the storage host a download redirects to.
        if let Some(token) = &self.token {
            if same_origin(url, &self.endpoint) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
        }
        req
    }

    /// What the hub says of `file` now: commit, ETag, size, and where the bytes are.
    fn metadata(&self, file: &HubFile) -> Result<Metadata, HubError> {
        let mut url = self.resolve_url(file);
        for _ in 0..5 {
            let resp = self
                .request("HEAD", &url)
                .config()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(self.head_timeout))
                .build()
                .call()
                .map_err(|e| self.unreachable(e))?;
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
            };
            let location = header("location");
            if (300..400).contains(&status) {
                let Some(location) = location.clone() else {
                    return Err(HubError::NotAHub {
                        url,
                        header: "Location",
                    });
                };
                if location.starts_with('/') {
                    // A renamed repository: follow within the hub.
                    url = format!("{}{location}", origin(&url));
                    continue;
                }
            } else if !(200..300).contains(&status) {
                return Err(self.status_error(
                    file,
                    status,
                    &url,
                    header("x-error-code"),
                    header("x-error-message"),
                ));
            }
            let commit = header("x-repo-commit").ok_or(HubError::NotAHub {
                url: url.clone(),
                header: "X-Repo-Commit",
            })?;
            let etag = header("x-linked-etag")
                .or_else(|| header("etag"))
                .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
                .filter(|e| !e.is_empty() && !e.contains('/'))
                .ok_or(HubError::NotAHub {
                    url: url.clone(),
                    header: "ETag",
                })?;
            let size = header("x-linked-size")
                .or_else(|| header("content-length"))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(HubError::NotAHub {
                    url: url.clone(),
                    header: "Content-Length",
                })?;
            let download_url = match location {
                Some(l) if (300..400).contains(&status) => l,
                // A small file served by the hub itself: fetch it at the commit just seen, so
                // that a branch moving meanwhile cannot swap the bytes.
                _ => self.resolve_url_at(file, &commit),
            };
            return Ok(Metadata {
                commit,
                etag,
                size,
                url: download_url,
            });
        }
        Err(HubError::Server {
            status: 310,
            url,
            message: Some("too many redirects".into()),
        })
    }

    fn status_error(
        &self,
        file: &HubFile,
        status: u16,
        url: &str,
        code: Option<String>,
        message: Option<String>,
    ) -> HubError {
        let code = code.unwrap_or_default();
        match status {
            401 | 403 if code == "GatedRepo" || file.gated || status == 403 => HubError::Gated {
                repo: file.repo.clone(),
                page: format!("{}/{}", self.endpoint, file.repo),
                status,
                token_sent: self.token.is_some(),
            },
            401 if self.token.is_some() && code.is_empty() => HubError::TokenRefused {
                message: message.unwrap_or_else(|| "no reason given".into()),
            },
            401 | 404 => HubError::NotFound {
                what: match code.as_str() {
                    "EntryNotFound" => format!(
                        "no file {} in {} at revision {}",
                        file.path, file.repo, file.revision
                    ),
                    "RevisionNotFound" => {
                        format!("no revision {} in {}", file.revision, file.repo)
                    }
                    "RepoNotFound" => format!("no repository {} on {}", file.repo, self.endpoint),
                    _ => format!("not found: {}", file.describe()),
                },
                status,
            },
            _ => HubError::Server {
                status,
                url: url.to_string(),
                message,
            },
        }
    }

    fn unreachable(&self, e: ureq::Error) -> HubError {
        HubError::Unreachable {
            endpoint: self.endpoint.clone(),
            cause: e.to_string(),
        }
    }

    /// Downloads `meta` into `blob` through `blob.incomplete`, resuming a partial file, and
    /// moves it into place only once its size and checksum are right.
    fn fetch_blob(
        &self,
        file: &HubFile,
        meta: &Metadata,
        blob: &Path,
        check: &Check,
    ) -> Result<(), HubError> {
        let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
        let (mut out, have) = open_partial(file, &partial, meta.size)?;
        let bar = self.progress_bar(file, meta.size, have);
        let mut attempt = 1;
        let mut meta = meta.clone();
        loop {
            match self.transfer(file, &meta, &mut out, &partial, &bar) {
                Ok(()) => break,
                Err(Transfer::Fatal(e)) => {
                    bar.abandon();
                    if matches!(e, HubError::DiskFilled { .. }) {
                        drop(out);
                        let _ = std::fs::remove_file(&partial);
                    }
                    return Err(e);
                }
                Err(Transfer::Retry(e)) if attempt >= ATTEMPTS => {
                    bar.abandon();
                    return Err(e);
                }
                Err(Transfer::Retry(_)) => {
                    std::thread::sleep(Duration::from_millis(250 << attempt));
                    attempt += 1;
                    // A storage link is signed for a while only: ask the hub for a fresh one
                    // for the same file (same ETag) before trying again.
                    if let Ok(fresh) = self.metadata(file) {
                        if fresh.etag == meta.etag && fresh.size == meta.size {
                            meta.url = fresh.url;
                        }
                    }
                }
            }
        }
        bar.finish_and_clear();
        verify_and_place(file, out, &partial, blob, check)
    }

    /// One request for the rest of the file; appends to `out`.
    fn transfer(
        &self,
        file: &HubFile,
        meta: &Metadata,
        out: &mut File,
        partial: &Path,
        bar: &ProgressBar,
    ) -> Result<(), Transfer> {
        let io_fatal = |source| io_fatal(partial, source);
        let have = out.metadata().map_err(io_fatal)?.len();
        if have == meta.size {
            return Ok(());
        }
        let mut req = self.request("GET", &meta.url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = req
            .config()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .build()
            .call()
            .map_err(|e| Transfer::Retry(interrupted(file, meta, have, e.to_string())))?;
        let have = self.resume_point(file, meta, &resp, out, partial, have)?;
        out.seek(std::io::SeekFrom::Start(have)).map_err(io_fatal)?;
        bar.set_position(have);
        self.copy_body(file, meta, resp, out, partial, have, bar)
    }

    /// Where the body of `resp` goes in `out`: after the `have` bytes already there when the
    /// server honoured the range, at 0 when it sent the whole file; an error status is a
    /// retry (server faults, expired storage links) or fatal (not found, gated).
    fn resume_point(
        &self,
        file: &HubFile,
        meta: &Metadata,
        resp: &ureq::http::Response<ureq::Body>,
        out: &mut File,
        partial: &Path,
        have: u64,
    ) -> Result<u64, Transfer> {
        let io_fatal = |source| io_fatal(partial, source);
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match status {
            206 => {
                let range = header("content-range").unwrap_or_default();
                if !range.starts_with(&format!("bytes {have}-")) {
                    out.set_len(0).map_err(io_fatal)?;
                    let cause = format!("unexpected Content-Range {range:?}");
                    return Err(Transfer::Retry(interrupted(file, meta, 0, cause)));
                }
                Ok(have)
            }
            200 => {
                // The server sent the whole file: start over.
                if have > 0 {
                    out.set_len(0).map_err(io_fatal)?;
                }
                Ok(0)
            }
            416 => {
                out.set_len(0).map_err(io_fatal)?;
                let cause = "range not satisfiable".to_string();
                Err(Transfer::Retry(interrupted(file, meta, 0, cause)))
            }
            500..=599 => Err(Transfer::Retry(HubError::Server {
                status,
                url: meta.url.clone(),
                message: None,
            })),
            _ if !same_origin(&meta.url, &self.endpoint) => {
                // The storage host refused a link that may have expired: a retry asks the hub
                // for a fresh one.
                Err(Transfer::Retry(HubError::Server {
                    status,
                    url: origin(&meta.url).to_string(),
                    message: Some("the storage host refused the download link".into()),
                }))
            }
            _ => Err(Transfer::Fatal(self.status_error(
                file,
                status,
                &meta.url,
                header("x-error-code"),
                None,
            ))),
        }
    }

    /// Appends the body of `resp` to `out` (which holds `have` bytes), up to the announced
    /// size: a stalled or cut connection is a retry, a full disk or an overlong body fatal.
    #[allow(clippy::too_many_arguments)]
    fn copy_body(
        &self,
        file: &HubFile,
        meta: &Metadata,
        resp: ureq::http::Response<ureq::Body>,
        out: &mut File,
        partial: &Path,
        mut have: u64,
        bar: &ProgressBar,
    ) -> Result<(), Transfer> {
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let cause = if is_timeout(&e) {
                        format!("no data for {:.0} s", self.read_timeout.as_secs_f64())
                    } else {
                        e.to_string()
                    };
                    return Err(Transfer::Retry(interrupted(file, meta, have, cause)));
                }
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                if e.kind() == std::io::ErrorKind::StorageFull {
                    return Err(Transfer::Fatal(HubError::DiskFilled {
                        dir: self.cache.clone(),
                        file: file.describe(),
                    }));
                }
                return Err(io_fatal(partial, e));
            }
            have += n as u64;
            bar.set_position(have);
            if have > meta.size {
                out.set_len(0).map_err(|e| io_fatal(partial, e))?;
                let cause = format!(
                    "the server sent more than the {} bytes it announced",
                    meta.size
                );
                return Err(Transfer::Fatal(interrupted(file, meta, have, cause)));
            }
        }
        if have < meta.size {
            let cause = "the connection closed early".to_string();
            return Err(Transfer::Retry(interrupted(file, meta, have, cause)));
        }
        Ok(())
    }

    fn progress_bar(&self, file: &HubFile, size: u64, have: u64) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let what = format!("{}/{}", file.repo, file.path);
        if !std::io::stderr().is_terminal() {
            let resume = if have > 0 {
                format!(", resuming at {}", HumanBytes(have))
            } else {
                String::new()
            };
            eprintln!(
                "tercuman: downloading {what} ({}{resume}) from {}",
                HumanBytes(size),
                self.endpoint
            );
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "[{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("downloading {what}"));
        bar.set_position(have);
        bar
    }
}

/// The hub's answer for one file.
#[derive(Debug, Clone)]
struct Metadata {
    commit: String,
    etag: String,
    size: u64,
    /// Where the bytes are: the resolve URL, or the storage URL it redirects to.
    url: String,
}

enum Transfer {
    /// The connection broke or stalled; another request may resume it.
    Retry(HubError),
    Fatal(HubError),
}

/// How a downloaded file is checked.
enum Check {
    Sha256(String),
    /// A small (non-LFS) file: its ETag is the git blob id, sha1 of `blob <len>\0<bytes>`.
    GitSha1(String),
    SizeOnly,
}

impl Check {
    fn expected(&self) -> Option<&str> {
        match self {
            Check::Sha256(s) | Check::GitSha1(s) => Some(s),
            Check::SizeOnly => None,
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Check::Sha256(_) => "sha256",
            Check::GitSha1(_) => "git blob sha1",
            Check::SizeOnly => "size",
        }
    }

    fn digest(&self, file: &mut File) -> std::io::Result<Option<String>> {
        file.seek(std::io::SeekFrom::Start(0))?;
        let len = file.metadata()?.len();
        fn hash<D: Digest>(mut d: D, file: &mut File) -> std::io::Result<String> {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                d.update(&buf[..n]);
            }
            Ok(d.finalize().iter().map(|b| format!("{b:02x}")).collect())
        }
        Ok(match self {
            Check::Sha256(_) => Some(hash(sha2::Sha256::new(), file)?),
            Check::GitSha1(_) => {
                let mut d = sha1::Sha1::new();
                d.update(format!("blob {len}\0").as_bytes());
                Some(hash(d, file)?)
            }
            Check::SizeOnly => None,
        })
    }
}

/// Points `snapshots/<commit>/<path>` at the blob, as a relative symlink like
/// huggingface_hub's (a copy where symlinks are not available).
fn link_pointer(blob: &Path, pointer: &Path, path_in_repo: &str) -> std::io::Result<()> {
    let parent = pointer.parent().expect("pointer has a parent");
    std::fs::create_dir_all(parent)?;
    // Made aside and renamed over the old one: readers see the old link or the new one.
    let mut tmp_name = pointer
        .file_name()
        .expect("pointer has a name")
        .to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = pointer.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    {
        let ups = 2 + path_in_repo.matches('/').count();
        let mut target = PathBuf::new();
        for _ in 0..ups {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob.file_name().expect("blob has a name"));
        std::os::unix::fs::symlink(target, &tmp)?;
    }
    #[cfg(not(unix))]
    {
        let _ = path_in_repo;
        std::fs::copy(blob, &tmp)?;
    }
    std::fs::rename(&tmp, pointer)
}

/// Percent-encodes a URL path part as Python's `quote` does; `/` kept where `keep_slash`.
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) || e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// Whether `s` is `len` lower-case hexadecimal digits (a git commit id, a sha256).
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Opens (or creates) the partial download `partial` of a `size`-byte file and says how much
/// of it is there; refuses at once when the disk cannot hold the rest.
fn open_partial(file: &HubFile, partial: &Path, size: u64) -> Result<(File, u64), HubError> {
    let io = |source| HubError::Io {
        path: partial.to_path_buf(),
        source,
    };
    let out = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(partial)
        .map_err(io)?;
    let mut have = out.metadata().map_err(io)?.len();
    if have > size {
        out.set_len(0).map_err(io)?;
        have = 0;
    }
    let dir = partial.parent().expect("blob has a parent");
    if let Some(available) = crate::sys::available_space(dir) {
        let needed = size - have;
        if available < needed {
            return Err(HubError::DiskFull {
                dir: dir.to_path_buf(),
                file: file.describe(),
                needed,
                available,
            });
        }
    }
    Ok((out, have))
}

/// Checks the finished download `partial` and moves it to `blob`; a wrong checksum removes it.
fn verify_and_place(
    file: &HubFile,
    mut out: File,
    partial: &Path,
    blob: &Path,
    check: &Check,
) -> Result<(), HubError> {
    let io = |source| HubError::Io {
        path: partial.to_path_buf(),
        source,
    };
    out.sync_all().map_err(io)?;
    let actual = check.digest(&mut out).map_err(io)?;
    drop(out);
    if let (Some(expected), Some(actual)) = (check.expected(), actual) {
        if expected != actual {
            let _ = std::fs::remove_file(partial);
            return Err(HubError::Checksum {
                file: file.describe(),
                algorithm: check.algorithm(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    std::fs::rename(partial, blob).map_err(io)?;
    if let Some(Ok(d)) = blob.parent().map(File::open) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io_fatal(partial: &Path, source: std::io::Error) -> Transfer {
    Transfer::Fatal(HubError::Io {
        path: partial.to_path_buf(),
        source,
    })
}

/// A download of `file` cut off after `done` bytes.
fn interrupted(file: &HubFile, meta: &Metadata, done: u64, cause: String) -> HubError {
    HubError::Interrupted {
        file: file.describe(),
        done,
        total: meta.size,
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_revisions_are_percent_encoded() {
        assert_eq!(percent_encode("dir/a b#1.gguf", true), "dir/a%20b%231.gguf");
        assert_eq!(percent_encode("refs/pr/1", false), "refs%2Fpr%2F1");
    }

    #[test]
    fn origins() {
        assert_eq!(origin("http://127.0.0.1:8080/a/b"), "http://127.0.0.1:8080");
        assert_eq!(origin("https://huggingface.co"), "https://huggingface.co");
        assert!(same_origin(
            "https://huggingface.co/x",
            "https://huggingface.co"
        ));
        assert!(!same_origin(
            "https://cdn-lfs.hf.co/x",
            "https://huggingface.co"
        ));
    }

    #[test]
    fn git_blob_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        let mut f = File::open(&path).unwrap();
        // `git hash-object` of "hello\n".
        let id = "ce013625030ba8dba906f756967f9e9ca394464a";
        let got = Check::GitSha1(id.into()).digest(&mut f).unwrap();
        assert_eq!(got.as_deref(), Some(id));
    }

    #[test]
    fn pointers_are_relative_links_into_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blobs").join("abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, "x").unwrap();
        let pointer = dir.path().join("snapshots/c0/sub/f.gguf");
        link_pointer(&blob, &pointer, "sub/f.gguf").unwrap();
        assert_eq!(std::fs::read_to_string(&pointer).unwrap(), "x");
        // Replacing a link that points elsewhere.
        let other = dir.path().join("blobs").join("def");
        std::fs::write(&other, "y").unwrap();
        link_pointer(&other, &pointer, "sub/f.gguf").unwrap();
        assert_eq!(
            std::fs::read_link(&pointer).unwrap(),
            Path::new("../../../blobs/def")
        );
        assert_eq!(std::fs::read_to_string(&pointer).unwrap(), "y");
    }
}
