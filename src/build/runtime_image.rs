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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use super::container_build::{ContainerRun, ensure_builder_image, ensure_image};
use super::job::{
    BinaryOutcome, BuildEnv, BuildError, BuildEvent, CRATE_DIR_LABEL, EventSink, PreparedBuild,
    ProgressTask, cancellable,
};
use super::recipes::{INIT_IN_BUILDER, INIT_IN_IMAGE};
use crate::blobs::{BlobStore, Digest};
use crate::engine::tar_context::TarContext;
use crate::engine::{BUILD_LABEL, ContainerEngine, ContainerSpec, OutputLine};
use crate::image::base::{BaseRecord, Bases, CaBundle, CreatedBlobs, take_back};
use crate::image::config::{Derivation, NewLayer};
use crate::image::layer::{Content, FileEntry};
use crate::image::{self, BlobRef, StoredImage, layout};
use crate::plan;
use crate::registry::pull;
use crate::store::{self, ArtifactMetadata, StoredArtifact};
use crate::units::human_size;

const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The smallest step between two progress reports of a byte stream.
const REPORT_BYTES: u64 = 1 << 20;

/// Installs ca-certificates with whatever package manager the base has.
const CA_INSTALL_SCRIPT: &str = "set -eu; \
if command -v apt-get >/dev/null 2>&1; then \
    apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \
elif command -v dnf >/dev/null 2>&1; then dnf install -y ca-certificates; \
elif command -v microdnf >/dev/null 2>&1; then microdnf install -y ca-certificates; \
elif command -v apk >/dev/null 2>&1; then apk add --no-cache ca-certificates; \
else echo 'arca: no package manager to install ca-certificates' >&2; exit 3; fi";

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
    {
        let dir = pending.staging_dir().join(layout::LAYOUT_DIR);
        let blobs = blobs.clone();
        let image = assembled.image.clone();
        let ref_name = metadata.remote_tag.clone();
        blocking(cancel, move || {
            layout::write(&dir, &blobs, &image, &ref_name)
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

/// The base in the store, and whether the engine holds it.
struct Base {
    record: BaseRecord,
    in_engine: bool,
}

/// Finds the base image's id, and imports it into the store unless a
/// complete record of that id exists. Without the base in the engine, a
/// stored base known under the same reference is used as it is (so a base
/// pruned from the engine, or an offline engine, still builds).
async fn ensure_base(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Base, BuildError> {
    let reference = &prepared.settings.base_image;
    let bases = env.bases().clone();
    let blobs = env.blobs().clone();
    let mut facts = cancellable(cancel, engine.inspect_image(reference)).await?;
    if facts.is_none() {
        let known = {
            let bases = bases.clone();
            let blobs = blobs.clone();
            let reference = reference.clone();
            blocking(cancel, move || {
                Ok(bases
                    .find_by_reference(&reference)
                    .filter(|record| record.complete(&blobs).unwrap_or(false)))
            })
            .await?
        };
        if let Some(record) = known {
            events(BuildEvent::StageDone {
                message: format!(
                    "The engine lacks `{reference}`; using the stored base {}.",
                    short(&record.image_id)
                ),
            });
            return Ok(Base {
                record,
                in_engine: false,
            });
        }
        if pull::registry_of(reference).is_some() {
            match fetch_from_registry(env, reference, events, cancel).await {
                Ok(record) => {
                    return Ok(Base {
                        record,
                        in_engine: false,
                    });
                }
                Err(pull::FetchError::Unavailable(reason)) => {
                    events(BuildEvent::Notice {
                        message: format!(
                            "Could not fetch `{reference}` from its registry ({reason}); asking the engine to pull it."
                        ),
                    });
                    if let Err(error) =
                        ensure_image(engine.as_ref(), reference, events, cancel).await
                    {
                        return Err(match error {
                            BuildError::Failed(error) => BuildError::Failed(anyhow!(
                                "Cannot get the base image `{reference}`: Arca's own fetch from its registry failed ({reason}), and so did the engine's pull ({error:#})."
                            )),
                            other => other,
                        });
                    }
                }
                Err(pull::FetchError::Invalid(reason)) => {
                    return Err(BuildError::Failed(anyhow!(
                        "Cannot use the base image `{reference}`: {reason}"
                    )));
                }
                Err(pull::FetchError::Store(error)) => {
                    return Err(BuildError::Failed(error.context(format!(
                        "Failed to store the base image `{reference}` fetched from its registry"
                    ))));
                }
                Err(pull::FetchError::Cancelled) => return Err(BuildError::Cancelled),
            }
        } else {
            ensure_image(engine.as_ref(), reference, events, cancel).await?;
        }
        facts = cancellable(cancel, engine.inspect_image(reference)).await?;
    }
    let facts = facts.ok_or_else(|| anyhow!("The engine lost `{reference}` after pulling it."))?;
    let image_id = Digest::parse(&facts.id).with_context(|| {
        format!(
            "The engine reports an unusable id `{}` for `{reference}`",
            facts.id
        )
    })?;
    let _import_lock = {
        let bases = bases.clone();
        let image_id = image_id.clone();
        blocking(cancel, move || bases.lock_import(&image_id)).await?
    };
    let existing = {
        let bases = bases.clone();
        let blobs = blobs.clone();
        let image_id = image_id.clone();
        blocking(cancel, move || {
            let record = bases.load(&image_id);
            Ok(match record {
                Some(record) if record.complete(&blobs)? => Ok(record),
                Some(record) => Err(Some(record)),
                None => Err(None),
            })
        })
        .await?
    };
    let record = match existing {
        Ok(record) => stored_base_used(&bases, record, reference, events),
        Err(previous) => {
            let repaired = previous.is_some();
            if repaired {
                events(BuildEvent::Notice {
                    message: format!(
                        "Some blobs of the stored base {} are missing or were corrupt; importing it again.",
                        short(&image_id)
                    ),
                });
            }
            let started = std::time::Instant::now();
            let (config, layers, bytes) =
                import_base(&blobs, engine, &image_id, reference, events, cancel).await?;
            let mut references = previous
                .as_ref()
                .map(|record| record.references.clone())
                .unwrap_or_default();
            if !references.contains(reference) {
                references.push(reference.clone());
            }
            let record = BaseRecord {
                image_id: image_id.clone(),
                config,
                layers,
                references,
                imported_at_epoch_ms: store::now_epoch_ms(),
                // The CA bundle layer of a previous record stays valid for
                // the same image id when its blob is still there.
                ca_bundle: previous.and_then(|record| record.ca_bundle).filter(
                    |bundle| match bundle {
                        CaBundle::Layer { layer } => blobs.has(&layer.digest),
                        _ => true,
                    },
                ),
            };
            bases.save(&record)?;
            if repaired {
                // Older artifacts' layouts may still link a corrupt copy.
                let artifacts = env.store().root().to_path_buf();
                let blobs = blobs.clone();
                let digests: Vec<Digest> = record
                    .blobs()
                    .into_iter()
                    .map(|blob| blob.digest.clone())
                    .collect();
                blocking(cancel, move || {
                    layout::relink(&artifacts, &blobs, &digests.iter().collect::<Vec<_>>());
                    Ok(())
                })
                .await?;
            }
            events(BuildEvent::StageDone {
                message: format!(
                    "Base image imported into the store: {} layers, {} in {:.1} s.",
                    record.layers.len(),
                    human_size(bytes),
                    started.elapsed().as_secs_f64()
                ),
            });
            record
        }
    };
    Ok(Base {
        record,
        in_engine: true,
    })
}

/// Fetches the base from its registry into the store (the engine lacks
/// it): manifest and config first, then, unless a complete record of that
/// image id exists, every layer, verified ([`pull`]), with per-layer
/// progress. On failure the blobs it created are taken back.
async fn fetch_from_registry(
    env: &BuildEnv,
    reference: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BaseRecord, pull::FetchError> {
    use pull::FetchError;
    let store_error = |error: BuildError| match error {
        BuildError::Cancelled => FetchError::Cancelled,
        BuildError::Failed(error) => FetchError::Store(error),
        other => FetchError::Store(anyhow!("{other}")),
    };
    let remote = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(FetchError::Cancelled),
        remote = pull::open(reference) => remote?,
    };
    let bases = env.bases().clone();
    let blobs = env.blobs().clone();
    let image_id = remote.config.digest.clone();
    let _import_lock = {
        let bases = bases.clone();
        let image_id = image_id.clone();
        blocking(cancel, move || bases.lock_import(&image_id))
            .await
            .map_err(store_error)?
    };
    let existing = {
        let bases = bases.clone();
        let blobs = blobs.clone();
        let image_id = image_id.clone();
        blocking(cancel, move || {
            Ok(match bases.load(&image_id) {
                Some(record) if record.complete(&blobs).unwrap_or(false) => Ok(record),
                previous => Err(previous),
            })
        })
        .await
        .map_err(store_error)?
    };
    let previous = match existing {
        Ok(record) => return Ok(stored_base_used(&bases, record, reference, events)),
        Err(previous) => previous,
    };
    // A record whose blobs went (pruned, corrupt) keeps its names and its
    // CA-bundle decision when the base is fetched again.
    let mut references = previous
        .as_ref()
        .map(|record| record.references.clone())
        .unwrap_or_default();
    if !references.iter().any(|known| known == reference) {
        references.push(reference.to_owned());
    }
    let ca_bundle = previous
        .and_then(|record| record.ca_bundle)
        .filter(|bundle| match bundle {
            CaBundle::Layer { layer } => blobs.has(&layer.digest),
            _ => true,
        });
    fetch_layers(
        env, remote, image_id, references, ca_bundle, reference, events, cancel,
    )
    .await
}

/// The fetch proper: config and layers into the store, then the record.
#[allow(clippy::too_many_arguments)]
async fn fetch_layers(
    env: &BuildEnv,
    remote: pull::RemoteBase,
    image_id: Digest,
    references: Vec<String>,
    ca_bundle: Option<CaBundle>,
    reference: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BaseRecord, pull::FetchError> {
    use pull::FetchError;
    let bases = env.bases().clone();
    let blobs = env.blobs().clone();
    events(BuildEvent::Notice {
        message: format!(
            "The engine lacks `{reference}`; fetching it from {} into the layer store.",
            remote.name
        ),
    });
    let started = std::time::Instant::now();
    let created = CreatedBlobs::default();
    let note = |written: &crate::blobs::Written| {
        if written.created {
            created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(written.digest.clone());
        }
    };
    let fetched = async {
        let (config, config_bytes) = remote.fetch_config(&blobs).await?;
        note(&config);
        let diff_ids = image::config::diff_ids(&config_bytes).map_err(|error| {
            FetchError::Invalid(format!(
                "The config of {} is unusable: {error:#}",
                remote.name
            ))
        })?;
        if diff_ids.len() != remote.layers.len() {
            return Err(FetchError::Invalid(format!(
                "The manifest of {} names {} layers but its config {}; nothing was stored.",
                remote.name,
                remote.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut bytes = 0;
        for (layer, diff_id) in remote.layers.iter().zip(&diff_ids) {
            let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let task = ProgressTask::Pull {
                image: reference.to_owned(),
                layer: layer.digest.hex()[..12].to_owned(),
            };
            let report = |status: &str, current: u64| {
                events(BuildEvent::Progress {
                    task: task.clone(),
                    status: status.into(),
                    current,
                    total: Some(layer.size),
                })
            };
            report("Downloading", 0);
            let fetching = remote.fetch_layer(&blobs, layer, diff_id, received.clone(), cancel);
            tokio::pin!(fetching);
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
            let mut shown = 0;
            let written = loop {
                tokio::select! {
                    written = &mut fetching => break written?,
                    _ = ticks.tick() => {
                        let now = received.load(std::sync::atomic::Ordering::Relaxed);
                        if now != shown {
                            shown = now;
                            report("Downloading", now);
                        }
                    }
                }
            };
            note(&written);
            report("Download complete", layer.size);
            bytes += written.size;
            layers.push(BlobRef::from(&written));
        }
        let record = BaseRecord {
            image_id: image_id.clone(),
            config: BlobRef::from(&config),
            layers,
            references,
            imported_at_epoch_ms: store::now_epoch_ms(),
            ca_bundle,
        };
        bases.save(&record).map_err(FetchError::Store)?;
        Ok((record, bytes))
    }
    .await;
    match fetched {
        Ok((record, bytes)) => {
            events(BuildEvent::StageDone {
                message: format!(
                    "Base image fetched from {} into the store: {} layers, {} in {:.1} s.",
                    remote.name,
                    record.layers.len(),
                    human_size(bytes),
                    started.elapsed().as_secs_f64()
                ),
            });
            Ok(record)
        }
        Err(error) => {
            take_back(&blobs, &created);
            Err(error)
        }
    }
}

/// A complete base already in the store, used under `reference`: the
/// reference is added to its record (best effort) and the stage says so.
fn stored_base_used(
    bases: &Bases,
    mut record: BaseRecord,
    reference: &str,
    events: EventSink<'_>,
) -> BaseRecord {
    if !record.references.iter().any(|known| known == reference) {
        record.references.push(reference.to_owned());
        let _ = bases.save(&record);
    }
    events(BuildEvent::StageDone {
        message: format!(
            "Base image in the store ({}, {} layers).",
            short(&record.image_id),
            record.layers.len()
        ),
    });
    record
}

/// One engine export of the base, streamed into the store and verified.
async fn import_base(
    blobs: &BlobStore,
    engine: &Arc<dyn ContainerEngine>,
    image_id: &Digest,
    reference: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(BlobRef, Vec<BlobRef>, u64), BuildError> {
    let total = cancellable(cancel, engine.inspect_image(&image_id.to_string()))
        .await?
        .and_then(|facts| facts.size);
    let (reader, mut writer) = tokio::io::duplex(4 << 20);
    let created = CreatedBlobs::default();
    let reading = {
        let blobs = blobs.clone();
        let image_id = image_id.clone();
        let created = created.clone();
        tokio::task::spawn_blocking(move || {
            // Read in large steps: each read through the bridge is a hop
            // into the async runtime.
            let reader = std::io::BufReader::with_capacity(
                1 << 20,
                tokio_util::io::SyncIoBridge::new(reader),
            );
            crate::image::base::import(&blobs, reader, &image_id, &created)
        })
    };
    let progress = throttled(events, total, |current, total| BuildEvent::Progress {
        task: ProgressTask::Import {
            image: reference.to_owned(),
        },
        status: "Importing".into(),
        current,
        total,
    });
    let exporting = async {
        let result = engine
            .export_image_to(&image_id.to_string(), &mut writer, &progress)
            .await;
        drop(writer);
        result
    };
    // On cancellation the export is dropped, which closes the pipe; the
    // reader then ends at once, and only then are its blobs taken back.
    let exported = tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        exported = exporting => Some(exported),
    };
    let read = reading.await;
    let outcome = match (cancel.is_cancelled(), exported, read) {
        (true, _, _) | (_, None, _) => Err(BuildError::Cancelled),
        // The store side failed first (disk full, ...): the export then
        // only saw a closed pipe, so the store's error is the one to show.
        (false, Some(Err(_)), Ok(Err(error))) => Err(BuildError::Failed(error)),
        (false, Some(Err(error)), _) => Err(BuildError::Failed(error)),
        (false, Some(Ok(bytes)), Ok(Ok((config, layers)))) => Ok((config, layers, bytes)),
        (false, Some(Ok(_)), Ok(Err(error))) => Err(BuildError::Failed(error)),
        (false, Some(Ok(_)), Err(error)) => Err(BuildError::Failed(anyhow!(
            "The base import task failed: {error}"
        ))),
    };
    if outcome.is_err() {
        take_back(blobs, &created);
    }
    outcome
}

/// Settles whether images on this base need a CA-bundle layer (once per
/// base: the answer is kept in its record).
async fn ensure_ca_bundle(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    metadata: &ArtifactMetadata,
    mut base: Base,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Base, BuildError> {
    if base.record.ca_bundle.is_some() {
        return Ok(base);
    }
    if !base.in_engine {
        // A base the engine does not hold (fetched from a registry) is read
        // from its stored layers. A bundle found there settles it; a
        // missing one can only be installed in a container of the base, so
        // it waits for a build with the base in the engine.
        let (blobs, layers) = (env.blobs().clone(), base.record.layers.clone());
        let found = blocking(cancel, move || {
            image::lookup::has_path(&blobs, &layers, CA_BUNDLE)
        })
        .await?;
        if found {
            base.record.ca_bundle = Some(CaBundle::InBase);
            env.bases().save(&base.record)?;
        } else {
            events(BuildEvent::Notice {
                message: format!(
                    "warning: the base `{}` has no CA bundle ({CA_BUNDLE}) and the engine does not hold it to install one; TLS clients in this image will lack one until a build with the base in the engine adds it.",
                    prepared.settings.base_image
                ),
            });
        }
        return Ok(base);
    }
    let image = base.record.image_id.to_string();
    let labels = vec![
        (BUILD_LABEL.to_owned(), metadata.artifact_id.clone()),
        (
            CRATE_DIR_LABEL.to_owned(),
            prepared.facts.crate_dir.display().to_string(),
        ),
    ];
    let probe_spec = ContainerSpec {
        image: image.clone(),
        cmd: vec!["/bin/sh".into()],
        labels: labels.clone(),
        ..Default::default()
    };
    let probe = ContainerRun::create(engine.clone(), &probe_spec, cancel).await?;
    let found = cancellable(cancel, engine.path_exists(probe.id(), CA_BUNDLE)).await;
    probe.remove().await;
    let bundle = if found? {
        CaBundle::InBase
    } else {
        events(BuildEvent::Notice {
            message: format!(
                "The base `{}` has no CA bundle; installing ca-certificates (once per base).",
                prepared.settings.base_image
            ),
        });
        let spec = ContainerSpec {
            image,
            cmd: vec!["/bin/sh".into(), "-c".into(), CA_INSTALL_SCRIPT.into()],
            user: Some("0:0".into()),
            labels,
            ..Default::default()
        };
        let run = ContainerRun::create(engine.clone(), &spec, cancel).await?;
        let output = |line: OutputLine| events(BuildEvent::Output { line: line.text });
        let code = run.run(None, &output, cancel).await;
        let bundle = match code {
            Ok(0) => cancellable(cancel, engine.read_file(run.id(), CA_BUNDLE)).await,
            Ok(_) => Ok(None),
            Err(error) => Err(error),
        };
        run.remove().await;
        match bundle? {
            Some(bytes) => {
                let blobs = env.blobs().clone();
                let layer = blocking(cancel, move || {
                    image::layer::write_layer(
                        &blobs,
                        &[FileEntry {
                            path: CA_BUNDLE,
                            content: Content::Bytes(&bytes),
                            mode: 0o644,
                        }],
                        0,
                    )
                })
                .await?;
                CaBundle::Layer {
                    layer: layer.into(),
                }
            }
            None => {
                events(BuildEvent::Notice {
                    message: format!(
                        "warning: could not install ca-certificates on `{}` (no package manager or no network); TLS clients in this image will lack a CA bundle.",
                        prepared.settings.base_image
                    ),
                });
                CaBundle::Unavailable
            }
        }
    };
    base.record.ca_bundle = Some(bundle);
    env.bases().save(&base.record)?;
    Ok(base)
}

/// An assembled image and its config's bytes.
#[derive(Clone)]
struct Assembled {
    image: StoredImage,
    config: Vec<u8>,
    /// How many layers (bottom up) are the base's.
    base_layers: usize,
    /// The new layers' files, for engines that take them by a build.
    ca_layer: bool,
}

fn assemble(
    blobs: &BlobStore,
    base: &BaseRecord,
    binary: &Path,
    init: Option<&[u8]>,
    metadata: &ArtifactMetadata,
    created: &CreatedBlobs,
) -> anyhow::Result<Assembled> {
    let mtime = image::layer::layer_mtime()?;
    let note = |written: &crate::blobs::Written| {
        if written.created {
            created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(written.digest.clone());
        }
    };
    let bin = &metadata.binary_name;
    let target = format!("/usr/local/bin/{bin}");
    // The init (when asked for) shares the binary's layer: a rebuild
    // still sends one layer.
    let mut files = vec![FileEntry {
        path: &target,
        content: Content::File(binary),
        mode: 0o755,
    }];
    if let Some(init) = init {
        files.push(FileEntry {
            path: INIT_IN_IMAGE,
            content: Content::Bytes(init),
            mode: 0o755,
        });
    }
    let binary_layer = image::layer::write_layer(blobs, &files, mtime)?;
    note(&binary_layer);
    let mut new_layers = Vec::new();
    let mut layers = base.layers.clone();
    let ca_layer = matches!(base.ca_bundle, Some(CaBundle::Layer { .. }));
    if let Some(CaBundle::Layer { layer }) = &base.ca_bundle {
        new_layers.push(NewLayer {
            diff_id: layer.digest.clone(),
            created_by: "arca: ca-certificates (/etc/ssl/certs/ca-certificates.crt)".into(),
        });
        layers.push(layer.clone());
    }
    new_layers.push(NewLayer {
        diff_id: binary_layer.digest.clone(),
        created_by: match init {
            Some(_) => format!("arca: COPY {bin} {target}; COPY tini-static {INIT_IN_IMAGE}"),
            None => format!("arca: COPY {bin} {target}"),
        },
    });
    layers.push(BlobRef::from(&binary_layer));
    let base_config = blobs.read(&base.config.digest)?;
    let config = image::config::derive(
        &base_config,
        &Derivation {
            labels: &metadata.image_labels(),
            entrypoint: entrypoint(&target, init.is_some()),
            created: image::rfc3339(metadata.created_at_epoch_ms),
            layers: &new_layers,
        },
    )?;
    let config_blob = blobs.put_bytes(&config)?;
    note(&config_blob);
    let manifest = layout::manifest_bytes(&BlobRef::from(&config_blob), &layers)?;
    let manifest_blob = blobs.put_bytes(&manifest)?;
    note(&manifest_blob);
    Ok(Assembled {
        image: StoredImage {
            manifest: manifest_blob.into(),
            config: config_blob.into(),
            layers,
        },
        config,
        base_layers: base.layers.len(),
        ca_layer,
    })
}

/// Puts the image into the engine; returns what was sent, for the user.
#[allow(clippy::too_many_arguments)]
async fn load(
    blobs: &BlobStore,
    engine: &Arc<dyn ContainerEngine>,
    layers_held: bool,
    binary: &Path,
    init: Option<&[u8]>,
    base: &Base,
    assembled: &Assembled,
    metadata: &ArtifactMetadata,
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<String, BuildError> {
    let base_in_engine = base.in_engine
        && cancellable(
            cancel,
            engine.inspect_image(&base.record.image_id.to_string()),
        )
        .await?
        .is_some();
    let new_layers = &assembled.image.layers[assembled.base_layers..];
    let new_bytes: u64 = new_layers.iter().map(|layer| layer.size).sum();
    if base_in_engine && !engine.accepts_thin_archives() {
        load_by_build(
            blobs, engine, binary, init, base, assembled, metadata, prepared, events, cancel,
        )
        .await?;
        return Ok(format!(
            "Built over the base in the engine (it takes no thin archives): {} new layer(s), {}.",
            new_layers.len(),
            human_size(new_bytes)
        ));
    }
    let base_layers = assembled.base_layers;
    let write_archive = |thin: bool| {
        let blobs = blobs.clone();
        let assembled = assembled.clone();
        let tag = metadata.local_tag.clone();
        blocking(cancel, move || {
            let mut file = tempfile::NamedTempFile::new_in(blobs.root().join("tmp"))
                .context("Failed to create a temporary image archive")?;
            let open = |blob: &BlobRef| blobs.open(&blob.digest);
            let bytes = image::archive::write(
                file.as_file_mut(),
                &assembled.image,
                &assembled.config,
                Some(&tag),
                &|index, _| !thin || index >= base_layers,
                &open,
            )?;
            Ok((file, bytes))
        })
    };
    let mut thin = base_in_engine || layers_held;
    let (file, mut bytes) = write_archive(thin).await?;
    let loaded = cancellable(cancel, engine.load_image(file.path())).await;
    drop(file);
    match loaded {
        Ok(()) => {}
        // The engine held the base's layers through an earlier image of
        // this store, but no longer does (removed meanwhile): send them.
        Err(BuildError::Failed(error)) if thin && !base_in_engine => {
            tracing::debug!("thin load without the base failed ({error:#}); sending all layers");
            thin = false;
            let (file, full) = write_archive(false).await?;
            cancellable(cancel, engine.load_image(file.path())).await?;
            bytes = full;
        }
        Err(error) => return Err(error),
    }
    Ok(if thin {
        format!(
            "Loaded into the engine: {} new layer(s), {} sent; the engine had the base's {} layers.",
            new_layers.len(),
            human_size(bytes),
            base_layers
        )
    } else {
        format!(
            "Loaded the full image into the engine ({} layers, {} sent): it lacked the base `{}`.",
            assembled.image.layers.len(),
            human_size(bytes),
            metadata.base_image
        )
    })
}

/// Whether the engine holds the layers of a base it does not hold as an
/// image (one fetched from a registry): true when an earlier artifact of
/// this store on the same base reference, whose layers begin with the
/// base's, is still in the engine as that very image (its id is the
/// artifact's config digest). Docker then takes a thin archive.
async fn engine_holds_base_layers(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    base: &BaseRecord,
    reference: &str,
    cancel: &CancellationToken,
) -> bool {
    let store = env.store().clone();
    let layers = base.layers.clone();
    let reference = reference.to_owned();
    let candidates = blocking(cancel, move || {
        Ok(store
            .list()
            .artifacts
            .into_iter()
            .filter(|artifact| artifact.metadata.base_image == reference)
            .filter_map(|artifact| {
                let (image, _) = layout::read(&artifact.layout_dir()).ok()?;
                image
                    .layers
                    .starts_with(&layers)
                    .then(|| (artifact.metadata.local_tag.clone(), image.config.digest))
            })
            .take(3)
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    for (tag, config) in candidates {
        if let Ok(Some(facts)) = cancellable(cancel, engine.inspect_image(&tag)).await
            && facts.id == config.to_string()
        {
            return true;
        }
    }
    false
}

/// For engines that refuse thin archives: an image build over the base
/// the engine holds, whose context carries only the new layers' files.
#[allow(clippy::too_many_arguments)]
async fn load_by_build(
    blobs: &BlobStore,
    engine: &Arc<dyn ContainerEngine>,
    binary: &Path,
    init: Option<&[u8]>,
    base: &Base,
    assembled: &Assembled,
    metadata: &ArtifactMetadata,
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let bin = &metadata.binary_name;
    let mut containerfile = format!("FROM {}\n", prepared.settings.base_image);
    let mut context = TarContext::new();
    if assembled.ca_layer
        && let Some(CaBundle::Layer { layer }) = &base.record.ca_bundle
    {
        containerfile.push_str(&format!("COPY ca-certificates.crt {CA_BUNDLE}\n"));
        let bundle = extract_from_layer(blobs, layer, CA_BUNDLE)?;
        context.add_file("ca-certificates.crt", &bundle, 0o644)?;
    }
    containerfile.push_str(&format!("COPY {bin} /usr/local/bin/{bin}\n"));
    if let Some(init) = init {
        containerfile.push_str(&format!("COPY arca-init {INIT_IN_IMAGE}\n"));
        context.add_file("arca-init", init, 0o755)?;
    }
    let labels = metadata
        .image_labels()
        .into_iter()
        .map(|(key, value)| {
            serde_json::to_string(&value)
                .map(|value| format!("{key}={value}"))
                .context("Failed to encode a label")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    containerfile.push_str(&format!("LABEL {}\n", labels.join(" \\\n      ")));
    containerfile.push_str(&format!(
        "ENTRYPOINT {}\n",
        serde_json::to_string(&entrypoint(
            &format!("/usr/local/bin/{bin}"),
            init.is_some()
        ))
        .context("entrypoint")?
    ));
    context.add_file("Containerfile", containerfile.as_bytes(), 0o644)?;
    let binary = tokio::fs::read(binary)
        .await
        .with_context(|| format!("Failed to read the built binary {}", binary.display()))?;
    context.add_file(bin, &binary, 0o755)?;
    let context = context.finish()?;
    let output = |line: OutputLine| events(BuildEvent::Output { line: line.text });
    cancellable(
        cancel,
        engine.build_image(&metadata.local_tag, context, &output),
    )
    .await
}

/// The image's entrypoint: the binary, wrapped in the static init when
/// the image has one.
fn entrypoint(target: &str, init: bool) -> Vec<String> {
    if init {
        vec![INIT_IN_IMAGE.to_owned(), "--".to_owned(), target.to_owned()]
    } else {
        vec![target.to_owned()]
    }
}

/// The static init out of the builder image, whose recipe installed
/// [`plan::INIT_PACKAGE`] for it (a host build prepares the builder just
/// for this). Read from a created, never started, container.
async fn init_binary(
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    metadata: &ArtifactMetadata,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Vec<u8>, BuildError> {
    ensure_image(
        engine.as_ref(),
        &prepared.builder_base_image,
        events,
        cancel,
    )
    .await?;
    ensure_builder_image(engine.as_ref(), prepared, events, cancel).await?;
    let spec = ContainerSpec {
        image: prepared.builder_image_tag.clone(),
        cmd: vec!["/bin/sh".into()],
        labels: vec![
            (BUILD_LABEL.to_owned(), metadata.artifact_id.clone()),
            (
                CRATE_DIR_LABEL.to_owned(),
                prepared.facts.crate_dir.display().to_string(),
            ),
        ],
        ..Default::default()
    };
    let probe = ContainerRun::create(engine.clone(), &spec, cancel).await?;
    let bytes = cancellable(cancel, engine.read_file(probe.id(), INIT_IN_BUILDER)).await;
    probe.remove().await;
    bytes?.ok_or_else(|| {
        BuildError::Failed(anyhow!(
            "`[rust] init = true`: the builder image `{}` has no {INIT_IN_BUILDER} although its recipe installed `{}`. Its base `{}` must be Debian-based (its `tini` package ships `tini-static`); remove `init = true` and use `docker run --init` otherwise.",
            prepared.builder_image_tag,
            plan::INIT_PACKAGE,
            prepared.builder_base_image
        ))
    })
}

/// One file's bytes out of a layer blob.
fn extract_from_layer(blobs: &BlobStore, layer: &BlobRef, path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let wanted = path.trim_start_matches('/');
    let mut archive = tar::Archive::new(blobs.open(&layer.digest)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == wanted {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            return Ok(bytes);
        }
    }
    Err(anyhow!("The layer {} has no {path}", layer.digest))
}

/// Writes the full archive of the image into the staging directory.
async fn write_full_archive(
    blobs: &BlobStore,
    assembled: &Assembled,
    tag: &str,
    staged: &Path,
    shown: &Path,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<u64, BuildError> {
    let total: u64 = assembled.image.layers.iter().map(|layer| layer.size).sum();
    events(BuildEvent::Progress {
        task: ProgressTask::Export {
            archive: shown.to_path_buf(),
        },
        status: "Saving".into(),
        current: 0,
        total: Some(total),
    });
    let bytes = {
        let blobs = blobs.clone();
        let assembled = assembled.clone();
        let tag = tag.to_owned();
        let staged = staged.to_path_buf();
        blocking(cancel, move || {
            let mut file = std::fs::File::create(&staged)
                .with_context(|| format!("Failed to create {}", staged.display()))?;
            let open = |blob: &BlobRef| blobs.open(&blob.digest);
            let bytes = image::archive::write(
                &mut file,
                &assembled.image,
                &assembled.config,
                Some(&tag),
                &|_, _| true,
                &open,
            )?;
            file.sync_all().with_context(|| {
                format!("Failed to write {} (is the disk full?)", staged.display())
            })?;
            Ok(bytes)
        })
        .await?
    };
    events(BuildEvent::Progress {
        task: ProgressTask::Export {
            archive: shown.to_path_buf(),
        },
        status: "Saved".into(),
        current: bytes,
        total: Some(bytes),
    });
    Ok(bytes)
}

/// Runs blocking work off the async threads. A cancellation answers
/// `Cancelled`, but only once the work has ended, so nothing it writes
/// lands after the build cleaned up.
async fn blocking<T: Send + 'static>(
    cancel: &CancellationToken,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, BuildError> {
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let joined = tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| anyhow!("A store task failed: {error}"))?;
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    joined.map_err(BuildError::Failed)
}

/// A progress callback that reports at most ~200 times per stream.
fn throttled<'a>(
    events: EventSink<'a>,
    total: Option<u64>,
    make: impl Fn(u64, Option<u64>) -> BuildEvent + Send + Sync + 'a,
) -> impl Fn(u64) + Send + Sync + 'a {
    let step = total.map_or(REPORT_BYTES, |total| (total / 200).max(REPORT_BYTES));
    let last = std::sync::atomic::AtomicU64::new(0);
    move |current| {
        let previous = last.load(std::sync::atomic::Ordering::Relaxed);
        if current < previous + step {
            return;
        }
        last.store(current, std::sync::atomic::Ordering::Relaxed);
        events(make(current, total.map(|total| total.max(current))));
    }
}

fn short(digest: &Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}
