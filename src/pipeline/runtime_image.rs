//! The runtime image and the artifact, over the blob store: make sure the
//! base is in the store (one engine export per base image id, verified by
//! digest; or, when the engine lacks it and its reference names a
//! registry, fetched from there by [`pull`], the engine's own pull being
//! the fallback), assemble the image (binary layer, with the builder's static
//! init beside the binary when `init = true`; CA-bundle layer when the base
//! lacks one; derived config, manifest), load it into the engine at the
//! cost of what the engine lacks, then commit the record with its OCI
//! layout (and, when asked, a standalone `image.tar`).
//!
//! Loading: an engine that holds the base and takes thin archives (Docker)
//! gets only the new layers; one that holds the base but refuses thin
//! archives (Podman) gets an image build over the base whose context holds
//! only the new layers' files; one that lacks the base (pruned, another or
//! a remote engine without it) gets the full archive.
//!
//! Invariants: the store lock is held shared from the first blob write to
//! the commit, so `arca prune` never collects a blob this build is about
//! to reference; on failure or cancellation the image tag is removed, the
//! staging directory deleted and the blobs this build created (config,
//! manifest, binary layer) taken back, unless something links them by now.
//!
//! The stages, in the order a build runs them: [`base_source`], [`ca_layer`],
//! [`assemble`], [`load`]; this file reads top to bottom as that sequence.

mod assemble;
mod attest;
mod base_source;
mod ca_layer;
mod load;
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

use super::job::{
    BinaryOutcome, BuildEnv, BuildError, BuildEvent, EventSink, PreparedBuild, cancellable,
};
use crate::engine::ContainerEngine;
use crate::image::base::{CreatedBlobs, take_back};
use crate::image::layout;
use crate::plan;
use crate::store::{self, ArtifactMetadata, StoredArtifact};
use crate::units::human_size;

use assemble::{assemble, init_binary};
use base_source::{Base, ensure_base, ensure_platform_base};
use ca_layer::ensure_ca_bundle;
use load::{engine_holds_base_layers, load, write_full_archive};
use support::{blocking, short};

/// What packaging made.
pub(super) struct Packaged {
    pub artifact: StoredArtifact,
    /// The standalone archive and its size, when one was written.
    pub archive: Option<(PathBuf, u64)>,
    /// The engine's id of the loaded image.
    pub image_id: String,
}

/// Builds the runtime image around the built binary and stores the
/// artifact.
#[allow(clippy::too_many_arguments)]
pub(super) async fn package(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    artifact_id: &str,
    built: &BinaryOutcome,
    write_archive: bool,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Packaged, BuildError> {
    let metadata = record_for(engine.as_ref(), prepared, artifact_id, built);
    let blobs = env.blobs().clone();
    let created = CreatedBlobs::default();
    let result = package_inner(
        env,
        engine,
        prepared,
        &metadata,
        built,
        write_archive,
        &created,
        events,
        cancel,
    )
    .await;
    if result.is_err() {
        let _ = engine.remove_image(&metadata.local_tag).await;
        take_back(&blobs, &created);
    }
    result
}

/// Makes sure every other platform's base is in the store before anything
/// compiles, so a base without a wanted platform fails the build at once
/// (packaging then finds each stored).
pub(super) async fn prefetch_platform_bases(
    env: &BuildEnv,
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    if prepared.extras.shape.cross.is_empty() {
        return Ok(());
    }
    let lock = {
        let blobs = env.blobs().clone();
        blocking(cancel, move || blobs.lock_shared()).await?
    };
    for &platform in &prepared.extras.shape.cross {
        events(BuildEvent::Stage {
            title: format!("Preparing the {platform} base image"),
            detail: format!("{} for {platform}", prepared.settings.base_image),
        });
        ensure_platform_base(env, &prepared.settings.base_image, platform, events, cancel).await?;
    }
    drop(lock);
    Ok(())
}

fn record_for(
    engine: &dyn ContainerEngine,
    prepared: &PreparedBuild,
    artifact_id: &str,
    built: &BinaryOutcome,
) -> ArtifactMetadata {
    let facts = &prepared.facts;
    let settings = &prepared.settings;
    let remote_tag = format!(
        "{}-{artifact_id}",
        plan::sanitize_tag_component(&facts.name)
    );
    ArtifactMetadata {
        schema_version: store::CURRENT_SCHEMA_VERSION,
        artifact_id: artifact_id.to_owned(),
        local_tag: format!("{}:{remote_tag}", plan::LOCAL_IMAGE_PREFIX),
        remote_tag,
        build_fingerprint: built.manifest.digest(),
        kind: "rust".into(),
        created_at_epoch_ms: store::now_epoch_ms(),
        crate_name: facts.name.clone(),
        crate_version: facts.version.clone(),
        binary_name: settings.bin.clone(),
        source_path: facts.crate_dir.display().to_string(),
        manifest_path: facts.manifest_path.display().to_string(),
        cargo_profile: settings.profile.clone(),
        cargo_features: settings.features.clone(),
        base_image: settings.base_image.clone(),
        runtime: engine.runtime_name().into(),
        archive_file: store::ARCHIVE_FILE.into(),
        uploaded_ref: None,
        uploaded_at_epoch_ms: None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn package_inner(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    metadata: &ArtifactMetadata,
    built: &BinaryOutcome,
    write_archive: bool,
    created: &CreatedBlobs,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Packaged, BuildError> {
    let blobs = env.blobs().clone();
    let base_image = &prepared.settings.base_image;
    events(BuildEvent::Stage {
        title: "Preparing runtime base image".into(),
        detail: base_image.clone(),
    });
    let lock = {
        let blobs = blobs.clone();
        blocking(cancel, move || blobs.lock_shared()).await?
    };
    let base = ensure_base(env, engine, prepared, events, cancel).await?;
    let base = ensure_ca_bundle(env, engine, prepared, metadata, base, events, cancel).await?;
    let init = if prepared.extras.init {
        Some(Arc::new(
            init_binary(engine, prepared, metadata, events, cancel).await?,
        ))
    } else {
        None
    };

    let sbom = record_sbom(
        env,
        prepared,
        built,
        &built.sbom_inputs.target,
        &base.record,
        "Recording the SBOM".into(),
        events,
        cancel,
    )
    .await?;
    let sbom_label = sbom_label(&sbom);

    events(BuildEvent::Stage {
        title: "Assembling runtime image".into(),
        detail: format!("tag {}", metadata.local_tag),
    });
    let assembled = {
        let blobs = blobs.clone();
        let base = base.record.clone();
        let binary = built.binary.clone();
        let metadata = metadata.clone();
        let created = created.clone();
        let init = init.clone();
        blocking(cancel, move || {
            assemble(
                &blobs,
                &base,
                &binary,
                init.as_deref().map(Vec::as_slice),
                &metadata,
                &sbom_label,
                &created,
            )
        })
        .await?
    };
    let binary_layer = assembled.image.layers.last().cloned();
    events(BuildEvent::StageDone {
        message: format!(
            "Runtime image assembled: binary layer {} ({}).",
            human_size(binary_layer.as_ref().map_or(0, |layer| layer.size)),
            binary_layer
                .as_ref()
                .map(|layer| short(&layer.digest))
                .unwrap_or_default()
        ),
    });

    events(BuildEvent::Stage {
        title: "Loading image into the engine".into(),
        detail: format!("tag {}", metadata.local_tag),
    });
    let layers_held = !base.in_engine
        && engine.accepts_thin_archives()
        && engine_holds_base_layers(env, engine, &base.record, base_image, cancel).await;
    let message = load(
        &blobs,
        engine,
        layers_held,
        &built.binary,
        init.as_deref().map(Vec::as_slice),
        &base,
        &assembled,
        metadata,
        prepared,
        events,
        cancel,
    )
    .await?;
    events(BuildEvent::StageDone { message });
    let image_id = cancellable(cancel, engine.inspect_image(&metadata.local_tag))
        .await?
        .map(|facts| facts.id)
        .ok_or_else(|| {
            anyhow!(
                "The engine did not keep `{}` after loading it.",
                metadata.local_tag
            )
        })?;

    let others = assemble_other_platforms(
        env,
        engine,
        prepared,
        metadata,
        built,
        &assembled.image,
        created,
        events,
        cancel,
    )
    .await?;

    let pending = env.store().create(&metadata.artifact_id)?;
    let archive = if write_archive {
        let final_archive = env
            .store()
            .root()
            .join(&metadata.artifact_id)
            .join(store::ARCHIVE_FILE);
        events(BuildEvent::Stage {
            title: "Saving artifact archive".into(),
            detail: final_archive.display().to_string(),
        });
        let staged = pending.staging_dir().join(store::ARCHIVE_FILE);
        let bytes = write_full_archive(
            &blobs,
            &assembled,
            &metadata.local_tag,
            &staged,
            &final_archive,
            events,
            cancel,
        )
        .await?;
        events(BuildEvent::StageDone {
            message: format!("Image archive saved ({}).", human_size(bytes)),
        });
        Some((final_archive, bytes))
    } else {
        None
    };
    let (platform_index, others) = match others {
        Some((index, others)) => (Some(index), others),
        None => (None, Vec::new()),
    };
    let engines = PlatformImage {
        base: base.record.clone(),
        manifest: assembled.image.manifest.clone(),
        sbom,
    };
    let referrers = {
        let blobs = blobs.clone();
        let (prepared, built, metadata) = (prepared.clone(), built.clone(), metadata.clone());
        let created = created.clone();
        blocking(cancel, move || {
            let mut referrers = Vec::new();
            for image in std::iter::once(&engines).chain(&others) {
                referrers.extend(attest::store(
                    &blobs,
                    &attest::Attestations {
                        prepared: &prepared,
                        built: &built,
                        metadata: &metadata,
                        base: &image.base,
                        manifest: &image.manifest,
                        sbom: image.sbom.as_deref(),
                    },
                    &created,
                )?);
            }
            Ok(referrers)
        })
        .await?
    };
    {
        let dir = pending.staging_dir().join(layout::LAYOUT_DIR);
        let blobs = blobs.clone();
        let image = assembled.image.clone();
        let ref_name = metadata.remote_tag.clone();
        blocking(cancel, move || match &platform_index {
            Some(index) => layout::write_index(&dir, &blobs, index, &ref_name, &referrers),
            None => layout::write(&dir, &blobs, &image, &ref_name, &referrers),
        })
        .await?;
    }
    built.manifest.write_to(pending.staging_dir())?;
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let artifact = pending.commit(metadata)?;
    drop(lock);
    Ok(Packaged {
        artifact,
        archive,
        image_id,
    })
}

/// One platform's image, with what its SBOM and provenance are made of.
struct PlatformImage {
    base: crate::image::base::BaseRecord,
    manifest: crate::image::BlobRef,
    sbom: Option<Vec<u8>>,
}

/// Makes the SBOM of the packages cargo links for `target` over `base`
/// (`None`, with a notice, when cargo cannot resolve the graph), as the
/// stage `title`.
#[allow(clippy::too_many_arguments)]
async fn record_sbom(
    env: &BuildEnv,
    prepared: &PreparedBuild,
    built: &BinaryOutcome,
    target: &str,
    base: &crate::image::base::BaseRecord,
    title: String,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Option<Vec<u8>>, BuildError> {
    events(BuildEvent::Stage {
        title,
        detail: format!("the packages cargo links for {target}"),
    });
    let sbom = attest::make_sbom(
        env.rust_cache(),
        prepared,
        built,
        target,
        base,
        events,
        cancel,
    )
    .await?;
    if let Some(bytes) = &sbom {
        let packages = crate::sbom::spdx::parse(bytes)
            .map(|document| document.packages.len())
            .unwrap_or(0);
        events(BuildEvent::StageDone {
            message: format!(
                "SBOM of {packages} packages ({}, {}).",
                short(&crate::blobs::Digest::of(bytes)),
                human_size(bytes.len() as u64)
            ),
        });
    }
    Ok(sbom)
}

/// The config label naming the SBOM blob (none without an SBOM).
fn sbom_label(sbom: &Option<Vec<u8>>) -> Vec<(String, String)> {
    sbom.iter()
        .map(|bytes| {
            (
                attest::sbom_label(),
                crate::blobs::Digest::of(bytes).to_string(),
            )
        })
        .collect()
}

/// The images for the platforms beyond the engine's (`built.cross`): each
/// over that platform's base ([`ensure_platform_base`]), with its binary
/// and the SBOM of what cargo links for that platform; none is loaded into
/// the engine. Returns their index with the engine's image first and each
/// one's attestation inputs, or `None` for a single-platform build.
#[allow(clippy::too_many_arguments)]
async fn assemble_other_platforms(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    metadata: &ArtifactMetadata,
    built: &BinaryOutcome,
    engine_image: &crate::image::StoredImage,
    created: &CreatedBlobs,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Option<(layout::PlatformIndex, Vec<PlatformImage>)>, BuildError> {
    if built.cross.is_empty() {
        return Ok(None);
    }
    let mut others = Vec::new();
    let blobs = env.blobs().clone();
    let base_image = &prepared.settings.base_image;
    let mut images = vec![(prepared.extras.native, engine_image.clone())];
    for cross in &built.cross {
        let platform = cross.platform;
        events(BuildEvent::Stage {
            title: format!("Assembling the {platform} image"),
            detail: format!("{base_image} for {platform}"),
        });
        let record = ensure_platform_base(env, base_image, platform, events, cancel).await?;
        let base = Base {
            record,
            in_engine: false,
        };
        let base = ensure_ca_bundle(env, engine, prepared, metadata, base, events, cancel).await?;
        let sbom = record_sbom(
            env,
            prepared,
            built,
            platform.rust_target(),
            &base.record,
            format!("Recording the SBOM of the {platform} image"),
            events,
            cancel,
        )
        .await?;
        let label = sbom_label(&sbom);
        let assembled = {
            let blobs = blobs.clone();
            let base = base.record.clone();
            let binary = cross.binary.clone();
            let metadata = metadata.clone();
            let created = created.clone();
            blocking(cancel, move || {
                assemble(&blobs, &base, &binary, None, &metadata, &label, &created)
            })
            .await?
        };
        others.push(PlatformImage {
            base: base.record.clone(),
            manifest: assembled.image.manifest.clone(),
            sbom,
        });
        let binary_layer = assembled.image.layers.last().cloned();
        events(BuildEvent::StageDone {
            message: format!(
                "The {platform} image assembled: binary layer {} ({}).",
                human_size(binary_layer.as_ref().map_or(0, |layer| layer.size)),
                binary_layer
                    .as_ref()
                    .map(|layer| short(&layer.digest))
                    .unwrap_or_default()
            ),
        });
        images.push((platform, assembled.image));
    }
    let index = {
        let blobs = blobs.clone();
        let images = images.clone();
        let created = created.clone();
        blocking(cancel, move || {
            let written = blobs.put_bytes(&layout::index_bytes(&images)?)?;
            if written.created {
                created
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(written.digest.clone());
            }
            Ok(crate::image::BlobRef::from(&written))
        })
        .await?
    };
    Ok(Some((layout::PlatformIndex { index, images }, others)))
}
