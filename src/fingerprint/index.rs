//! A per-entry digest index over the fingerprint inputs, kept current from
//! watcher events, so that "is the crate still what it was built from?" is a
//! question about the few paths that changed, never a rehash of the tree.
//!
//! The index covers the same roots and skip rules as the whole-tree stream
//! (see the private `walk` module). Each entry has a digest: a file its contents'
//! XXH3-128 (change detection; the fingerprint is the SHA-256 stream), a symlink its target text, a directory only its presence.
//!
//! Life cycle:
//! 1. [`TreeIndex::build`] (or [`stream_and_index`], which also computes the
//!    byte-exact stream from the same read of each file) hashes every file,
//!    on all cores. The state it finds is the first baseline.
//! 2. [`TreeIndex::refresh`] takes the paths a watcher reported and rehashes
//!    just those (a directory: its subtree, rehashing only files whose
//!    `stat` changed).
//! 3. [`TreeIndex::changes_since_baseline`] lists what differs from the
//!    baseline in O(changes): the index keeps the set of differing entries
//!    current on every refresh, so a reverted edit drops out of it and a
//!    touch that keeps the contents is no change.
//! 4. After a build, [`TreeIndex::mark_baseline`] makes the current state
//!    the new baseline.
//!
//! The index does not know whether the artifact was built from its first
//! baseline: the caller decides that from the byte-exact stream (which
//! [`stream_and_index`] returns) and calls `mark_baseline` once it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};

use super::FingerprintSettings;
use super::stream::{finish_hex, settings_hasher};
use super::walk::{
    CHUNK_SIZE, ContentDigest, EntryKind, Mark, Stamp, content_hasher, is_skipped_name, link_text,
    open_input, read_inputs, root_kind, sorted_entries,
};

/// How an entry differs from the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Not in the baseline, present now.
    Added,
    /// In the baseline, gone now.
    Removed,
    /// Present in both with a different digest (contents, link target, or
    /// kind, e.g. a file that became a directory).
    Changed,
}

/// One input entry that differs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// The entry's path for people: relative to the index's display base
    /// (`src/main.rs`) when below it, else absolute.
    pub path: String,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    /// `src/main.rs changed`, `src/new.rs added`, `src/old.rs removed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        };
        write!(f, "{} {verb}", self.path)
    }
}

/// What an entry is worth to the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Digest {
    Dir,
    File(ContentDigest),
    Symlink(String),
    /// A file that could not be read during a refresh: it differs from any
    /// readable contents. (An unreadable file fails [`TreeIndex::build`].)
    Unreadable,
}

/// One present entry.
#[derive(Debug, Clone)]
struct Slot {
    digest: Digest,
    /// Files only: `stat` when hashed.
    stamp: Option<Stamp>,
}

/// The per-entry digest index of a crate's fingerprint inputs.
#[derive(Debug, Clone)]
pub struct TreeIndex {
    roots: Vec<PathBuf>,
    display_base: PathBuf,
    /// Every entry present now, by absolute path. The order keeps a
    /// directory's descendants right after it.
    slots: BTreeMap<PathBuf, Slot>,
    /// The paths whose state differs from the baseline, with their baseline
    /// digest (`None`: not in the baseline). Everything else is as in the
    /// baseline, so the baseline costs memory only for what changed.
    dirty: BTreeMap<PathBuf, Option<Digest>>,
}

impl TreeIndex {
    /// Hashes every input below `roots` (as for
    /// [`super::stream::whole_tree_fingerprint`]) on all cores. The result's
    /// baseline is the state found. `display_base` (the crate directory)
    /// names paths in [`Change`]s.
    ///
    /// Fails, naming the path, when an input cannot be read.
    pub fn build(roots: &[PathBuf], display_base: &Path) -> Result<TreeIndex> {
        let mut listing = Listing::default();
        for root in roots {
            match root_kind(root)? {
                Some(EntryKind::Dir) => listing.directory(root)?,
                Some(kind) => listing.entry(root.clone(), kind)?,
                None => {}
            }
        }
        let files: Vec<&Path> = listing
            .entries
            .iter()
            .filter(|(_, digest)| digest.is_none())
            .map(|(path, _)| path.as_path())
            .collect();
        let mut hashed = hash_files(&files)?.into_iter();
        drop(files);
        let mut entries = Vec::with_capacity(listing.entries.len());
        for (path, digest) in listing.entries {
            let entry = match digest {
                Some(digest) => (path, digest, None),
                None => {
                    let (digest, stamp) = hashed
                        .next()
                        .ok_or_else(|| anyhow!("A fingerprint hashing thread lost a file"))?;
                    (path, Digest::File(digest), Some(stamp))
                }
            };
            entries.push(entry);
        }
        Ok(TreeIndex::from_entries(roots, display_base, entries))
    }

    /// An index whose current state and baseline are `entries`, which come
    /// in walk order (path order for all but nested roots, which makes
    /// building the map linear).
    fn from_entries(
        roots: &[PathBuf],
        display_base: &Path,
        entries: Vec<(PathBuf, Digest, Option<Stamp>)>,
    ) -> TreeIndex {
        let slots = entries
            .into_iter()
            .map(|(path, digest, stamp)| (path, Slot { digest, stamp }))
            .collect();
        TreeIndex {
            roots: roots.to_vec(),
            display_base: display_base.to_path_buf(),
            slots,
            dirty: BTreeMap::new(),
        }
    }

    /// The roots this index covers.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// How many entries (files, directories, symlinks) are present now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no entry is present now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `path` is an input this index covers: a root, or below a
    /// directory root with no `target`, `.git` or `.arca` component below
    /// it. Watchers can drop every event this says no to.
    pub fn covers(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| covered_by(root, path))
    }

    /// Whether a change reported at `path` may change an input: it is
    /// covered, or a directory above a root (a watcher that lost events
    /// reports the trees it watches; [`refresh`](Self::refresh) rescans the
    /// roots below them).
    pub fn concerns(&self, path: &Path) -> bool {
        self.covers(path) || self.roots.iter().any(|root| root.starts_with(path))
    }

    /// Brings the index up to date for `changed` paths (absolute, as a
    /// watcher reports them), in any order, duplicates allowed:
    /// - a path that no longer exists is removed, with everything below it;
    /// - a file is rehashed (a touch with the same contents is no change),
    ///   a symlink's target reread;
    /// - a directory has its whole subtree rescanned: entries that appeared
    ///   or vanished are added or removed, files whose `stat` changed are
    ///   rehashed;
    /// - missing parent directories of a new entry are added;
    /// - a directory above roots stands for those roots (each rescanned);
    /// - paths outside the roots or under `target`, `.git`, `.arca` are
    ///   ignored.
    ///
    /// A file that cannot be read counts as changed (and stays so until it
    /// can be read again). Returns what this call changed relative to the
    /// state before it, sorted by path (not relative to the baseline: see
    /// [`TreeIndex::changes_since_baseline`]).
    pub fn refresh(&mut self, changed: &[PathBuf]) -> Vec<Change> {
        let mut updates = BTreeMap::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for path in changed {
            if self.covers(path) {
                paths.push(path.clone());
            } else {
                let below = self.roots.iter().filter(|root| root.starts_with(path));
                paths.extend(below.cloned());
            }
        }
        paths.sort();
        paths.dedup();
        for path in &paths {
            self.refresh_path(path, &mut updates);
        }
        let mut changes = Vec::new();
        for (path, before) in updates {
            let after = self.slots.get(&path).map(|slot| &slot.digest);
            if let Some(kind) = change_kind(before.as_ref(), after) {
                changes.push(Change {
                    path: self.display(&path),
                    kind,
                });
            }
        }
        changes
    }

    /// What differs between the baseline and now, sorted by path. Costs
    /// O(number of differing entries), whatever the tree's size.
    pub fn changes_since_baseline(&self) -> Vec<Change> {
        self.dirty
            .iter()
            .filter_map(|(path, baseline)| {
                let current = self.slots.get(path).map(|slot| &slot.digest);
                let kind = change_kind(baseline.as_ref(), current)?;
                Some(Change {
                    path: self.display(path),
                    kind,
                })
            })
            .collect()
    }

    /// Whether nothing differs from the baseline. O(1).
    pub fn matches_baseline(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Records the current state as the baseline: what the artifact was
    /// built from. Call it when a build starts from (or a fresh artifact was
    /// found for) the current state. O(number of differing entries).
    pub fn mark_baseline(&mut self) {
        self.dirty.clear();
    }

    /// A path as people read it: relative to the display base when below it.
    fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.display_base) {
            Ok(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
            _ => path.display().to_string(),
        }
    }

    fn refresh_path(&mut self, path: &Path, updates: &mut BTreeMap<PathBuf, Option<Digest>>) {
        let metadata = match fs::symlink_metadata(path) {
            Ok(metadata) if self.reachable(path) => metadata,
            _ => {
                self.remove_subtree(path, true, updates);
                return;
            }
        };
        let Some(kind) = EntryKind::of(metadata.file_type()) else {
            self.remove_subtree(path, true, updates);
            return;
        };
        if kind != EntryKind::Dir {
            self.remove_subtree(path, false, updates);
        }
        // A directory root is not an entry itself (the stream has no record
        // for it), unless it also lies inside another root.
        let inside_a_root = self
            .roots
            .iter()
            .any(|root| path != root.as_path() && covered_by(root, path));
        match kind {
            EntryKind::Dir => {
                if inside_a_root {
                    self.set(path, Some(Digest::Dir), None, updates);
                }
                self.rescan_directory(path, updates);
            }
            EntryKind::File => {
                let (digest, stamp) = match hash_file(path, &mut Vec::new()) {
                    Ok((digest, stamp)) => (Digest::File(digest), Some(stamp)),
                    Err(_) => (Digest::Unreadable, None),
                };
                self.set(path, Some(digest), stamp, updates);
            }
            EntryKind::Symlink => {
                let digest = link_text(path).map_or(Digest::Unreadable, Digest::Symlink);
                self.set(path, Some(digest), None, updates);
            }
        }
        if inside_a_root {
            self.add_missing_parents(path, updates);
        }
    }

    /// Whether the walk reaches `path`: it is a root, or every directory
    /// from its root down to its parent is a real directory (the walk never
    /// enters a symlink, though a path through one may exist on disk).
    fn reachable(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| {
            if path == root {
                return true;
            }
            if !covered_by(root, path) {
                return false;
            }
            path.ancestors()
                .skip(1)
                .take_while(|dir| dir.starts_with(root))
                .all(|dir| fs::symlink_metadata(dir).is_ok_and(|metadata| metadata.is_dir()))
        })
    }

    /// Rescans a directory's subtree: new entries are added, vanished ones
    /// removed, files rehashed when their `stat` changed.
    fn rescan_directory(&mut self, dir: &Path, updates: &mut BTreeMap<PathBuf, Option<Digest>>) {
        let mut seen = BTreeSet::new();
        let mut pending = vec![dir.to_path_buf()];
        let mut buffer = Vec::new();
        while let Some(current) = pending.pop() {
            let Ok(entries) = sorted_entries(&current) else {
                // Unlistable now (removed or permissions): what it held is gone.
                continue;
            };
            for (name, kind) in entries {
                let path = current.join(name);
                match kind {
                    EntryKind::Dir => {
                        self.set(&path, Some(Digest::Dir), None, updates);
                        pending.push(path.clone());
                    }
                    EntryKind::Symlink => {
                        let digest = link_text(&path).map_or(Digest::Unreadable, Digest::Symlink);
                        self.set(&path, Some(digest), None, updates);
                    }
                    EntryKind::File => {
                        let unchanged = fs::symlink_metadata(&path).ok().is_some_and(|metadata| {
                            self.slots.get(&path).is_some_and(|slot| {
                                slot.stamp == Some(Stamp::of(&metadata))
                                    && matches!(slot.digest, Digest::File(_))
                            })
                        });
                        if !unchanged {
                            let (digest, stamp) = match hash_file(&path, &mut buffer) {
                                Ok((digest, stamp)) => (Digest::File(digest), Some(stamp)),
                                Err(_) => (Digest::Unreadable, None),
                            };
                            self.set(&path, Some(digest), stamp, updates);
                        }
                    }
                }
                seen.insert(path);
            }
        }
        let vanished: Vec<PathBuf> = self
            .descendants(dir)
            .filter(|(path, _)| !seen.contains(*path))
            .map(|(path, _)| path.clone())
            .collect();
        for path in vanished {
            self.set(&path, None, None, updates);
        }
    }

    /// Marks `path` (unless `keep_self`) and everything below it as gone.
    fn remove_subtree(
        &mut self,
        path: &Path,
        include_self: bool,
        updates: &mut BTreeMap<PathBuf, Option<Digest>>,
    ) {
        let below: Vec<PathBuf> = self
            .descendants(path)
            .map(|(path, _)| path.clone())
            .collect();
        for entry in below {
            self.set(&entry, None, None, updates);
        }
        if include_self && self.slots.contains_key(path) {
            self.set(path, None, None, updates);
        }
    }

    /// The slots strictly below `dir`. In path order a directory's
    /// descendants come right after it, so this is one range scan.
    fn descendants<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = (&'a PathBuf, &'a Slot)> {
        self.slots
            .range::<Path, _>((std::ops::Bound::Excluded(dir), std::ops::Bound::Unbounded))
            .take_while(move |(path, _)| path.starts_with(dir))
    }

    /// A new entry's parent directories up to its root must be entries too.
    fn add_missing_parents(
        &mut self,
        path: &Path,
        updates: &mut BTreeMap<PathBuf, Option<Digest>>,
    ) {
        let Some(root) = self
            .roots
            .iter()
            .find(|root| path.starts_with(root) && path != root.as_path())
            .cloned()
        else {
            return;
        };
        let mut parent = path.parent();
        while let Some(dir) = parent {
            if dir == root || !dir.starts_with(&root) {
                break;
            }
            if self
                .slots
                .get(dir)
                .is_some_and(|slot| slot.digest == Digest::Dir)
            {
                break;
            }
            self.set(dir, Some(Digest::Dir), None, updates);
            parent = dir.parent();
        }
    }

    /// Sets one path's current state (`None`: absent), recording its state
    /// before the refresh in `updates` and keeping the dirty set exact.
    fn set(
        &mut self,
        path: &Path,
        current: Option<Digest>,
        stamp: Option<Stamp>,
        updates: &mut BTreeMap<PathBuf, Option<Digest>>,
    ) {
        let before = match current {
            Some(digest) => self
                .slots
                .insert(path.to_path_buf(), Slot { digest, stamp })
                .map(|slot| slot.digest),
            None => self.slots.remove(path).map(|slot| slot.digest),
        };
        let now = self.slots.get(path).map(|slot| &slot.digest);
        match self.dirty.get(path) {
            // Already differing: back to the baseline, or still different.
            Some(baseline) => {
                if baseline.as_ref() == now {
                    self.dirty.remove(path);
                }
            }
            // Was as in the baseline, so `before` is the baseline.
            None => {
                if before.as_ref() != now {
                    self.dirty.insert(path.to_path_buf(), before.clone());
                }
            }
        }
        updates.entry(path.to_path_buf()).or_insert(before);
    }
}

/// How `before` became `after`, if it changed.
fn change_kind(before: Option<&Digest>, after: Option<&Digest>) -> Option<ChangeKind> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(ChangeKind::Added),
        (Some(_), None) => Some(ChangeKind::Removed),
        (Some(a), Some(b)) if a == b => None,
        (Some(_), Some(_)) => Some(ChangeKind::Changed),
    }
}

/// Whether `path` is `root` or an input below it.
fn covered_by(root: &Path, path: &Path) -> bool {
    if path == root {
        return true;
    }
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    relative.components().all(|component| match component {
        Component::Normal(name) => !is_skipped_name(name),
        _ => false,
    })
}

/// The walk of the roots before any file is read: every entry in walk
/// order, with its digest, or `None` for a file still to be hashed.
#[derive(Default)]
struct Listing {
    entries: Vec<(PathBuf, Option<Digest>)>,
}

impl Listing {
    fn entry(&mut self, path: PathBuf, kind: EntryKind) -> Result<()> {
        let digest = match kind {
            EntryKind::File => None,
            EntryKind::Dir => Some(Digest::Dir),
            EntryKind::Symlink => Some(Digest::Symlink(link_text(&path)?)),
        };
        self.entries.push((path, digest));
        Ok(())
    }

    fn directory(&mut self, dir: &Path) -> Result<()> {
        for (name, kind) in sorted_entries(dir)? {
            let path = dir.join(name);
            if kind == EntryKind::Dir {
                self.entry(path.clone(), kind)?;
                self.directory(&path)?;
            } else {
                self.entry(path, kind)?;
            }
        }
        Ok(())
    }
}

/// One file's digest and stamp, reading through `buffer`.
fn hash_file(path: &Path, buffer: &mut Vec<u8>) -> Result<(ContentDigest, Stamp)> {
    let mut file: File = open_input(path)?;
    let metadata = file
        .metadata()
        .with_context(|| format!("Failed to read build input metadata: {}", path.display()))?;
    // Room for the whole file (and the read that sees its end) up to a
    // chunk: one read for a small file, no big buffer to clear for it.
    let wanted = usize::try_from(metadata.len())
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .clamp(8192, CHUNK_SIZE);
    if buffer.len() < wanted {
        buffer.resize(wanted, 0);
    }
    let mut hasher = content_hasher();
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(read) => {
                hasher.update(&buffer[..read]);
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(anyhow!(error).context(format!(
                    "Failed to read build input file: {}",
                    path.display()
                )));
            }
        }
    }
    Ok((hasher.digest128(), Stamp::of(&metadata)))
}

/// A file's position in the list, digest and stamp.
type Hashed = (usize, ContentDigest, Stamp);

/// Hashes `files` on all cores; results in the same order.
fn hash_files(files: &[&Path]) -> Result<Vec<(ContentDigest, Stamp)>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let parts: Vec<Result<Vec<Hashed>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut buffer = Vec::new();
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(index) else {
                            return Ok(done);
                        };
                        let (digest, stamp) = hash_file(path, &mut buffer).inspect_err(|_| {
                            // Stop the other workers early.
                            next.store(files.len(), Ordering::Relaxed);
                        })?;
                        done.push((index, digest, stamp));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow!("A fingerprint hashing thread panicked")))
            })
            .collect()
    });
    let mut results = vec![None; files.len()];
    for part in parts {
        for (index, digest, stamp) in part? {
            results[index] = Some((digest, stamp));
        }
    }
    results
        .into_iter()
        .map(|result| result.ok_or_else(|| anyhow!("A fingerprint hashing thread stopped early")))
        .collect()
}

/// The startup path: the byte-exact whole-tree fingerprint (as
/// [`super::stream::whole_tree_fingerprint`]) and the index (as
/// [`TreeIndex::build`]) from one read of each file.
pub fn stream_and_index(
    settings: &FingerprintSettings,
    roots: &[PathBuf],
    display_base: &Path,
) -> Result<(String, TreeIndex)> {
    let mut stream = settings_hasher(settings);
    let mut entries = Vec::new();
    read_inputs(roots, true, |chunk| {
        sha2::Digest::update(&mut stream, chunk.bytes());
        entries.extend(chunk.marks.drain(..).map(|mark| match mark {
            Mark::Dir { path } => (path, Digest::Dir, None),
            Mark::Symlink { path, target } => (path, Digest::Symlink(target), None),
            Mark::File {
                path,
                digest,
                stamp,
            } => (path, Digest::File(digest), Some(stamp)),
        }));
        Ok(())
    })?;
    let index = TreeIndex::from_entries(roots, display_base, entries);
    Ok((finish_hex(stream), index))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::fingerprint::stream::whole_tree_fingerprint;
    use crate::fingerprint::test_fixture::{self, build_fixture, roots, settings};

    /// The Python reference's value for the fixture's container-mode case
    /// (see the stream tests; regenerate with
    /// `python3 scripts/fingerprint_reference.py fixture`).
    const CONTAINER_ALL_ROOTS: &str =
        "5873f468f7362d41db0898b7e2a98ae1acca6859e4de7f275735c00746273e92";

    struct Fixture {
        _dir: tempfile::TempDir,
        ws: PathBuf,
        crate_dir: PathBuf,
        roots: Vec<PathBuf>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("temp dir");
            let ws = dir.path().join("ws");
            fs::create_dir(&ws).expect("create ws");
            build_fixture(&ws);
            let roots = roots(&ws, &["Cargo.lock", "crate", "dep"]);
            Fixture {
                crate_dir: ws.join("crate"),
                _dir: dir,
                ws,
                roots,
            }
        }

        fn index(&self) -> TreeIndex {
            TreeIndex::build(&self.roots, &self.crate_dir).expect("build index")
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.crate_dir.join(relative)
        }
    }

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind,
        }
    }

    fn current_state(index: &TreeIndex) -> Vec<(PathBuf, Digest)> {
        index
            .slots
            .iter()
            .map(|(path, slot)| (path.clone(), slot.digest.clone()))
            .collect()
    }

    #[test]
    fn stream_and_index_gives_the_reference_stream_and_the_same_index_as_build() {
        let fixture = Fixture::new();
        let (stream, index) = stream_and_index(&settings(), &fixture.roots, &fixture.crate_dir)
            .expect("stream and index");
        assert_eq!(stream, CONTAINER_ALL_ROOTS);
        let built = fixture.index();
        assert_eq!(current_state(&index), current_state(&built));
        assert!(index.matches_baseline());
        assert!(built.changes_since_baseline().is_empty());
        let names: Vec<String> = current_state(&built)
            .iter()
            .map(|(path, _)| built.display(path))
            .collect();
        // Skipped paths and the fifo are not entries; symlinks and the
        // empty directory are.
        assert!(names.contains(&"src/main.rs".to_string()));
        assert!(names.contains(&"empty".to_string()));
        assert!(names.contains(&"loop".to_string()));
        assert!(names.contains(&"sub/keep.rs".to_string()));
        for absent in [
            "target",
            "sub/target",
            ".git/HEAD",
            ".arca/config.toml",
            "pipe",
        ] {
            assert!(
                !names.contains(&absent.to_string()),
                "{absent} is not an input"
            );
        }
    }

    #[test]
    fn an_edit_is_a_change_and_its_revert_is_none() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let main = fixture.path("src/main.rs");
        let original = fs::read(&main).expect("read");
        fs::write(&main, b"fn main() {}\n").expect("write");
        let refreshed = index.refresh(std::slice::from_ref(&main));
        assert_eq!(refreshed, [change("src/main.rs", ChangeKind::Changed)]);
        assert_eq!(
            index.changes_since_baseline(),
            [change("src/main.rs", ChangeKind::Changed)]
        );
        assert_eq!(
            index.changes_since_baseline()[0].to_string(),
            "src/main.rs changed"
        );
        fs::write(&main, original).expect("revert");
        index.refresh(std::slice::from_ref(&main));
        assert!(index.changes_since_baseline().is_empty());
        assert!(index.matches_baseline());
    }

    #[test]
    fn touching_without_changing_contents_is_no_change() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let main = fixture.path("src/main.rs");
        let contents = fs::read(&main).expect("read");
        fs::write(&main, contents).expect("rewrite same contents");
        let file = fs::File::options().write(true).open(&main).expect("open");
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .expect("touch");
        assert!(
            index
                .refresh(&[main.clone(), fixture.crate_dir.clone()])
                .is_empty()
        );
        assert!(index.changes_since_baseline().is_empty());
    }

    #[test]
    fn added_and_removed_files_and_a_rename() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let new = fixture.path("src/new.rs");
        fs::write(&new, b"// new\n").expect("write");
        index.refresh(std::slice::from_ref(&new));
        assert_eq!(
            index.changes_since_baseline(),
            [change("src/new.rs", ChangeKind::Added)]
        );
        fs::remove_file(&new).expect("remove");
        index.refresh(std::slice::from_ref(&new));
        assert!(index.changes_since_baseline().is_empty());

        let from = fixture.path("src/B.rs");
        let to = fixture.path("src/C.rs");
        fs::rename(&from, &to).expect("rename");
        index.refresh(&[from.clone(), to.clone()]);
        assert_eq!(
            index.changes_since_baseline(),
            [
                change("src/B.rs", ChangeKind::Removed),
                change("src/C.rs", ChangeKind::Added),
            ]
        );
        fs::rename(&to, &from).expect("rename back");
        index.refresh(&[from, to]);
        assert!(index.changes_since_baseline().is_empty());
    }

    #[test]
    fn a_directory_above_the_roots_rescans_them() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let outside = fixture.ws.join("unrelated.txt");
        assert!(index.concerns(&fixture.ws) && !index.concerns(&outside));
        fs::write(fixture.path("src/B.rs"), b"// other\n").expect("write");
        fs::write(fixture.ws.join("Cargo.lock"), b"# other\n").expect("write");
        let changes = index.refresh(std::slice::from_ref(&fixture.ws));
        assert_eq!(
            changes,
            [
                change(
                    &fixture.ws.join("Cargo.lock").display().to_string(),
                    ChangeKind::Changed
                ),
                change("src/B.rs", ChangeKind::Changed)
            ]
        );
    }

    #[test]
    fn a_file_removed_then_recreated_is_judged_against_the_baseline() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let b = fixture.path("src/B.rs");
        let original = fs::read(&b).expect("read");
        fs::remove_file(&b).expect("remove");
        assert_eq!(
            index.refresh(std::slice::from_ref(&b)),
            [change("src/B.rs", ChangeKind::Removed)]
        );
        fs::write(&b, b"// other\n").expect("write");
        // Relative to the previous state it was added; to the baseline, changed.
        assert_eq!(
            index.refresh(std::slice::from_ref(&b)),
            [change("src/B.rs", ChangeKind::Added)]
        );
        assert_eq!(
            index.changes_since_baseline(),
            [change("src/B.rs", ChangeKind::Changed)]
        );
        fs::write(&b, original).expect("restore");
        index.refresh(std::slice::from_ref(&b));
        assert!(index.matches_baseline());
    }

    #[test]
    fn new_and_removed_directories_rescan_their_subtree() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        test_fixture::write(&fixture.crate_dir, "src/gen/deep/x.rs", b"x");
        test_fixture::write(&fixture.crate_dir, "src/gen/y.rs", b"y");
        // Only the new directory is reported, as a watcher may do.
        index.refresh(&[fixture.path("src/gen")]);
        assert_eq!(
            index.changes_since_baseline(),
            [
                change("src/gen", ChangeKind::Added),
                change("src/gen/deep", ChangeKind::Added),
                change("src/gen/deep/x.rs", ChangeKind::Added),
                change("src/gen/y.rs", ChangeKind::Added),
            ]
        );
        fs::remove_dir_all(fixture.path("src/gen")).expect("remove");
        index.refresh(&[fixture.path("src/gen")]);
        assert!(index.changes_since_baseline().is_empty());

        fs::remove_dir_all(fixture.path("src/a")).expect("remove");
        index.refresh(&[fixture.path("src/a")]);
        assert_eq!(
            index.changes_since_baseline(),
            [
                change("src/a", ChangeKind::Removed),
                change("src/a/b", ChangeKind::Removed),
                change("src/a/b/c.rs", ChangeKind::Removed),
            ]
        );
    }

    #[test]
    fn a_new_file_in_new_directories_adds_its_parents() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        test_fixture::write(&fixture.crate_dir, "src/p/q/r.rs", b"r");
        index.refresh(&[fixture.path("src/p/q/r.rs")]);
        assert_eq!(
            index.changes_since_baseline(),
            [
                change("src/p", ChangeKind::Added),
                change("src/p/q", ChangeKind::Added),
                change("src/p/q/r.rs", ChangeKind::Added),
            ]
        );
    }

    #[test]
    fn a_file_replaced_by_a_directory_and_a_retargeted_symlink() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let b = fixture.path("src/B.rs");
        fs::remove_file(&b).expect("remove");
        test_fixture::write(&fixture.crate_dir, "src/B.rs/inner.rs", b"i");
        let link = fixture.path("link-to-main");
        fs::remove_file(&link).expect("remove link");
        std::os::unix::fs::symlink("src/a.rs", &link).expect("relink");
        index.refresh(&[b, link]);
        assert_eq!(
            index.changes_since_baseline(),
            [
                change("link-to-main", ChangeKind::Changed),
                change("src/B.rs", ChangeKind::Changed),
                change("src/B.rs/inner.rs", ChangeKind::Added),
            ]
        );
    }

    #[test]
    fn paths_through_a_symlinked_directory_are_not_inputs() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        // `dir-link -> src`: the same file seen through the link.
        let through_link = fixture.path("dir-link/main.rs");
        assert!(through_link.is_file());
        assert!(
            index
                .refresh(std::slice::from_ref(&through_link))
                .is_empty()
        );
        fs::write(fixture.path("src/main.rs"), b"fn main() {}\n").expect("write");
        assert!(index.refresh(&[through_link]).is_empty());
        assert!(index.changes_since_baseline().is_empty());
    }

    #[test]
    fn skipped_and_outside_paths_are_ignored() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        test_fixture::write(&fixture.crate_dir, "sub/target/debug/new.o", b"o");
        test_fixture::write(&fixture.crate_dir, ".git/index", b"i");
        test_fixture::write(&fixture.crate_dir, "src/target/x.rs", b"x");
        test_fixture::write(&fixture.ws, "elsewhere.rs", b"e");
        let paths = [
            fixture.path("sub/target/debug/new.o"),
            fixture.path("target"),
            fixture.path(".git/index"),
            fixture.path("src/target/x.rs"),
            fixture.ws.join("elsewhere.rs"),
            PathBuf::from("/etc/hostname"),
        ];
        for path in &paths {
            assert!(!index.covers(path), "{} is not an input", path.display());
        }
        assert!(index.covers(&fixture.path("src/main.rs")));
        assert!(index.covers(&fixture.ws.join("Cargo.lock")));
        assert!(index.refresh(&paths).is_empty());
        // A rescan of the crate directory does not pick them up either.
        assert!(
            index
                .refresh(std::slice::from_ref(&fixture.crate_dir))
                .is_empty()
        );
        assert!(index.changes_since_baseline().is_empty());
    }

    #[test]
    fn a_root_file_outside_the_crate_is_named_by_its_absolute_path() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let lock = fixture.ws.join("Cargo.lock");
        fs::write(&lock, b"# changed\n").expect("write");
        index.refresh(std::slice::from_ref(&lock));
        assert_eq!(
            index.changes_since_baseline(),
            [change(&lock.display().to_string(), ChangeKind::Changed)]
        );
        fs::remove_file(&lock).expect("remove");
        index.refresh(std::slice::from_ref(&lock));
        assert_eq!(
            index.changes_since_baseline(),
            [change(&lock.display().to_string(), ChangeKind::Removed)]
        );
    }

    #[test]
    fn mark_baseline_makes_the_current_state_fresh() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        let main = fixture.path("src/main.rs");
        let gone = fixture.path("sub/keep.rs");
        fs::write(&main, b"fn main() { /* v2 */ }\n").expect("write");
        fs::remove_file(&gone).expect("remove");
        index.refresh(&[main.clone(), gone.clone()]);
        assert_eq!(index.changes_since_baseline().len(), 2);
        index.mark_baseline();
        assert!(index.changes_since_baseline().is_empty());
        // The new baseline matches what a fresh build of the index sees.
        assert_eq!(current_state(&index), current_state(&fixture.index()));
        test_fixture::write(&fixture.crate_dir, "sub/keep.rs", b"kept\n");
        index.refresh(std::slice::from_ref(&gone));
        assert_eq!(
            index.changes_since_baseline(),
            [change("sub/keep.rs", ChangeKind::Added)]
        );
    }

    #[test]
    fn after_refreshes_the_index_equals_a_fresh_build() {
        let fixture = Fixture::new();
        let mut index = fixture.index();
        test_fixture::write(&fixture.crate_dir, "src/main.rs", b"fn main() {}\n");
        test_fixture::write(&fixture.crate_dir, "src/x/y/z.rs", b"z");
        fs::remove_dir_all(fixture.path("src/a")).expect("remove");
        fs::remove_file(fixture.path("loop")).expect("remove");
        index.refresh(std::slice::from_ref(&fixture.crate_dir));
        assert_eq!(current_state(&index), current_state(&fixture.index()));
        let stream = whole_tree_fingerprint(&settings(), &fixture.roots).expect("stream");
        assert_ne!(stream, CONTAINER_ALL_ROOTS);
    }

    #[test]
    fn build_fails_naming_an_unreadable_file() {
        let fixture = Fixture::new();
        let mut roots = fixture.roots.clone();
        roots.push(PathBuf::from("/proc/self/mem"));
        let error = TreeIndex::build(&roots, &fixture.crate_dir).expect_err("unreadable");
        let message = format!("{error:#}");
        assert!(
            message.contains("Failed to read build input file: /proc/self/mem"),
            "{message}"
        );
        let error =
            stream_and_index(&settings(), &roots, &fixture.crate_dir).expect_err("unreadable");
        assert!(format!("{error:#}").contains("/proc/self/mem"));
    }
}
