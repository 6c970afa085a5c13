//! The last build's full log per crate, kept on disk so it can be read
//! after the build ended (the editors open it from the status item):
//! `$ARCA_HOME/logs/<crate name>-<hash of its directory>.log`.
//!
//! Invariants: **bounded** — at most [`MAX_BYTES`] of lines are kept, then
//! one line says how many were left out, so a runaway build cannot fill
//! the disk; **atomic** — the log is written to a temporary file next to it
//! and renamed over the previous one when the build ends, so a reader sees
//! the previous whole log or the new whole log, never half of one.
//! Writing is best effort: a full disk never fails a build.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Most bytes of lines a log keeps.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Where the last build log of the crate at `crate_dir` lives.
pub fn path_for(arca_home: &Path, crate_dir: &Path) -> PathBuf {
    let digest = Sha256::digest(crate_dir.to_string_lossy().as_bytes());
    let hash: String = digest
        .iter()
        .take(4)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let name: String = crate_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    arca_home.join("logs").join(format!("{name}-{hash}.log"))
}

/// A log being written; [`BuildLog::finish`] puts it in place.
pub struct BuildLog {
    path: PathBuf,
    inner: Mutex<Option<Inner>>,
}

struct Inner {
    file: tempfile::NamedTempFile,
    written: u64,
    dropped: u64,
}

impl BuildLog {
    /// Starts the crate's next log (nothing is written when the logs
    /// directory cannot be made; the build goes on).
    pub fn start(arca_home: &Path, crate_dir: &Path) -> Self {
        let path = path_for(arca_home, crate_dir);
        let inner = path
            .parent()
            .and_then(|dir| {
                std::fs::create_dir_all(dir).ok()?;
                tempfile::NamedTempFile::new_in(dir).ok()
            })
            .map(|file| Inner {
                file,
                written: 0,
                dropped: 0,
            });
        let log = Self {
            path,
            inner: Mutex::new(inner),
        };
        log.line(&format!("Build of {}", crate_dir.display()));
        log
    }

    /// Where the log will be once finished.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (dropped, and counted, past [`MAX_BYTES`]).
    pub fn line(&self, text: &str) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(inner) = guard.as_mut() else {
            return;
        };
        let size = text.len() as u64 + 1;
        if inner.written + size > MAX_BYTES {
            inner.dropped += 1;
            return;
        }
        if writeln!(inner.file, "{text}").is_ok() {
            inner.written += size;
        }
    }

    /// Writes the outcome and puts the log in place of the previous one.
    pub fn finish(self, outcome: &str) {
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(mut inner) = inner else {
            return;
        };
        if inner.dropped > 0 {
            let _ = writeln!(
                inner.file,
                "[{} more lines left out: the log keeps at most {} MB]",
                inner.dropped,
                MAX_BYTES / (1024 * 1024)
            );
        }
        let _ = writeln!(inner.file, "{outcome}");
        let _ = inner.file.flush();
        let _ = inner.file.persist(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_replaces_the_previous_one_whole() {
        let home = tempfile::tempdir().unwrap();
        let crate_dir = Path::new("/work/my crate");
        let log = BuildLog::start(home.path(), crate_dir);
        let path = log.path().to_owned();
        assert!(path.starts_with(home.path().join("logs")));
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("my_crate-")
        );
        log.line("first");
        assert!(!path.exists(), "nothing in place before the end");
        log.finish("Done");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Build of /work/my crate\nfirst\nDone\n"
        );

        let log = BuildLog::start(home.path(), crate_dir);
        let line = "x".repeat(1023);
        for _ in 0..(MAX_BYTES / 1024 + 10) {
            log.line(&line);
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Build of /work/my crate\nfirst\nDone\n",
            "the previous log stays until this one ends"
        );
        log.finish("Failed");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() as u64 <= MAX_BYTES + 200, "{}", text.len());
        assert!(
            text.contains("more lines left out"),
            "{}",
            &text[text.len() - 200..]
        );
        assert!(text.ends_with("Failed\n"));
        assert_ne!(
            path_for(home.path(), Path::new("/a/x")),
            path_for(home.path(), Path::new("/b/x"))
        );
    }
}
