//! `arca/status`: one crate's status or all of them, as they stand now.
//! Keeping the verdicts current is [`crate::server::crate_status`]'s job.

use std::path::{Path, PathBuf};

use tower_lsp::jsonrpc;

use crate::server::ext::StatusParams;
use crate::server::state::State;
use crate::status::CrateStatus;

/// `arca/status` request: one crate or all, as they stand now.
pub fn request(state: &mut State, params: StatusParams) -> jsonrpc::Result<Vec<CrateStatus>> {
    let dirs: Vec<PathBuf> = match params.crate_uri {
        Some(uri) => {
            let Some(entry) = state.crate_by_uri(&uri) else {
                return Err(super::invalid_params(format!(
                    "No crate at {uri}. Known crates: {}.",
                    known_crates(state)
                )));
            };
            vec![entry.dir.clone()]
        }
        None => state.crates.keys().cloned().collect(),
    };
    Ok(dirs.iter().filter_map(|dir| current(state, dir)).collect())
}

fn known_crates(state: &State) -> String {
    if state.crates.is_empty() {
        return "none".to_owned();
    }
    state
        .crates
        .values()
        .map(|entry| entry.uri.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status to answer with now: the verdict, or while it is being worked
/// out, the last one sent (or a provisional one).
fn current(state: &State, dir: &Path) -> Option<CrateStatus> {
    Some(state.crates.get(dir)?.provisional_status())
}
