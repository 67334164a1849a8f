//! One writer per output file. A run with `-o FILE` holds an advisory lock on
//! `.FILE.tercuman-lock` beside it from before any model loads until it exits, so that a second
//! run aimed at the same file (a `--resume` started while the first is still finishing, a batch
//! worker) is refused at once, naming the process that holds it, instead of running to the end
//! and then finding its checkpoint gone. The lock is the kernel's (flock, through
//! `File::try_lock`): it goes with the process, so a run killed with `kill -9` leaves no stale
//! lock, only the small lock file, which the next run reuses.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock on an output file; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

/// The lock file of `output`.
pub fn lock_path(output: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(output.file_name().unwrap_or_default());
    name.push(".tercuman-lock");
    output.with_file_name(name)
}

/// Takes the lock on `output`, or says which process holds it.
pub fn acquire(output: &Path) -> Result<OutputLock> {
    let path = lock_path(output);
    let io = |source| Error::WriteOutput {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            Ok(OutputLock { path, _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(Error::OutputBusy {
                path: output.to_path_buf(),
                holder: holder.trim().to_string(),
            })
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held: a run that opened it before is refused until this one has
        // exited; one that opens it after creates a new file and goes ahead.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_named_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("makale.en.md");
        let first = acquire(&out).unwrap();
        assert!(lock_path(&out).exists());
        let err = acquire(&out).unwrap_err().to_string();
        assert!(err.contains("makale.en.md"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        assert!(!lock_path(&out).exists());
        let again = acquire(&out);
        assert!(again.is_ok());
    }
}
