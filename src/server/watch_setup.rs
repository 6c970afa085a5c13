//! The first watches, and the catch-up that makes setting them up late safe.
//!
//! inotify reports every `open` of a file in a watched directory (notify
//! 8.2 always asks for `IN_OPEN`), and the startup hash opens every input:
//! with the watches in place first, the 50,000-file tree's hash cost 150 ms
//! more (and could overflow the kernel's event queue). So the startup hash
//! runs unwatched; the watches of every folder and the store are set up
//! once the first index arrives (or after [`WATCH_DEFER_LIMIT`]), and then
//! a catch-up reports what may have changed meanwhile:
//! - each unwatched-hashed crate's input roots go to its index, which
//!   rescans them by `stat` (rehashing only files whose stamp changed);
//! - the store, and every manifest or config stamped since the server
//!   started, go through the ordinary change handling (a manifest whose
//!   facts did not change costs one `cargo metadata`, no rehash).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::server::event::{Event, TaskResult};
use crate::server::live;
use crate::server::model::CrateEntry;
use crate::server::state::State;
use crate::watch::WatchEvent;
use crate::workspace::Discovery;

/// The first watches start at the latest this long after the first
/// discovery, even if no index arrived (an unconfigured crate never hashes).
pub const WATCH_DEFER_LIMIT: Duration = Duration::from_secs(2);

/// Files stamped this long before the server started count as possibly
/// changed (file system clocks are coarse; a false positive costs one
/// reload of the crate's facts).
const STAMP_SLACK: Duration = Duration::from_secs(2);

/// Files whose change means the crate's facts must be asked again.
pub fn manifest_files(entry: &CrateEntry) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::from([entry.dir.join("Cargo.toml")]);
    if let Some(facts) = entry.facts() {
        files.insert(facts.workspace_root.join("Cargo.toml"));
        files.insert(facts.workspace_root.join("Cargo.lock"));
        for dir in &facts.local_package_dirs {
            files.insert(dir.join("Cargo.toml"));
        }
    }
    files
}

/// The first discovery said what to watch: every folder Arca searched
/// whole, only the crates of a capped folder, nothing of a refused one;
/// then the store. Watching starts at once when there is nothing to hash,
/// else when the first index arrives or the limit passes.
pub fn plan(state: &mut State, discovery: &[(PathBuf, Discovery)]) {
    let mut trees: Vec<PathBuf> = Vec::new();
    for (folder, found) in discovery {
        if found.capped {
            trees.extend(found.crates.iter().cloned());
        } else {
            trees.push(folder.clone());
        }
    }
    trees.extend(state.store.as_ref().map(|store| store.root().to_path_buf()));
    state.watch_plan = Some(trees);
    let no_crates = discovery.iter().all(|(_, found)| found.crates.is_empty());
    if no_crates {
        start(state);
        return;
    }
    let events = state.events.clone();
    tokio::spawn(async move {
        tokio::time::sleep(WATCH_DEFER_LIMIT).await;
        let _ = events.send(Event::Task(TaskResult::WatchDue));
    });
}

/// Sets up the planned watches (once), off the loop.
pub fn start(state: &mut State) {
    let (Some(trees), Some(watcher)) = (state.watch_plan.take(), state.watcher.clone()) else {
        return;
    };
    let events = state.events.clone();
    let test_delay = test_delay();
    tokio::task::spawn_blocking(move || {
        if let Some(delay) = test_delay {
            std::thread::sleep(delay);
        }
        let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for tree in trees {
                watcher.watch_tree(&tree);
            }
        }));
        if let Err(panic) = watched {
            let _ = crate::server::jobs::panic_message("watch", panic.as_ref());
        }
        crate::server::startup_clock::reached("watches ready");
        // The catch-up waits for this: report it even after a panic.
        let _ = events.send(Event::Task(TaskResult::WatchesReady));
    });
}

/// `ARCA_TEST_WATCH_DELAY_MS`: tests widen the unwatched window to prove
/// the catch-up; nothing else sets it.
fn test_delay() -> Option<Duration> {
    let millis: u64 = std::env::var("ARCA_TEST_WATCH_DELAY_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(millis.min(60_000)))
}

/// The watches are in place: report, as one change, what may have changed
/// while they were not (see the module doc).
pub fn ready(state: &mut State) {
    state.watches_ready = true;
    let mut rescans = Vec::new();
    let mut candidates = Vec::new();
    for (dir, entry) in &mut state.crates {
        if std::mem::take(&mut entry.hashed_unwatched)
            && let Some(facts) = entry.facts()
        {
            rescans.push((dir.clone(), live::roots(facts)));
        }
        candidates.extend(manifest_files(entry));
        candidates.push(crate::config::config_path(&entry.dir));
    }
    // The inputs straight to each crate's index (a stat rescan in a job),
    // not through discovery and manifest handling.
    for (crate_dir, paths) in rescans {
        let _ = state
            .events
            .send(Event::Task(TaskResult::Rescan { crate_dir, paths }));
    }
    let mut rescan: Vec<PathBuf> = state
        .store
        .as_ref()
        .map(|store| store.root().to_path_buf())
        .into_iter()
        .collect();
    let since = state
        .started_at
        .checked_sub(STAMP_SLACK)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let events = state.events.clone();
    tokio::task::spawn_blocking(move || {
        rescan.extend(
            candidates
                .into_iter()
                .filter(|path| stamped_since(path, since)),
        );
        rescan.sort();
        rescan.dedup();
        tracing::debug!("catch-up after the first watches: {rescan:?}");
        let _ = events.send(Event::Watch(WatchEvent::Changed(rescan)));
    });
}

/// Whether the file's contents or metadata changed at or after `since`.
fn stamped_since(path: &Path, since: SystemTime) -> bool {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let since = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let changed = Duration::new(
        u64::try_from(metadata.ctime()).unwrap_or(0),
        u32::try_from(metadata.ctime_nsec()).unwrap_or(0),
    );
    let modified = Duration::new(
        u64::try_from(metadata.mtime()).unwrap_or(0),
        u32::try_from(metadata.mtime_nsec()).unwrap_or(0),
    );
    changed >= since || modified >= since
}
