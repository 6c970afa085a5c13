//! Whether the crate's newest artifact can be reused instead of building,
//! and the manifest that makes a new artifact judgeable later.
//!
//! An artifact Arca built carries an input manifest (`inputs.json`, see
//! [`crate::manifest`]); its `build_fingerprint` is the manifest's digest,
//! and it is fresh when the same manifest over today's files, settings and
//! build mode digests the same. An artifact without a manifest (made by
//! the original CLI) is judged by the original's whole-tree fingerprint.
//! Both rules are the ones `arca status` applies.

use anyhow::{Result, anyhow};

use super::job::PreparedBuild;
use crate::fingerprint::stream::{host_mode_key, whole_tree_fingerprint};
use crate::manifest::{self, ManifestSettings};
use crate::store::{Store, StoredArtifact};

/// The manifest's build mode for a request: `container:<builder key>` or
/// `host:<rustc -Vv>`, then what the extras (toolchain, packages, build
/// env, init) add; nothing when they are the defaults, so artifacts built
/// before these settings existed keep their mode.
pub fn build_mode(
    base_image: &str,
    host_build: bool,
    extras: &crate::plan::BuildExtras,
) -> Result<String> {
    let base = if host_build {
        manifest::current_host_mode().ok_or_else(|| {
            anyhow!("Failed to run `rustc -Vv` for a host build: is Rust installed and on PATH?")
        })?
    } else {
        manifest::container_mode(base_image)
    };
    Ok(format!("{base}{}", extras.mode_suffix()))
}

/// The newest artifact of the crate when it is fresh for this request and
/// its image (layout or archive) is still there.
pub fn fresh_artifact(store: &Store, prepared: &PreparedBuild) -> Option<StoredArtifact> {
    let newest = store.newest_for_crate(&prepared.facts.crate_dir)?;
    if !newest.has_image() {
        return None;
    }
    let live = match crate::status::read_manifest(&newest) {
        Some(recorded) => {
            let today = ManifestSettings::new(&prepared.settings, prepared.mode.clone());
            recorded
                .relive(
                    &today,
                    |name| std::env::var(name).ok(),
                    manifest::file_digest,
                )
                .ok()?
                .digest
        }
        None => {
            let mut settings =
                crate::plan::container_fingerprint_settings(&prepared.facts, &prepared.settings);
            if prepared.host_build {
                settings.mode = host_mode_key().ok()?;
            }
            let roots =
                crate::fingerprint::input_roots(&prepared.facts, dirs::home_dir().as_deref());
            whole_tree_fingerprint(&settings, &roots).ok()?
        }
    };
    (live == newest.metadata.build_fingerprint).then_some(newest)
}
