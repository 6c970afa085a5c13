//! Workspace notifications: folders added or removed, and file events the
//! client watched. Both are decoded here and handed to `server::crate_set`.

use std::path::PathBuf;

use tower_lsp::lsp_types::{DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams};

use crate::server::crate_set::{on_paths, rediscover};
use crate::server::state::State;
use crate::workspace;

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
            if let Some(watcher) = state.watcher.clone()
                && workspace::refused_folder(&path).is_none()
            {
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
