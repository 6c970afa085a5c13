//! `arca.sbom` (additive to PROTOCOL.md): the SBOM of the crate's newest
//! artifact, as stored (SPDX 2.3 JSON) or converted to CycloneDX 1.5, or
//! its provenance statement, for the editor to open ("Arca: Show SBOM"),
//! of the engine's platform's image or the one `platform` names. Read off
//! the loop.

use std::path::Path;

use futures_util::FutureExt;
use serde_json::json;

use super::failed;
use crate::sbom::stored::{self, Kind};
use crate::sbom::{cyclonedx, spdx};
use crate::server::command_args::SbomArgs;
use crate::server::event::Answer;
use crate::server::state::State;

pub fn show(
    state: &State,
    dir: &Path,
    args: SbomArgs,
) -> Result<Answer, tower_lsp::jsonrpc::Error> {
    let artifact = state
        .crates
        .get(dir)
        .and_then(|entry| entry.artifact.clone())
        .ok_or_else(|| {
            failed(format!(
                "The crate at {} has no image yet, so no SBOM. Build Image makes both.",
                dir.display()
            ))
        })?;
    let format = args.format.unwrap_or_else(|| "spdx".to_owned());
    if !["spdx", "cyclonedx"].contains(&format.as_str()) {
        return Err(super::invalid_params(format!(
            "`format` must be \"spdx\" or \"cyclonedx\", not {:?}.",
            format
        )));
    }
    let platform = crate::platform::Platform::parse_option(args.platform.as_deref(), "platform")
        .map_err(|error| super::invalid_params(format!("{error:#}")))?;
    let kind = if args.provenance {
        Kind::Provenance
    } else {
        Kind::Sbom
    };
    Ok(Answer::Later(
        async move {
            let id = artifact.metadata.artifact_id.clone();
            let read = tokio::task::spawn_blocking(move || {
                let stored = stored::read_for(&artifact.dir, kind, platform)?;
                let Some(stored) = stored else {
                    return Ok(None);
                };
                let packages = match kind {
                    Kind::Sbom => Some(spdx::parse(&stored)?.packages.len()),
                    Kind::Provenance => None,
                };
                let bytes = if kind == Kind::Sbom && format == "cyclonedx" {
                    cyclonedx::from_spdx(&spdx::parse(&stored)?)?
                } else {
                    stored
                };
                Ok::<_, anyhow::Error>(Some((String::from_utf8_lossy(&bytes).into_owned(), packages, format)))
            })
            .await
            .map_err(|error| failed(format!("Reading the SBOM stopped unexpectedly: {error}")))?
            .map_err(|error| failed(format!("{error:#}")))?;
            let Some((document, packages, format)) = read else {
                return Err(failed(format!(
                    "Image {id} has no {}: it was built before Arca recorded them, or cargo could not resolve its graph (see its build log). Build Image again to make one.",
                    if kind == Kind::Provenance { "provenance statement" } else { "SBOM" }
                )));
            };
            Ok(Some(json!({
                "artifact": id,
                "format": if kind == Kind::Provenance { "in-toto" } else { format.as_str() },
                "packages": packages,
                "document": document,
            })))
        }
        .boxed(),
    ))
}
