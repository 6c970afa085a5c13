//! The build operation behind `arca.build`, `arca.package` and the package
//! step of `arca.run`: one operation per crate, run off the
//! loop with `crate::pipeline`, reported as `$/progress` on a server-created
//! token (stage as message, pull/export percentages), the build's output as
//! `window/logMessage` (type Log), and compiler diagnostics published on
//! the Rust sources when it ends.
//!
//! **The rule for two builds of one crate:** the second request is refused
//! with a message saying a build is running (cancel it with `arca.cancel`
//! or wait), so every build the editor starts has one progress and one
//! answer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::request::WorkDoneProgressCreate;
use tower_lsp::lsp_types::{
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};

use crate::pipeline::{self, BuildEnv, BuildError, BuildEvent, BuildRequest, CompilerDiagnostic};
use crate::plan::SettingsOverrides;
use crate::server::crate_status;
use crate::server::event::Answer;
use crate::server::event::Finished;
use crate::server::event::{Event, TaskResult};
use crate::server::ext::BuildArgs;
use crate::server::handlers::failed;
use crate::server::model::activity::{Operation, OperationKind, ProgressToken, Refusal};
use crate::server::outbox::{Outbox, Outgoing};
use crate::server::rust_diagnostics;
use crate::server::state::State;

/// Which command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Build,
    Package,
}

impl Kind {
    fn operation(self) -> OperationKind {
        match self {
            Kind::Build => OperationKind::Build,
            Kind::Package => OperationKind::Package,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Kind::Build => "Building",
            Kind::Package => "Packaging",
        }
    }
}

pub fn start(
    state: &mut State,
    kind: Kind,
    dir: &Path,
    args: BuildArgs,
) -> jsonrpc::Result<Answer> {
    let name = state
        .crates
        .get(dir)
        .map(|entry| entry.name())
        .unwrap_or_default();
    let request = BuildRequest {
        path: dir.to_path_buf(),
        overrides: SettingsOverrides {
            profile: args.profile,
            features: args.features.map(|features| features.into_values()),
            bin: args.bin,
            base_image: args.base_image,
            platforms: None,
        },
        host_build: args.host_build,
        force: args.force,
    };
    let cancel = CancellationToken::new();
    let generation = state.generation();
    let token = ProgressToken::String(format!("arca/{generation}"));
    let Some(entry) = state.crates.get_mut(dir) else {
        return Err(failed(format!(
            "{} is not a crate of this workspace (any more).",
            dir.display()
        )));
    };
    let operation = Operation {
        generation,
        kind: kind.operation(),
        cancel: cancel.clone(),
        progress: Some(token.clone()),
    };
    if let Err(refusal) = entry.activity.begin(operation) {
        return Err(failed(refused(&name, &refusal)));
    }
    // `building` is published once the build is prepared (its config
    // checked): a refused build never says it was building.
    let run = Run {
        client: state.client.clone(),
        outbox: state.outbox.clone(),
        progress: state.client_progress.then(|| token.into()),
        kind,
        name,
        crate_dir: dir.to_path_buf(),
        archive: args.archive,
    };
    let guard = FinishGuard {
        events: state.events.clone(),
        crate_dir: dir.to_path_buf(),
        generation,
        armed: true,
    };
    let future = std::panic::AssertUnwindSafe(run.execute(request, cancel, guard)).catch_unwind();
    Ok(Answer::Later(
        async move {
            future.await.unwrap_or_else(|panic| {
                Err(failed(crate::server::jobs::panic_message(
                    "build",
                    panic.as_ref(),
                )))
            })
        }
        .boxed(),
    ))
}

/// Reports the operation finished when dropped unarmed-or-not: a build
/// that panics or whose future is dropped still ends (the crate never
/// stays "building").
struct FinishGuard {
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    crate_dir: PathBuf,
    generation: u64,
    armed: bool,
}

impl FinishGuard {
    fn finish(mut self, compiled: bool, diagnostics: Vec<CompilerDiagnostic>) {
        self.armed = false;
        let _ = self
            .events
            .send(Event::Task(TaskResult::BuildFinished(Finished {
                crate_dir: self.crate_dir.clone(),
                generation: self.generation,
                compiled,
                diagnostics: rust_diagnostics::by_file(&diagnostics),
            })));
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self
                .events
                .send(Event::Task(TaskResult::BuildFinished(Finished {
                    crate_dir: self.crate_dir.clone(),
                    generation: self.generation,
                    compiled: false,
                    diagnostics: Default::default(),
                })));
        }
    }
}

struct Run {
    client: tower_lsp::Client,
    outbox: Outbox,
    progress: Option<NumberOrString>,
    kind: Kind,
    name: String,
    crate_dir: PathBuf,
    /// `arca.package`: also write the standalone archive.
    archive: bool,
}

impl Run {
    async fn execute(
        mut self,
        request: BuildRequest,
        cancel: CancellationToken,
        guard: FinishGuard,
    ) -> jsonrpc::Result<Option<Value>> {
        crate::server::jobs::fault("build");
        if let Some(token) = self.progress.clone() {
            let created = self
                .client
                .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                    token: token.clone(),
                })
                .await;
            if created.is_err() {
                self.progress = None;
            }
        }
        self.progress(WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: format!("{} {}", self.kind.verb(), self.name),
            cancellable: Some(true),
            message: Some("Preparing".to_owned()),
            percentage: None,
        }));
        let log = crate::paths::arca_home()
            .ok()
            .map(|home| crate::build_log::BuildLog::start(&home, &self.crate_dir));
        let reporter = Reporter {
            outbox: self.outbox.clone(),
            events: guard.events.clone(),
            crate_dir: self.crate_dir.clone(),
            generation: guard.generation,
            progress: self.progress.clone(),
            last: Mutex::new((String::new(), None)),
            log,
        };
        let sink = |event: BuildEvent| reporter.report(event);
        let result = match BuildEnv::from_arca_home() {
            Err(error) => Err(BuildError::Failed(error)),
            Ok(env) => match self.kind {
                Kind::Build => pipeline::build_binary(&env, &request, &sink, &cancel)
                    .await
                    .map(|outcome| (json!({"binary": outcome.binary}), outcome.diagnostics)),
                Kind::Package => {
                    let options = pipeline::PackageOptions {
                        archive: self.archive,
                    };
                    pipeline::package_with(&env, &request, options, &sink, &cancel)
                        .await
                        .map(|outcome| {
                            let metadata = &outcome.artifact.metadata;
                            (
                                json!({
                                    "artifactId": metadata.artifact_id,
                                    "localTag": metadata.local_tag,
                                    "archivePath": outcome.archive_path,
                                    "imageId": outcome.image_id,
                                    "fingerprint": metadata.build_fingerprint,
                                    "upToDate": outcome.up_to_date,
                                }),
                                outcome.diagnostics,
                            )
                        })
                }
            },
        };
        if let Some(log) = reporter.log {
            log.finish(&match &result {
                Ok(_) => "Done.".to_owned(),
                Err(error) => error.to_string(),
            });
        }
        let (answer, finished) = match result {
            Ok((value, diagnostics)) => {
                self.end("Done");
                (Ok(Some(value)), Some(diagnostics))
            }
            Err(BuildError::Cancelled) => {
                self.end("Cancelled");
                let mut error = jsonrpc::Error::request_cancelled();
                error.message = BuildError::Cancelled.to_string().into();
                (Err(error), None)
            }
            Err(error @ BuildError::Compile { .. }) => {
                self.end("Failed");
                let message = error.to_string();
                let BuildError::Compile { diagnostics, .. } = error else {
                    unreachable!("matched Compile above")
                };
                (Err(failed(message)), Some(diagnostics))
            }
            Err(error) => {
                self.end("Failed");
                (Err(failed(error.to_string())), None)
            }
        };
        guard.finish(finished.is_some(), finished.unwrap_or_default());
        answer
    }

    fn progress(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.progress {
            self.outbox.send(Outgoing::Progress(ProgressParams {
                token: token.clone(),
                value: ProgressParamsValue::WorkDone(value),
            }));
        }
    }

    fn end(&self, message: &str) {
        self.progress(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.to_owned()),
        }));
    }
}

/// Turns build events into progress reports and log lines, sending a
/// report only when its message or whole percentage changes.
struct Reporter {
    outbox: Outbox,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    crate_dir: PathBuf,
    generation: u64,
    progress: Option<NumberOrString>,
    last: Mutex<(String, Option<u32>)>,
    /// The crate's persisted log of this build (`crate::build_log`).
    log: Option<crate::build_log::BuildLog>,
}

impl Reporter {
    fn report(&self, event: BuildEvent) {
        if let Some(log) = &self.log {
            match &event {
                BuildEvent::Stage { title, detail } => log.line(&format!("==> {title}: {detail}")),
                BuildEvent::StageDone { message } | BuildEvent::Notice { message } => {
                    log.line(message)
                }
                BuildEvent::Output { line } => log.line(line),
                BuildEvent::Progress { .. }
                | BuildEvent::Finished { .. }
                | BuildEvent::Prepared => {}
            }
        }
        let percentage = event.percent().map(|percent| percent.floor() as u32);
        match event {
            BuildEvent::Stage { title, detail } => {
                self.outbox
                    .log(MessageType::LOG, format!("{title}: {detail}"));
                self.send(title, None);
            }
            BuildEvent::StageDone { message } => self.outbox.log(MessageType::LOG, message),
            BuildEvent::Progress { task, status, .. } => {
                let message = match task {
                    pipeline::ProgressTask::Pull { image, .. } => {
                        format!("Pulling {image}: {status}")
                    }
                    pipeline::ProgressTask::Export { .. } => {
                        "Exporting the image archive".to_owned()
                    }
                    pipeline::ProgressTask::Import { image } => {
                        format!("Importing base image {image} into the store")
                    }
                    pipeline::ProgressTask::Compile { crate_name } => {
                        format!("Compiling {crate_name}: {status}")
                    }
                };
                self.send(message, percentage);
            }
            BuildEvent::Output { line } => self.outbox.log(MessageType::LOG, line),
            BuildEvent::Notice { message } => {
                self.outbox.log(MessageType::INFO, message.clone());
                self.send(message, None);
            }
            BuildEvent::Finished { .. } => {}
            BuildEvent::Prepared => {
                // Only now is the crate building (PROTOCOL.md's `building`).
                let _ = self.events.send(Event::Task(TaskResult::BuildPrepared {
                    crate_dir: self.crate_dir.clone(),
                    generation: self.generation,
                }));
            }
        }
    }

    fn send(&self, message: String, percentage: Option<u32>) {
        let Some(token) = &self.progress else {
            return;
        };
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.0 == message && last.1 == percentage {
            return;
        }
        *last = (message.clone(), percentage);
        self.outbox.send(Outgoing::Progress(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(WorkDoneProgress::Report(
                WorkDoneProgressReport {
                    cancellable: Some(true),
                    message: Some(message),
                    percentage,
                },
            )),
        }));
    }
}

/// The loop's side of a finished operation: forget it, publish compiler
/// diagnostics (clearing files the previous build reported), update status.
pub fn finished(state: &mut State, finished: Finished) {
    let dir = finished.crate_dir;
    let ours = state
        .crates
        .get_mut(&dir)
        .is_some_and(|entry| entry.activity.finished(finished.generation));
    if !ours {
        // Its crate left the workspace (or was found again since).
        return;
    }
    if finished.compiled {
        rust_diagnostics::publish(state, &dir, finished.diagnostics);
    }
    crate_status::operation_ended(state, &dir);
}

/// Why a build or push cannot start now, for the client.
pub fn refused(name: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::OperationRunning(OperationKind::Push) => format!(
            "A push of `{name}` is running in this editor. Wait for it, or cancel it with `arca.cancel` and start again."
        ),
        Refusal::OperationRunning(_) => format!(
            "A build of `{name}` is already running in this editor. Wait for it, or cancel it with `arca.cancel` and start again."
        ),
        Refusal::Running(container) => format!(
            "{name} is already running (container {}). Stop it first, then run it again.",
            crate::runner::short_id(container)
        ),
        Refusal::PackagingToRun => {
            format!("{name} is already being built to run. Wait for it, or stop it.")
        }
    }
}
