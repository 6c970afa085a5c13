//! The build pipeline: crate → binary → runtime image → stored artifact.
//!
//! One library API for the CLI and the language server:
//! [`package`] (the whole thing) and [`build_binary`] (stops after cargo).
//! Stages, in the original CLI's wording: ensure the builder base image
//! (pull with per-layer progress when missing), prepare the cached builder
//! image `arca-builder:<hash>`, cargo in a container of it (or on the host
//! with `--host-build`), then [`runtime_image`]: the runtime base into the
//! layer store (once per image id), the image assembled over it, loaded
//! into the engine with only the layers it lacks, the record committed
//! atomically with its OCI layout (and `image.tar` only when asked).
//!
//! Invariants:
//! - **Reuse:** the newest artifact of the crate with the same fingerprint
//!   is returned at once unless `force`.
//! - **One build per crate** ([`crate_lock`]): a second build of the same
//!   crate waits for the first, then re-checks freshness.
//! - **Cancellation** via the [`CancellationToken`] at every stage: the
//!   container is killed and removed, nothing is recorded, the staging
//!   directory (with any half-written archive) is deleted, the half-made
//!   runtime image is removed, and the blobs the build created are taken
//!   back. Every per-build container carries
//!   [`BUILD_LABEL`]`=<artifact id>` and all of them are removed by label
//!   when a build fails; so is the crate's warm [`session`] (kept after a
//!   success only, gone by itself 10 minutes after it starts).
//! - Only [`crate::engine`] talks to Docker; this module sees the trait.

pub mod cache_usage;
pub mod cargo_messages;
mod container_build;
pub mod crate_lock;
pub mod cross;
pub mod freshness;
mod host_build;
pub mod job;
pub mod network;
pub mod recipes;
mod runtime_image;
pub mod session;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

pub use cargo_messages::{CompilerDiagnostic, DiagnosticSpan};
pub use freshness::fresh_artifact;
pub use job::*;

use crate::engine::{self, BUILD_LABEL, ContainerEngine};
use crate::manifest::{self, BuildOutputs};
use crate::plan::{self};
use crate::store::{Store, StoredArtifact};
use crate::workspace::{self, CrateFacts};

/// Resolves the crate and its settings. Blocking (runs `cargo metadata`);
/// makes sure `Cargo.lock` exists, because the container sees the source
/// read-only and builds `--locked`.
pub fn prepare(request: &BuildRequest) -> anyhow::Result<PreparedBuild> {
    let facts = workspace::load_crate_facts(&request.path)?;
    // Refuse at once what the checker already knows cargo would refuse a
    // minute later (an undeclared feature, an unknown binary...).
    let overrides = &request.overrides;
    let overridden: Vec<&str> = [
        ("profile", overrides.profile.is_some()),
        ("features", overrides.features.is_some()),
        ("bin", overrides.bin.is_some()),
        ("base_image", overrides.base_image.is_some()),
        ("platforms", overrides.platforms.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, given)| given.then_some(key))
    .collect();
    if let Some(message) =
        crate::config::first_error(&facts.crate_dir, Some(&facts), None, &overridden)
    {
        anyhow::bail!(message);
    }
    let (config, builder_config) = crate::config::load_all(&facts.crate_dir)?;
    let settings = plan::resolve_settings(&request.overrides, &config, &facts)?;
    let mut extras = plan::resolve_extras(&builder_config, &facts.crate_dir)?;
    if let Some(platforms) = &request.overrides.platforms {
        let platforms = crate::platform::parse_list(platforms)
            .map_err(|error| anyhow!("{error} (in `--platform`)"))?;
        extras.set_platforms(platforms);
    }
    crate::paths::validate_component("binary name", &settings.bin)?;
    // The base image goes into a Containerfile's FROM line and a tag: only
    // a well-formed reference may.
    if let Err(reason) = crate::config::image_ref::parse(&settings.base_image) {
        anyhow::bail!(
            "The runtime base image `{}` is not a valid image reference: {reason}. Use a reference like `debian:bookworm-slim`.",
            settings.base_image.escape_debug()
        );
    }
    refuse_init_with_cross(&extras)?;
    ensure_lockfile(&facts)?;
    let builder_base_image = plan::builder_base_image(&settings.base_image);
    let builder_image_tag = plan::shaped_builder_image_tag(&builder_base_image, &extras.shape);
    let mode = freshness::build_mode(&settings.base_image, request.host_build, &extras)?;
    // A malformed SOURCE_DATE_EPOCH fails before anything runs.
    crate::image::layer::layer_mtime()?;
    Ok(PreparedBuild {
        facts,
        settings,
        host_build: request.host_build,
        builder_base_image,
        builder_image_tag,
        mode,
        extras,
    })
}

fn refuse_init_with_cross(extras: &plan::BuildExtras) -> anyhow::Result<()> {
    if extras.init && !extras.shape.cross.is_empty() {
        anyhow::bail!(
            "`init = true` cannot be combined with platforms beyond the builder's own yet: the init is the builder's `tini-static`, built for its platform only. Drop `init` or build for one platform."
        );
    }
    Ok(())
}

/// The build as the connected engine runs it: a container build's builder
/// is of the engine's platform (a remote engine may be of another
/// architecture than this machine), so that platform is compiled natively
/// and the others, this machine's among them, cross. A host build stays
/// this machine's. The build mode does not change.
pub fn on_engine(
    mut prepared: PreparedBuild,
    engine: &dyn ContainerEngine,
) -> anyhow::Result<PreparedBuild> {
    let native = engine.platform();
    if prepared.host_build || prepared.extras.native == native {
        return Ok(prepared);
    }
    prepared.extras.build_on(native);
    refuse_init_with_cross(&prepared.extras)?;
    prepared.builder_image_tag =
        plan::shaped_builder_image_tag(&prepared.builder_base_image, &prepared.extras.shape);
    Ok(prepared)
}

fn ensure_lockfile(facts: &CrateFacts) -> anyhow::Result<()> {
    if facts.workspace_root.join("Cargo.lock").is_file() {
        return Ok(());
    }
    // The one place Arca writes into the user's crate, as `cargo build` would.
    let output = std::process::Command::new("cargo")
        .args(["generate-lockfile", "--manifest-path"])
        .arg(&facts.manifest_path)
        .output()
        .context("Failed to run `cargo metadata`: is cargo installed and on PATH?")?;
    if !output.status.success() || !facts.workspace_root.join("Cargo.lock").is_file() {
        return Err(anyhow!(
            "Could not create {}: {}Run `cargo generate-lockfile` in the workspace and try again.",
            facts.workspace_root.join("Cargo.lock").display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// How to package, beyond the [`BuildRequest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageOptions {
    /// Also write the standalone `image.tar` beside the record.
    pub archive: bool,
}

/// Builds the crate into a runtime image and stores it as an artifact, or
/// returns the fresh artifact at once (unless `request.force`). Writes no
/// standalone archive (see [`package_with`]).
pub async fn package(
    env: &BuildEnv,
    request: &BuildRequest,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<PackageOutcome, BuildError> {
    package_with(env, request, PackageOptions::default(), events, cancel).await
}

/// [`package`] with options (`archive`: write `image.tar` too; a fresh
/// artifact without one gets it exported from the store).
pub async fn package_with(
    env: &BuildEnv,
    request: &BuildRequest,
    options: PackageOptions,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<PackageOutcome, BuildError> {
    let crate_dir = crate_dir_of(&request.path)?;
    let _lock = lock_crate(env, &crate_dir, events, cancel).await?;
    let prepared = prepare_cancellable(request, cancel).await?;
    events(BuildEvent::Prepared);
    if !request.force
        && let Some(artifact) = fresh_cancellable(env.store(), &prepared, cancel).await?
    {
        if options.archive && !artifact.archive_path().is_file() {
            let artifact = artifact.clone();
            let blobs = env.blobs().clone();
            tokio::task::spawn_blocking(move || {
                let _lock = blobs.lock_shared()?;
                crate::image::export::export_artifact(
                    &blobs,
                    &artifact.dir,
                    &artifact.metadata.local_tag,
                    &artifact.archive_path(),
                )
            })
            .await
            .map_err(|error| anyhow!("The export task failed: {error}"))??;
        }
        let archive_bytes = std::fs::metadata(artifact.archive_path())
            .map(|metadata| metadata.len())
            .ok();
        // The image id is its config's digest (as the engine computes it).
        let image_id =
            crate::image::layout::read(&artifact.dir.join(crate::image::layout::LAYOUT_DIR))
                .ok()
                .map(|(image, _)| image.config.digest.to_string());
        events(BuildEvent::Finished {
            artifact_id: artifact.metadata.artifact_id.clone(),
            up_to_date: true,
        });
        return Ok(PackageOutcome {
            archive_path: archive_bytes.map(|_| artifact.archive_path()),
            artifact,
            up_to_date: true,
            archive_bytes: archive_bytes.unwrap_or(0),
            image_id,
            diagnostics: Vec::new(),
        });
    }
    let engine = env.engine().await?;
    let prepared = on_engine(prepared, engine.as_ref()).map_err(BuildError::Failed)?;
    let artifact_id = env.store().new_artifact_id();
    let result = async {
        runtime_image::prefetch_platform_bases(env, &prepared, events, cancel).await?;
        let binary = compile(env, &engine, &prepared, &artifact_id, events, cancel).await?;
        let packaged = runtime_image::package(
            env,
            &engine,
            &prepared,
            &artifact_id,
            &binary,
            options.archive,
            events,
            cancel,
        )
        .await?;
        Ok::<_, BuildError>(PackageOutcome {
            artifact: packaged.artifact,
            up_to_date: false,
            archive_bytes: packaged.archive.as_ref().map_or(0, |(_, bytes)| *bytes),
            archive_path: packaged.archive.map(|(path, _)| path),
            image_id: Some(packaged.image_id),
            diagnostics: binary.diagnostics,
        })
    }
    .await;
    if let Err(error) = &result {
        clean_up_failed_build(engine.as_ref(), &prepared, &artifact_id, error).await;
    }
    if let Ok(outcome) = &result {
        events(BuildEvent::Finished {
            artifact_id: outcome.artifact.metadata.artifact_id.clone(),
            up_to_date: false,
        });
    }
    result
}

/// Builds only the binary (container or host, as requested); no image, no
/// record.
pub async fn build_binary(
    env: &BuildEnv,
    request: &BuildRequest,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BinaryOutcome, BuildError> {
    let (_, result) = compile_binary(env, request, false, events, cancel).await?;
    result
}

/// A binary rebuilt for a live update, with the settings it was built with.
#[derive(Debug, Clone)]
pub struct LiveBinary {
    pub prepared: PreparedBuild,
    pub outcome: BinaryOutcome,
}

/// Rebuilds the binary for a live update: the same cargo invocation as
/// [`build_binary`], but a compile error keeps the crate's warm session
/// (the next save compiles in it again at once; cancelling or any other
/// failure still removes it).
pub async fn rebuild_binary_live(
    env: &BuildEnv,
    request: &BuildRequest,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<LiveBinary, BuildError> {
    let (prepared, result) = compile_binary(env, request, true, events, cancel).await?;
    Ok(LiveBinary {
        prepared,
        outcome: result?,
    })
}

/// Locks, prepares and compiles; cleans up after a failure (keeping the
/// warm session on a compile error when `keep_session`).
async fn compile_binary(
    env: &BuildEnv,
    request: &BuildRequest,
    keep_session: bool,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(PreparedBuild, Result<BinaryOutcome, BuildError>), BuildError> {
    let crate_dir = crate_dir_of(&request.path)?;
    let _lock = lock_crate(env, &crate_dir, events, cancel).await?;
    let prepared = prepare_cancellable(request, cancel).await?;
    events(BuildEvent::Prepared);
    let engine = env.engine().await?;
    let prepared = on_engine(prepared, engine.as_ref()).map_err(BuildError::Failed)?;
    let build_id = env.store().new_artifact_id();
    let result = compile(env, &engine, &prepared, &build_id, events, cancel).await;
    match &result {
        Err(BuildError::Compile { .. }) if keep_session => {
            let label = format!("{BUILD_LABEL}={build_id}");
            engine::remove_labelled_containers(engine.as_ref(), &label).await;
        }
        Err(error) => clean_up_failed_build(engine.as_ref(), &prepared, &build_id, error).await,
        Ok(_) => {}
    }
    Ok((prepared, result))
}

/// After a failed or cancelled build (compile errors included): removes
/// every container the build made and the crate's warm session, so nothing
/// of the build is left running.
async fn clean_up_failed_build(
    engine: &dyn ContainerEngine,
    prepared: &PreparedBuild,
    build_id: &str,
    error: &BuildError,
) {
    tracing::debug!("cleaning up after a failed build: {error}");
    engine::remove_labelled_containers(engine, &format!("{BUILD_LABEL}={build_id}")).await;
    let crate_label = format!("{CRATE_DIR_LABEL}={}", prepared.facts.crate_dir.display());
    if let Ok(sessions) = engine
        .containers_with_labels(&[crate_label.as_str(), session::SESSION_LABEL])
        .await
    {
        for id in sessions {
            let _ = engine.remove_container(&id).await;
        }
    }
}

async fn compile(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    build_id: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<BinaryOutcome, BuildError> {
    let started_epoch_ms = crate::store::now_epoch_ms();
    let compiled = if prepared.host_build {
        host_build::build(prepared, events, cancel).await?
    } else {
        container_build::build(env, engine, prepared, build_id, events, cancel).await?
    };
    let facts = prepared.facts.clone();
    let settings = prepared.settings.clone();
    let mode = prepared.mode.clone();
    let target_dir = compiled.target_dir.clone();
    let path_map = compiled.path_map.clone();
    let record_env = compiled.record_env;
    let recording = tokio::task::spawn_blocking(move || {
        let outputs = BuildOutputs {
            target_dir: &target_dir,
            path_map,
            record_env,
        };
        manifest::record(
            &facts,
            &settings,
            mode,
            &outputs,
            dirs::home_dir().as_deref(),
        )
    });
    let manifest = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(BuildError::Cancelled),
        joined = recording => joined
            .map_err(|error| anyhow!("Recording the build's inputs failed: {error}"))??,
    };
    Ok(BinaryOutcome {
        binary: compiled.binary,
        cross: compiled.cross,
        diagnostics: compiled.diagnostics,
        manifest,
        sbom_inputs: SbomInputs {
            started_epoch_ms,
            ..compiled.sbom_inputs
        },
    })
}

fn crate_dir_of(path: &Path) -> Result<PathBuf, BuildError> {
    let manifest = workspace::resolve_manifest_path(path)?;
    Ok(manifest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("{} has no parent directory", manifest.display()))?)
}

async fn lock_crate(
    env: &BuildEnv,
    crate_dir: &Path,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<crate_lock::CrateLock, BuildError> {
    let name = crate_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    match crate_lock::acquire(&env.rust_cache().join("locks"), crate_dir, cancel, || {
        events(BuildEvent::Notice {
            message: format!("Another build of `{name}` is running; waiting for it to finish."),
        })
    })
    .await?
    {
        crate_lock::Acquired::Lock(lock) => Ok(lock),
        crate_lock::Acquired::Cancelled => Err(BuildError::Cancelled),
    }
}

async fn prepare_cancellable(
    request: &BuildRequest,
    cancel: &CancellationToken,
) -> Result<PreparedBuild, BuildError> {
    let request = request.clone();
    let work = tokio::task::spawn_blocking(move || prepare(&request));
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(BuildError::Cancelled),
        joined = work => joined
            .map_err(|error| anyhow!("The build preparation task failed: {error}"))?
            .map_err(BuildError::Failed),
    }
}

async fn fresh_cancellable(
    store: &Store,
    prepared: &PreparedBuild,
    cancel: &CancellationToken,
) -> Result<Option<StoredArtifact>, BuildError> {
    let store = store.clone();
    let prepared = prepared.clone();
    let work = tokio::task::spawn_blocking(move || fresh_artifact(&store, &prepared));
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(BuildError::Cancelled),
        joined = work => Ok(joined
            .map_err(|error| anyhow!("The freshness check failed: {error}"))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The language server spawns builds on tokio tasks: the futures must
    /// be `Send`.
    #[test]
    fn build_futures_can_be_spawned() {
        let env = BuildEnv::at(Path::new("/nonexistent"));
        let request = BuildRequest::default();
        let cancel = CancellationToken::new();
        let events = |_: BuildEvent| {};
        assert_send(&package(&env, &request, &events, &cancel));
        assert_send(&build_binary(&env, &request, &events, &cancel));
    }

    #[test]
    fn percentages_need_a_total() {
        let progress = |current, total| BuildEvent::Progress {
            task: ProgressTask::Export {
                archive: PathBuf::from("/a/image.tar"),
            },
            status: String::new(),
            current,
            total,
        };
        assert_eq!(progress(50, Some(200)).percent(), Some(25.0));
        assert_eq!(progress(50, None).percent(), None);
        assert_eq!(progress(300, Some(200)).percent(), Some(100.0));
    }

    #[test]
    fn compile_errors_say_what_failed_and_what_to_do() {
        let error = BuildError::Compile {
            crate_name: "hello".into(),
            exit_code: 101,
            diagnostics: Vec::new(),
            cargo_errors: vec!["error: the lock file needs to be updated".into()],
        };
        assert_eq!(
            error.to_string(),
            "Cargo could not build `hello` (exit code 101):\nerror: the lock file needs to be updated"
        );
    }
}
