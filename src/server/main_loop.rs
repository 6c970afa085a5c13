//! The main loop: one `select!` over client messages and internal events
//! (background task results, watcher reports). The only place that mutates
//! [`State`].
//!
//! Every handler runs under `catch_unwind`: a panic becomes an
//! `InternalError` response (for a request) or an error logMessage (for a
//! notification), and the server keeps serving.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::mpsc;
use tower_lsp::Client;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::MessageType;

use super::event::{Event, LspMessage, Reply};
use super::handlers;
use super::state::State;

/// Starts the loop; it runs until the adapter's channel closes.
pub fn spawn(client: Client, lsp: mpsc::UnboundedReceiver<Event>) {
    tokio::spawn(run(client, lsp));
}

async fn run(client: Client, mut lsp: mpsc::UnboundedReceiver<Event>) {
    let (internal_tx, mut internal) = mpsc::unbounded_channel();
    let mut state = State::new(client, internal_tx);
    loop {
        // Internal events first: a task reports its end before its answer
        // goes out, so the client's next message sees the state after it.
        let event = tokio::select! {
            biased;
            Some(event) = internal.recv() => event,
            event = lsp.recv() => match event {
                Some(event) => event,
                None => break,
            },
        };
        let what = event_name(&event);
        let started = std::time::Instant::now();
        handle(&mut state, event);
        release_parked(&mut state);
        let took = started.elapsed();
        if took > SLOW_TURN {
            tracing::warn!(
                "the main loop spent {} ms on {what}; work that long belongs in a job",
                took.as_millis()
            );
        }
    }
    tracing::debug!("client channel closed; main loop ends");
}

/// A loop turn longer than this is logged as a warning.
pub const SLOW_TURN: std::time::Duration = std::time::Duration::from_millis(100);
/// How long a request that needs crate facts waits for them.
pub const FACTS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Lsp(message) => message.method(),
        Event::Task(_) => "a background result",
        Event::Watch(_) => "a file change",
    }
}

/// Whether a request about the config at `path` can be answered now: the
/// crates are known and the config's crate (if any) has its facts.
fn facts_ready(state: &State, path: Option<&std::path::Path>) -> bool {
    state.discovered
        && path.is_none_or(|path| {
            state
                .crate_of_config(path)
                .is_none_or(|entry| entry.facts.is_some())
        })
}

/// Runs `resume` once the workspace's crates are known (at most
/// [`FACTS_WAIT`] after startup).
fn when_discovered(state: &mut State, resume: impl FnOnce(&mut State) + Send + 'static) {
    park(state, None, resume);
}

/// Runs `resume` now when the crate facts the request needs are known,
/// else once they are (or at [`FACTS_WAIT`], with what is known then).
fn when_facts_ready(
    state: &mut State,
    uri: &tower_lsp::lsp_types::Url,
    resume: impl FnOnce(&mut State) + Send + 'static,
) {
    let path = uri.to_file_path().ok();
    let Some(path) = path.filter(|path| super::state::config_owner(path).is_some()) else {
        resume(state);
        return;
    };
    park(state, Some(path), resume);
}

fn park(
    state: &mut State,
    path: Option<std::path::PathBuf>,
    resume: impl FnOnce(&mut State) + Send + 'static,
) {
    if facts_ready(state, path.as_deref()) {
        resume(state);
        return;
    }
    let deadline = std::time::Instant::now() + FACTS_WAIT;
    let events = state.events.clone();
    tokio::spawn(async move {
        tokio::time::sleep(FACTS_WAIT).await;
        let _ = events.send(Event::Task(super::event::TaskResult::Tick));
    });
    state.parked.push(super::state::Parked {
        path,
        deadline,
        resume: Box::new(resume),
    });
}

/// Resumes parked requests whose facts arrived or whose wait is over.
fn release_parked(state: &mut State) {
    if state.parked.is_empty() {
        return;
    }
    let now = std::time::Instant::now();
    let parked = std::mem::take(&mut state.parked);
    let (ready, waiting): (Vec<_>, Vec<_>) = parked
        .into_iter()
        .partition(|parked| parked.deadline <= now || facts_ready(state, parked.path.as_deref()));
    state.parked = waiting;
    for parked in ready {
        (parked.resume)(state);
    }
}

fn handle(state: &mut State, event: Event) {
    match event {
        Event::Lsp(message) => handle_lsp(state, message),
        Event::Task(super::event::TaskResult::Tick) => {}
        Event::Task(super::event::TaskResult::Run(change)) => {
            guarded(state, "a background result", |state| {
                handlers::run::on_change(state, change);
            })
        }
        Event::Task(result) => guarded(state, "a background result", |state| {
            crate::server::crate_set::on_task(state, result);
        }),
        Event::Watch(event) => guarded(state, "a file change", |state| {
            crate::server::crate_set::on_watch(state, event);
        }),
    }
}

fn handle_lsp(state: &mut State, message: LspMessage) {
    let method = message.method();
    // A large document may follow once this one is handled: at once for
    // other files, when its check ends for a config (see `framing`).
    let other_document = match &message {
        LspMessage::DidOpen(params) => !is_config(&params.text_document.uri),
        LspMessage::DidChange(params) => !is_config(&params.text_document.uri),
        LspMessage::DidSave(params) => !is_config(&params.text_document.uri),
        _ => false,
    };
    handle_message(state, message, method);
    if other_document {
        super::framing::large_message_handled();
    }
}

fn is_config(uri: &tower_lsp::lsp_types::Url) -> bool {
    uri.to_file_path()
        .is_ok_and(|path| super::state::config_owner(&path).is_some())
}

fn handle_message(state: &mut State, message: LspMessage, method: &'static str) {
    match message {
        LspMessage::Initialize(params, reply) => {
            respond(state, method, reply, |state| {
                Ok(handlers::lifecycle::initialize(state, *params))
            });
        }
        LspMessage::Initialized => guarded(state, method, handlers::lifecycle::initialized),
        LspMessage::Shutdown(reply) => respond(state, method, reply, |state| {
            handlers::lifecycle::shutdown(state);
            Ok(())
        }),
        LspMessage::DidOpen(params) => guarded(state, method, |state| {
            handlers::documents::did_open(state, params);
        }),
        LspMessage::DidChange(params) => guarded(state, method, |state| {
            handlers::documents::did_change(state, params);
        }),
        LspMessage::DidSave(params) => guarded(state, method, |state| {
            handlers::documents::did_save(state, params);
        }),
        LspMessage::DidClose(params) => guarded(state, method, |state| {
            handlers::documents::did_close(state, params);
        }),
        LspMessage::DidChangeWorkspaceFolders(params) => guarded(state, method, |state| {
            handlers::workspace::did_change_folders(state, params);
        }),
        LspMessage::DidChangeWatchedFiles(params) => guarded(state, method, |state| {
            handlers::workspace::did_change_watched_files(state, params);
        }),
        // Completion, hover and quick fixes need the crate's facts: right
        // after didOpen they wait (bounded) for them.
        LspMessage::Completion(params, reply) => {
            let uri = params.text_document_position.text_document.uri.clone();
            when_facts_ready(state, &uri.clone(), move |state| {
                off_loop(state, method, reply, &uri, move |gathered| {
                    handlers::assist::completion(gathered, params)
                });
            });
        }
        LspMessage::Hover(params, reply) => {
            let uri = params
                .text_document_position_params
                .text_document
                .uri
                .clone();
            when_facts_ready(state, &uri.clone(), move |state| {
                off_loop(state, method, reply, &uri, move |gathered| {
                    handlers::assist::hover(gathered, params)
                });
            });
        }
        LspMessage::CodeAction(params, reply) => {
            let uri = params.text_document.uri.clone();
            when_facts_ready(state, &uri.clone(), move |state| {
                off_loop(state, method, reply, &uri, move |gathered| {
                    handlers::assist::code_action(gathered, params)
                });
            });
        }
        LspMessage::ExecuteCommand(params, reply) => when_discovered(state, move |state| {
            // Commands may answer later (a build): they take the reply.
            let outcome =
                catch_unwind(AssertUnwindSafe(|| super::dispatch::execute(state, params)));
            match outcome {
                Ok(Ok(deferred)) => deferred.answer(reply),
                Ok(Err(error)) => {
                    let _ = reply.send(Err(error));
                }
                Err(panic) => {
                    let _ = reply.send(Err(panicked(state, method, panic.as_ref())));
                }
            }
        }),
        LspMessage::Status(params, reply) => when_discovered(state, move |state| {
            respond(state, method, reply, |state| {
                handlers::status::request(state, params)
            });
        }),
        LspMessage::ProgressCancel(params) => guarded(state, method, |state| {
            handlers::commands::progress_cancel(state, params);
        }),
    }
}

/// Runs a request handler and answers exactly once, a panic included.
fn respond<T>(
    state: &mut State,
    method: &str,
    reply: Reply<T>,
    handler: impl FnOnce(&mut State) -> jsonrpc::Result<T>,
) {
    let result = match catch_unwind(AssertUnwindSafe(|| {
        injected_panic(method);
        handler(state)
    })) {
        Ok(result) => result,
        Err(panic) => Err(panicked(state, method, panic.as_ref())),
    };
    // The client may have cancelled the request: nobody listens then.
    let _ = reply.send(result);
}

/// Answers an editing-help request on the config at `uri` from the
/// blocking pool: what it needs is gathered here, the work (a file read, a
/// check) runs there, and exactly one answer is sent, a panic included.
fn off_loop<T: Send + 'static>(
    state: &mut State,
    method: &'static str,
    reply: Reply<Option<T>>,
    uri: &tower_lsp::lsp_types::Url,
    work: impl FnOnce(handlers::assist::Gathered) -> jsonrpc::Result<Option<T>> + Send + 'static,
) {
    let Some(gathered) = handlers::assist::gather(state, uri) else {
        let _ = reply.send(Ok(None));
        return;
    };
    let outbox = state.outbox.clone();
    tokio::task::spawn_blocking(move || {
        let result = catch_unwind(AssertUnwindSafe(|| {
            injected_panic(method);
            work(gathered)
        }))
        .unwrap_or_else(|panic| Err(report_panic(&outbox, method, panic.as_ref())));
        let _ = reply.send(result);
    });
}

/// Runs a notification handler; a panic is logged and shown in the client.
fn guarded(state: &mut State, what: &str, handler: impl FnOnce(&mut State)) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
        injected_panic(what);
        handler(state)
    })) {
        let _ = panicked(state, what, panic.as_ref());
    }
}

/// Fault injection for tests: `ARCA_LSP_PANIC_ON=<method>` makes that
/// method's handler panic, to prove a panic is caught and reported.
fn injected_panic(what: &str) {
    static PANIC_ON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let target = PANIC_ON.get_or_init(|| std::env::var("ARCA_LSP_PANIC_ON").ok());
    if target.as_deref() == Some(what) {
        panic!("injected panic in {what} (ARCA_LSP_PANIC_ON)");
    }
}

fn panicked(state: &State, what: &str, panic: &(dyn std::any::Any + Send)) -> jsonrpc::Error {
    report_panic(&state.outbox, what, panic)
}

/// Logs a caught panic, shows it in the client and makes the error answer.
fn report_panic(
    outbox: &super::outbox::Outbox,
    what: &str,
    panic: &(dyn std::any::Any + Send),
) -> jsonrpc::Error {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    let message = format!(
        "arca hit an internal error while handling {what}: {detail}. The server keeps running; please report this with the log (RUST_LOG=arca=debug)."
    );
    tracing::error!("{message}");
    outbox.log(MessageType::ERROR, message.clone());
    let mut error = jsonrpc::Error::internal_error();
    error.message = message.into();
    error
}
