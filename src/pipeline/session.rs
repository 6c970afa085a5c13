//! Warm build sessions on a local engine.
//!
//! Starting a container costs about 0.3–0.5 s on a typical engine, more than
//! cargo needs for a small incremental rebuild. So on a local engine the
//! crate's cargo runs through `exec` in a session container: a container of
//! the builder image with the build's mounts, running `sleep` for
//! [`SESSION_SECONDS`] and removed by the engine when that ends
//! (`auto_remove`), so an idle session never outlives that time.
//!
//! One session per crate build cache, source root, builder image and `ARCA_HOME`
//! (`arca-session-<hash>`), labelled [`SESSION_LABEL`] and with the crate
//! directory label. A cancelled or failed build removes its session
//! (which kills cargo); a session that ended during a build makes the build
//! run again in a container of its own. `ARCA_BUILD_SESSIONS=0` turns
//! sessions off.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::job::{BuildError, cancellable};
use crate::engine::{ContainerEngine, ContainerSpec, ExecSpec, LineSink};

/// Label on session containers; the value is the session's name.
pub const SESSION_LABEL: &str = "io.khoek.arca.session";
/// How long a session lives after it starts.
pub const SESSION_SECONDS: u32 = 600;

/// Runs `spec`'s command in the session `name` (created from `spec` when
/// missing). `Ok(None)`: no session could run it (it could not start, or it
/// ended mid-build); run it in a container of its own instead.
pub(super) async fn run(
    engine: &Arc<dyn ContainerEngine>,
    spec: &ContainerSpec,
    name: &str,
    output: LineSink<'_>,
    cancel: &CancellationToken,
) -> Result<Option<i64>, BuildError> {
    match cancellable(cancel, engine.container_running(name)).await? {
        Some(true) => {}
        Some(false) => {
            let _ = engine.remove_container(name).await;
            if !start(engine, spec, name, cancel).await? {
                return Ok(None);
            }
        }
        None => {
            if !start(engine, spec, name, cancel).await? {
                return Ok(None);
            }
        }
    }
    let exec = ExecSpec {
        cmd: spec.cmd.clone(),
        env: spec.env.clone(),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
    };
    let result = cancellable(cancel, engine.exec(name, &exec, output)).await;
    match result {
        Ok(0) => Ok(Some(0)),
        Ok(code) => {
            // A non-zero code is cargo's verdict only if the session still runs.
            if engine.container_running(name).await.ok().flatten() == Some(true) {
                Ok(Some(code))
            } else {
                Ok(None)
            }
        }
        Err(BuildError::Cancelled) => {
            let _ = engine.remove_container(name).await;
            Err(BuildError::Cancelled)
        }
        Err(error) => {
            let alive = engine.container_running(name).await.ok().flatten() == Some(true);
            let _ = engine.remove_container(name).await;
            if alive { Err(error) } else { Ok(None) }
        }
    }
}

/// Creates and starts the session; false when the builder image cannot run
/// one (no `sleep`, ...).
async fn start(
    engine: &Arc<dyn ContainerEngine>,
    spec: &ContainerSpec,
    name: &str,
    cancel: &CancellationToken,
) -> Result<bool, BuildError> {
    let mut labels = spec.labels.clone();
    labels.retain(|(key, _)| key != crate::engine::BUILD_LABEL);
    labels.push((SESSION_LABEL.to_owned(), name.to_owned()));
    let session = ContainerSpec {
        cmd: vec!["sleep".into(), SESSION_SECONDS.to_string()],
        name: Some(name.to_owned()),
        auto_remove: true,
        labels,
        ..spec.clone()
    };
    let created = match cancellable(cancel, engine.create_container(&session)).await {
        Ok(id) => id,
        Err(BuildError::Cancelled) => return Err(BuildError::Cancelled),
        Err(error) => {
            tracing::debug!("no build session: {error}");
            return Ok(false);
        }
    };
    match cancellable(cancel, engine.start_container(&created)).await {
        Ok(()) => Ok(true),
        Err(error) => {
            let _ = engine.remove_container(&created).await;
            match error {
                BuildError::Cancelled => Err(BuildError::Cancelled),
                other => {
                    tracing::debug!("no build session: {other}");
                    Ok(false)
                }
            }
        }
    }
}
