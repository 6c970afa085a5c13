//! The CA-bundle layer: whether images on a base need one (settled once per
//! base, kept in its record) and the layer made from the base with its own
//! package manager.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::base_source::Base;
use super::support::blocking;
use crate::engine::{BUILD_LABEL, ContainerEngine, ContainerSpec, OutputLine};
use crate::image::base::CaBundle;
use crate::image::layer::{Content, FileEntry};
use crate::image::{self};
use crate::pipeline::container_build::ContainerRun;
use crate::pipeline::job::{
    BuildEnv, BuildError, BuildEvent, CRATE_DIR_LABEL, EventSink, PreparedBuild, cancellable,
};
use crate::store::ArtifactMetadata;

pub(super) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The largest CA bundle read out of a layer (Debian's is ~220 KiB).
pub(super) const CA_BUNDLE_MAX: u64 = 16 << 20;

/// Installs ca-certificates with whatever package manager the base has.
pub(super) const CA_INSTALL_SCRIPT: &str = "set -eu; \
if command -v apt-get >/dev/null 2>&1; then \
    apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \
elif command -v dnf >/dev/null 2>&1; then dnf install -y ca-certificates; \
elif command -v microdnf >/dev/null 2>&1; then microdnf install -y ca-certificates; \
elif command -v apk >/dev/null 2>&1; then apk add --no-cache ca-certificates; \
else echo 'arca: no package manager to install ca-certificates' >&2; exit 3; fi";

/// Settles whether images on this base need a CA-bundle layer (once per
/// base: the answer is kept in its record).
pub(super) async fn ensure_ca_bundle(
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
