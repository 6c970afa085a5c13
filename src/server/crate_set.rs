//! The set of crates in the workspace: discovery under every folder, each
//! crate's facts, and what a change on disk means (reported by our own
//! watcher, or by the client through `handlers::workspace`).
//!
//! Crates are found under every workspace folder and re-discovered when a
//! `Cargo.toml` appears or goes, or a directory holding a crate is
//! removed. Facts come from `cargo metadata` in a blocking task, tagged
//! with a generation so a superseded answer is dropped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tower_lsp::lsp_types::{MessageType, Url};

use crate::server::builds;
use crate::server::config_diagnostics;
use crate::server::crate_status;
use crate::server::event::{Event, TaskResult};
use crate::server::jobs;
use crate::server::outbox::Outgoing;
use crate::server::state::{CrateEntry, State, config_owner};
use crate::store::Store;
use crate::watch::{WatchEvent, Watcher};
use crate::workspace;

/// After `initialized`: open the store, find the crates (off the loop);
/// the watches are set up once the first discovery says what to watch.
pub fn start(state: &mut State) {
    match Store::open_default() {
        Ok(store) => {
            // Watching needs the directory to exist; an empty store is valid.
            if let Err(error) = std::fs::create_dir_all(store.root()) {
                state.outbox.log(
                    MessageType::WARNING,
                    format!(
                        "Arca cannot create its artifact store {}: {error}. Status cannot see artifacts built meanwhile.",
                        store.root().display()
                    ),
                );
            }
            state.store = Some(store);
        }
        Err(error) => state.outbox.log(MessageType::ERROR, format!("{error:#}")),
    }
    let events = state.events.clone();
    let watcher = Watcher::new(move |event| {
        let _ = events.send(Event::Watch(event));
    });
    state.watcher = Some(watcher);
    rediscover(state);
}

/// Searches every folder for crates, off the loop; the newest search wins.
pub fn rediscover(state: &mut State) {
    let generation = state.generation();
    state.discovery_generation = generation;
    let folders = state.folders.clone();
    jobs::spawn_blocking(
        &state.events,
        "discover",
        move || {
            Ok(folders
                .into_iter()
                .map(|folder| {
                    let mut found = workspace::discover(&folder);
                    for dir in &mut found.crates {
                        *dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                    }
                    (folder, found)
                })
                .collect())
        },
        move |discovery| TaskResult::Discovered {
            generation,
            discovery,
        },
    );
}

/// A discovery finished: adds new crates, removes vanished ones.
fn discovered(
    state: &mut State,
    generation: u64,
    discovery: Result<Vec<(PathBuf, workspace::Discovery)>, String>,
) {
    if generation != state.discovery_generation {
        return;
    }
    let discovery = match discovery {
        Ok(discovery) => discovery,
        Err(error) => {
            state.outbox.log(MessageType::ERROR, error);
            if !state.discovered {
                // Never leave requests waiting on a search that failed;
                // watch the folders Arca would search.
                state.discovered = true;
                let folders: Vec<_> = state
                    .folders
                    .iter()
                    .map(|folder| {
                        let capped = workspace::refused_folder(folder).is_some();
                        let found = workspace::Discovery {
                            capped,
                            ..workspace::Discovery::default()
                        };
                        (folder.clone(), found)
                    })
                    .collect();
                crate::server::watch_setup::plan(state, &folders);
            }
            state.discovery_failures += 1;
            if state.discovery_failures < 3 {
                rediscover(state);
            }
            return;
        }
    };
    for (_, found) in &discovery {
        if let Some(notice) = &found.notice
            && state.folder_notices.insert(notice.clone())
        {
            tracing::warn!("{notice}");
            state.outbox.log(MessageType::WARNING, notice.clone());
        }
    }
    state.discovery_failures = 0;
    if !state.discovered {
        crate::server::startup_clock::reached("discovered");
        state.discovered = true;
        crate::server::watch_setup::plan(state, &discovery);
    }
    let found: BTreeSet<PathBuf> = discovery
        .into_iter()
        .flat_map(|(_, found)| found.crates)
        .collect();
    let known: Vec<PathBuf> = state.crates.keys().cloned().collect();
    for dir in known {
        if !found.contains(&dir) {
            remove_crate(state, &dir);
        }
    }
    let mut added = false;
    for dir in found {
        if !state.crates.contains_key(&dir) {
            add_crate(state, dir);
            added = true;
        }
    }
    if added {
        crate_status::store_changed(state);
    }
}

fn add_crate(state: &mut State, dir: PathBuf) {
    tracing::info!("crate found: {}", dir.display());
    state
        .crates
        .insert(dir.clone(), CrateEntry::new(dir.clone()));
    load_facts(state, &dir);
}

/// The crate left the workspace: cancel its build or push and stop its run
/// (the editor can no longer name it to stop it), clear every diagnostic
/// published for it, and say so (`arca/removed`, PROTOCOL.md additions).
/// Their late reports find no crate and are dropped.
fn remove_crate(state: &mut State, dir: &Path) {
    tracing::info!("crate gone: {}", dir.display());
    let Some(entry) = state.crates.remove(dir) else {
        return;
    };
    entry.activity.stop_all();
    let config = crate::config::config_path(dir);
    let uri = state
        .documents
        .get(&config)
        .map(|document| document.uri.clone())
        .or_else(|| Url::from_file_path(&config).ok());
    if let Some(uri) = uri {
        state
            .outbox
            .send(Outgoing::Diagnostics(uri, Vec::new(), None));
        state.config_diagnostics.insert(config, (Vec::new(), None));
    }
    crate::server::rust_diagnostics::clear(state, dir);
    if state.initialized {
        state.outbox.send(Outgoing::Removed(entry.uri));
    }
}

/// Asks `cargo metadata` for the crate's facts in the background.
pub fn load_facts(state: &mut State, dir: &Path) {
    let generation = state.generation();
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    entry.facts_generation = generation;
    let crate_dir = dir.to_path_buf();
    let job_dir = crate_dir.clone();
    jobs::spawn_blocking(
        &state.events,
        "facts",
        move || workspace::load_crate_facts(&job_dir).map_err(|error| format!("{error:#}")),
        move |facts| TaskResult::Facts {
            crate_dir,
            generation,
            facts,
        },
    );
}

pub fn on_task(state: &mut State, result: TaskResult) {
    match result {
        TaskResult::Facts {
            crate_dir,
            generation,
            facts,
        } => {
            let Some(entry) = state.crates.get_mut(&crate_dir) else {
                return;
            };
            if let Err(error) = &facts {
                tracing::info!("facts of {}: {error}", crate_dir.display());
            }
            let unchanged = matches!((entry.facts(), &facts), (Some(old), Ok(new)) if old == new);
            if !entry.facts_arrived(generation, facts) {
                return;
            }
            crate::server::startup_clock::reached("facts");
            if unchanged {
                // A manifest was saved (or the catch-up asked) but Cargo
                // sees the same crate: only the manifests' own contents,
                // which are inputs, may differ. No rehash, no new baseline.
                let manifests: Vec<PathBuf> = crate::server::watch_setup::manifest_files(entry)
                    .into_iter()
                    .collect();
                crate_status::files_changed(state, &crate_dir, &manifests);
                return;
            }
            watch_outside_inputs(state, &crate_dir);
            config_diagnostics::publish_crate_config(state, &crate_dir);
            crate_status::reindex(state, &crate_dir);
        }
        TaskResult::Discovered {
            generation,
            discovery,
        } => discovered(state, generation, discovery),
        TaskResult::BuildFinished(finished) => builds::finished(state, finished),
        TaskResult::ConfigChecked { path, uri, checked } => {
            config_diagnostics::config_checked(state, &path, uri, checked);
        }
        other => crate_status::on_task(state, other),
    }
}

/// Input roots outside every workspace folder (path dependencies, the
/// workspace's Cargo.lock, `.cargo/config*`) are watched too.
fn watch_outside_inputs(state: &State, dir: &Path) {
    let (Some(entry), Some(watcher)) = (state.crates.get(dir), state.watcher.as_ref()) else {
        return;
    };
    let Some(facts) = entry.facts() else {
        return;
    };
    let home = dirs::home_dir();
    let mut trees = Vec::new();
    let mut single = Vec::new();
    for root in crate::fingerprint::input_roots(facts, home.as_deref()) {
        if state.folders.iter().any(|folder| root.starts_with(folder)) {
            continue;
        }
        trees.push(root);
    }
    // The workspace root holds Cargo.lock and the workspace manifest.
    if !state
        .folders
        .iter()
        .any(|folder| facts.workspace_root.starts_with(folder))
    {
        single.push(facts.workspace_root.clone());
    }
    if trees.is_empty() && single.is_empty() {
        return;
    }
    let watcher = watcher.clone();
    // Walking a path dependency's tree is blocking work: off the loop.
    tokio::task::spawn_blocking(move || {
        for root in trees {
            if root.is_dir() {
                watcher.watch_tree(&root);
            } else if let Some(parent) = root.parent() {
                watcher.watch_dir(parent);
            }
        }
        for dir in single {
            watcher.watch_dir(&dir);
        }
    });
}

pub fn on_watch(state: &mut State, event: WatchEvent) {
    match event {
        WatchEvent::Changed(paths) => on_paths(state, &paths),
        WatchEvent::Notice(message) => {
            tracing::warn!("{message}");
            state.outbox.log(MessageType::WARNING, message);
        }
    }
}

/// What a set of changed paths means for each crate.
pub fn on_paths(state: &mut State, paths: &[PathBuf]) {
    tracing::debug!("changed on disk: {paths:?}");
    if !state.initialized {
        return;
    }
    if paths.iter().any(|path| affects_discovery(state, path)) {
        rediscover(state);
    }
    let store_changed = state
        .store
        .as_ref()
        .is_some_and(|store| paths.iter().any(|path| path.starts_with(store.root())));
    let dirs: Vec<PathBuf> = state.crates.keys().cloned().collect();
    for dir in dirs {
        let Some(entry) = state.crates.get(&dir) else {
            continue;
        };
        let manifests = crate::server::watch_setup::manifest_files(entry);
        if paths.iter().any(|path| manifests.contains(path)) {
            // New facts re-resolve the settings and rehash; the same facts
            // leave the rest to the lines below.
            load_facts(state, &dir);
        }
        let config = crate::config::config_path(&dir);
        if paths
            .iter()
            .any(|path| config_owner(path).as_deref() == Some(dir.as_path()) || *path == config)
        {
            config_diagnostics::publish_crate_config(state, &dir);
            crate_status::settings_changed(state, &dir);
        }
        crate_status::files_changed(state, &dir, paths);
    }
    if store_changed {
        crate_status::store_changed(state);
    }
}

fn affects_discovery(state: &State, path: &Path) -> bool {
    let in_folder = state.folders.iter().any(|folder| path.starts_with(folder));
    if !in_folder {
        return false;
    }
    if state.folders.iter().any(|folder| folder == path) {
        // A whole folder reported (the watcher lost events): search again.
        return true;
    }
    if path.file_name().is_some_and(|name| name == "Cargo.toml") {
        return true;
    }
    if !path.exists() {
        // A removed directory that held a crate.
        return state.crates.keys().any(|dir| dir.starts_with(path));
    }
    path.is_dir() && path.join("Cargo.toml").is_file()
}
