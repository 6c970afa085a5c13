//! Diagnostics on a crate's `.arca/config.toml`: they come from the open
//! buffer when the client has it open, else from the file on disk; a file
//! that does not exist gets an empty list. The check is a job, one per file
//! at a time (see [`check`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tower_lsp::lsp_types::{Diagnostic, MessageType, Url};

use crate::config;
use crate::server::convert::{self, LineIndex};
use crate::server::event::TaskResult;
use crate::server::jobs;
use crate::server::outbox::Outgoing;
use crate::server::state::State;

/// Checks one config file after a change on disk or in the crate's facts
/// and publishes its diagnostics when they differ from the last ones.
pub fn publish_config(state: &mut State, path: &Path) {
    check(state, path, false);
}

/// Checks one config file and publishes its diagnostics (always, when a
/// client message asked: didOpen, didChange, didSave, didClose). The check (and
/// the read of a file not open) is a job; one runs per file at a time, and
/// a request made meanwhile checks the newest text once it ends, so
/// diagnostics arrive in order and the last ones describe the last text.
pub fn check(state: &mut State, path: &Path, asked: bool) {
    let slot = state.config_checks.entry(path.to_path_buf()).or_default();
    if slot.running {
        slot.again = true;
        slot.asked_again |= asked;
        return;
    }
    slot.running = true;
    slot.asked = asked;
    slot.again = false;
    slot.asked_again = false;
    let uri = match state.documents.get(path) {
        Some(document) => document.uri.clone(),
        None => match Url::from_file_path(path) {
            Ok(uri) => uri,
            Err(()) => {
                state.config_checks.remove(path);
                return;
            }
        },
    };
    // The open buffer is shared with the job, never copied.
    let buffer: Option<(Arc<str>, i32)> = state
        .documents
        .get(path)
        .map(|document| (document.text.clone(), document.version));
    let facts = state
        .crate_of_config(path)
        .and_then(|entry| entry.facts())
        .cloned();
    let file = path.to_path_buf();
    let job_file = file.clone();
    jobs::spawn_blocking(
        &state.events,
        "check",
        move || {
            let (text, version): (Arc<str>, Option<i32>) = match buffer {
                Some((text, version)) => (text, Some(version)),
                None => match crate::fsread::read(&job_file, crate::fsread::Kind::Config) {
                    Ok(bytes) => (String::from_utf8_lossy(&bytes).into(), None),
                    Err(_) => return Ok((Vec::new(), None)),
                },
            };
            let index = LineIndex::new(&text);
            let diagnostics = config::checker::check(&text, facts.as_ref())
                .iter()
                .map(|finding| convert::diagnostic(&index, finding))
                .collect();
            Ok((diagnostics, version))
        },
        move |checked| TaskResult::ConfigChecked {
            path: file,
            uri,
            checked,
        },
    );
}

/// A config check ended: publish it, and check again if asked meanwhile.
pub fn config_checked(
    state: &mut State,
    path: &Path,
    uri: Url,
    checked: Result<(Vec<Diagnostic>, Option<i32>), String>,
) {
    let slot = state.config_checks.remove(path).unwrap_or_default();
    // Gone meanwhile (its crate deleted): nothing to say about it.
    let gone = !state.documents.contains_key(path) && !path.exists();
    let checked = checked.map(|(diagnostics, version)| {
        if gone {
            (Vec::new(), None)
        } else {
            (diagnostics, version)
        }
    });
    match checked {
        Ok(published) => {
            // A re-check nobody asked for that finds the same says nothing.
            let same = state.config_diagnostics.get(path) == Some(&published);
            if slot.asked || !same {
                state
                    .outbox
                    .send(Outgoing::Diagnostics(uri, published.0.clone(), published.1));
                state
                    .config_diagnostics
                    .insert(path.to_path_buf(), published);
            }
        }
        Err(error) => state.outbox.log(MessageType::ERROR, error),
    }
    let again = slot.again;
    if again {
        check(state, path, slot.asked_again);
    } else {
        // The next large document may come (see `framing`).
        crate::server::framing::large_message_handled();
    }
}

/// Publishes the config diagnostics of the crate at `crate_dir`.
pub fn publish_crate_config(state: &mut State, crate_dir: &Path) {
    let path: PathBuf = config::config_path(crate_dir);
    publish_config(state, &path);
}
