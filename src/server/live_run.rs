//! The language server's live runs (`arca.run` with `live: true`,
//! PROTOCOL.md additions in docs/protocol-additions.md): one
//! [`crate::runner::live::watch`] per crate, its events turned into what
//! the client sees. The program's lines and Arca's own (the separator
//! after each update, a compile error, a fallback) arrive as
//! `arca/output`; the container shows in the status object's `running`
//! with `live: true`; each rebuild's compiler diagnostics replace the
//! crate's inline ones; a last `arca/output` carries the exit code when
//! the run ends. The command answers once the first container runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;

use crate::engine::Stream;
use crate::pipeline::{BuildEnv, BuildEvent, CompilerDiagnostic};
use crate::runner::live::{self, LiveEnd, LiveEvent, LiveRequest};
use crate::server::event::{Event, TaskResult};
use crate::server::ext::{OutputNotification, OutputParams};
use crate::server::runs::RunChange;
use crate::server::rust_diagnostics;
use crate::status::RunningContainer;

/// Exit code reported when a live run is stopped (as a program ended by
/// SIGTERM).
const STOPPED_EXIT_CODE: i64 = 143;

/// Where the command's answer goes, once.
type AnswerSlot = Mutex<Option<oneshot::Sender<jsonrpc::Result<Option<Value>>>>>;

/// One live run, from the command to its end.
pub struct LiveRunTask {
    pub client: tower_lsp::Client,
    pub events: mpsc::UnboundedSender<Event>,
    pub crate_dir: PathBuf,
    pub crate_uri: String,
    pub generation: u64,
    pub stop: CancellationToken,
    pub program_args: Option<Vec<String>>,
}

/// Tells the loop the run ended when dropped (also on a panic).
struct EndGuard {
    events: mpsc::UnboundedSender<Event>,
    crate_dir: PathBuf,
    generation: u64,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self
            .events
            .send(Event::Task(TaskResult::Run(RunChange::Ended {
                crate_dir: self.crate_dir.clone(),
                generation: self.generation,
            })));
    }
}

impl LiveRunTask {
    /// Runs until stopped; `answer` gets the first container (or the error
    /// that kept it from starting).
    pub async fn run(self, answer: oneshot::Sender<jsonrpc::Result<Option<Value>>>) {
        let _ended = EndGuard {
            events: self.events.clone(),
            crate_dir: self.crate_dir.clone(),
            generation: self.generation,
        };
        let answer = Arc::new(Mutex::new(Some(answer)));
        let env = match BuildEnv::from_arca_home() {
            Ok(env) => env,
            Err(error) => {
                answer_once(&answer, Err(super::handlers::failed(format!("{error:#}"))));
                return;
            }
        };
        let (lines, mut queue) = mpsc::unbounded_channel::<OutputParams>();
        let sender = {
            let client = self.client.clone();
            tokio::spawn(async move {
                while let Some(params) = queue.recv().await {
                    client.send_notification::<OutputNotification>(params).await;
                }
            })
        };
        let container = Arc::new(Mutex::new(String::new()));
        let translator = Translator {
            lines: lines.clone(),
            events: self.events.clone(),
            crate_dir: self.crate_dir.clone(),
            crate_uri: self.crate_uri.clone(),
            generation: self.generation,
            container: container.clone(),
            answer: answer.clone(),
        };
        let request = LiveRequest {
            path: self.crate_dir.clone(),
            program_args: self.program_args.clone(),
        };
        let ended = live::watch(
            &env,
            request,
            Arc::new(move |event| translator.show(event)),
            self.stop.clone(),
        )
        .await;
        let last = container.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let line = |text: String| {
            let _ = lines.send(OutputParams {
                crate_uri: self.crate_uri.clone(),
                container: last.clone(),
                stream: Some("stderr".into()),
                text: Some(text),
                exit_code: None,
            });
        };
        let exit_code = match ended {
            Ok(LiveEnd::Stopped) => STOPPED_EXIT_CODE,
            Ok(LiveEnd::ContainerRemoved { container }) => {
                line(format!(
                    "The container {} was removed outside Arca; the live run ends. Run it again to start a new one.",
                    &container[..container.len().min(12)]
                ));
                -1
            }
            Err(error) => {
                let message = format!("{error:#}");
                if !answer_once(&answer, Err(super::handlers::failed(message.clone()))) {
                    line(format!("error: {message}"));
                }
                -1
            }
        };
        // Stopped before the first container ran: the command answers null.
        answer_once(&answer, Ok(None));
        if !last.is_empty() {
            let _ = lines.send(OutputParams {
                crate_uri: self.crate_uri.clone(),
                container: last.clone(),
                stream: None,
                text: None,
                exit_code: Some(exit_code),
            });
        }
        drop(lines);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sender).await;
    }
}

/// Answers the command if it has not been answered; false if it had.
fn answer_once(answer: &AnswerSlot, result: jsonrpc::Result<Option<Value>>) -> bool {
    match answer.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(sender) => {
            let _ = sender.send(result);
            true
        }
        None => false,
    }
}

/// Turns live events into `arca/output` lines and loop events.
struct Translator {
    lines: mpsc::UnboundedSender<OutputParams>,
    events: mpsc::UnboundedSender<Event>,
    crate_dir: PathBuf,
    crate_uri: String,
    generation: u64,
    container: Arc<Mutex<String>>,
    answer: Arc<AnswerSlot>,
}

impl Translator {
    fn show(&self, event: LiveEvent) {
        match event {
            LiveEvent::Build(BuildEvent::Stage { title, .. }) => self.line(format!("==> {title}")),
            LiveEvent::Build(BuildEvent::Notice { message }) => self.line(message),
            LiveEvent::Build(_) | LiveEvent::Rebuilding { .. } => {}
            LiveEvent::Started { container, image } => {
                *self.container.lock().unwrap_or_else(|p| p.into_inner()) = container.clone();
                self.loop_event(RunChange::Started {
                    crate_dir: self.crate_dir.clone(),
                    generation: self.generation,
                    running: RunningContainer {
                        container: container.clone(),
                        image: image.clone(),
                        started_at: epoch_ms(),
                        live: true,
                        updated_live_at: None,
                    },
                });
                answer_once(
                    &self.answer,
                    Ok(Some(
                        json!({"container": container, "image": image, "live": true}),
                    )),
                );
            }
            LiveEvent::Output(line) => self.send(
                match line.stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                line.text,
            ),
            LiveEvent::Updated {
                change,
                seconds,
                diagnostics,
                ..
            } => {
                self.line(format!("── rebuilt after {change} ({seconds:.2} s) ──"));
                self.compiled(&diagnostics, Some(epoch_ms()));
            }
            LiveEvent::Unchanged {
                change,
                diagnostics,
            } => {
                self.line(format!(
                    "── {change}: the binary is the same; the program keeps running ──"
                ));
                self.compiled(&diagnostics, None);
            }
            LiveEvent::BuildFailed {
                message,
                diagnostics,
            } => {
                self.line("── the change does not build ──".into());
                for text in message.lines() {
                    self.line(text.to_owned());
                }
                self.compiled(&diagnostics, None);
            }
            LiveEvent::Replacing { reason } => self.line(format!(
                "── {reason}: live update cannot apply; building the image and starting a fresh container ──"
            )),
            LiveEvent::Killed { grace_seconds } => self.line(format!(
                "The program did not stop on SIGTERM; killed after {grace_seconds} s."
            )),
            LiveEvent::Exited { code } => self.line(format!(
                "── the program exited with code {code}; watching for changes ──"
            )),
            LiveEvent::Notice(message) => self.line(message),
        }
    }

    fn compiled(&self, diagnostics: &[CompilerDiagnostic], updated_at: Option<u64>) {
        self.loop_event(RunChange::LiveCompiled {
            crate_dir: self.crate_dir.clone(),
            generation: self.generation,
            diagnostics: rust_diagnostics::by_file(diagnostics),
            updated_at,
        });
    }

    fn loop_event(&self, change: RunChange) {
        let _ = self.events.send(Event::Task(TaskResult::Run(change)));
    }

    fn line(&self, text: String) {
        self.send("stderr", text);
    }

    fn send(&self, stream: &str, text: String) {
        let container = self
            .container
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _ = self.lines.send(OutputParams {
            crate_uri: self.crate_uri.clone(),
            container,
            stream: Some(stream.to_owned()),
            text: Some(text),
            exit_code: None,
        });
    }
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
