//! What `workspace/executeCommand` hands the command handlers: the argument
//! objects of `arca.run`/`arca.stop` and `arca.push`, the one-object
//! argument list, and the crate a command names. Below the handlers, so
//! each of them and the dispatch in [`crate::server::dispatch`] can share it.

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower_lsp::jsonrpc;

use crate::server::handlers::invalid_params;
use crate::server::state::State;

/// The argument object of `arca.run` and `arca.stop`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
    /// Program arguments; they replace the config's `[run] args`.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Package even when the crate is fresh.
    #[serde(default)]
    pub force: bool,
    /// Run live: every change that makes the crate stale updates the
    /// running container (PROTOCOL.md additions, docs/protocol-additions.md).
    #[serde(default)]
    pub live: bool,
}

/// The argument object of `arca.sbom` (additive).
#[derive(Debug, Default, Deserialize)]
pub struct SbomArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
    /// `"spdx"` (default, as stored) or `"cyclonedx"`.
    #[serde(default)]
    pub format: Option<String>,
    /// The provenance statement instead of the SBOM.
    #[serde(default)]
    pub provenance: bool,
    /// Of this platform's image (`"linux/arm64"`) of a multi-platform
    /// artifact (default: the engine's platform's).
    #[serde(default)]
    pub platform: Option<String>,
}

/// The argument object of `arca.push`.
#[derive(Debug, Default, Deserialize)]
pub struct PushArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
    /// An artifact id (default: the crate's newest).
    #[serde(default)]
    pub artifact: Option<String>,
    /// `REGISTRY/REPOSITORY[:TAG]` (default: the crate's `push_to`).
    #[serde(default)]
    pub to: Option<String>,
    /// `false`: the image alone, without its SBOM and provenance (default:
    /// the crate's `[push] attestations`, else true). Additive.
    #[serde(default)]
    pub attest: Option<bool>,
}

/// The one object of `[ { ... } ]`, or an `InvalidParams` saying what is
/// wrong with it.
pub fn single_argument<T: DeserializeOwned + Default>(
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
