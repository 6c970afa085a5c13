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
pub mod freshness;
mod host_build;
pub mod network;
pub mod recipes;
mod runtime_image;
pub mod session;
pub mod source;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

pub use cargo_messages::{CompilerDiagnostic, DiagnosticSpan};
pub use freshness::fresh_artifact;

use crate::blobs::BlobStore;
use crate::engine::{self, BUILD_LABEL, ContainerEngine};
use crate::image::base::Bases;
use crate::manifest::{self, BuildOutputs, Manifest};
use crate::plan::{self, BuildSettings, SettingsOverrides};
use crate::store::{Store, StoredArtifact};
use crate::workspace::{self, CrateFacts};

/// Label on every container Arca creates for a build, with the crate
/// directory as its value (tests and cleanup find a crate's containers by it).
pub const CRATE_DIR_LABEL: &str = "io.khoek.arca.crate-dir";
/// Label on the named cache volumes of remote builds.
pub const CACHE_LABEL: &str = "io.khoek.arca.cache";

/// What to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRequest {
    /// The crate directory or its `Cargo.toml`.
    pub path: PathBuf,
    /// Settings given explicitly; the rest come from `.arca/config.toml`.
    pub overrides: SettingsOverrides,
    /// Build with the host's cargo instead of in the builder container.
    pub host_build: bool,
    /// Build even when a fresh artifact exists.
    pub force: bool,
}

/// Where builds keep state, and the engine they use (connected on first
/// need, so an up-to-date build never touches Docker).
pub struct BuildEnv {
    store: Store,
    blobs: BlobStore,
    bases: Bases,
    rust_cache: PathBuf,
    engine: tokio::sync::OnceCell<Arc<dyn ContainerEngine>>,
}

impl BuildEnv {
    /// State under `$ARCA_HOME` (default `~/.arca`).
    pub fn from_arca_home() -> anyhow::Result<Self> {
        Ok(Self::at(&crate::paths::arca_home()?))
    }

    /// State under an explicit home directory (tests, the server).
    pub fn at(arca_home: &Path) -> Self {
        Self {
            store: Store::at(arca_home.join("containers")),
            blobs: BlobStore::at(arca_home.join("blobs")),
            bases: Bases::at(arca_home.join("bases")),
            rust_cache: arca_home.join("cache").join("rust"),
            engine: tokio::sync::OnceCell::new(),
        }
    }

    /// Uses this engine instead of connecting from `DOCKER_HOST`.
    pub fn with_engine(self, engine: Arc<dyn ContainerEngine>) -> Self {
        let cell = tokio::sync::OnceCell::new();
        let _ = cell.set(engine);
        Self {
            engine: cell,
            ..self
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `$ARCA_HOME/blobs`: the content-addressed layer store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// `$ARCA_HOME/bases`: the base images imported into the blob store.
    pub fn bases(&self) -> &Bases {
        &self.bases
    }

    /// `$ARCA_HOME/cache/rust`: builder target caches, the shared cargo
    /// home, build locks.
    pub fn rust_cache(&self) -> &Path {
        &self.rust_cache
    }

    /// The engine, connecting on first use.
    pub async fn engine(&self) -> anyhow::Result<Arc<dyn ContainerEngine>> {
        self.engine.get_or_try_init(engine::connect).await.cloned()
    }
}

/// What a task is making progress on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressTask {
    /// Pulling an image; `layer` is the layer id.
    Pull { image: String, layer: String },
    /// Writing the image archive.
    Export { archive: PathBuf },
    /// Importing a base image's layers into the blob store.
    Import { image: String },
    /// Cargo compiling the crate: `current`/`total` are cargo's units.
    Compile { crate_name: String },
}

/// What the pipeline reports while it runs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A stage began (`Ensuring builder base image`, ...), with a detail
    /// line (image names, tag, path).
    Stage { title: String, detail: String },
    /// The current stage finished (`Builder image cache hit.`).
    StageDone { message: String },
    /// Progress of a pull layer or of the archive export.
    Progress {
        task: ProgressTask,
        status: String,
        current: u64,
        total: Option<u64>,
    },
    /// One line of cargo's or the image builder's output.
    Output { line: String },
    /// Something worth telling that is not a stage (waiting for another
    /// build of the crate, ...).
    Notice { message: String },
    /// The build finished with this artifact.
    Finished {
        artifact_id: String,
        up_to_date: bool,
    },
}

impl BuildEvent {
    /// Progress as a percentage, when the total is known.
    pub fn percent(&self) -> Option<f64> {
        match self {
            BuildEvent::Progress {
                current,
                total: Some(total),
                ..
            } if *total > 0 => Some((*current as f64 / *total as f64 * 100.0).min(100.0)),
            _ => None,
        }
    }
}

/// Receives [`BuildEvent`]s (wrap an mpsc sender in a closure to forward
/// them to another task).
pub type EventSink<'a> = &'a (dyn Fn(BuildEvent) + Send + Sync);

/// A finished (or reused) artifact.
#[derive(Debug, Clone)]
pub struct PackageOutcome {
    pub artifact: StoredArtifact,
    /// True when the newest artifact was fresh and returned without a build.
    pub up_to_date: bool,
    /// Size of the standalone `image.tar` in bytes (0 when none exists).
    pub archive_bytes: u64,
    /// The standalone archive, when one exists (written with `archive`,
    /// by `arca export`, or by the original CLI).
    pub archive_path: Option<PathBuf>,
    /// The image id (`sha256:…`, the config's digest); `None` for an
    /// artifact without a layout (made by the original CLI).
    pub image_id: Option<String>,
    /// Warnings (and other non-error diagnostics) of this build's cargo run.
    pub diagnostics: Vec<CompilerDiagnostic>,
}

/// A built binary (no image).
#[derive(Debug, Clone)]
pub struct BinaryOutcome {
    /// The binary on the host.
    pub binary: PathBuf,
    pub diagnostics: Vec<CompilerDiagnostic>,
    /// Exactly what went into the binary; its digest is the artifact's
    /// `build_fingerprint`.
    pub manifest: Manifest,
}

/// What cargo left behind, before the manifest is recorded.
struct Compiled {
    binary: PathBuf,
    diagnostics: Vec<CompilerDiagnostic>,
    /// A host directory with cargo's `<profile>/<bin>.d` and
    /// `<profile>/build/*/output`.
    target_dir: PathBuf,
    /// Path prefixes as the build saw them → host paths.
    path_map: Vec<(PathBuf, PathBuf)>,
    record_env: bool,
}

/// Why a build did not produce an artifact.
#[derive(Debug)]
pub enum BuildError {
    /// The token was cancelled; everything the build made is gone.
    Cancelled,
    /// Cargo failed: the compiler's diagnostics (host paths), and the last
    /// lines of cargo's own error output when it failed before compiling.
    Compile {
        crate_name: String,
        exit_code: i64,
        diagnostics: Vec<CompilerDiagnostic>,
        cargo_errors: Vec<String>,
    },
    /// Anything else, with a message that says what to do.
    Failed(anyhow::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Cancelled => write!(formatter, "Build cancelled; nothing was stored."),
            BuildError::Compile {
                crate_name,
                exit_code,
                diagnostics,
                cargo_errors,
            } => {
                let errors: Vec<_> = diagnostics
                    .iter()
                    .filter(|diagnostic| diagnostic.level.starts_with("error"))
                    .collect();
                match errors.split_first() {
                    Some((first, [])) => write!(
                        formatter,
                        "Cargo could not build `{crate_name}`: {}. Fix the error shown above and build again.",
                        first.message
                    ),
                    Some((first, rest)) => write!(
                        formatter,
                        "Cargo could not build `{crate_name}`: {} (and {} more errors). Fix the errors shown above and build again.",
                        first.message,
                        rest.len()
                    ),
                    None if !cargo_errors.is_empty() => write!(
                        formatter,
                        "Cargo could not build `{crate_name}` (exit code {exit_code}):\n{}",
                        cargo_errors.join("\n")
                    ),
                    None => write!(
                        formatter,
                        "Cargo could not build `{crate_name}` (exit code {exit_code}); see its output above."
                    ),
                }
            }
            BuildError::Failed(error) => write!(formatter, "{error:#}"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<anyhow::Error> for BuildError {
    fn from(error: anyhow::Error) -> Self {
        BuildError::Failed(error)
    }
}

/// Everything resolved before anything is built.
#[derive(Debug, Clone)]
pub struct PreparedBuild {
    pub facts: CrateFacts,
    pub settings: BuildSettings,
    pub host_build: bool,
    /// The image the binary is built in (CUDA promotion applied).
    pub builder_base_image: String,
    /// `arca-builder:<hash>`.
    pub builder_image_tag: String,
    /// The manifest's build mode (`container:<builder key>` or
    /// `host:<rustc -Vv>`, plus what [`plan::BuildExtras::mode_suffix`] adds).
    pub mode: String,
    /// Builder packages and toolchain, build env, proxy, init.
    pub extras: plan::BuildExtras,
}

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
    let extras = plan::resolve_extras(&builder_config, &facts.crate_dir)?;
    crate::paths::validate_component("binary name", &settings.bin)?;
    // The base image goes into a Containerfile's FROM line and a tag: only
    // a well-formed reference may.
    if let Err(reason) = crate::config::image_ref::parse(&settings.base_image) {
        anyhow::bail!(
            "The runtime base image `{}` is not a valid image reference: {reason}. Use a reference like `debian:bookworm-slim`.",
            settings.base_image.escape_debug()
        );
    }
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
    let artifact_id = env.store().new_artifact_id();
    let result = async {
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
    let engine = env.engine().await?;
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
        diagnostics: compiled.diagnostics,
        manifest,
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
    match crate_lock::acquire(&env.rust_cache.join("locks"), crate_dir, cancel, || {
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

/// Runs `work` unless the token is cancelled first.
async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Result<T, BuildError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(BuildError::Cancelled),
        result = work => result.map_err(BuildError::Failed),
    }
}

/// `" · features a,b"` or nothing, for stage details.
fn features_suffix(features: &[String]) -> String {
    if features.is_empty() {
        String::new()
    } else {
        format!(" · features {}", features.join(","))
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
