//! `workspace/executeCommand`: `arca.build`, `arca.package`, `arca.cancel`,
//! `arca.setDefaults` (PROTOCOL.md), and `window/workDoneProgress/cancel`.
//!
//! Every argument list is `[ { ... } ]`; `crate` may be omitted when the
//! workspace has exactly one crate. A command that takes time answers
//! later: the handler returns a future the loop runs in a task.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{ExecuteCommandParams, WorkDoneProgressCancelParams};

use super::invalid_params;
use crate::server::ext::{BuildArgs, CancelArgs, SetDefaultsArgs};
use crate::server::state::State;

pub use crate::server::event::Answer;

pub fn execute(state: &mut State, params: ExecuteCommandParams) -> jsonrpc::Result<Answer> {
    match params.command.as_str() {
        "arca.build" | "arca.package" => {
            let args: BuildArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            let kind = if params.command == "arca.build" {
                super::build::Kind::Build
            } else {
                super::build::Kind::Package
            };
            super::build::start(state, kind, &dir, args)
        }
        "arca.cancel" => {
            let args: CancelArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            cancel_crate(state, &dir);
            Ok(Answer::Now(None))
        }
        "arca.buildLog" => {
            let args: super::run::RunArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            Ok(super::run::build_log(&dir))
        }
        "arca.run" | "arca.stop" => {
            let args: super::run::RunArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            if params.command == "arca.run" {
                super::run::start(state, &dir, args)
            } else {
                Ok(super::run::stop(state, &dir))
            }
        }
        "arca.setDefaults" => {
            let args: SetDefaultsArgs = single_argument(&params.command, params.arguments)?;
            let dir = resolve_crate(state, args.crate_uri.as_deref())?;
            super::set_defaults::set_defaults(state, &dir, args)
        }
        "arca.push" => {
            let args: super::push::PushArgs = single_argument(&params.command, params.arguments)?;
            super::push::start(state, args)
        }
        other => Err(invalid_params(format!(
            "Unknown command `{other}`. Arca's commands are: {}.",
            crate::server::ext::COMMANDS.join(", ")
        ))),
    }
}

/// The one object of `[ { ... } ]`, or an `InvalidParams` saying what is
/// wrong with it.
fn single_argument<T: DeserializeOwned + Default>(
    command: &str,
    arguments: Vec<Value>,
) -> jsonrpc::Result<T> {
    let mut arguments = arguments.into_iter();
    let (Some(first), None) = (arguments.next(), arguments.next()) else {
        return Err(invalid_params(format!(
            "`{command}` takes exactly one argument object, e.g. [{{\"crate\": \"file:///path/to/crate\"}}]."
        )));
    };
    if first.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(first)
        .map_err(|error| invalid_params(format!("Invalid arguments for `{command}`: {error}.")))
}

/// The crate a command names, or the only crate of the workspace.
pub fn resolve_crate(state: &State, uri: Option<&str>) -> jsonrpc::Result<PathBuf> {
    match uri {
        Some(uri) => state
            .crate_by_uri(uri)
            .map(|entry| entry.dir.clone())
            .ok_or_else(|| {
                invalid_params(format!(
                    "No crate at {uri}. Open a folder containing it, or pass the URI of one of: {}.",
                    crate_list(state)
                ))
            }),
        None => match state.crates.keys().collect::<Vec<_>>().as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(invalid_params(
                "The workspace has no binary crate. Open a folder with a Cargo.toml that has a [package] and a binary target.",
            )),
            _ => Err(invalid_params(format!(
                "The workspace has several crates; pass `crate` with one of: {}.",
                crate_list(state)
            ))),
        },
    }
}

fn crate_list(state: &State) -> String {
    let uris: Vec<&str> = state
        .crates
        .values()
        .map(|entry| entry.uri.as_str())
        .collect();
    if uris.is_empty() {
        "(none)".to_owned()
    } else {
        uris.join(", ")
    }
}

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
