//! Cancelling what runs for crates: one crate's build or push (`arca.cancel`,
//! a crate leaving the workspace), or every operation and run (shutdown).
//! Below the handlers, so each of them can call it.

use std::path::Path;

use crate::server::state::State;

/// Cancels the crate's running build, if any (nothing running is fine).
pub fn cancel_crate(state: &mut State, dir: &Path) {
    if let Some(operation) = state.operations.get(dir) {
        operation.cancel.cancel();
    }
}

/// Cancels every running build (on shutdown).
pub fn cancel_all(state: &mut State) {
    for operation in state.operations.values() {
        operation.cancel.cancel();
    }
    stop_all(state);
}

/// Stops every run (on shutdown).
fn stop_all(state: &mut State) {
    for run in state.runs.values() {
        run.stop.cancel();
    }
}
