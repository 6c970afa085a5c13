//! Keeping every crate's verdict current and telling the client when it
//! changes: the per-crate transitions (settings, index, store, building)
//! that the handlers call down into; `handlers::status` answers
//! `arca/status` from what this keeps.
//!
//! The first hash of a crate's tree runs in the background; after that a
//! change on disk re-reads only the changed paths ([`Live::refresh`]), so
//! the verdict after a save costs the same on any tree size. A config
//! change that alters the settings, or a new artifact that cannot be judged
//! from the index, rehashes in the background.

use std::path::{Path, PathBuf};

use crate::config;
use crate::plan::BuildSettings;
use crate::plan::{self, SettingsOverrides};
use crate::server::event::{Event, TaskResult};
use crate::server::jobs;
use crate::server::live::{self, Live};
use crate::server::model::StoreEntry;
use crate::server::outbox::Outgoing;
use crate::server::state::State;
use crate::status::{self, SetupProblem};
use crate::workspace::CrateFacts;

/// Sends the crate's status if it changed since the last one sent.
pub fn publish(state: &mut State, dir: &Path) {
    if !state.initialized {
        return;
    }
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    if let Some((paths, epoch)) = entry.digests_due() {
        // The artifact's recorded inputs are hashed off the loop first.
        entry.digests_pending = Some(epoch);
        let crate_dir = dir.to_path_buf();
        jobs::spawn_blocking(
            &state.events,
            "digests",
            move || Ok(live::manifest_digests(paths)),
            move |digests| TaskResult::Digests {
                crate_dir,
                epoch,
                digests: digests.and_then(|digests| digests),
            },
        );
        return;
    }
    if let Some(status) = entry.status_to_send() {
        if status.fingerprint.is_some() {
            super::startup_clock::reached("first verdict");
        }
        state.outbox.send(Outgoing::Status(Box::new(status)));
    }
}

fn digests_arrived(
    state: &mut State,
    dir: &Path,
    epoch: u64,
    digests: Result<Vec<(PathBuf, String)>, String>,
) {
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    if entry.digests_pending != Some(epoch) {
        return;
    }
    entry.digests_pending = None;
    match (digests, entry.live.as_ref()) {
        (Ok(digests), Some(Ok(live))) => {
            live.add_manifest_digests(epoch, digests);
        }
        (Err(error), _) => entry.digest_error = Some(error),
        _ => {}
    }
    publish(state, dir);
}

/// Resolves the settings of the saved config against the crate's facts,
/// off the loop (the config is read and checked); `force` rehashes the
/// tree when they arrive even if unchanged (new facts).
fn resolve_settings(state: &mut State, dir: &Path, force: bool) {
    let generation = state.generation();
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    entry.settings_generation = generation;
    entry.settings_force |= force;
    let Some(facts) = entry.facts().cloned() else {
        entry.settings = None;
        settings_resolved(state, dir, generation, Ok(None), None);
        return;
    };
    if force {
        // New facts: the old settings no longer describe the crate.
        entry.settings = None;
    }
    let recorded = entry
        .artifact
        .as_ref()
        .map(|artifact| artifact.metadata.clone());
    let crate_dir = dir.to_path_buf();
    let job_dir = crate_dir.clone();
    jobs::spawn_blocking(
        &state.events,
        "settings",
        move || Ok(setup(&job_dir, &facts, recorded.as_ref())),
        move |result| {
            let (settings, borrowed) = match result {
                Ok((settings, borrowed)) => (Ok(Some(settings)), borrowed),
                Err(error) => (Err(error), None),
            };
            TaskResult::Settings {
                crate_dir,
                generation,
                settings,
                borrowed,
            }
        },
    );
}

/// The settings arrived: keep them, rehash when they changed (or when the
/// facts did), publish.
fn settings_resolved(
    state: &mut State,
    dir: &Path,
    generation: u64,
    settings: Result<Option<Result<BuildSettings, SetupProblem>>, String>,
    borrowed: Option<String>,
) {
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    if entry.settings_generation != generation {
        return;
    }
    super::startup_clock::reached("settings");
    let settings = settings.unwrap_or_else(|error| Some(Err(SetupProblem::Broken(error))));
    entry.settings_borrowed = borrowed;
    let force = std::mem::take(&mut entry.settings_force);
    let before = std::mem::replace(&mut entry.settings, settings);
    let unhashed = entry.live.is_none() && !entry.refreshing && !entry.hashing;
    if force || entry.settings != before || unhashed {
        rehash(state, dir);
    }
    publish(state, dir);
}

/// The saved config resolved against the facts, as the CLI judges it: a
/// config that lacks settings is completed from the newest artifact's
/// record (`recorded`) when that resolves; the second value is then that
/// artifact's id.
fn setup(
    dir: &Path,
    facts: &CrateFacts,
    recorded: Option<&crate::store::ArtifactMetadata>,
) -> (Result<BuildSettings, SetupProblem>, Option<String>) {
    let config = match config::load(dir) {
        Ok(config) => config,
        Err(error) => return (Err(SetupProblem::Broken(format!("{error:#}"))), None),
    };
    let missing = status::missing_settings(&config, facts);
    if !missing.is_empty() {
        if let Some(recorded) = recorded {
            let completed = status::completed_from_artifact(&config, recorded);
            if status::missing_settings(&completed, facts).is_empty()
                && let Ok(settings) =
                    plan::resolve_settings(&SettingsOverrides::default(), &completed, facts)
            {
                return (Ok(settings), Some(recorded.artifact_id.clone()));
            }
        }
        return (
            Err(SetupProblem::Unconfigured(status::unconfigured_message(
                &missing, dir,
            ))),
            None,
        );
    }
    let settings = plan::resolve_settings(&SettingsOverrides::default(), &config, facts)
        .map_err(|error| SetupProblem::Broken(format!("{error:#}")));
    (settings, None)
}

/// Facts are (re)loaded: resolve settings, re-read the artifact, rehash.
pub fn reindex(state: &mut State, dir: &Path) {
    resolve_settings(state, dir, true);
}

/// Hashes the crate's tree in the background with the current settings.
fn rehash(state: &mut State, dir: &Path) {
    let generation = state.generation();
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    entry.live_generation = generation;
    entry.refingerprint_generation = None;
    entry.refreshing = false;
    entry.changed_while_hashing.clear();
    entry.hashing = false;
    let (Some(facts), Some(Ok(settings))) = (entry.facts().cloned(), entry.settings.clone()) else {
        entry.live = None;
        return;
    };
    entry.hashing = true;
    // Before the first watches, a change between the read and the watch is
    // found by their catch-up rescan (`watch_setup`).
    entry.hashed_unwatched = !state.watches_ready;
    super::startup_clock::reached("hash started");
    let crate_dir = dir.to_path_buf();
    jobs::spawn_blocking(
        &state.events,
        "index",
        move || Live::build(&facts, settings).map_err(|error| format!("{error:#}")),
        move |live| TaskResult::Indexed {
            crate_dir,
            generation,
            live,
        },
    );
}

/// The saved config may have changed.
pub fn settings_changed(state: &mut State, dir: &Path) {
    resolve_settings(state, dir, false);
}

/// Paths changed on disk: refresh the crate's index with them.
pub fn files_changed(state: &mut State, dir: &Path, paths: &[PathBuf]) {
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    let live = match entry.live.as_ref() {
        Some(Ok(live)) => live,
        Some(Err(_)) => {
            // The last hash failed: any change is a reason to try again.
            rehash(state, dir);
            publish(state, dir);
            return;
        }
        None => {
            // Hashing or refreshing: these paths may have been read before
            // they changed; they are re-read when it reports.
            entry.changed_while_hashing.extend(paths.iter().cloned());
            return;
        }
    };
    if !paths.iter().any(|path| live.concerns(path)) {
        // Not in the index (a cheap lookup): nothing to re-read, but a
        // file the artifact's manifest names is hashed again.
        let forgot = match entry.live.as_mut() {
            Some(Ok(live)) => live.forget_digests(paths),
            _ => false,
        };
        if forgot {
            publish(state, dir);
        }
        return;
    }
    entry.digest_error = None;
    // Re-reading the changed files is hashing: a job, not the loop. The
    // index travels to the job and back.
    let Some(Ok(mut live)) = entry.live.take() else {
        return;
    };
    entry.refreshing = true;
    let generation = entry.live_generation;
    let crate_dir = dir.to_path_buf();
    let paths = paths.to_vec();
    jobs::spawn_blocking(
        &state.events,
        "refresh",
        move || {
            let changed = live.refresh(&paths);
            Ok(Box::new((live, changed)))
        },
        move |refreshed| TaskResult::Refreshed {
            crate_dir,
            generation,
            refreshed,
        },
    );
}

/// The index came back from a refresh job.
fn refreshed(
    state: &mut State,
    dir: &Path,
    generation: u64,
    refreshed: Result<Box<(Live, bool)>, String>,
) {
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    if entry.live_generation != generation || !entry.refreshing {
        return;
    }
    entry.refreshing = false;
    let (live, changed) = match refreshed {
        Ok(refreshed) => *refreshed,
        Err(error) => {
            entry.live = Some(Err(error));
            publish(state, dir);
            return;
        }
    };
    let unknown = live.current_fingerprint.is_none();
    entry.live = Some(Ok(live));
    let manifest_input = entry.manifest.is_some();
    let missed = std::mem::take(&mut entry.changed_while_hashing);
    if changed || manifest_input {
        if unknown {
            refingerprint(state, dir);
        } else if let Some(entry) = state.crates.get_mut(dir) {
            // Known again (e.g. an edit was reverted): a recomputation still
            // running describes a tree that is gone.
            entry.refingerprint_generation = None;
        }
    }
    // Even when nothing changed: what arrived during the refresh (a store
    // listing, settings) could not be told while the index was away.
    publish(state, dir);
    if !missed.is_empty() {
        files_changed(state, dir, &missed);
    }
}

/// Recomputes the whole-tree fingerprint of the current tree in the
/// background (the index knows what changed, not the stream's digest).
fn refingerprint(state: &mut State, dir: &Path) {
    let generation = state.generation();
    let Some(entry) = state.crates.get_mut(dir) else {
        return;
    };
    entry.refingerprint_generation = Some(generation);
    let events = state.events.clone();
    let crate_dir = dir.to_path_buf();
    // Edits come in bursts, and a revert makes the digest known again:
    // hash the tree only once things settle.
    tokio::spawn(async move {
        tokio::time::sleep(REFINGERPRINT_DELAY).await;
        let _ = events.send(Event::Task(TaskResult::RefingerprintDue {
            crate_dir,
            generation,
        }));
    });
}

/// Quiet time after the last change before the whole tree is rehashed.
const REFINGERPRINT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

fn start_refingerprint(state: &mut State, dir: &Path, generation: u64) {
    let Some(entry) = state.crates.get(dir) else {
        return;
    };
    if entry.refingerprint_generation != Some(generation) {
        return;
    }
    let (Some(facts), Some(Ok(settings))) = (entry.facts().cloned(), entry.settings.clone()) else {
        return;
    };
    let crate_dir = dir.to_path_buf();
    jobs::spawn_blocking(
        &state.events,
        "refingerprint",
        move || live::whole_tree(&facts, &settings).map_err(|error| format!("{error:#}")),
        move |fingerprint| TaskResult::Refingerprinted {
            crate_dir,
            generation,
            fingerprint,
        },
    );
}

/// The artifact store changed (or a crate needs its artifact): list it off
/// the loop; one listing at a time, another after it when asked meanwhile.
pub fn store_changed(state: &mut State) {
    if state.store_listing.is_some() {
        state.store_listing_again = true;
        return;
    }
    let Some(store) = state.store.clone() else {
        // No store: every crate has no artifact.
        let dirs: Vec<PathBuf> = state.crates.keys().cloned().collect();
        for dir in dirs {
            if let Some(entry) = state.crates.get_mut(&dir) {
                entry.store_listed(None, None);
            }
            publish(state, &dir);
        }
        return;
    };
    let generation = state.generation();
    state.store_listing = Some(generation);
    state.store_listing_again = false;
    let dirs: Vec<PathBuf> = state.crates.keys().cloned().collect();
    jobs::spawn_blocking(
        &state.events,
        "store",
        move || Ok(list_store(&store, &dirs)),
        move |listing| TaskResult::StoreListed {
            generation,
            listing,
        },
    );
}

/// Each crate's newest artifact, its input manifest and its SBOM's
/// summary. Blocking.
fn list_store(store: &crate::store::Store, dirs: &[PathBuf]) -> Vec<StoreEntry> {
    let artifacts = store.list().artifacts;
    let sources: Vec<PathBuf> = artifacts
        .iter()
        .map(|artifact| {
            let source = PathBuf::from(&artifact.metadata.source_path);
            source.canonicalize().unwrap_or(source)
        })
        .collect();
    dirs.iter()
        .map(|dir| {
            let newest = artifacts
                .iter()
                .zip(&sources)
                .find(|(_, source)| *source == dir)
                .map(|(artifact, _)| artifact.clone());
            let manifest = newest.as_ref().and_then(status::read_manifest);
            let sbom = newest
                .as_ref()
                .and_then(|artifact| crate::sbom::stored::summary(&artifact.dir));
            let platforms = newest
                .as_ref()
                .map(|artifact| crate::image::layout::platform_names(&artifact.layout_dir()))
                .unwrap_or_default();
            (dir.clone(), newest, manifest, sbom, platforms)
        })
        .collect()
}

fn store_listed(state: &mut State, generation: u64, listing: Result<Vec<StoreEntry>, String>) {
    if state.store_listing != Some(generation) {
        return;
    }
    state.store_listing = None;
    super::startup_clock::reached("store listed");
    match listing {
        Ok(listing) => {
            for (dir, artifact, manifest, sbom, platforms) in listing {
                let Some(entry) = state.crates.get_mut(&dir) else {
                    continue;
                };
                entry.sbom = artifact
                    .as_ref()
                    .zip(sbom)
                    .map(|(artifact, sbom)| (artifact.metadata.artifact_id.clone(), sbom));
                entry.platforms = artifact
                    .as_ref()
                    .map(|artifact| (artifact.metadata.artifact_id.clone(), platforms));
                let changed = entry.store_listed(artifact, manifest);
                // Settings that were (or may be: a job still resolving
                // them without this artifact) completed from the artifact.
                let borrows = entry.settings_borrowed.is_some()
                    || matches!(
                        &entry.settings,
                        None | Some(Err(SetupProblem::Unconfigured(_)))
                    );
                if changed && borrows {
                    // Settings completed from the newest artifact follow it
                    // (no status until they are resolved again).
                    if let Some(entry) = state.crates.get_mut(&dir) {
                        entry.settings = None;
                    }
                    resolve_settings(state, &dir, false);
                    continue;
                }
                let Some(entry) = state.crates.get_mut(&dir) else {
                    continue;
                };
                let unknown_current =
                    matches!(&entry.live, Some(Ok(live)) if live.current_fingerprint.is_none());
                if changed && unknown_current && entry.refingerprint_generation.is_none() {
                    refingerprint(state, &dir);
                }
                publish(state, &dir);
            }
        }
        Err(error) => {
            tracing::warn!("{error}");
            state.store_listing_again = true;
        }
    }
    let unlisted = state.crates.values().any(|entry| !entry.artifact_known);
    if state.store_listing_again || unlisted {
        store_changed(state);
    }
}

/// The crate's operation ended: its record may be new.
pub fn operation_ended(state: &mut State, dir: &Path) {
    store_changed(state);
    publish(state, dir);
}

pub fn on_task(state: &mut State, result: TaskResult) {
    match result {
        TaskResult::Indexed {
            crate_dir,
            generation,
            live,
        } => {
            let Some(entry) = state.crates.get_mut(&crate_dir) else {
                return;
            };
            if entry.index_arrived(generation, live) {
                super::startup_clock::reached("indexed");
                // The first index is in: the first watches may start now.
                super::watch_setup::start(state);
                let Some(entry) = state.crates.get_mut(&crate_dir) else {
                    return;
                };
                // Paths changed while hashing are re-read (in a job).
                let missed = std::mem::take(&mut entry.changed_while_hashing);
                if !missed.is_empty() {
                    files_changed(state, &crate_dir, &missed);
                }
                publish(state, &crate_dir);
            }
        }
        TaskResult::Refingerprinted {
            crate_dir,
            generation,
            fingerprint,
        } => {
            let Some(entry) = state.crates.get_mut(&crate_dir) else {
                return;
            };
            if entry.refingerprint_generation != Some(generation) {
                return;
            }
            entry.refingerprint_generation = None;
            match fingerprint {
                Ok(fingerprint) => {
                    if let Some(Ok(live)) = entry.live.as_mut() {
                        live.current_fingerprint = Some(fingerprint);
                    }
                }
                Err(error) => tracing::warn!("fingerprint of {}: {error}", crate_dir.display()),
            }
            publish(state, &crate_dir);
        }
        TaskResult::RefingerprintDue {
            crate_dir,
            generation,
        } => start_refingerprint(state, &crate_dir, generation),
        TaskResult::WatchesReady => super::watch_setup::ready(state),
        TaskResult::WatchDue => super::watch_setup::start(state),
        TaskResult::BuildPrepared {
            crate_dir,
            generation,
        } => {
            let now_building = state
                .crates
                .get_mut(&crate_dir)
                .is_some_and(|entry| entry.activity.prepared(generation));
            if now_building {
                publish(state, &crate_dir);
            }
        }
        TaskResult::Rescan { crate_dir, paths } => files_changed(state, &crate_dir, &paths),
        TaskResult::StoreListed {
            generation,
            listing,
        } => store_listed(state, generation, listing),
        TaskResult::Refreshed {
            crate_dir,
            generation,
            refreshed: result,
        } => refreshed(state, &crate_dir, generation, result),
        TaskResult::Settings {
            crate_dir,
            generation,
            settings,
            borrowed,
        } => settings_resolved(state, &crate_dir, generation, settings, borrowed),
        TaskResult::Digests {
            crate_dir,
            epoch,
            digests,
        } => digests_arrived(state, &crate_dir, epoch, digests),
        TaskResult::Facts { .. }
        | TaskResult::Run(_)
        | TaskResult::Discovered { .. }
        | TaskResult::BuildFinished(_)
        | TaskResult::ConfigChecked { .. }
        | TaskResult::Tick => {}
    }
}
