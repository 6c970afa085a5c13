//! Cancelling what runs for crates: one crate's build or push (`arca.cancel`),
//! or every operation and run (shutdown; a crate leaving the workspace
//! stops its own, see `crate_set`).
//! Below the handlers, so each of them can call it.

use std::path::Path;

use crate::server::state::State;

/// Cancels the crate's running build or push, if any (nothing running is
/// fine).
pub fn cancel_crate(state: &mut State, dir: &Path) {
    if let Some(entry) = state.crates.get(dir) {
        entry.activity.cancel();
    }
}

/// Cancels every running build and push, and stops every run (on
/// shutdown).
pub fn cancel_all(state: &mut State) {
    for entry in state.crates.values() {
        entry.activity.stop_all();
    }
}
