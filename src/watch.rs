//! File watching for the language server: which paths changed on disk,
//! debounced, with build outputs and VCS data filtered out.
//!
//! Facts this module is built on (DESIGN.md section 4): watch directories,
//! never files (an atomic save replaces the inode and a file watch goes
//! silent); a rename onto a path is a change of that path; access events
//! are noise; `target`, `.git` and `.arca` (except `.arca/config.toml`)
//! are skipped, both when walking and when reporting. One non-recursive
//! watch per directory found by a filtered walk costs far fewer watches
//! than a recursive watch that descends into `target/`. When the inotify
//! watch limit (or instance limit) is reached, the affected tree is polled
//! instead and a [`WatchEvent::Notice`] says so.
//!
//! **Knows nothing about crates, fingerprints or LSP:** it reports paths;
//! the server decides what they mean.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};

/// Quiet time after the last raw event before a batch is reported.
pub const DEBOUNCE: Duration = Duration::from_millis(20);
/// A batch is reported at the latest this long after its first event, even
/// if events keep coming.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(150);
/// How often a polled tree is rescanned.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Directory names never watched nor reported.
const SKIPPED: [&str; 2] = ["target", ".git"];

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Paths created, modified, removed or renamed (either side), sorted.
    Changed(Vec<PathBuf>),
    /// Something the user should know (e.g. polling instead of inotify).
    Notice(String),
}

/// A set of watched trees and single directories. Clones share the set.
#[derive(Clone)]
pub struct Watcher {
    shared: Arc<Mutex<Inner>>,
}

struct Inner {
    native: Option<notify::RecommendedWatcher>,
    poll: Option<notify::PollWatcher>,
    raw: std_mpsc::Sender<notify::Result<notify::Event>>,
    /// Directories with a native non-recursive watch.
    dirs: HashSet<PathBuf>,
    /// Roots given by the caller: trees (walked) and single directories.
    trees: BTreeSet<PathBuf>,
    single: BTreeSet<PathBuf>,
    /// Trees handed to the poll watcher.
    polled: BTreeSet<PathBuf>,
    /// Cap on native watches (the kernel's limit, or `ARCA_MAX_WATCHES` to
    /// exercise the polling fallback).
    max_watches: Option<usize>,
    sink: Arc<dyn Fn(WatchEvent) + Send + Sync>,
}

impl Watcher {
    /// Starts a watcher that reports to `sink` from its own thread.
    pub fn new(sink: impl Fn(WatchEvent) + Send + Sync + 'static) -> Self {
        let sink: Arc<dyn Fn(WatchEvent) + Send + Sync> = Arc::new(sink);
        let (raw_tx, raw_rx) = std_mpsc::channel();
        let native_tx = raw_tx.clone();
        let native = match notify::recommended_watcher(move |event| {
            let _ = native_tx.send(event);
        }) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                sink(WatchEvent::Notice(format!(
                    "Arca cannot use native file watching ({error}); it polls for changes every {} s instead. Raise fs.inotify.max_user_instances to get instant updates.",
                    POLL_INTERVAL.as_secs()
                )));
                None
            }
        };
        let max_watches = std::env::var("ARCA_MAX_WATCHES")
            .ok()
            .and_then(|value| value.parse().ok());
        let shared = Arc::new(Mutex::new(Inner {
            native,
            poll: None,
            raw: raw_tx,
            dirs: HashSet::new(),
            trees: BTreeSet::new(),
            single: BTreeSet::new(),
            polled: BTreeSet::new(),
            max_watches,
            sink,
        }));
        let thread_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("arca-watch".into())
            .spawn(move || debounce_loop(raw_rx, thread_shared));
        if let Err(error) = spawned {
            tracing::error!("cannot start the file watcher thread: {error}");
        }
        Self { shared }
    }

    /// Watches every directory below `root` (skipping `target`, `.git` and
    /// the insides of `.arca`), and new ones as they appear.
    pub fn watch_tree(&self, root: &Path) {
        let mut inner = lock(&self.shared);
        if inner.trees.insert(root.to_path_buf()) {
            inner.add_tree(root);
        }
    }

    /// Watches one directory, not its subdirectories.
    pub fn watch_dir(&self, dir: &Path) {
        let mut inner = lock(&self.shared);
        if inner.single.insert(dir.to_path_buf()) {
            inner.add_dir(dir);
        }
    }

    /// Stops watching a tree given to [`watch_tree`](Self::watch_tree),
    /// except directories another root still covers.
    pub fn unwatch_tree(&self, root: &Path) {
        let mut inner = lock(&self.shared);
        if !inner.trees.remove(root) {
            return;
        }
        let doomed: Vec<PathBuf> = inner
            .dirs
            .iter()
            .filter(|dir| dir.starts_with(root))
            .filter(|dir| !inner.covered_by_other_root(dir))
            .cloned()
            .collect();
        for dir in doomed {
            inner.remove_dir(&dir);
        }
        if inner.polled.remove(root)
            && let Some(poll) = inner.poll.as_mut()
        {
            let _ = poll.unwatch(root);
        }
    }

    /// How many native watches are in place.
    pub fn native_watch_count(&self) -> usize {
        lock(&self.shared).dirs.len()
    }
}

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Watches `root` and its subdirectories; returns the files found, so
    /// a directory created with contents reports them.
    fn add_tree(&mut self, root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            if !self.add_dir(&dir) {
                // Polled instead (limit reached): the poll watcher covers
                // the whole tree.
                self.fall_back_to_polling(root);
                return files;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let inside_arca = dir.file_name().is_some_and(|name| name == ".arca");
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() && !inside_arca && !is_skipped_name(&path) {
                    pending.push(path);
                } else if !kind.is_dir() {
                    files.push(path);
                }
            }
        }
        files
    }

    /// One native non-recursive watch; false when the limit is reached.
    fn add_dir(&mut self, dir: &Path) -> bool {
        if self.dirs.contains(dir) {
            return true;
        }
        if self.max_watches.is_some_and(|max| self.dirs.len() >= max) {
            return false;
        }
        let Some(native) = self.native.as_mut() else {
            return false;
        };
        match native.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.dirs.insert(dir.to_path_buf());
                true
            }
            Err(error) if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) => false,
            Err(error) => {
                // Vanished meanwhile, or unreadable: nothing to watch there.
                tracing::debug!("not watching {}: {error}", dir.display());
                true
            }
        }
    }

    fn remove_dir(&mut self, dir: &Path) {
        if self.dirs.remove(dir)
            && let Some(native) = self.native.as_mut()
        {
            let _ = native.unwatch(dir);
        }
    }

    fn covered_by_other_root(&self, dir: &Path) -> bool {
        self.trees.iter().any(|root| dir.starts_with(root)) || self.single.contains(dir)
    }

    fn fall_back_to_polling(&mut self, root: &Path) {
        if self.polled.iter().any(|polled| root.starts_with(polled)) {
            return;
        }
        if self.poll.is_none() {
            let raw = self.raw.clone();
            let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
            match notify::PollWatcher::new(
                move |event| {
                    let _ = raw.send(event);
                },
                config,
            ) {
                Ok(poll) => self.poll = Some(poll),
                Err(error) => {
                    (self.sink)(WatchEvent::Notice(format!(
                        "Arca cannot watch {} for changes: {error}. Status updates for it need a restart of the language server.",
                        root.display()
                    )));
                    return;
                }
            }
        }
        if let Some(poll) = self.poll.as_mut() {
            match poll.watch(root, RecursiveMode::Recursive) {
                Ok(()) => {
                    self.polled.insert(root.to_path_buf());
                    (self.sink)(WatchEvent::Notice(format!(
                        "Arca reached the inotify watch limit (fs.inotify.max_user_watches) while watching {}; it polls that folder every {} s instead. Raise the limit (sysctl fs.inotify.max_user_watches=524288) for instant updates.",
                        root.display(),
                        POLL_INTERVAL.as_secs()
                    )));
                }
                Err(error) => (self.sink)(WatchEvent::Notice(format!(
                    "Arca cannot watch {} for changes: {error}.",
                    root.display()
                ))),
            }
        }
    }

    /// Whether a reported path is worth reporting: not inside `target` or
    /// `.git` below the root that watches it, and inside `.arca` only the
    /// config file.
    fn is_reported(&self, path: &Path) -> bool {
        let root = self
            .trees
            .iter()
            .chain(self.single.iter())
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.as_os_str().len());
        let Some(root) = root else {
            return true;
        };
        let Ok(relative) = path.strip_prefix(root) else {
            return true;
        };
        let names: Vec<_> = relative.components().collect();
        for (index, component) in names.iter().enumerate() {
            let name = component.as_os_str();
            if SKIPPED.iter().any(|skipped| name == *skipped) {
                return false;
            }
            if name == ".arca" {
                let rest = &names[index + 1..];
                return rest.is_empty()
                    || (rest.len() == 1 && rest[0].as_os_str() == "config.toml");
            }
        }
        true
    }
}

fn is_skipped_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| SKIPPED.iter().any(|skipped| name == *skipped))
}

/// Collects raw events into batches: reports once no event arrived for
/// [`DEBOUNCE`] (or [`MAX_BATCH_DELAY`] after the first).
fn debounce_loop(
    raw: std_mpsc::Receiver<notify::Result<notify::Event>>,
    shared: Arc<Mutex<Inner>>,
) {
    while let Ok(first) = raw.recv() {
        let started = Instant::now();
        let mut batch = BTreeSet::new();
        let mut errors = Vec::new();
        absorb(first, &mut batch, &mut errors);
        loop {
            let left = MAX_BATCH_DELAY.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match raw.recv_timeout(DEBOUNCE.min(left)) {
                Ok(event) => absorb(event, &mut batch, &mut errors),
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let mut inner = lock(&shared);
        for error in errors {
            tracing::warn!("file watcher: {error}");
        }
        let mut changed = BTreeSet::new();
        for path in batch {
            if !inner.is_reported(&path) {
                continue;
            }
            follow_directory_change(&mut inner, &path, &mut changed);
            changed.insert(path);
        }
        if !changed.is_empty() {
            let sink = inner.sink.clone();
            drop(inner);
            sink(WatchEvent::Changed(changed.into_iter().collect()));
        }
    }
}

/// Keeps the watch set in step with directories created, renamed or
/// removed below a watched tree.
fn follow_directory_change(inner: &mut Inner, path: &Path, changed: &mut BTreeSet<PathBuf>) {
    let covered = inner.trees.iter().any(|root| path.starts_with(root));
    if path.is_dir() {
        if covered && !inner.dirs.contains(path) && !is_skipped_name(path) {
            let polled = inner.polled.iter().any(|root| path.starts_with(root));
            if !polled {
                changed.extend(inner.add_tree(path));
            }
        }
    } else if inner.dirs.contains(path) {
        let gone: Vec<PathBuf> = inner
            .dirs
            .iter()
            .filter(|dir| dir.starts_with(path))
            .cloned()
            .collect();
        for dir in gone {
            inner.remove_dir(&dir);
        }
    }
}

fn absorb(
    event: notify::Result<notify::Event>,
    batch: &mut BTreeSet<PathBuf>,
    errors: &mut Vec<String>,
) {
    match event {
        Ok(event) => {
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            batch.extend(event.paths);
        }
        Err(error) => errors.push(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Receiver;

    fn watcher() -> (Watcher, Receiver<WatchEvent>) {
        let (tx, rx) = std_mpsc::channel();
        let tx = Mutex::new(tx);
        let watcher = Watcher::new(move |event| {
            let _ = lock_sender(&tx).send(event);
        });
        (watcher, rx)
    }

    fn lock_sender<T>(sender: &Mutex<T>) -> MutexGuard<'_, T> {
        sender.lock().unwrap()
    }

    fn next_change(rx: &Receiver<WatchEvent>) -> Option<Vec<PathBuf>> {
        loop {
            match rx.recv_timeout(Duration::from_secs(5)).ok()? {
                WatchEvent::Changed(paths) => return Some(paths),
                WatchEvent::Notice(_) => {}
            }
        }
    }

    #[test]
    fn reports_edits_and_skips_target_and_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let (watcher, rx) = watcher();
        watcher.watch_tree(&root);
        std::fs::write(root.join("target/debug/out"), "x").unwrap();
        std::fs::write(root.join(".git/index"), "x").unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        let paths = next_change(&rx).unwrap();
        assert_eq!(paths, vec![root.join("src/main.rs")]);
    }

    #[test]
    fn new_directories_with_files_are_reported_and_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (watcher, rx) = watcher();
        watcher.watch_tree(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/c.rs"), "1").unwrap();
        let mut seen = BTreeSet::new();
        while !seen.contains(&root.join("a/b/c.rs")) {
            seen.extend(next_change(&rx).unwrap());
        }
        std::fs::write(root.join("a/b/c.rs"), "2").unwrap();
        assert_eq!(next_change(&rx).unwrap(), vec![root.join("a/b/c.rs")]);
    }

    #[test]
    fn atomic_saves_count_as_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("lib.rs"), "1").unwrap();
        let (watcher, rx) = watcher();
        watcher.watch_tree(&root);
        std::fs::write(root.join(".lib.rs.swp"), "2").unwrap();
        std::fs::rename(root.join(".lib.rs.swp"), root.join("lib.rs")).unwrap();
        let paths = next_change(&rx).unwrap();
        assert!(paths.contains(&root.join("lib.rs")), "{paths:?}");
    }

    #[test]
    fn only_the_config_file_is_reported_inside_arca() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".arca")).unwrap();
        let (watcher, rx) = watcher();
        watcher.watch_tree(&root);
        std::fs::write(root.join(".arca/other"), "x").unwrap();
        std::fs::write(root.join(".arca/config.toml"), "[rust]\n").unwrap();
        assert_eq!(
            next_change(&rx).unwrap(),
            vec![root.join(".arca/config.toml")]
        );
    }
}
