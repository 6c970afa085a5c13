//! `arca.push`: pushes a crate's newest artifact (or the one named by
//! `artifact`) to `to` or the crate's `push_to`, off the loop, with
//! `$/progress` (the blob being sent and the share of bytes done) and the
//! answer `{ "ref", "tag", "bytesSent" }`. The record's new `uploaded_ref`
//! reaches the status object through the store watcher, like any record
//! change.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::request::WorkDoneProgressCreate;
use tower_lsp::lsp_types::{
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};

use super::failed;
use crate::registry::{self, BlobAction, Destination, PushError, PushEvent, PushRequest};
use crate::server::command_args::{PushArgs, resolve_crate};
use crate::server::event::{Answer, Finished};
use crate::server::event::{Event, TaskResult};
use crate::server::model::activity::{Operation, OperationKind, ProgressToken};
use crate::server::outbox::{Outbox, Outgoing};
use crate::server::state::State;
use crate::store::Store;

pub fn start(state: &mut State, args: PushArgs) -> jsonrpc::Result<Answer> {
    let dir = resolve_crate(state, args.crate_uri.as_deref())?;
    let generation = state.generation();
    let token = state
        .client_progress
        .then(|| ProgressToken::String(format!("arca/push/{generation}")));
    // Registered like a build, so `arca.cancel` and the progress's cancel
    // button stop it; the loop forgets it on `BuildFinished`.
    let cancel = CancellationToken::new();
    let operation = Operation {
        generation,
        kind: OperationKind::Push,
        cancel: cancel.clone(),
        progress: token.clone(),
    };
    let begun = state
        .crates
        .get_mut(&dir)
        .map(|entry| entry.activity.begin(operation));
    if !matches!(begun, Some(Ok(()))) {
        return Err(failed(format!(
            "A build or push of the crate at {} is running in this editor. Wait for it, or cancel it with `arca.cancel`, then push.",
            dir.display()
        )));
    }
    let token: Option<NumberOrString> = token.map(Into::into);
    let client = state.client.clone();
    let outbox = state.outbox.clone();
    let events = state.events.clone();
    Ok(Answer::Later(
        async move {
            let answer = run(dir.clone(), args, client, outbox, token, cancel).await;
            let _ = events.send(Event::Task(TaskResult::BuildFinished(Finished {
                crate_dir: dir,
                generation,
                diagnostics: Default::default(),
                compiled: false,
            })));
            answer
        }
        .boxed(),
    ))
}

async fn run(
    dir: PathBuf,
    args: PushArgs,
    client: tower_lsp::Client,
    outbox: Outbox,
    token: Option<NumberOrString>,
    cancel: CancellationToken,
) -> jsonrpc::Result<Option<serde_json::Value>> {
    let request = tokio::task::spawn_blocking(move || prepare(&dir, args))
        .await
        .map_err(|error| failed(format!("The push stopped unexpectedly: {error}")))?
        .map_err(failed)?;
    let progress = Progress::create(client, outbox, token).await;
    progress.begin(&request.destination);
    let events = progress.sink();
    match registry::push(request, events, &cancel).await {
        Ok(outcome) => {
            progress.end(format!("Pushed {}", outcome.uploaded_ref));
            progress.outbox.log(
                MessageType::INFO,
                format!(
                    "Pushed {} as {} ({} bytes sent)",
                    outcome.tag_ref, outcome.uploaded_ref, outcome.bytes_sent
                ),
            );
            for warning in &outcome.warnings {
                progress
                    .outbox
                    .log(MessageType::WARNING, format!("warning: {warning}"));
            }
            Ok(Some(json!({
                "ref": outcome.uploaded_ref,
                "tag": outcome.tag_ref,
                "bytesSent": outcome.bytes_sent,
                "attached": outcome.attached.as_ref().map(|attached| &attached.artifact_types),
                "warnings": outcome.warnings,
            })))
        }
        Err(PushError::Cancelled) => {
            progress.end("Cancelled".to_owned());
            let mut error = jsonrpc::Error::request_cancelled();
            error.message = PushError::Cancelled.to_string().into();
            Err(error)
        }
        Err(error) => {
            progress.end("Failed".to_owned());
            Err(failed(error.to_string()))
        }
    }
}

/// The artifact and destination (reads the store and the config: run off
/// the loop).
fn prepare(dir: &std::path::Path, args: PushArgs) -> Result<PushRequest, String> {
    let store = Store::open_default().map_err(|error| format!("{error:#}"))?;
    let artifact = match args.artifact.as_deref() {
        Some(id) => store
            .select(id)
            .map_err(|error| format!("{error:#}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("No artifact matches `{id}`."))?,
        None => store.newest_for_crate(dir).ok_or_else(|| {
            format!(
                "The crate at {} has no artifact to push. Package it first (`arca.package`).",
                dir.display()
            )
        })?,
    };
    let crate_dir = PathBuf::from(&artifact.metadata.source_path);
    let configured =
        crate::config::load_push_to(&crate_dir).map_err(|error| format!("{error:#}"))?;
    let text = args.to.or(configured).ok_or_else(|| {
        format!(
            "No destination: pass `to` (REGISTRY/REPOSITORY[:TAG]), or set `push_to` under [rust] in {}.",
            crate::config::config_path(&crate_dir).display()
        )
    })?;
    let destination = Destination::parse(&text, &artifact.metadata.remote_tag)?;
    let attestations = args.attest.unwrap_or(true)
        && crate::config::load_push(&crate_dir)
            .map_err(|error| format!("{error:#}"))?
            .attestations;
    Ok(PushRequest {
        mount_from: registry::mount_candidates(&store, &destination),
        insecure: registry::destination::insecure_from_env(&destination.registry),
        artifact,
        destination,
        attestations,
        platforms: None,
    })
}

/// `$/progress` of one push: the blob being sent and the share of bytes.
struct Progress {
    outbox: Outbox,
    token: Option<NumberOrString>,
}

impl Progress {
    async fn create(
        client: tower_lsp::Client,
        outbox: Outbox,
        token: Option<NumberOrString>,
    ) -> Self {
        let mut token = token;
        if let Some(wanted) = token.clone() {
            let created = client
                .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                    token: wanted,
                })
                .await;
            if created.is_err() {
                token = None;
            }
        }
        Self { outbox, token }
    }

    fn send(outbox: &Outbox, token: &Option<NumberOrString>, value: WorkDoneProgress) {
        if let Some(token) = token {
            outbox.send(Outgoing::Progress(ProgressParams {
                token: token.clone(),
                value: ProgressParamsValue::WorkDone(value),
            }));
        }
    }

    fn begin(&self, destination: &Destination) {
        Self::send(
            &self.outbox,
            &self.token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: format!("Pushing to {destination}"),
                cancellable: Some(true),
                message: Some("Connecting".to_owned()),
                percentage: Some(0),
            }),
        );
    }

    fn end(&self, message: String) {
        Self::send(
            &self.outbox,
            &self.token,
            WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            }),
        );
    }

    /// The event sink: a report per blob state and per whole percent
    /// (blobs done, plus the share sent of the one being uploaded).
    fn sink(&self) -> registry::Events {
        let outbox = self.outbox.clone();
        let token = self.token.clone();
        let state = Arc::new(std::sync::Mutex::new(SinkState::default()));
        Arc::new(move |event| {
            let mut state = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (message, percentage) = match event {
                PushEvent::Connected { registry, scheme } => {
                    (format!("Connected to {registry} ({scheme})"), 0)
                }
                PushEvent::Blob {
                    index,
                    total,
                    digest,
                    size,
                    action,
                } => {
                    let short = digest.strip_prefix("sha256:").unwrap_or(&digest);
                    let short = &short[..short.len().min(12)];
                    let what = if index + 1 == total {
                        "config"
                    } else {
                        "layer"
                    };
                    let position = format!("{}/{total}", index + 1);
                    let (message, finished) = match action {
                        BlobAction::Exists => {
                            (format!("{what} {short} already there ({position})"), 1)
                        }
                        BlobAction::Mounted => (format!("{what} {short} mounted ({position})"), 1),
                        BlobAction::Uploading => (
                            format!("Uploading {what} {short} ({position}, {size} bytes)"),
                            0,
                        ),
                        BlobAction::Uploaded => {
                            (format!("Uploaded {what} {short} ({position})"), 1)
                        }
                    };
                    state.message = message.clone();
                    state.total = total as u64;
                    state.index = index as u64;
                    (message, state.percent(index as u64 + finished, 0, 1))
                }
                PushEvent::Sent { sent, size, .. } => {
                    let percent = state.percent(state.index, sent, size.max(1));
                    if percent == state.last {
                        return;
                    }
                    (state.message.clone(), percent)
                }
                PushEvent::Manifest { tag } => (format!("Tagging {tag}"), 100),
            };
            state.last = percentage;
            Self::send(
                &outbox,
                &token,
                WorkDoneProgress::Report(WorkDoneProgressReport {
                    cancellable: Some(true),
                    message: Some(message),
                    percentage: Some(percentage),
                }),
            );
        })
    }
}

#[derive(Default)]
struct SinkState {
    message: String,
    index: u64,
    total: u64,
    last: u32,
}

impl SinkState {
    /// Percent done with `blobs_done` whole blobs and `part/whole` of the next.
    fn percent(&self, blobs_done: u64, part: u64, whole: u64) -> u32 {
        let total = self.total.max(1) as f64;
        let done = blobs_done as f64 + part.min(whole) as f64 / whole as f64;
        ((done / total) * 100.0).floor().min(99.0) as u32
    }
}
