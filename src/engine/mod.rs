//! The container engine seam: the small trait the build pipeline talks to
//! and the plain data it exchanges (`contract`, re-exported here), and
//! [`connect`].
//!
//! Only [`docker`] knows bollard; everything else sees [`ContainerEngine`].
//! [`discovery`] decides where to look for an engine (Docker or podman)
//! and which kind answered.
//! [`ping`] tells the engine kind and API version from `/_ping`'s headers.
//! [`tar_context`] makes the in-memory tar archives that engines consume
//! (build contexts, source uploads).

mod contract;
pub mod discovery;
pub mod docker;
pub mod ping;
pub mod run_log;
pub mod tar_context;

use std::sync::Arc;

use anyhow::Result;

pub use contract::*;
pub use docker::DockerEngine;

/// Connects to the engine named by `DOCKER_HOST`, or else to the first
/// that answers among the Docker socket and podman's sockets (see
/// [`discovery::candidates`]; `--engine`/`ARCA_ENGINE` narrow the search),
/// negotiates the API version and checks that it answers.
pub async fn connect() -> Result<Arc<dyn ContainerEngine>> {
    Ok(Arc::new(DockerEngine::connect().await?))
}

/// Connects to the engine at `endpoint` (`unix:///...`, `tcp://...`), as
/// if `DOCKER_HOST` named it; Docker or podman, whichever answers there.
pub async fn connect_at(endpoint: &str) -> Result<Arc<dyn ContainerEngine>> {
    Ok(Arc::new(DockerEngine::connect_at(endpoint).await?))
}

/// Force-removes every container carrying `label` (best effort: returns
/// how many were removed).
pub async fn remove_labelled_containers(engine: &dyn ContainerEngine, label: &str) -> usize {
    let Ok(ids) = engine.containers_with_labels(&[label]).await else {
        return 0;
    };
    let mut removed = 0;
    for id in ids {
        if engine.remove_container(&id).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Streams a started container's output until it exits; returns its exit
/// code. The output stream gets [`LOG_DRAIN_AFTER_EXIT`] after the exit to
/// finish, so an engine whose log stream never ends cannot hang the caller.
pub async fn output_until_exit(
    engine: &dyn ContainerEngine,
    container: &str,
    output: LineSink<'_>,
) -> Result<i64> {
    let follow = engine.follow_output(container, output);
    let wait = engine.wait_container(container);
    tokio::pin!(follow, wait);
    tokio::select! {
        followed = &mut follow => {
            followed?;
            wait.await
        }
        exit = &mut wait => {
            let exit = exit?;
            match tokio::time::timeout(LOG_DRAIN_AFTER_EXIT, follow).await {
                Ok(followed) => followed?,
                Err(_) => tracing::warn!(
                    container,
                    "the engine's log stream went on {} s after the container exited; stopped following it",
                    LOG_DRAIN_AFTER_EXIT.as_secs()
                ),
            }
            Ok(exit)
        }
    }
}
