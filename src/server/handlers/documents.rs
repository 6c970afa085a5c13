//! Document sync (`didOpen`, `didChange`, `didSave`, `didClose`) and the
//! config diagnostics they trigger.
//!
//! Diagnostics on a `.arca/config.toml` come from the open buffer when the
//! client has it open, else from the file on disk; a file that does not
//! exist gets an empty list.

use std::path::{Path, PathBuf};

use tower_lsp::lsp_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, Url,
};

use crate::config;
use crate::server::convert::{self, LineIndex};
use crate::server::outbox::Outgoing;
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
            text: document.text,
        },
    );
    if config_owner(&path).is_some() {
        publish_config(state, &path);
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
        document.text = change.text;
    }
    document.version = params.text_document.version;
    if config_owner(&path).is_some() {
        publish_config(state, &path);
    }
}

pub fn did_save(state: &mut State, params: DidSaveTextDocumentParams) {
    let Ok(path) = params.text_document.uri.to_file_path() else {
        return;
    };
    if let (Some(text), Some(document)) = (params.text, state.documents.get_mut(&path)) {
        document.text = text;
    }
    if let Some(dir) = config_owner(&path) {
        publish_config(state, &path);
        super::status::settings_changed(state, &dir);
    }
}

pub fn did_close(state: &mut State, params: DidCloseTextDocumentParams) {
    let Ok(path) = params.text_document.uri.to_file_path() else {
        return;
    };
    state.documents.remove(&path);
    if config_owner(&path).is_some() {
        // Back to what is on disk.
        publish_config(state, &path);
    }
}

/// The config text the checker should see: the open buffer, else the file.
/// `None` when there is neither.
pub fn config_text(state: &State, path: &Path) -> Option<(String, Option<i32>)> {
    if let Some(document) = state.documents.get(path) {
        return Some((document.text.clone(), Some(document.version)));
    }
    let bytes = crate::fsread::read(path, crate::fsread::Kind::Config).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), None))
}

/// Checks one config file and publishes its diagnostics.
pub fn publish_config(state: &State, path: &Path) {
    let uri = match state.documents.get(path) {
        Some(document) => document.uri.clone(),
        None => match Url::from_file_path(path) {
            Ok(uri) => uri,
            Err(()) => return,
        },
    };
    // The open buffer is checked in place (a 20 MB document is not copied).
    let on_disk;
    let (text, version) = match state.documents.get(path) {
        Some(document) => (Some(document.text.as_str()), Some(document.version)),
        None => {
            on_disk = crate::fsread::read(path, crate::fsread::Kind::Config)
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            (on_disk.as_deref(), None)
        }
    };
    let diagnostics = match text {
        Some(text) => {
            let facts = state.crate_of_config(path).and_then(|entry| entry.facts());
            let index = LineIndex::new(text);
            config::checker::check(text, facts)
                .iter()
                .map(|finding| convert::diagnostic(&index, finding))
                .collect()
        }
        None => Vec::new(),
    };
    state
        .outbox
        .send(Outgoing::Diagnostics(uri, diagnostics, version));
}

/// Publishes the config diagnostics of the crate at `crate_dir`.
pub fn publish_crate_config(state: &State, crate_dir: &Path) {
    let path: PathBuf = config::config_path(crate_dir);
    publish_config(state, &path);
}
