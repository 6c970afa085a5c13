//! The workspace: folders, crate discovery, crate facts, and what a change
//! on disk means (reported by our own watcher, or by the client).
//!
//! Crates are found under every workspace folder and re-discovered when a
//! `Cargo.toml` appears or goes, or a directory holding a crate is
//! removed. Facts come from `cargo metadata` in a blocking task, tagged
//! with a generation so a superseded answer is dropped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tower_lsp::lsp_types::{
    DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams, MessageType,
};

use super::{documents, status};
use crate::server::event::{Event, TaskResult};
use crate::server::state::{CrateEntry, State, config_owner};
use crate::store::Store;
use crate::watch::{WatchEvent, Watcher};
use crate::workspace;

/// After `initialized`: open the store, start watching, find the crates.
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
    state.watcher = Some(watcher.clone());
    // Cargo metadata and the first hash start first; walking the folders
    // to add watches runs beside them, off the loop.
    rediscover(state);
    let mut trees: Vec<PathBuf> = state.folders.clone();
    trees.extend(state.store.as_ref().map(|store| store.root().to_path_buf()));
    let events = state.events.clone();
    tokio::task::spawn_blocking(move || {
        for tree in trees {
            watcher.watch_tree(&tree);
        }
        let _ = events.send(Event::Task(TaskResult::WatchesReady));
    });
}

/// Finds the crates of every folder; adds new ones, drops vanished ones.
pub fn rediscover(state: &mut State) {
    let found: BTreeSet<PathBuf> = state
        .folders
        .iter()
        .flat_map(|folder| workspace::discover_crates(folder))
        .map(|dir| dir.canonicalize().unwrap_or(dir))
        .collect();
    let known: Vec<PathBuf> = state.crates.keys().cloned().collect();
    for dir in known {
        if !found.contains(&dir) {
            remove_crate(state, &dir);
        }
    }
    for dir in found {
        if !state.crates.contains_key(&dir) {
            add_crate(state, dir);
        }
    }
}

fn add_crate(state: &mut State, dir: PathBuf) {
    tracing::info!("crate found: {}", dir.display());
    state
        .crates
        .insert(dir.clone(), CrateEntry::new(dir.clone()));
    load_facts(state, &dir);
}

fn remove_crate(state: &mut State, dir: &Path) {
    tracing::info!("crate gone: {}", dir.display());
    super::commands::cancel_crate(state, dir);
    state.crates.remove(dir);
    // Its config is gone or no longer a crate's: clear what we said.
    documents::publish_crate_config(state, dir);
}

/// Asks `cargo metadata` for the crate's facts in the background.
pub fn load_facts(state: &mut State, dir: &Path) {
    let generation = state.generation();
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    entry.facts_generation = generation;
    let events = state.events.clone();
    let crate_dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let facts = workspace::load_crate_facts(&crate_dir).map_err(|error| format!("{error:#}"));
        let _ = events.send(Event::Task(TaskResult::Facts {
            crate_dir,
            generation,
            facts,
        }));
    });
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
            if entry.facts_generation != generation {
                return;
            }
            if let Err(error) = &facts {
                tracing::info!("facts of {}: {error}", crate_dir.display());
            }
            entry.facts = Some(facts);
            watch_outside_inputs(state, &crate_dir);
            documents::publish_crate_config(state, &crate_dir);
            status::reindex(state, &crate_dir);
        }
        other => status::on_task(state, other),
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
    for root in crate::fingerprint::input_roots(facts, home.as_deref()) {
        if state.folders.iter().any(|folder| root.starts_with(folder)) {
            continue;
        }
        if root.is_dir() {
            watcher.watch_tree(&root);
        } else if let Some(parent) = root.parent() {
            watcher.watch_dir(parent);
        }
    }
    // The workspace root holds Cargo.lock and the workspace manifest.
    if !state
        .folders
        .iter()
        .any(|folder| facts.workspace_root.starts_with(folder))
    {
        watcher.watch_dir(&facts.workspace_root);
    }
}

pub fn did_change_folders(state: &mut State, params: DidChangeWorkspaceFoldersParams) {
    for removed in params.event.removed {
        if let Ok(path) = removed.uri.to_file_path() {
            state.folders.retain(|folder| *folder != path);
            if let Some(watcher) = &state.watcher {
                watcher.unwatch_tree(&path);
            }
        }
    }
    for added in params.event.added {
        if let Ok(path) = added.uri.to_file_path()
            && !state.folders.contains(&path)
        {
            if let Some(watcher) = state.watcher.clone() {
                let tree = path.clone();
                tokio::task::spawn_blocking(move || watcher.watch_tree(&tree));
            }
            state.folders.push(path);
        }
    }
    if state.initialized {
        rediscover(state);
    }
}

/// The client's own file events: handled like ours (a change seen twice
/// costs a digest comparison, nothing more).
pub fn did_change_watched_files(state: &mut State, params: DidChangeWatchedFilesParams) {
    let paths: Vec<PathBuf> = params
        .changes
        .into_iter()
        .filter_map(|change| change.uri.to_file_path().ok())
        .collect();
    on_paths(state, &paths);
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
        let manifests = manifest_files(entry);
        if paths.iter().any(|path| manifests.contains(path)) {
            load_facts(state, &dir);
            continue;
        }
        let config = crate::config::config_path(&dir);
        if paths
            .iter()
            .any(|path| config_owner(path).as_deref() == Some(dir.as_path()) || *path == config)
        {
            documents::publish_crate_config(state, &dir);
            status::settings_changed(state, &dir);
        }
        status::files_changed(state, &dir, paths);
    }
    if store_changed {
        status::store_changed(state);
    }
}

/// Files whose change means the crate's facts must be asked again.
fn manifest_files(entry: &CrateEntry) -> BTreeSet<PathBuf> {
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

fn affects_discovery(state: &State, path: &Path) -> bool {
    let in_folder = state.folders.iter().any(|folder| path.starts_with(folder));
    if !in_folder {
        return false;
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
