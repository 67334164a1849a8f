//! Writing a file so that readers see the old one or the whole new one, never a part: a
//! temporary file in the same directory, synced, then renamed over the destination.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `content` to `path` atomically: readers see the old file or the whole new one.
pub fn write_atomic(path: &Path, content: &str) -> Result<()> {
    write_atomic_with(path, &mut |w| Ok(w.write_all(content.as_bytes())?))
}

/// Writes what `fill` writes to `path` atomically, through a temporary file in the same
/// directory that is renamed over `path` only once complete and on disk.
pub fn write_atomic_with(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<()> {
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
    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
    fill(&mut w).map_err(|e| match e {
        Error::Io(source) => err(source),
        e => e,
    })?;
    w.flush().map_err(err)?;
    drop(w);
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
