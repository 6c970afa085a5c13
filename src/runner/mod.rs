//! Running a crate's newest image (`arca run`, the editors' Run Image):
//! the run settings of `.arca/config.toml` `[run]` turned into the engine's
//! run spec, the container started with the engine's init, its output
//! followed line by line, and the container removed when it exits or is
//! stopped. The CLI and the language server both use [`start`] and
//! [`follow`]; building first (when stale) is theirs, through
//! [`crate::pipeline::package`].
//!
//! Invariants: every container made here carries [`RUN_LABEL`] and
//! [`CRATE_DIR_LABEL`] (value: the crate directory) and is removed by [`follow`] whatever happens after it
//! was created; stopping is SIGTERM through the init, then SIGKILL after
//! [`STOP_GRACE_SECONDS`].

pub mod live;
mod live_lock;
pub mod supervisor;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::run::RunConfig;
use crate::engine::{ContainerEngine, ContainerSpec, LineSink, RunSpec};
use crate::pipeline::CRATE_DIR_LABEL;
use crate::store::StoredArtifact;

/// Label on every container `arca run` starts; its value is the crate
/// directory.
pub const RUN_LABEL: &str = "io.khoek.arca.run";
/// How long a stopped program gets to exit before it is killed.
pub const STOP_GRACE_SECONDS: i32 = 10;

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub container: String,
    /// The image tag it runs.
    pub image: String,
}

/// The crate's `[run]` settings from its saved config (empty when there is
/// none; the caller refuses configs with errors before this).
pub fn run_config(crate_dir: &Path) -> Result<RunConfig> {
    let path = crate::config::config_path(crate_dir);
    match crate::fsread::read_to_string(&path, crate::fsread::Kind::Config) {
        Ok(text) => Ok(crate::config::run::parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(RunConfig::default()),
        Err(error) => Err(error).with_context(|| format!("Failed to read {}", path.display())),
    }
}

/// The engine's run spec for `artifact`: `args` (when given) replace the
/// config's arguments.
pub fn run_spec(
    artifact: &StoredArtifact,
    crate_dir: &Path,
    config: &RunConfig,
    args: Option<Vec<String>>,
) -> RunSpec {
    RunSpec {
        container: ContainerSpec {
            image: artifact.metadata.local_tag.clone(),
            cmd: args.unwrap_or_else(|| config.args.clone()),
            env: config.env.clone(),
            labels: vec![
                (RUN_LABEL.to_owned(), crate_dir.display().to_string()),
                (CRATE_DIR_LABEL.to_owned(), crate_dir.display().to_string()),
            ],
            ..Default::default()
        },
        ports: config.ports.clone(),
        init: true,
        gpus: config.gpus,
    }
}

/// Makes sure the engine has the artifact's image (loading its archive
/// from the store when the tag is gone), then creates and starts the
/// container.
pub async fn start(engine: &Arc<dyn ContainerEngine>, spec: &RunSpec) -> Result<Started> {
    let image = spec.container.image.clone();
    Ok(Started {
        container: create_and_start(engine, spec).await?,
        image,
    })
}

async fn create_and_start(engine: &Arc<dyn ContainerEngine>, spec: &RunSpec) -> Result<String> {
    let container = engine.create_run_container(spec).await?;
    if let Err(error) = engine.start_container(&container).await {
        let _ = engine.remove_container(&container).await;
        return Err(error);
    }
    Ok(container)
}

/// Makes sure the engine holds the artifact's image: loads the archive from
/// the store when the tag is gone.
pub async fn ensure_image(
    engine: &Arc<dyn ContainerEngine>,
    artifact: &StoredArtifact,
) -> Result<()> {
    let tag = &artifact.metadata.local_tag;
    if engine.inspect_image(tag).await?.is_some() {
        return Ok(());
    }
    let archive = artifact.archive_path();
    if !archive.is_file() {
        anyhow::bail!(
            "The engine no longer has the image {tag} and artifact {} kept no archive to load it from. Build again with --force.",
            artifact.metadata.artifact_id
        );
    }
    engine
        .load_image(&archive)
        .await
        .with_context(|| format!("Failed to load {} into the engine", archive.display()))
}

/// Refuses a platform this machine cannot run: one other than its own
/// needs QEMU registered with the kernel's binfmt_misc (checked for a
/// local engine; a remote one is left to say so itself).
pub fn check_emulation(platform: crate::platform::Platform) -> Result<()> {
    if platform == crate::platform::Platform::host() {
        return Ok(());
    }
    let remote = std::env::var("DOCKER_HOST").is_ok_and(|host| host.starts_with("tcp://"));
    if remote {
        return Ok(());
    }
    let qemu = match platform.rust_target().split('-').next().unwrap_or_default() {
        "armv7" => "arm",
        "i686" => "i386",
        "powerpc64le" => "ppc64le",
        "riscv64gc" => "riscv64",
        other => other,
    };
    let entry = std::path::Path::new("/proc/sys/fs/binfmt_misc").join(format!("qemu-{qemu}"));
    let enabled =
        std::fs::read_to_string(&entry).is_ok_and(|text| text.lines().next() == Some("enabled"));
    if !enabled {
        anyhow::bail!(
            "This machine cannot run {platform} images: no QEMU is registered for it with binfmt_misc ({} is missing). Install Debian's `qemu-user-static` and `binfmt-support` (or run `docker run --privileged --rm tonistiigi/binfmt --install {}`), or run the image on a {platform} machine.",
            entry.display(),
            platform.architecture()
        );
    }
    Ok(())
}

/// Loads the artifact's `platform` image into the engine under a tag of
/// its own (`<tag>-linux-arm64`), from its layout; returns the tag.
pub async fn load_platform_image(
    engine: &Arc<dyn ContainerEngine>,
    env: &crate::pipeline::BuildEnv,
    artifact: &StoredArtifact,
    platform: crate::platform::Platform,
) -> Result<String> {
    let tag = format!(
        "{}-{}",
        artifact.metadata.local_tag,
        platform.name().replace('/', "-")
    );
    let dir = tempfile::tempdir().context("Cannot create a temporary directory")?;
    let archive = dir.path().join("image.tar");
    {
        let (blobs, artifact_dir, tag, archive) = (
            env.blobs().clone(),
            artifact.dir.clone(),
            tag.clone(),
            archive.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let _lock = blobs.lock_shared()?;
            crate::image::export::export_platform(
                &blobs,
                &artifact_dir,
                &tag,
                &archive,
                Some(platform),
            )
        })
        .await
        .context("The export task failed")??;
    }
    engine
        .load_image(&archive)
        .await
        .with_context(|| format!("Failed to load the {platform} image into the engine"))?;
    Ok(tag)
}

/// Follows the container's output until it exits, then removes it;
/// returns its exit code.
pub async fn follow(
    engine: &Arc<dyn ContainerEngine>,
    container: &str,
    output: LineSink<'_>,
) -> Result<i64> {
    let exit = crate::engine::output_until_exit(engine.as_ref(), container, output).await;
    let _ = engine.remove_container(container).await;
    exit
}

/// Stops the container (the init forwards SIGTERM to the program; killed
/// after the grace time). [`follow`] then sees it exit and removes it.
pub async fn stop(engine: &Arc<dyn ContainerEngine>, container: &str) -> Result<()> {
    engine.stop_container(container, STOP_GRACE_SECONDS).await
}

/// A container id as `docker ps` shows it (its first 12 characters).
pub fn short_id(container: &str) -> &str {
    container.get(..12).unwrap_or(container)
}
