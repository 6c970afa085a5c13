//! `window/workDoneProgress/cancel`: the client cancelled a progress token,
//! so the build or push it belongs to is cancelled (`arca.cancel` and
//! shutdown use [`crate::server::cancel`]; the dispatch of
//! `workspace/executeCommand` is in [`crate::server::dispatch`]).

use tower_lsp::lsp_types::WorkDoneProgressCancelParams;

use crate::server::state::State;

/// The client cancelled a progress token: cancel the build it belongs to.
pub fn progress_cancel(state: &mut State, params: WorkDoneProgressCancelParams) {
    let token = params.token.into();
    for entry in state.crates.values() {
        entry.activity.cancel_progress(&token);
    }
}
