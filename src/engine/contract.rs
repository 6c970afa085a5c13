//! What the build pipeline and the runners ask of a container engine: the
//! [`ContainerEngine`] trait and the plain data it exchanges. Knows no
//! engine; [`super::docker`] implements it over bollard.

use std::path::{Path, PathBuf};

use anyhow::Result;
use async_trait::async_trait;

/// Receives progress while an image is pulled.
pub type PullSink<'a> = &'a (dyn Fn(PullProgress) + Send + Sync);
/// Receives each complete output line (of an image build or a container).
pub type LineSink<'a> = &'a (dyn Fn(OutputLine) + Send + Sync);
/// Receives the byte count written so far while an archive is exported.
pub type BytesSink<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// One progress report of a pull: a layer's status and, while it downloads
/// or extracts, how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer id, or empty for image-wide status lines.
    pub layer: String,
    /// The engine's status text (`Downloading`, `Pull complete`, ...).
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    pub text: String,
}

/// Where a mount's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A directory on the engine's host (only reaches a local engine).
    HostPath(PathBuf),
    /// A named volume (works on any engine).
    Volume(String),
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to create a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    pub image: String,
    /// Replaces the image's entrypoint when given.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// `uid:gid` (or a name) to run as; the image's user when absent.
    pub user: Option<String>,
    pub mounts: Vec<MountSpec>,
    /// Labels; every container Arca creates carries [`BUILD_LABEL`].
    pub labels: Vec<(String, String)>,
    /// A fixed name (the engine picks one when absent).
    pub name: Option<String>,
    /// Let the engine remove the container when it exits.
    pub auto_remove: bool,
}

/// A port published on the engine's host: `host` (the engine picks one
/// when `None`) → `container`/`protocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host: Option<u16>,
    pub container: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// GPU access for a container, sent as the engine's device request
/// (`--gpus all` / `--gpus N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuRequest {
    All,
    Count(u32),
}

/// Everything needed to create a container that runs an image for the
/// user (`arca run`): the plain container plus what only running needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub container: ContainerSpec,
    pub ports: Vec<PortSpec>,
    /// Run the engine's init as PID 1, so signals (Ctrl-C, `docker stop`)
    /// reach the program and zombies are reaped.
    pub init: bool,
    pub gpus: Option<GpuRequest>,
}

/// A command to run in a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// What Arca needs to know about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub size: Option<u64>,
    pub labels: Vec<(String, String)>,
}

/// The label every container and volume Arca creates carries; its value is
/// the build (artifact) id for containers.
pub const BUILD_LABEL: &str = "io.khoek.arca.build";

/// A container engine, as the build pipeline uses it. Every method maps
/// engine errors to messages that say what failed and what to do.
#[async_trait]
pub trait ContainerEngine: Send + Sync {
    /// Where the engine is (`unix:///var/run/docker.sock`, `tcp://...`).
    fn endpoint(&self) -> &str;
    /// The runtime name recorded in artifact records: `docker`, or
    /// `podman` when the engine's `/version` names the Podman engine.
    fn runtime_name(&self) -> &'static str;
    /// Whether [`Self::load_image`] accepts a thin docker-archive: one whose
    /// `manifest.json` lists a layer the engine already holds but omits
    /// that layer's `layer.tar`. Docker skips layers it has (true); podman
    /// refuses the archive at once ("Some layer tarfiles are missing in the
    /// tarball", false), so it must be sent complete or the new layer must
    /// reach it another way (e.g. an image build FROM the base it holds).
    fn accepts_thin_archives(&self) -> bool;
    /// Whether the engine runs rootless (rootless Docker: `name=rootless`
    /// among its security options; podman: its socket belongs to a user
    /// other than root):
    /// the container's root is then the invoking host user, and other
    /// container uids map to subordinate ids the user does not own. A
    /// build that writes to host bind mounts runs as `0:0` there, and as
    /// the host `uid:gid` on a rootful engine.
    fn is_rootless(&self) -> bool;
    /// Whether the engine runs elsewhere, so host bind mounts do not reach it.
    fn is_remote(&self) -> bool;
    /// The platform the engine runs natively: the builder's, and the image
    /// a build loads into it. (Default: this machine's.)
    fn platform(&self) -> crate::platform::Platform {
        crate::platform::Platform::host()
    }

    /// The image's facts, or `None` when the engine does not have it.
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageFacts>>;
    /// Pulls an image, reporting per-layer progress.
    async fn pull_image(&self, reference: &str, progress: PullSink<'_>) -> Result<()>;
    /// Builds an image with the classic builder from an uncompressed tar
    /// context holding `Containerfile`, streaming the builder's output.
    async fn build_image(&self, tag: &str, context: Vec<u8>, output: LineSink<'_>) -> Result<()>;
    /// [`ContainerEngine::build_image`] with build arguments (e.g. the
    /// proxy variables, which the classic builder keeps out of the image's
    /// config and history). The default ignores them.
    async fn build_image_with_args(
        &self,
        tag: &str,
        context: Vec<u8>,
        build_args: &[(String, String)],
        output: LineSink<'_>,
    ) -> Result<()> {
        let _ = build_args;
        self.build_image(tag, context, output).await
    }
    /// Removes an image tag; a missing image is not an error.
    async fn remove_image(&self, reference: &str) -> Result<()>;
    /// Streams an image archive (`docker save` format) into `dest`.
    /// Returns the bytes written.
    async fn export_image(
        &self,
        reference: &str,
        dest: &Path,
        progress: BytesSink<'_>,
    ) -> Result<u64>;
    /// Loads an image archive (`docker load`), streaming it from `archive`.
    async fn load_image(&self, archive: &Path) -> Result<()>;
    /// Streams an image archive (`docker save` format) into `sink` as the
    /// engine sends it, reporting the bytes so far. Returns the bytes sent.
    /// The default goes through a temporary file.
    async fn export_image_to(
        &self,
        reference: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
        progress: BytesSink<'_>,
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("image.tar");
        let bytes = self.export_image(reference, &path, progress).await?;
        let mut file = tokio::fs::File::open(&path).await?;
        tokio::io::copy(&mut file, sink).await?;
        sink.flush().await?;
        Ok(bytes)
    }

    /// Creates (does not start) a container; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    /// Creates (does not start) a container that runs an image for the
    /// user: published ports, the engine's init, GPU device requests.
    /// Returns its id. (Default, for engines that have not added it: a
    /// clear refusal.)
    async fn create_run_container(&self, spec: &RunSpec) -> Result<String> {
        anyhow::bail!(
            "The {} engine at {} cannot run `{}` from Arca yet. Run it with the engine's own CLI.",
            self.runtime_name(),
            self.endpoint(),
            spec.container.image
        )
    }
    /// Stops a running container: SIGTERM, then SIGKILL after
    /// `grace_seconds`. One that is gone or stopped is fine. (Default:
    /// kill at once.)
    async fn stop_container(&self, container: &str, grace_seconds: i32) -> Result<()> {
        let _ = grace_seconds;
        self.kill_container(container).await
    }
    /// Extracts an uncompressed tar archive at `dest` inside the container.
    async fn upload_tar(&self, container: &str, dest: &str, tar: Vec<u8>) -> Result<()>;
    async fn start_container(&self, container: &str) -> Result<()>;
    /// Attaches to a created or stopped container's output, starts it, and
    /// forwards what this run of it prints (never earlier runs' output)
    /// until it stops; returns its exit code. A live update restarts one
    /// container many times and follows each run this way. (Default: a
    /// clear refusal.)
    async fn start_attached(&self, container: &str, output: LineSink<'_>) -> Result<i64> {
        let _ = output;
        anyhow::bail!(
            "The {} engine at {} cannot attach to container {container}.",
            self.runtime_name(),
            self.endpoint()
        )
    }
    /// Follows the container's output until it exits, line by line.
    async fn follow_output(&self, container: &str, output: LineSink<'_>) -> Result<()>;
    /// Waits for a started container to exit; returns its exit code.
    async fn wait_container(&self, container: &str) -> Result<i64>;
    /// Kills a running container; one that is gone or stopped is fine.
    async fn kill_container(&self, container: &str) -> Result<()>;
    /// Sends `signal` (`SIGUSR1`, …) to the container's main process.
    /// (Default: a clear refusal.)
    async fn signal_container(&self, container: &str, signal: &str) -> Result<()> {
        anyhow::bail!(
            "The {} engine at {} cannot send {signal} to container {container}.",
            self.runtime_name(),
            self.endpoint()
        )
    }
    /// Force-removes a container; a missing one is fine.
    async fn remove_container(&self, container: &str) -> Result<()>;
    /// Reads one regular file out of a (possibly stopped) container;
    /// `None` when the path does not exist.
    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>>;
    /// A tar archive of `path` (file or directory) in a (possibly stopped)
    /// container; `None` when the path does not exist.
    async fn download_archive(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>>;
    /// Whether `path` exists in a (possibly never started) container.
    async fn path_exists(&self, container: &str, path: &str) -> Result<bool>;
    /// Ids of all containers (running or not) carrying every one of
    /// `labels` (each `key` or `key=value`).
    async fn containers_with_labels(&self, labels: &[&str]) -> Result<Vec<String>>;
    /// Whether the container runs; `None` when it does not exist.
    async fn container_running(&self, container: &str) -> Result<Option<bool>>;
    /// Runs a command in a running container, streaming its output line
    /// by line; returns its exit code.
    async fn exec(&self, container: &str, spec: &ExecSpec, output: LineSink<'_>) -> Result<i64>;

    /// Creates a named volume if it does not exist.
    async fn ensure_volume(&self, name: &str, labels: &[(String, String)]) -> Result<()>;
    /// Removes a named volume; a missing one is fine.
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// Names of the volumes carrying `label`.
    async fn volumes_with_label(&self, label: &str) -> Result<Vec<String>>;
}

/// How long a container's log stream may go on after the engine reported
/// the container's exit. The rest of the output normally arrives at once,
/// but podman's log follow has been seen never to end for a container that
/// exits while it attaches (podman issues #6627, #11461); the stream is
/// dropped then instead of waiting forever.
pub const LOG_DRAIN_AFTER_EXIT: std::time::Duration = std::time::Duration::from_secs(5);
