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
    /// Trees polled by our own stat-walk (see [`poll_loop`]).
    poll_started: bool,
    raw: std_mpsc::Sender<notify::Result<notify::Event>>,
    /// Directories with a native non-recursive watch.
    dirs: HashSet<PathBuf>,
    /// Roots given by the caller: trees (walked) and single directories.
    trees: BTreeSet<PathBuf>,
    single: BTreeSet<PathBuf>,
    /// Trees the poller walks (shared with its thread).
    polled: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// Cap on native watches (the kernel's limit, or `ARCA_MAX_WATCHES` to
    /// exercise the polling fallback).
    max_watches: Option<usize>,
    sink: Arc<dyn Fn(WatchEvent) + Send + Sync>,
}

impl Watcher {
    /// Starts a watcher that reports to `sink` from its own thread.
    pub fn new(sink: impl Fn(WatchEvent) + Send + Sync + 'static) -> Self {
        let max_watches = std::env::var("ARCA_MAX_WATCHES")
            .ok()
            .and_then(|value| value.parse().ok());
        Self::with_max_watches(sink, max_watches)
    }

    /// Like [`new`](Self::new), with a cap on native watches (beyond it,
    /// trees are polled as at the kernel's limit).
    pub fn with_max_watches(
        sink: impl Fn(WatchEvent) + Send + Sync + 'static,
        max_watches: Option<usize>,
    ) -> Self {
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
        let shared = Arc::new(Mutex::new(Inner {
            native,
            poll_started: false,
            raw: raw_tx,
            dirs: HashSet::new(),
            trees: BTreeSet::new(),
            single: BTreeSet::new(),
            polled: Arc::new(Mutex::new(BTreeSet::new())),
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
        if !lock(&self.shared).trees.insert(root.to_path_buf()) {
            return;
        }
        // The walk runs without the lock: the debounce thread and the
        // server's calls are never held up by a large tree.
        let (dirs, _) = walk_tree(root);
        add_walked(&self.shared, root, &dirs);
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
        lock(&inner.polled).remove(root);
    }

    /// How many native watches are in place.
    pub fn native_watch_count(&self) -> usize {
        lock(&self.shared).dirs.len()
    }
}

fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most directories one tree walk visits: beyond it the tree is
/// polled instead of watched (and the walk stops).
pub const MAX_TREE_DIRS: usize = 50_000;

/// The directories of the tree at `root` (skipping `target`, `.git` and
/// the insides of `.arca`) and the files found, so a directory created with
/// contents reports them. Takes no lock; stops after [`MAX_TREE_DIRS`].
fn walk_tree(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dirs.len() >= MAX_TREE_DIRS {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            dirs.push(dir);
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
        dirs.push(dir);
    }
    if !pending.is_empty() {
        // Too many directories to watch one by one: never leave part of
        // the tree silent.
        dirs.push(PathBuf::new());
    }
    (dirs, files)
}

/// Adds native watches for walked directories of the tree at `root`,
/// taking the lock for a chunk at a time; falls back to polling `root` at
/// the watch limit (or when the walk was cut short, marked by an empty
/// path).
fn add_walked(shared: &Mutex<Inner>, root: &Path, dirs: &[PathBuf]) {
    for chunk in dirs.chunks(256) {
        let mut inner = lock(shared);
        if !inner.trees.iter().any(|tree| root.starts_with(tree)) {
            // Unwatched meanwhile.
            return;
        }
        for dir in chunk {
            if dir.as_os_str().is_empty() || !inner.add_dir(dir) {
                inner.fall_back_to_polling(root);
                return;
            }
        }
    }
}

impl Inner {
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
        {
            let mut polled = lock(&self.polled);
            if polled.iter().any(|known| root.starts_with(known)) {
                return;
            }
            polled.insert(root.to_path_buf());
        }
        (self.sink)(WatchEvent::Notice(format!(
            "Arca reached the inotify watch limit (fs.inotify.max_user_watches) while watching {}; it polls that folder every {} s instead. Raise the limit (sysctl fs.inotify.max_user_watches=524288) for instant updates.",
            root.display(),
            POLL_INTERVAL.as_secs()
        )));
        if !self.poll_started {
            self.poll_started = true;
            let raw = self.raw.clone();
            let polled = self.polled.clone();
            let spawned = std::thread::Builder::new()
                .name("arca-poll".into())
                .spawn(move || poll_loop(&polled, &raw));
            if let Err(error) = spawned {
                tracing::error!("cannot start the polling thread: {error}");
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

/// What a polled file looked like at the last scan.
type Stamp = (i64, i64, u64, u64);

/// Polls trees by walking them and comparing each entry's mtime (with
/// nanoseconds), size and inode with the last walk; notify's own poller
/// compares whole seconds and misses a save made in the second it scanned.
/// Ends when the watcher is gone.
fn poll_loop(
    polled: &Arc<Mutex<BTreeSet<PathBuf>>>,
    raw: &std_mpsc::Sender<notify::Result<notify::Event>>,
) {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    let mut known: HashMap<PathBuf, HashMap<PathBuf, Stamp>> = HashMap::new();
    // The watcher holds the other reference: when it is gone, stop.
    while Arc::strong_count(polled) > 1 {
        let trees: Vec<PathBuf> = lock(polled).iter().cloned().collect();
        known.retain(|root, _| trees.contains(root));
        for root in trees {
            let mut now: HashMap<PathBuf, Stamp> = HashMap::new();
            let mut pending = vec![root.clone()];
            while let Some(dir) = pending.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(metadata) = entry.metadata() else {
                        continue;
                    };
                    if metadata.is_dir() {
                        if !is_skipped_name(&path) {
                            pending.push(path.clone());
                        }
                        continue;
                    }
                    now.insert(
                        path,
                        (
                            metadata.mtime(),
                            metadata.mtime_nsec(),
                            metadata.len(),
                            metadata.ino(),
                        ),
                    );
                }
            }
            if let Some(before) = known.get(&root) {
                let mut changed: Vec<PathBuf> = now
                    .iter()
                    .filter(|(path, stamp)| before.get(*path) != Some(stamp))
                    .map(|(path, _)| path.clone())
                    .collect();
                changed.extend(
                    before
                        .keys()
                        .filter(|path| !now.contains_key(*path))
                        .cloned(),
                );
                if !changed.is_empty() {
                    let mut event = notify::Event::new(EventKind::Any);
                    event.paths = changed;
                    if raw.send(Ok(event)).is_err() {
                        return;
                    }
                }
            }
            known.insert(root, now);
        }
        std::thread::sleep(POLL_INTERVAL);
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
        let mut rescan = absorb(first, &mut batch, &mut errors);
        loop {
            let left = MAX_BATCH_DELAY.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match raw.recv_timeout(DEBOUNCE.min(left)) {
                Ok(event) => rescan |= absorb(event, &mut batch, &mut errors),
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let mut inner = lock(&shared);
        for error in errors {
            tracing::warn!("file watcher: {error}");
        }
        let mut changed = BTreeSet::new();
        if rescan {
            // The kernel's queue overflowed: events were lost, so anything
            // watched may have changed. Every root is reported (a tree's
            // consumers rescan it by `stat`).
            tracing::warn!("file watcher: event queue overflowed; reporting every watched tree");
            changed.extend(inner.trees.iter().cloned());
            changed.extend(inner.single.iter().cloned());
        }
        let mut new_trees = Vec::new();
        for path in batch {
            if !inner.is_reported(&path) {
                continue;
            }
            if let Some(tree) = follow_directory_change(&mut inner, &path) {
                new_trees.push(tree);
            }
            changed.insert(path);
        }
        let sink = inner.sink.clone();
        drop(inner);
        // New directories are walked without the lock.
        for (root, tree) in new_trees {
            let (dirs, files) = walk_tree(&tree);
            changed.extend(files);
            add_walked(&shared, &root, &dirs);
        }
        if !changed.is_empty() {
            sink(WatchEvent::Changed(changed.into_iter().collect()));
        }
    }
}

/// Keeps the watch set in step with directories created, renamed or
/// removed below a watched tree.
/// Returns a new directory to walk and watch, with the watched root that
/// covers it.
fn follow_directory_change(inner: &mut Inner, path: &Path) -> Option<(PathBuf, PathBuf)> {
    let root = inner
        .trees
        .iter()
        .filter(|root| path.starts_with(root))
        .max_by_key(|root| root.as_os_str().len())
        .cloned();
    if path.is_dir() {
        if let Some(root) = root
            && !inner.dirs.contains(path)
            && !is_skipped_name(path)
        {
            let polled = lock(&inner.polled)
                .iter()
                .any(|polled| path.starts_with(polled));
            if !polled {
                return Some((root, path.to_path_buf()));
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
    None
}

/// Adds one raw event to the batch; returns whether it asks for a rescan
/// (notify's `Flag::Rescan`, sent with no paths when inotify's queue
/// overflowed).
fn absorb(
    event: notify::Result<notify::Event>,
    batch: &mut BTreeSet<PathBuf>,
    errors: &mut Vec<String>,
) -> bool {
    match event {
        Ok(event) => {
            if event.need_rescan() {
                return true;
            }
            if matches!(event.kind, EventKind::Access(_)) {
                return false;
            }
            batch.extend(event.paths);
            false
        }
        Err(error) => {
            errors.push(error.to_string());
            false
        }
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
    fn a_queue_overflow_reports_every_watched_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("tree/src")).unwrap();
        std::fs::create_dir_all(root.join("single")).unwrap();
        let (watcher, rx) = watcher();
        watcher.watch_tree(&root.join("tree"));
        watcher.watch_dir(&root.join("single"));
        // What notify's inotify backend sends on IN_Q_OVERFLOW.
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        lock(&watcher.shared).raw.send(Ok(overflow)).unwrap();
        assert_eq!(
            next_change(&rx).unwrap(),
            vec![root.join("single"), root.join("tree")]
        );
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
    fn beyond_the_watch_limit_trees_are_polled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/main.rs"), "1").unwrap();
        let (tx, rx) = std_mpsc::channel();
        let tx = Mutex::new(tx);
        let watcher = Watcher::with_max_watches(
            move |event| {
                let _ = lock_sender(&tx).send(event);
            },
            Some(1),
        );
        watcher.watch_tree(&root);
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            WatchEvent::Notice(message) => assert!(message.contains("poll"), "{message}"),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(root.join("src/main.rs"), "22").unwrap();
        let paths = next_change(&rx).unwrap();
        assert!(paths.contains(&root.join("src/main.rs")), "{paths:?}");
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
