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
mod convert;
mod event;
mod ext;
mod handlers;
mod interim_index;
mod live;
mod main_loop;
mod outbox;
mod state;
mod verdict;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use tower_lsp::jsonrpc::{Request, Response};
use tower_lsp::{ExitedError, LspService, Server};

/// Runs the language server on stdin/stdout until the client sends `exit`
/// or closes stdin.
pub fn run() -> Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("Failed to start the async runtime for the language server")?;
    let code = runtime.block_on(serve());
    // Background work (a build, a tree walk) must not keep the process
    // alive once the client is gone.
    runtime.shutdown_background();
    std::process::exit(code);
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
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
    let service = ExitAware {
        inner: service,
        shutdown_seen: shutdown_seen.clone(),
        exit_tx,
    };
    let server = Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .concurrency_level(8)
        .serve(service);
    tokio::select! {
        () = server => 0,
        Some(()) = exit_rx.recv() => {
            if shutdown_seen.load(Ordering::SeqCst) { 0 } else { 1 }
        }
    }
}

/// Wraps the tower-lsp service to honour `exit` at once: tower-lsp alone
/// only stops reading after the next message arrives, so a client that
/// sends `exit` and keeps stdin open would wait forever.
struct ExitAware<S> {
    inner: S,
    shutdown_seen: Arc<AtomicBool>,
    exit_tx: tokio::sync::mpsc::UnboundedSender<()>,
}

impl<S> tower::Service<Request> for ExitAware<S>
where
    S: tower::Service<Request, Response = Option<Response>, Error = ExitedError>,
{
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = S::Future;

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
        self.inner.call(request)
    }
}
