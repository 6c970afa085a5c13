//! Document sync (`didOpen`, `didChange`, `didSave`, `didClose`): keeps the
//! open texts and asks `server::config_diagnostics` for a config's
//! diagnostics after each.

use tower_lsp::lsp_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams,
};

use crate::server::config_diagnostics;
use crate::server::crate_status;
use crate::server::state::{Document, State, config_owner};

pub fn did_open(state: &mut State, params: DidOpenTextDocumentParams) {
    let document = params.text_document;
    let Ok(path) = document.uri.to_file_path() else {
        return;
    };
    state.documents.insert(
        path.clone(),
        Document {
            uri: document.uri,
            version: document.version,
            text: document.text.into(),
        },
    );
    if config_owner(&path).is_some() {
        config_diagnostics::check(state, &path, true);
    }
}

pub fn did_change(state: &mut State, params: DidChangeTextDocumentParams) {
    let Ok(path) = params.text_document.uri.to_file_path() else {
        return;
    };
    let Some(document) = state.documents.get_mut(&path) else {
        tracing::warn!("didChange for a document that is not open: {path:?}");
        return;
    };
    // Full sync: the last change holds the whole text.
    if let Some(change) = params.content_changes.into_iter().last() {
        document.text = change.text.into();
    }
    document.version = params.text_document.version;
    if config_owner(&path).is_some() {
        config_diagnostics::check(state, &path, true);
    }
}

pub fn did_save(state: &mut State, params: DidSaveTextDocumentParams) {
    let Ok(path) = params.text_document.uri.to_file_path() else {
        return;
    };
    if let (Some(text), Some(document)) = (params.text, state.documents.get_mut(&path)) {
        document.text = text.into();
    }
    if let Some(dir) = config_owner(&path) {
        config_diagnostics::check(state, &path, true);
        crate_status::settings_changed(state, &dir);
    }
}

pub fn did_close(state: &mut State, params: DidCloseTextDocumentParams) {
    let Ok(path) = params.text_document.uri.to_file_path() else {
        return;
    };
    state.documents.remove(&path);
    if config_owner(&path).is_some() {
        // Back to what is on disk.
        config_diagnostics::check(state, &path, true);
    }
}
