//! One live run per crate: a second `arca run --watch` (or the editor's
//! Run Image (Live)) of the same crate refuses at once, naming the first.
//!
//! The lock is an advisory `flock` on
//! `$ARCA_HOME/cache/rust/locks/<sha256(crate dir)>.live`, so it holds
//! across processes and within one (each acquisition opens the file anew);
//! the holder's pid is written into the file for the refusal message. The
//! kernel releases the lock when the holder exits, however it exits, so a
//! crashed watcher never blocks the next one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Held while a crate runs live; dropping it releases the lock.
#[derive(Debug)]
pub struct LiveLock {
    _file: File,
}

/// Takes the crate's live lock, or says who holds it.
pub fn acquire(locks_dir: &Path, crate_dir: &Path) -> Result<LiveLock> {
    std::fs::create_dir_all(locks_dir)
        .with_context(|| format!("Failed to create {}", locks_dir.display()))?;
    let digest = Sha256::digest(crate_dir.as_os_str().as_encoded_bytes());
    let path = locks_dir.join(format!("{digest:x}.live"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("Failed to open the live-run lock {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error).with_context(|| format!("Failed to lock {}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
            format!("process {holder}")
        } else {
            "another process".to_owned()
        };
        anyhow::bail!(
            "{} already runs live in {who}. Stop that run first (Ctrl-C in its terminal, or Arca: Stop in the editor).",
            crate_dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(LiveLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_live_run_of_a_crate_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), Path::new("/c/a")).unwrap();
        let _other = acquire(dir.path(), Path::new("/c/b")).unwrap();
        let refusal = acquire(dir.path(), Path::new("/c/a"))
            .unwrap_err()
            .to_string();
        assert!(
            refusal.contains(&format!("process {}", std::process::id())),
            "{refusal}"
        );
        assert!(refusal.starts_with("/c/a already runs live"), "{refusal}");
        drop(first);
        acquire(dir.path(), Path::new("/c/a")).expect("free again after the first ends");
    }
}
