//! A local stand-in for the Hugging Face hub, for tests: no machine here reaches the real one.
//!
//! It answers the way the hub does for what the client reads. `HEAD`/`GET
//! /{owner}/{name}/resolve/{revision}/{path}` carries `X-Repo-Commit`; a large (LFS) file answers
//! `302` to a second server standing in for the storage CDN (another origin, so a token must not
//! follow), with `X-Linked-Etag` (the sha256) and `X-Linked-Size`; a small file answers `200`
//! with its git blob id as `ETag`. Errors carry `X-Error-Code` (`RepoNotFound`, `GatedRepo`,
//! `RevisionNotFound`, `EntryNotFound`), anonymous requests for a gated repo get `401` and a
//! wrong token `403`. The CDN honours `Range` with `206`. Faults are switched on per test.

use sha2::Digest;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does wrong, from now on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// Every resolve request answers this status.
    Status(u16),
    /// The CDN announces the full length, sends this many bytes, and closes the connection.
    DropAfter(u64),
    /// One byte in the middle of the file is flipped (by the CDN, or the hub for small files).
    WrongBytes,
    /// The CDN answers every request with this status (an expired or refused link).
    CdnStatus(u16),
    /// The CDN sends 16 KiB at a time with this pause between pieces.
    Slow(Duration),
    /// The CDN sends the headers and 1 KiB, then nothing.
    Stall,
}

#[derive(Clone)]
enum Bytes {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

impl Bytes {
    fn len(&self) -> u64 {
        match self {
            Bytes::Memory(b) => b.len() as u64,
            Bytes::File(p) => std::fs::metadata(p).unwrap().len(),
        }
    }

    fn reader(&self, from: u64) -> Box<dyn Read + Send> {
        match self {
            Bytes::Memory(b) => Box::new(std::io::Cursor::new(b[from as usize..].to_vec())),
            Bytes::File(p) => {
                let mut f = std::fs::File::open(p).unwrap();
                f.seek(std::io::SeekFrom::Start(from)).unwrap();
                Box::new(BufReader::with_capacity(1 << 20, f))
            }
        }
    }
}

#[derive(Clone)]
struct Served {
    repo: String,
    path: String,
    bytes: Bytes,
    sha256: String,
    git_sha1: String,
    lfs: bool,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    /// Whether it reached the CDN stand-in rather than the hub.
    pub cdn: bool,
}

#[derive(Default)]
struct State {
    files: Vec<Served>,
    gated: Vec<(String, String)>,
    fault: Option<Fault>,
    seen: Vec<Seen>,
}

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub struct FakeHub {
    pub url: String,
    cdn_url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digests(bytes: &Bytes) -> (String, String) {
    let mut sha = sha2::Sha256::new();
    let mut git = sha1::Sha1::new();
    git.update(format!("blob {}\0", bytes.len()).as_bytes());
    let mut r = bytes.reader(0);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        git.update(&buf[..n]);
    }
    (hex(&sha.finalize()), hex(&git.finalize()))
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let hub = TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", hub.local_addr().unwrap());
        let cdn_url = format!("http://{}", cdn.local_addr().unwrap());
        let mut threads = Vec::new();
        for (listener, is_cdn) in [(hub, false), (cdn, true)] {
            listener.set_nonblocking(true).unwrap();
            let state = state.clone();
            let stop = stop.clone();
            let cdn_url = cdn_url.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            let stop = stop.clone();
                            let cdn_url = cdn_url.clone();
                            std::thread::spawn(move || {
                                let _ = handle(stream, &state, &stop, is_cdn, &cdn_url);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }));
        }
        FakeHub {
            url,
            cdn_url,
            state,
            stop,
            threads,
        }
    }

    /// Serves `bytes` as `repo/path` at commit [`COMMIT`] (branch `main`); returns its sha256.
    pub fn add(&self, repo: &str, path: &str, bytes: Vec<u8>, lfs: bool) -> String {
        self.add_bytes(repo, path, Bytes::Memory(Arc::new(bytes)), lfs)
    }

    /// Serves the file at `file` as an LFS file `repo/path`; returns its sha256.
    pub fn add_file(&self, repo: &str, path: &str, file: PathBuf) -> String {
        self.add_bytes(repo, path, Bytes::File(file), true)
    }

    fn add_bytes(&self, repo: &str, path: &str, bytes: Bytes, lfs: bool) -> String {
        let (sha256, git_sha1) = digests(&bytes);
        self.state.lock().unwrap().files.push(Served {
            repo: repo.into(),
            path: path.into(),
            bytes,
            sha256: sha256.clone(),
            git_sha1,
            lfs,
        });
        sha256
    }

    /// Makes `repo` gated: only `Bearer token` may download it.
    pub fn gate(&self, repo: &str, token: &str) {
        self.state
            .lock()
            .unwrap()
            .gated
            .push((repo.into(), token.into()));
    }

    pub fn fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = Some(fault);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    pub fn cdn_url(&self) -> &str {
        &self.cdn_url
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn handle(
    stream: TcpStream,
    state: &Mutex<State>,
    stop: &AtomicBool,
    is_cdn: bool,
    cdn_url: &str,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut range = None;
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let (fault, files, gated) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            authorization: authorization.clone(),
            cdn: is_cdn,
        });
        (
            s.fault.clone().unwrap_or(Fault::None),
            s.files.clone(),
            s.gated.clone(),
        )
    };
    let mut out = stream;
    let head_only = method == "HEAD";
    if is_cdn {
        let sha = path.trim_start_matches("/cdn/");
        if let Fault::CdnStatus(code) = fault {
            return respond(&mut out, code, &[], b"", head_only);
        }
        let Some(f) = files.iter().find(|f| f.sha256 == sha) else {
            return respond(&mut out, 404, &[], b"", head_only);
        };
        return serve_bytes(&mut out, f, range.as_deref(), &fault, stop, head_only);
    }

    // /{owner}/{name}/resolve/{revision}/{path}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() != 5 || parts[2] != "resolve" {
        return respond(&mut out, 404, &[], b"not a resolve URL", head_only);
    }
    if let Fault::Status(code) = fault {
        return respond(&mut out, code, &[], b"fault", head_only);
    }
    let repo = format!("{}/{}", parts[0], parts[1]);
    let (revision, file_path) = (parts[3], parts[4]);
    let in_repo: Vec<&Served> = files.iter().filter(|f| f.repo == repo).collect();
    if in_repo.is_empty() {
        return respond(
            &mut out,
            401,
            &[("X-Error-Code", "RepoNotFound".into())],
            b"",
            head_only,
        );
    }
    if let Some((_, token)) = gated.iter().find(|(r, _)| *r == repo) {
        match authorization {
            None => {
                return respond(
                    &mut out,
                    401,
                    &[("X-Error-Code", "GatedRepo".into())],
                    b"",
                    head_only,
                )
            }
            Some(a) if a != format!("Bearer {token}") => {
                return respond(
                    &mut out,
                    403,
                    &[("X-Error-Code", "GatedRepo".into())],
                    b"",
                    head_only,
                )
            }
            Some(_) => {}
        }
    }
    if revision != "main" && revision != COMMIT {
        return respond(
            &mut out,
            404,
            &[("X-Error-Code", "RevisionNotFound".into())],
            b"",
            head_only,
        );
    }
    let Some(f) = in_repo.iter().find(|f| f.path == file_path) else {
        return respond(
            &mut out,
            404,
            &[("X-Error-Code", "EntryNotFound".into())],
            b"",
            head_only,
        );
    };
    if f.lfs {
        let headers = [
            ("X-Repo-Commit", COMMIT.to_string()),
            ("X-Linked-Etag", format!("\"{}\"", f.sha256)),
            ("X-Linked-Size", f.bytes.len().to_string()),
            ("ETag", format!("\"{}\"", &f.git_sha1)),
            ("Location", format!("{cdn_url}/cdn/{}", f.sha256)),
        ];
        respond(&mut out, 302, &headers, b"", head_only)
    } else {
        let headers = [
            ("X-Repo-Commit", COMMIT.to_string()),
            ("ETag", format!("\"{}\"", f.git_sha1)),
        ];
        let mut body = Vec::new();
        f.bytes.reader(0).read_to_end(&mut body)?;
        if fault == Fault::WrongBytes {
            let middle = body.len() / 2;
            body[middle] ^= 0x20;
        }
        respond(&mut out, 200, &headers, &body, head_only)
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn respond(
    out: &mut TcpStream,
    code: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {code} {}\r\n", status_text(code));
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    out.write_all(text.as_bytes())?;
    if !head_only {
        out.write_all(body)?;
    }
    out.flush()
}

fn serve_bytes(
    out: &mut TcpStream,
    f: &Served,
    range: Option<&str>,
    fault: &Fault,
    stop: &AtomicBool,
    head_only: bool,
) -> std::io::Result<()> {
    let total = f.bytes.len();
    let start = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    if start >= total && total > 0 {
        return respond(out, 416, &[], b"", head_only);
    }
    let len = total - start;
    let mut head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\n",
            total - 1
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    head.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    out.write_all(head.as_bytes())?;
    if head_only {
        return Ok(());
    }
    let mut body = f.bytes.reader(start);
    let mut sent = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let want = match fault {
            Fault::Slow(_) => 16 << 10,
            Fault::Stall if sent >= 1024 => {
                // Hold the connection open, silent, until the test ends.
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            Fault::Stall => 1024,
            Fault::DropAfter(n) if sent >= *n => return Ok(()),
            Fault::DropAfter(n) => (*n - sent).min(buf.len() as u64) as usize,
            _ => buf.len(),
        };
        let n = body.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if *fault == Fault::WrongBytes {
            let middle = total / 2;
            let (a, b) = (start + sent, start + sent + n as u64);
            if (a..b).contains(&middle) {
                buf[(middle - a) as usize] ^= 0x20;
            }
        }
        out.write_all(&buf[..n])?;
        sent += n as u64;
        if let Fault::Slow(pause) = fault {
            out.flush()?;
            std::thread::sleep(*pause);
        }
    }
    out.flush()
}
