//! Loading the image into the engine at the cost of what it lacks: thin
//! archive (the engine holds the base and takes them), an image build over
//! the base (it holds the base, refuses thin archives: Podman), or the full
//! archive (it lacks the base); and writing that full archive.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::assemble::{Assembled, entrypoint};
use super::base_source::Base;
use super::ca_layer::{CA_BUNDLE, CA_BUNDLE_MAX};
use super::support::blocking;
use crate::blobs::BlobStore;
use crate::engine::tar_context::TarContext;
use crate::engine::{ContainerEngine, OutputLine};
use crate::image::base::{BaseRecord, CaBundle};
use crate::image::{self, BlobRef, layout};
use crate::pipeline::job::{
    BuildEnv, BuildError, BuildEvent, EventSink, PreparedBuild, ProgressTask, cancellable,
};
use crate::pipeline::recipes::INIT_IN_IMAGE;
use crate::store::ArtifactMetadata;
use crate::units::human_size;

/// Puts the image into the engine; returns what was sent, for the user.
#[allow(clippy::too_many_arguments)]
pub(super) async fn load(
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
pub(super) async fn engine_holds_base_layers(
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
pub(super) async fn load_by_build(
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
        let bundle = image::lookup::read_file(blobs, layer, CA_BUNDLE, CA_BUNDLE_MAX)?;
        context.add_file("ca-certificates.crt", &bundle, 0o644)?;
    }
    containerfile.push_str(&format!("COPY {bin} /usr/local/bin/{bin}\n"));
    if let Some(init) = init {
        containerfile.push_str(&format!("COPY arca-init {INIT_IN_IMAGE}\n"));
        context.add_file("arca-init", init, 0o755)?;
    }
    let labels = assembled
        .labels
        .iter()
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

/// Writes the full archive of the image into the staging directory.
pub(super) async fn write_full_archive(
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
