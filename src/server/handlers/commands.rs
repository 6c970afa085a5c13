//! `arca.cancel` and `window/workDoneProgress/cancel`: cancelling a crate's
//! build or push, one or all (the dispatch of `workspace/executeCommand` is
//! in [`crate::server::dispatch`]).

use std::path::Path;

use tower_lsp::lsp_types::WorkDoneProgressCancelParams;

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
    super::run::stop_all(state);
}

/// The client cancelled a progress token: cancel the build it belongs to.
pub fn progress_cancel(state: &mut State, params: WorkDoneProgressCancelParams) {
    for operation in state.operations.values() {
        if operation.progress.as_ref() == Some(&params.token) {
            operation.cancel.cancel();
        }
    }
}
