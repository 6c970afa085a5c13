//! One build per crate at a time.
//!
//! **The rule:** two builds of the same crate (same canonical crate
//! directory, any settings) never run at once. The second waits until the
//! first finishes and then re-checks freshness, so it usually returns the
//! artifact the first one made ("up to date"). Builds of different crates
//! run in parallel. The lock is an advisory `flock` on
//! `$ARCA_HOME/cache/rust/locks/<sha256(crate dir)>.lock`, so it holds
//! across processes (two `arca build` commands, the CLI and the language
//! server) as well as within one; waiting polls, so it can be cancelled.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Held while a crate builds; dropping it releases the lock.
pub struct CrateLock {
    _file: File,
}

/// What waiting for the lock ended with.
pub enum Acquired {
    Lock(CrateLock),
    Cancelled,
}

/// Takes the crate's lock, calling `on_wait` once if another build holds it.
pub async fn acquire(
    locks_dir: &Path,
    crate_dir: &Path,
    cancel: &CancellationToken,
    on_wait: impl FnOnce(),
) -> Result<Acquired> {
    std::fs::create_dir_all(locks_dir).map_err(|error| {
        let why = crate::blobs::why_unwritable(&error, locks_dir);
        anyhow::Error::new(error)
            .context(format!("Failed to create {}: {why}", locks_dir.display()))
    })?;
    let digest = Sha256::digest(crate_dir.as_os_str().as_encoded_bytes());
    let path = locks_dir.join(format!("{digest:x}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("Failed to open the build lock {}", path.display()))?;
    let mut on_wait = Some(on_wait);
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if result == 0 {
            return Ok(Acquired::Lock(CrateLock { _file: file }));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error).with_context(|| format!("Failed to lock {}", path.display()));
        }
        if let Some(notify) = on_wait.take() {
            notify();
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(Acquired::Cancelled),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_build_of_the_same_crate_waits_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let Acquired::Lock(first) = acquire(dir.path(), Path::new("/c/a"), &cancel, || {})
            .await
            .unwrap()
        else {
            panic!("first lock")
        };
        let Acquired::Lock(_other) = acquire(dir.path(), Path::new("/c/b"), &cancel, || {
            panic!("b must not wait")
        })
        .await
        .unwrap() else {
            panic!("other crate")
        };
        let waited = std::sync::atomic::AtomicBool::new(false);
        let second = acquire(dir.path(), Path::new("/c/a"), &cancel, || {
            waited.store(true, std::sync::atomic::Ordering::SeqCst)
        });
        let release = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(first);
        };
        let (second, ()) = tokio::join!(second, release);
        assert!(matches!(second.unwrap(), Acquired::Lock(_)));
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));

        let Acquired::Lock(_held) = acquire(dir.path(), Path::new("/c/x"), &cancel, || {})
            .await
            .unwrap()
        else {
            panic!()
        };
        let waiting = acquire(dir.path(), Path::new("/c/x"), &cancel, || cancel.cancel());
        assert!(matches!(waiting.await.unwrap(), Acquired::Cancelled));
    }
}
