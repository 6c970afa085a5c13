//! The language server (`arca lsp`): LSP over stdio, as PROTOCOL.md defines.
//!
//! Data flows one way. [`adapter`] is tower-lsp's `LanguageServer`; it only
//! forwards every message, in order, into the channel of [`main_loop`], the
//! one place that owns and mutates [`state::State`]. Long work (cargo
//! metadata, hashing a tree, a build) runs in tasks that report back as
//! events; the file watcher ([`crate::watch`]) reports changed paths the
//! same way. Handlers are plain functions over the state ([`handlers`]),
//! and [`convert`] is the only place that turns byte spans and findings into
//! LSP types.
//!
//! **Never writes to stdout except the protocol:** logs go to stderr through
//! `tracing`, filtered by `RUST_LOG`.

mod adapter;
mod builds;
mod cancel;
mod command_args;
mod config_diagnostics;
mod convert;
mod crate_set;
mod crate_status;
mod dispatch;
mod event;
mod ext;
pub mod framing;
mod handlers;
mod jobs;
mod live;
mod live_run;
mod main_loop;
mod model;
mod outbox;
mod runs;
mod rust_diagnostics;
mod startup_clock;
mod state;
mod watch_setup;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use tower_lsp::jsonrpc::{Request, Response};
use tower_lsp::{ExitedError, LspService, Server};

/// Runs the language server on stdin/stdout until the client sends `exit`
/// or closes stdin. (Logging to stderr is set up by the CLI.)
pub fn run() -> Result<()> {
    startup_clock::start();
    tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("Failed to start the async runtime for the language server")?;
    let code = runtime.block_on(serve());
    // A live run's container goes with the server, even when the client
    // exits before the run's own cleanup finished.
    runtime.block_on(async {
        let cleanup = crate::runner::live::remove_containers_of_this_process();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), cleanup).await;
    });
    // Background work (a build, a tree walk) must not keep the process
    // alive once the client is gone.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// Large buffers (a 20 MB document passes through several) are mapped on
/// their own and returned to the system when freed: glibc otherwise raises
/// its mmap threshold after the first free and keeps such buffers in
/// arenas, growing the resident size with each large message.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Serves one client; returns the process exit code (0 after
/// shutdown + exit or end of input, 1 on exit without shutdown).
async fn serve() -> i32 {
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (service, socket) = LspService::build(|client| {
        main_loop::spawn(client, events_rx);
        adapter::Adapter::new(events_tx)
    })
    .custom_method("arca/status", adapter::Adapter::status)
    .custom_method(
        "window/workDoneProgress/cancel",
        adapter::Adapter::progress_cancel,
    )
    .finish();
    let shutdown_seen = Arc::new(AtomicBool::new(false));
    let (exit_tx, mut exit_rx) = tokio::sync::mpsc::unbounded_channel();
    let service = Gate {
        inner: service,
        shutdown_seen: shutdown_seen.clone(),
        exit_tx,
    };
    // Arca's framing layer sits between the real stdio and tower-lsp,
    // which sees only valid messages (see `framing`).
    let (to_server, server_input) = tokio::io::duplex(1 << 16);
    let (server_output, from_server) = tokio::io::duplex(1 << 16);
    let (output_tx, output_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(framing::read_input(
        tokio::io::stdin(),
        to_server,
        output_tx.clone(),
    ));
    tokio::spawn(framing::read_server_output(from_server, output_tx));
    let writer = tokio::spawn(framing::write_output(tokio::io::stdout(), output_rx));
    let server = Server::new(server_input, server_output, socket)
        .concurrency_level(8)
        .serve(service);
    let (code, linger) = tokio::select! {
        () = server => (0, std::time::Duration::from_secs(1)),
        Some(()) = exit_rx.recv() => {
            let code = if shutdown_seen.load(Ordering::SeqCst) { 0 } else { 1 };
            (code, std::time::Duration::from_millis(50))
        }
    };
    // Let what is already queued reach the client.
    let _ = tokio::time::timeout(linger, writer).await;
    code
}

/// Wraps the tower-lsp service to normalize absent params and to honour
/// `exit` at once: tower-lsp alone
/// only stops reading after the next message arrives, so a client that
/// sends `exit` and keeps stdin open would wait forever.
struct Gate<S> {
    inner: S,
    shutdown_seen: Arc<AtomicBool>,
    exit_tx: tokio::sync::mpsc::UnboundedSender<()>,
}

impl<S> tower::Service<Request> for Gate<S>
where
    S: tower::Service<Request, Response = Option<Response>, Error = ExitedError>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = futures_util::future::BoxFuture<'static, Result<Option<Response>, ExitedError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match request.method() {
            "shutdown" => self.shutdown_seen.store(true, Ordering::SeqCst),
            "exit" => {
                let _ = self.exit_tx.send(());
            }
            _ => {}
        }
        // tower-lsp leaves requests for unknown `$/` methods unanswered;
        // every request gets an answer.
        let id = request.id().cloned();
        let method = request.method().to_owned();
        let answer = self.inner.call(normalize_params(request));
        Box::pin(async move {
            let response = answer.await?;
            Ok(match (response, id) {
                (None, Some(id)) => {
                    let mut error = tower_lsp::jsonrpc::Error::method_not_found();
                    error.message = format!("Unknown method `{method}`.").into();
                    Some(Response::from_error(id, error))
                }
                (response, _) => response,
            })
        })
    }
}

/// Clients differ in how they send "no params": absent, or `null`.
/// tower-lsp refuses `null` for parameterless methods and absent params for
/// `arca/status`, whose params are all optional; accept both forms.
fn normalize_params(request: Request) -> Request {
    let parameterless = matches!(request.method(), "shutdown" | "exit");
    let optional = request.method() == "arca/status";
    let is_null = request.params().is_none_or(serde_json::Value::is_null);
    if !is_null || !(parameterless || optional) {
        return request;
    }
    let (method, id, _) = request.into_parts();
    let mut builder = Request::build(method);
    if let Some(id) = id {
        builder = builder.id(id);
    }
    if optional {
        builder = builder.params(serde_json::json!({}));
    }
    builder.finish()
}
