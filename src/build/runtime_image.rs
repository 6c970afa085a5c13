//! The runtime image and the artifact: build `arca-local:<crate>-<id>` from
//! an in-memory tar context, stream its archive into the store's staging
//! directory, commit the record. On failure or cancellation the image is
//! removed and the staging directory deleted: no record, no half archive.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::container_build::{ContainerRun, ensure_image};
use super::{
    BinaryOutcome, BuildError, BuildEvent, CRATE_DIR_LABEL, EventSink, PreparedBuild, ProgressTask,
    cancellable, recipes,
};
use crate::engine::tar_context::TarContext;
use crate::engine::{BUILD_LABEL, ContainerEngine, ContainerSpec, OutputLine};
use crate::manifest::Manifest;
use crate::plan;
use crate::store::{self, ArtifactMetadata, Store, StoredArtifact};

const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The smallest step between two export progress reports.
const EXPORT_REPORT_BYTES: u64 = 1 << 20;

/// Builds the runtime image around the built binary and stores the artifact.
/// Returns it with the archive's size.
pub(super) async fn package(
    engine: &Arc<dyn ContainerEngine>,
    store: &Store,
    prepared: &PreparedBuild,
    artifact_id: &str,
    built: &BinaryOutcome,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(StoredArtifact, u64), BuildError> {
    let binary = built.binary.as_path();
    let manifest = &built.manifest;
    let facts = &prepared.facts;
    let settings = &prepared.settings;
    let remote_tag = format!(
        "{}-{artifact_id}",
        plan::sanitize_tag_component(&facts.name)
    );
    let local_tag = format!("{}:{remote_tag}", plan::LOCAL_IMAGE_PREFIX);
    let metadata = ArtifactMetadata {
        schema_version: store::CURRENT_SCHEMA_VERSION,
        artifact_id: artifact_id.to_owned(),
        remote_tag,
        build_fingerprint: manifest.digest(),
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
        local_tag: local_tag.clone(),
        archive_file: store::ARCHIVE_FILE.into(),
        uploaded_ref: None,
        uploaded_at_epoch_ms: None,
    };

    events(BuildEvent::Stage {
        title: "Building runtime container image".into(),
        detail: format!("tag {local_tag}"),
    });
    ensure_image(engine.as_ref(), &settings.base_image, events, cancel).await?;
    let needs_certificates = !base_has_ca_bundle(engine, prepared, artifact_id, cancel).await?;
    let containerfile = recipes::runtime_containerfile(&metadata, needs_certificates)?;
    let binary_bytes = tokio::fs::read(binary)
        .await
        .with_context(|| format!("Failed to read the built binary {}", binary.display()))?;
    let mut context = TarContext::new();
    context.add_file("Containerfile", containerfile.as_bytes(), 0o644)?;
    context.add_file(&settings.bin, &binary_bytes, 0o755)?;
    drop(binary_bytes);
    let context = context.finish()?;
    // The builder's step-by-step output is noise on success; it is shown
    // when the image fails to build.
    let builder_output = std::sync::Mutex::new(Vec::<String>::new());
    let output = |line: OutputLine| {
        builder_output
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(line.text)
    };
    if let Err(error) = cancellable(cancel, engine.build_image(&local_tag, context, &output)).await
    {
        let _ = engine.remove_image(&local_tag).await;
        if !matches!(error, BuildError::Cancelled) {
            for line in builder_output
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
            {
                events(BuildEvent::Output { line });
            }
        }
        return Err(error);
    }
    events(BuildEvent::StageDone {
        message: "Runtime container image built.".into(),
    });

    let stored = save_artifact(
        engine.as_ref(),
        store,
        &metadata,
        &containerfile,
        manifest,
        events,
        cancel,
    )
    .await;
    if stored.is_err() {
        let _ = engine.remove_image(&local_tag).await;
    }
    stored
}

async fn save_artifact(
    engine: &dyn ContainerEngine,
    store: &Store,
    metadata: &ArtifactMetadata,
    containerfile: &str,
    manifest: &Manifest,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(StoredArtifact, u64), BuildError> {
    let final_archive = store
        .root()
        .join(&metadata.artifact_id)
        .join(store::ARCHIVE_FILE);
    events(BuildEvent::Stage {
        title: "Saving artifact archive".into(),
        detail: final_archive.display().to_string(),
    });
    let pending = store.create(&metadata.artifact_id)?;
    let staged_archive = pending.staging_dir().join(store::ARCHIVE_FILE);
    let total = cancellable(cancel, engine.inspect_image(&metadata.local_tag))
        .await?
        .and_then(|image| image.size);
    // At most ~200 reports per archive (and one per MiB at least apart),
    // so an editor's progress notifications are not flooded.
    let step = total.map_or(EXPORT_REPORT_BYTES, |total| {
        (total / 200).max(EXPORT_REPORT_BYTES)
    });
    let last_report = std::sync::atomic::AtomicU64::new(0);
    let progress = |written: u64| {
        let last = last_report.load(std::sync::atomic::Ordering::Relaxed);
        if written < last + step {
            return;
        }
        last_report.store(written, std::sync::atomic::Ordering::Relaxed);
        events(BuildEvent::Progress {
            task: ProgressTask::Export {
                archive: final_archive.clone(),
            },
            status: "Saving".into(),
            current: written,
            total: total.map(|total| total.max(written)),
        })
    };
    let bytes = cancellable(
        cancel,
        engine.export_image(&metadata.local_tag, &staged_archive, &progress),
    )
    .await?;
    events(BuildEvent::Progress {
        task: ProgressTask::Export {
            archive: final_archive.clone(),
        },
        status: "Saved".into(),
        current: bytes,
        total: Some(bytes),
    });
    let containerfile_path = pending.staging_dir().join("Containerfile");
    std::fs::write(&containerfile_path, containerfile)
        .with_context(|| format!("Failed to write {}", containerfile_path.display()))?;
    manifest.write_to(pending.staging_dir())?;
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let artifact = pending.commit(metadata)?;
    events(BuildEvent::StageDone {
        message: "Local image archive saved.".into(),
    });
    Ok((artifact, bytes))
}

/// Whether the runtime base already has a CA bundle (then no package
/// manager and no network is needed). Looks into a created, never started
/// container of the image.
async fn base_has_ca_bundle(
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    artifact_id: &str,
    cancel: &CancellationToken,
) -> Result<bool, BuildError> {
    let spec = ContainerSpec {
        image: prepared.settings.base_image.clone(),
        cmd: vec!["/bin/sh".into()],
        labels: vec![
            (BUILD_LABEL.to_owned(), artifact_id.to_owned()),
            (
                CRATE_DIR_LABEL.to_owned(),
                prepared.facts.crate_dir.display().to_string(),
            ),
        ],
        ..Default::default()
    };
    let probe = ContainerRun::create(engine.clone(), &spec, cancel).await?;
    let found = cancellable(cancel, engine.path_exists(probe.id(), CA_BUNDLE)).await;
    probe.remove().await;
    found
}
