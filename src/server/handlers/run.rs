//! `arca.run` and `arca.stop` (PROTOCOL.md additions), and `arca.buildLog`
//! (where the last build's log is): package the crate
//! when stale (the `arca.package` operation, with its progress and cancel),
//! then run the newest image through [`crate::runner`]; every line it
//! prints goes to the client as an `arca/output` notification, and a last
//! one carries its exit code. The running container shows in the status
//! object's `running` until it exits and is removed.
//!
//! **One run per crate:** a second `arca.run` while one runs is refused
//! with a message saying how to stop it. `arca.stop` with nothing running
//! answers `null` without touching the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;

use super::failed;
use crate::engine::{ContainerEngine, OutputLine, Stream};
use crate::pipeline::BuildEnv;
use crate::runner;
use crate::server::builds;
use crate::server::command_args::RunArgs;
use crate::server::crate_status;
use crate::server::event::{Answer, Event, TaskResult};
use crate::server::ext::{BuildArgs, OutputNotification, OutputParams};
use crate::server::live_run::LiveRunTask;
use crate::server::runs::RunChange;
use crate::server::state::State;
use crate::status::RunningContainer;

pub fn start(state: &mut State, dir: &Path, args: RunArgs) -> jsonrpc::Result<Answer> {
    let name = state
        .crates
        .get(dir)
        .map(|entry| entry.name())
        .unwrap_or_default();
    let generation = state.generation();
    let stop = CancellationToken::new();
    let Some(entry) = state.crates.get_mut(dir) else {
        return Err(failed(format!(
            "{} is not a crate of this workspace (any more).",
            dir.display()
        )));
    };
    if let Err(refusal) = entry.activity.begin_run(generation, stop.clone()) {
        return Err(failed(builds::refused(&name, &refusal)));
    }
    let crate_uri = entry.uri.clone();
    if args.live {
        return Ok(start_live(
            state,
            dir,
            crate_uri,
            (generation, stop),
            args.args,
        ));
    }
    let package = builds::start(
        state,
        builds::Kind::Package,
        dir,
        BuildArgs {
            crate_uri: Some(crate_uri.clone()),
            force: args.force,
            ..Default::default()
        },
    );
    let package = match package {
        Ok(Answer::Later(package)) => package,
        refused => {
            // The run never started: forget it.
            if let Some(entry) = state.crates.get_mut(dir) {
                entry.activity.run_ended(generation);
            }
            return match refused {
                Err(error) => Err(error),
                Ok(_) => Err(failed("Packaging answered without building; try again.")),
            };
        }
    };
    let task = RunTask {
        client: state.client.clone(),
        events: state.events.clone(),
        crate_dir: dir.to_path_buf(),
        crate_uri,
        generation,
        stop,
        program_args: args.args,
    };
    Ok(Answer::Later(
        async move {
            let result = task.clone().launch(package.await).await;
            if result.is_err() {
                task.ended();
            }
            result
        }
        .boxed(),
    ))
}

/// `arca.run` with `live`: the live run's task (see
/// [`crate::server::live_run`]) answers once its first container runs.
fn start_live(
    state: &mut State,
    dir: &Path,
    crate_uri: String,
    (generation, stop): (u64, CancellationToken),
    program_args: Option<Vec<String>>,
) -> Answer {
    let task = LiveRunTask {
        client: state.client.clone(),
        events: state.events.clone(),
        crate_dir: dir.to_path_buf(),
        crate_uri,
        generation,
        stop,
        program_args,
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    tokio::spawn(task.run(answer));
    Answer::Later(
        async move {
            answered
                .await
                .unwrap_or_else(|_| Err(failed("The live run ended before it started.")))
        }
        .boxed(),
    )
}

/// Stops the crate's run (nothing running: nothing to do).
pub fn stop(state: &mut State, dir: &Path) -> Answer {
    if let Some(entry) = state.crates.get(dir) {
        entry.activity.stop_run();
    }
    Answer::Now(None)
}

/// `arca.buildLog`: where the crate's last build log is (`crate::build_log`),
/// `{ "path": null }` when it has none yet.
pub fn build_log(dir: &Path) -> Answer {
    let path = crate::paths::arca_home()
        .ok()
        .map(|home| crate::build_log::path_for(&home, dir))
        .filter(|path| path.is_file());
    Answer::Now(Some(json!({ "path": path })))
}

/// The loop's side of a run's start, end or live rebuild: remember it,
/// publish the diagnostics and the status. A report of a run that ended
/// (or of a crate that left the workspace) is dropped.
pub fn on_change(state: &mut State, change: RunChange) {
    let (dir, ours, diagnostics) = match change {
        RunChange::Started {
            crate_dir,
            generation,
            running,
        } => {
            let ours = state
                .crates
                .get_mut(&crate_dir)
                .is_some_and(|entry| entry.activity.run_started(generation, running));
            (crate_dir, ours, None)
        }
        RunChange::Ended {
            crate_dir,
            generation,
        } => {
            let ours = state
                .crates
                .get_mut(&crate_dir)
                .is_some_and(|entry| entry.activity.run_ended(generation));
            (crate_dir, ours, None)
        }
        RunChange::LiveCompiled {
            crate_dir,
            generation,
            diagnostics,
            updated_at,
        } => {
            let ours = state
                .crates
                .get_mut(&crate_dir)
                .is_some_and(|entry| entry.activity.updated_live(generation, updated_at));
            (crate_dir, ours, Some(diagnostics))
        }
    };
    if !ours {
        return;
    }
    if let Some(diagnostics) = diagnostics {
        crate::server::rust_diagnostics::publish(state, &dir, diagnostics);
    }
    crate_status::publish(state, &dir);
}

#[derive(Clone)]
struct RunTask {
    client: tower_lsp::Client,
    events: mpsc::UnboundedSender<Event>,
    crate_dir: PathBuf,
    crate_uri: String,
    generation: u64,
    stop: CancellationToken,
    program_args: Option<Vec<String>>,
}

impl RunTask {
    /// After packaging: start the container and follow it in the
    /// background; answers with the container and image.
    async fn launch(
        self,
        packaged: jsonrpc::Result<Option<Value>>,
    ) -> jsonrpc::Result<Option<Value>> {
        packaged?;
        if self.stop.is_cancelled() {
            return Ok(None);
        }
        let env = BuildEnv::from_arca_home().map_err(|error| failed(format!("{error:#}")))?;
        let Some(artifact) = env.store().newest_for_crate(&self.crate_dir) else {
            return Err(failed(
                "The crate has no image in the store after packaging. Build it again.",
            ));
        };
        let engine = env
            .engine()
            .await
            .map_err(|error| failed(format!("{error:#}")))?;
        let config =
            runner::run_config(&self.crate_dir).map_err(|error| failed(format!("{error:#}")))?;
        let spec = runner::run_spec(
            &artifact,
            &self.crate_dir,
            &config,
            self.program_args.clone(),
        );
        runner::ensure_image(&engine, &artifact)
            .await
            .map_err(|error| failed(format!("{error:#}")))?;
        let started = runner::start(&engine, &spec)
            .await
            .map_err(|error| failed(format!("{error:#}")))?;
        let running = RunningContainer {
            container: started.container.clone(),
            image: started.image.clone(),
            started_at: epoch_ms(),
            live: false,
            updated_live_at: None,
        };
        let _ = self
            .events
            .send(Event::Task(TaskResult::Run(RunChange::Started {
                crate_dir: self.crate_dir.clone(),
                generation: self.generation,
                running,
            })));
        let answer = json!({"container": started.container, "image": started.image});
        tokio::spawn(self.follow(engine, started.container));
        Ok(Some(answer))
    }

    /// Streams the container's output as `arca/output` until it exits
    /// (or `arca.stop` stops it), then reports the exit code.
    async fn follow(self, engine: Arc<dyn ContainerEngine>, container: String) {
        let (lines, mut queue) = mpsc::unbounded_channel::<OutputParams>();
        let sender = {
            let client = self.client.clone();
            tokio::spawn(async move {
                while let Some(params) = queue.recv().await {
                    client.send_notification::<OutputNotification>(params).await;
                }
            })
        };
        let stopper = {
            let engine = engine.clone();
            let container = container.clone();
            let stop = self.stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                let _ = runner::stop(&engine, &container).await;
            })
        };
        let sink = |line: OutputLine| {
            let _ = lines.send(OutputParams {
                crate_uri: self.crate_uri.clone(),
                container: container.clone(),
                stream: Some(
                    match line.stream {
                        Stream::Stdout => "stdout",
                        Stream::Stderr => "stderr",
                    }
                    .to_owned(),
                ),
                text: Some(line.text),
                exit_code: None,
            });
        };
        let exit = runner::follow(&engine, &container, &sink).await;
        stopper.abort();
        let exit_code = match exit {
            Ok(code) => code,
            Err(error) => {
                sink(OutputLine {
                    stream: Stream::Stderr,
                    text: format!("{error:#}"),
                });
                -1
            }
        };
        let _ = lines.send(OutputParams {
            crate_uri: self.crate_uri.clone(),
            container: container.clone(),
            stream: None,
            text: None,
            exit_code: Some(exit_code),
        });
        drop(lines);
        let _ = sender.await;
        self.ended();
    }

    fn ended(&self) {
        let _ = self
            .events
            .send(Event::Task(TaskResult::Run(RunChange::Ended {
                crate_dir: self.crate_dir.clone(),
                generation: self.generation,
            })));
    }
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
