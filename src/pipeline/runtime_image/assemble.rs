//! Image assembly over the stored base: the binary layer (with the static
//! init beside it when asked), the CA-bundle layer when needed, the derived
//! config and the manifest; and the init taken from the builder image.

use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::engine::{BUILD_LABEL, ContainerEngine, ContainerSpec};
use crate::image::base::{BaseRecord, CaBundle, CreatedBlobs};
use crate::image::config::{Derivation, NewLayer};
use crate::image::layer::{Content, FileEntry};
use crate::image::{self, BlobRef, StoredImage, layout};
use crate::pipeline::container_build::{ContainerRun, ensure_builder_image, ensure_image};
use crate::pipeline::job::{BuildError, CRATE_DIR_LABEL, EventSink, PreparedBuild, cancellable};
use crate::pipeline::recipes::{INIT_IN_BUILDER, INIT_IN_IMAGE};
use crate::plan;
use crate::store::ArtifactMetadata;

/// An assembled image and its config's bytes.
#[derive(Clone)]
pub(super) struct Assembled {
    pub(super) image: StoredImage,
    pub(super) config: Vec<u8>,
    /// How many layers (bottom up) are the base's.
    pub(super) base_layers: usize,
    /// The new layers' files, for engines that take them by a build.
    pub(super) ca_layer: bool,
    /// The config's labels (the record's and the SBOM's), for engines
    /// that take the image by a build.
    pub(super) labels: Vec<(String, String)>,
}

pub(super) fn assemble(
    blobs: &BlobStore,
    base: &BaseRecord,
    binary: &Path,
    init: Option<&[u8]>,
    metadata: &ArtifactMetadata,
    extra_labels: &[(String, String)],
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
    let mut labels = metadata.image_labels();
    labels.extend(extra_labels.iter().cloned());
    let config = image::config::derive(
        &base_config,
        &Derivation {
            labels: &labels,
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
        labels,
    })
}

/// The image's entrypoint: the binary, wrapped in the static init when
/// the image has one.
pub(super) fn entrypoint(target: &str, init: bool) -> Vec<String> {
    if init {
        vec![INIT_IN_IMAGE.to_owned(), "--".to_owned(), target.to_owned()]
    } else {
        vec![target.to_owned()]
    }
}

/// The static init out of the builder image, whose recipe installed
/// [`plan::INIT_PACKAGE`] for it (a host build prepares the builder just
/// for this). Read from a created, never started, container.
pub(super) async fn init_binary(
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
