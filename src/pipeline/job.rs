//! What one build is given (the request, the environment under
//! `$ARCA_HOME` and its engine), what it reports while it runs (events) and
//! what it returns (outcomes, errors). Plain types every stage of the
//! pipeline shares; the stages themselves live beside this file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::engine::{self, ContainerEngine};
use crate::image::base::Bases;
use crate::manifest::Manifest;
use crate::plan::{self, BuildSettings, SettingsOverrides};
use crate::store::{Store, StoredArtifact};
use crate::workspace::CrateFacts;

use super::cargo_messages::CompilerDiagnostic;

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
    /// The crate's config and facts passed: the build goes ahead (a config
    /// with an error is refused before this, so nothing says "building").
    Prepared,
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
    /// The binary on the host (for the builder's own platform).
    pub binary: PathBuf,
    /// The binaries cross-compiled for the other platforms asked for.
    pub cross: Vec<super::cross::CrossBinary>,
    pub diagnostics: Vec<CompilerDiagnostic>,
    /// Exactly what went into the binary; its digest is the artifact's
    /// `build_fingerprint`.
    pub manifest: Manifest,
    pub sbom_inputs: SbomInputs,
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

/// What cargo left behind, before the manifest is recorded.
pub(super) struct Compiled {
    pub(super) binary: PathBuf,
    /// The binaries cross-compiled for the other platforms.
    pub(super) cross: Vec<super::cross::CrossBinary>,
    pub(super) diagnostics: Vec<CompilerDiagnostic>,
    /// A host directory with cargo's `<profile>/<bin>.d` and
    /// `<profile>/build/*/output`.
    pub(super) target_dir: PathBuf,
    /// Path prefixes as the build saw them → host paths.
    pub(super) path_map: Vec<(PathBuf, PathBuf)>,
    pub(super) record_env: bool,
    pub(super) sbom_inputs: SbomInputs,
}

/// What the build tells the SBOM and the provenance about how it ran.
#[derive(Debug, Clone, Default)]
pub struct SbomInputs {
    /// The host directory of the cargo home the build used (`None`: the
    /// user's own, or one on a remote engine).
    pub cargo_home: Option<PathBuf>,
    /// The target triple the binary was built for.
    pub target: String,
    /// The builder image's tag and id (`None`: a host build).
    pub builder_image: Option<(String, String)>,
    /// When the build started.
    pub started_epoch_ms: u64,
}

/// Runs `work` unless the token is cancelled first.
pub(super) async fn cancellable<T>(
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
pub(super) fn features_suffix(features: &[String]) -> String {
    if features.is_empty() {
        String::new()
    } else {
        format!(" · features {}", features.join(","))
    }
}
