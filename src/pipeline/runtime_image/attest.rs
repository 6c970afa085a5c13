//! The image's SBOM and provenance: the SPDX document made from cargo's
//! resolution of the build (before assembly, so the config's
//! `io.khoek.arca.sbom` label names it), and after assembly both stored
//! as artifacts referring to the image manifest.
//!
//! An SBOM that cannot be made (cargo cannot resolve the graph) costs the
//! image its SBOM and label, with one notice saying why; never the build.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::support::blocking;
use crate::blobs::{BlobStore, Digest};
use crate::image::base::{BaseRecord, CreatedBlobs};
use crate::image::referrer::{self, Referrer};
use crate::image::{BlobRef, rfc3339};
use crate::pipeline::job::{BinaryOutcome, BuildError, BuildEvent, EventSink, PreparedBuild};
use crate::sbom::{self, Bill, linked, provenance, spdx};
use crate::store::{ArtifactMetadata, LABEL_PREFIX};

/// The image label naming the SBOM blob.
pub fn sbom_label() -> String {
    format!("{LABEL_PREFIX}.sbom")
}

/// The SPDX document's bytes, or `None` (with a notice) when cargo could
/// not give the graph.
pub(super) async fn make_sbom(
    rust_cache: &Path,
    prepared: &PreparedBuild,
    built: &BinaryOutcome,
    target: &str,
    base: &BaseRecord,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Option<Vec<u8>>, BuildError> {
    let facts = prepared.facts.clone();
    let settings = prepared.settings.clone();
    let inputs = built.sbom_inputs.clone();
    let target = target.to_owned();
    let cache = rust_cache.join("sbom");
    let base = sbom::BaseImage {
        reference: settings.base_image.clone(),
        image_id: base.image_id.to_string(),
    };
    let made = blocking(cancel, move || {
        let mut manifests: Vec<PathBuf> = facts
            .local_package_dirs
            .iter()
            .map(|dir| dir.join("Cargo.toml"))
            .collect();
        manifests.push(facts.workspace_root.join("Cargo.toml"));
        let request = linked::Request {
            manifest_path: &facts.manifest_path,
            workspace_root: &facts.workspace_root,
            target: &target,
            features: &settings.features,
            cargo_home: inputs.cargo_home.as_deref(),
            manifests: &manifests,
        };
        Ok(linked::resolve(&request, Some(&cache)).and_then(|linked| {
            spdx::write(&Bill {
                binary: settings.bin.clone(),
                packages: linked.packages,
                depends_on: linked.depends_on,
                base,
                created_epoch_s: crate::image::layer::layer_mtime()?,
            })
        }))
    })
    .await?;
    match made {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) => {
            events(BuildEvent::Notice {
                message: format!("This image gets no SBOM: {error:#}"),
            });
            Ok(None)
        }
    }
}

/// What the provenance statement needs beyond the record.
pub(super) struct Attestations<'a> {
    pub prepared: &'a PreparedBuild,
    pub built: &'a BinaryOutcome,
    pub metadata: &'a ArtifactMetadata,
    pub base: &'a BaseRecord,
    pub manifest: &'a BlobRef,
    pub sbom: Option<&'a [u8]>,
}

/// Stores the SBOM and the provenance statement as artifacts referring to
/// the image manifest; `created` learns the blobs this build wrote.
pub(super) fn store(
    blobs: &BlobStore,
    attestations: &Attestations<'_>,
    created: &CreatedBlobs,
) -> anyhow::Result<Vec<Referrer>> {
    let Attestations {
        prepared,
        built,
        metadata,
        base,
        manifest,
        sbom,
    } = attestations;
    let when = rfc3339(crate::image::layer::layer_mtime()? * 1000);
    let mut written = Vec::new();
    let mut referrers = Vec::new();
    if let Some(sbom) = sbom {
        referrers.push(referrer::store(
            blobs,
            manifest,
            spdx::MEDIA_TYPE,
            sbom,
            &when,
            &mut written,
        )?);
    }
    let inputs = built.manifest.to_bytes()?;
    let facts = &prepared.facts;
    let manifest_path = pathdiff::diff_paths(&facts.manifest_path, &facts.workspace_root)
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "Cargo.toml".to_owned());
    let builder = match &built.sbom_inputs.builder_image {
        Some((image, image_id)) => provenance::Builder::Container {
            image: image.clone(),
            image_id: image_id.clone(),
        },
        None => provenance::Builder::Host {
            rustc: crate::manifest::current_host_mode()
                .and_then(|mode| mode.lines().next().map(str::to_owned))
                .unwrap_or_default(),
        },
    };
    let sbom_digest = sbom.map(|bytes| Digest::of(bytes).to_string());
    let statement = provenance::write(&provenance::BuildFacts {
        subject_name: &metadata.local_tag,
        manifest_digest: &manifest.digest.to_string(),
        artifact_id: &metadata.artifact_id,
        crate_name: &metadata.crate_name,
        crate_version: &metadata.crate_version,
        bin: &metadata.binary_name,
        profile: &metadata.cargo_profile,
        features: &metadata.cargo_features,
        base_image: &metadata.base_image,
        base_image_id: &base.image_id.to_string(),
        manifest_path: &manifest_path,
        builder,
        source_fingerprint: &metadata.build_fingerprint,
        inputs_digest: &Digest::of(&inputs).to_string(),
        sbom_digest: sbom_digest.as_deref(),
        started_epoch_ms: built.sbom_inputs.started_epoch_ms,
        finished_epoch_ms: crate::store::now_epoch_ms(),
    })
    .context("Failed to write the provenance statement")?;
    referrers.push(referrer::store(
        blobs,
        manifest,
        provenance::MEDIA_TYPE,
        &statement,
        &when,
        &mut written,
    )?);
    let mut created = created
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    created.extend(
        written
            .into_iter()
            .filter(|blob| blob.created)
            .map(|blob| blob.digest),
    );
    Ok(referrers)
}
