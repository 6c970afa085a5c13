//! Where a base comes from, into the blob store once per image id: the
//! engine's export (verified by digest), else the stored base of that name,
//! else fetched from its registry by [`crate::registry::pull`], else the
//! engine's own pull.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use super::support::{blocking, short, throttled};
use crate::blobs::{BlobStore, Digest};
use crate::engine::ContainerEngine;
use crate::image::base::{BaseRecord, Bases, CaBundle, CreatedBlobs, take_back};
use crate::image::{self, BlobRef, layout};
use crate::pipeline::container_build::ensure_image;
use crate::pipeline::job::{
    BuildEnv, BuildError, BuildEvent, EventSink, PreparedBuild, ProgressTask, cancellable,
};
use crate::platform::Platform;
use crate::registry::pull;
use crate::store::{self};
use crate::units::human_size;

/// The base in the store, and whether the engine holds it.
pub(super) struct Base {
    pub(super) record: BaseRecord,
    pub(super) in_engine: bool,
}

/// Finds the base image's id, and imports it into the store unless a
/// complete record of that id exists. Without the base in the engine, a
/// stored base known under the same reference is used as it is (so a base
/// pruned from the engine, or an offline engine, still builds).
pub(super) async fn ensure_base(
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
            // Of that name, the engine's platform (a multi-platform build
            // stores the other platforms' bases under the same name).
            let host = Some(prepared.extras.native);
            blocking(cancel, move || {
                Ok(bases
                    .list()
                    .into_iter()
                    .filter(|record| record.references.contains(&reference))
                    .filter(|record| {
                        record_platform(&blobs, record).is_none_or(|p| p.is_none() || p == host)
                    })
                    .filter(|record| record.complete(&blobs).unwrap_or(false))
                    .max_by_key(|record| record.imported_at_epoch_ms))
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
            // This machine's platform by default; an engine of another
            // platform gets its own.
            let native = prepared.extras.native;
            let platform = (native != Platform::host()).then_some(native);
            match fetch_from_registry(env, reference, platform, events, cancel).await {
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
pub(super) async fn fetch_from_registry(
    env: &BuildEnv,
    reference: &str,
    platform: Option<Platform>,
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
        remote = pull::open_for(reference, platform) => remote?,
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
        Ok(record) => {
            // A single image (not an index) of another platform is already
            // stored: it is still not this platform's.
            if let Some(wanted) = platform
                && record_platform(&blobs, &record) != Some(Some(wanted))
            {
                let has = blobs
                    .read(&record.config.digest)
                    .map(|bytes| image::config::platform_name(&bytes))
                    .unwrap_or_else(|_| "an unknown platform".to_owned());
                return Err(FetchError::Invalid(format!(
                    "{} is an image for {has}, not {wanted} (a single image, not an index of platforms). Choose a base published for {wanted}, or drop {wanted} from `[rust] platforms`.",
                    remote.name
                )));
            }
            return Ok(stored_base_used(&bases, record, reference, events));
        }
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
        env, remote, image_id, references, ca_bundle, reference, platform, events, cancel,
    )
    .await
}

/// The fetch proper: config and layers into the store, then the record.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_layers(
    env: &BuildEnv,
    remote: pull::RemoteBase,
    image_id: Digest,
    references: Vec<String>,
    ca_bundle: Option<CaBundle>,
    reference: &str,
    platform: Option<Platform>,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BaseRecord, pull::FetchError> {
    use pull::FetchError;
    let bases = env.bases().clone();
    let blobs = env.blobs().clone();
    events(BuildEvent::Notice {
        message: match platform {
            Some(platform) => format!(
                "Fetching the {platform} image of `{reference}` from {} into the layer store.",
                remote.name
            ),
            None => format!(
                "The engine lacks `{reference}`; fetching it from {} into the layer store.",
                remote.name
            ),
        },
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
        if let Some(wanted) = platform {
            let has = image::config::platform_name(&config_bytes);
            if Platform::parse(&has).ok() != Some(wanted) {
                return Err(FetchError::Invalid(format!(
                    "{} is an image for {has}, not {wanted} (a single image, not an index of platforms). Choose a base published for {wanted}, or drop {wanted} from `[rust] platforms`.",
                    remote.name
                )));
            }
        }
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

/// The base for a platform other than the engine's: a complete stored base
/// of that name for that platform, else that platform's image fetched from
/// the base's registry (its index). The engine is never asked: it holds
/// one platform of a name.
pub(super) async fn ensure_platform_base(
    env: &BuildEnv,
    reference: &str,
    platform: Platform,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BaseRecord, BuildError> {
    let known = {
        let bases = env.bases().clone();
        let blobs = env.blobs().clone();
        let reference = reference.to_owned();
        blocking(cancel, move || {
            Ok(bases
                .list()
                .into_iter()
                .filter(|record| record.references.contains(&reference))
                .filter(|record| record.complete(&blobs).unwrap_or(false))
                .filter(|record| record_platform(&blobs, record) == Some(Some(platform)))
                .max_by_key(|record| record.imported_at_epoch_ms))
        })
        .await?
    };
    if let Some(record) = known {
        events(BuildEvent::StageDone {
            message: format!(
                "Base image for {platform} in the store ({}, {} layers).",
                short(&record.image_id),
                record.layers.len()
            ),
        });
        return Ok(record);
    }
    fetch_from_registry(env, reference, Some(platform), events, cancel)
        .await
        .map_err(|error| match error {
            pull::FetchError::Cancelled => BuildError::Cancelled,
            pull::FetchError::Store(error) => BuildError::Failed(error.context(format!(
                "Failed to store the {platform} base image `{reference}` fetched from its registry"
            ))),
            pull::FetchError::Unavailable(reason) | pull::FetchError::Invalid(reason) => {
                BuildError::Failed(anyhow!(
                    "Cannot get the {platform} image of the base `{reference}`: {reason}"
                ))
            }
        })
}

/// The platform a stored base's config names: `None` when its config is
/// unreadable, `Some(None)` for a platform Arca does not know.
fn record_platform(blobs: &BlobStore, record: &BaseRecord) -> Option<Option<Platform>> {
    let bytes = blobs.read(&record.config.digest).ok()?;
    Some(Platform::parse(&image::config::platform_name(&bytes)).ok())
}

/// A complete base already in the store, used under `reference`: the
/// reference is added to its record (best effort) and the stage says so.
pub(super) fn stored_base_used(
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
pub(super) async fn import_base(
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
