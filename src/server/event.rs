//! Everything the main loop reacts to: client messages (forwarded in order
//! by the adapter), results of background tasks, and watcher reports.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse,
    DidChangeTextDocumentParams, DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    ExecuteCommandParams, Hover, HoverParams, InitializeParams, InitializeResult,
    WorkDoneProgressCancelParams,
};

use super::ext::StatusParams;
use crate::status::CrateStatus;
use crate::watch::WatchEvent;
use crate::workspace::CrateFacts;

/// A command's answer: now, or from a future run off the loop.
pub enum Answer {
    Now(Option<Value>),
    Later(BoxFuture<'static, jsonrpc::Result<Option<Value>>>),
}

impl Answer {
    pub fn answer(self, reply: Reply<Option<Value>>) {
        match self {
            Answer::Now(value) => {
                let _ = reply.send(Ok(value));
            }
            Answer::Later(future) => {
                tokio::spawn(async move {
                    let _ = reply.send(future.await);
                });
            }
        }
    }
}

/// Where a request's answer goes; answered exactly once.
/// LSP diagnostics per source file (a build's compiler messages).
pub type DiagnosticsByFile =
    std::collections::BTreeMap<tower_lsp::lsp_types::Url, Vec<tower_lsp::lsp_types::Diagnostic>>;

pub type Reply<T> = oneshot::Sender<jsonrpc::Result<T>>;

pub enum Event {
    Lsp(LspMessage),
    Task(TaskResult),
    Watch(WatchEvent),
}

/// A client message, in the order the client sent it.
pub enum LspMessage {
    Initialize(Box<InitializeParams>, Reply<InitializeResult>),
    Initialized,
    Shutdown(Reply<()>),
    DidOpen(DidOpenTextDocumentParams),
    DidChange(DidChangeTextDocumentParams),
    DidSave(DidSaveTextDocumentParams),
    DidClose(DidCloseTextDocumentParams),
    DidChangeWorkspaceFolders(DidChangeWorkspaceFoldersParams),
    DidChangeWatchedFiles(DidChangeWatchedFilesParams),
    Completion(CompletionParams, Reply<Option<CompletionResponse>>),
    Hover(HoverParams, Reply<Option<Hover>>),
    CodeAction(CodeActionParams, Reply<Option<CodeActionResponse>>),
    ExecuteCommand(ExecuteCommandParams, Reply<Option<Value>>),
    Status(StatusParams, Reply<Vec<CrateStatus>>),
    ProgressCancel(WorkDoneProgressCancelParams),
}

impl LspMessage {
    /// The LSP method name, for logs and error messages.
    pub fn method(&self) -> &'static str {
        match self {
            LspMessage::Initialize(..) => "initialize",
            LspMessage::Initialized => "initialized",
            LspMessage::Shutdown(..) => "shutdown",
            LspMessage::DidOpen(..) => "textDocument/didOpen",
            LspMessage::DidChange(..) => "textDocument/didChange",
            LspMessage::DidSave(..) => "textDocument/didSave",
            LspMessage::DidClose(..) => "textDocument/didClose",
            LspMessage::DidChangeWorkspaceFolders(..) => "workspace/didChangeWorkspaceFolders",
            LspMessage::DidChangeWatchedFiles(..) => "workspace/didChangeWatchedFiles",
            LspMessage::Completion(..) => "textDocument/completion",
            LspMessage::Hover(..) => "textDocument/hover",
            LspMessage::CodeAction(..) => "textDocument/codeAction",
            LspMessage::ExecuteCommand(..) => "workspace/executeCommand",
            LspMessage::Status(..) => "arca/status",
            LspMessage::ProgressCancel(..) => "window/workDoneProgress/cancel",
        }
    }
}

/// A background task's result. `generation` lets the loop drop results of
/// superseded runs.
pub enum TaskResult {
    /// `cargo metadata` answered for a crate.
    Facts {
        crate_dir: PathBuf,
        generation: u64,
        facts: Result<CrateFacts, String>,
    },
    /// The crate's input tree was walked and hashed.
    Indexed {
        crate_dir: PathBuf,
        generation: u64,
        live: Result<super::live::Live, String>,
    },
    /// The initial watches of every folder and the store are in place.
    WatchesReady,
    /// The first watches should start now even if no index has arrived.
    WatchDue,
    /// A build of the crate passed its preparation (config and facts): it
    /// is building from now on.
    BuildPrepared { crate_dir: PathBuf, generation: u64 },
    /// Paths for one crate's index only (the first watches' catch-up:
    /// its input roots, rescanned by `stat`).
    Rescan {
        crate_dir: PathBuf,
        paths: Vec<PathBuf>,
    },
    /// The workspace folders were searched for crates.
    Discovered {
        generation: u64,
        discovery: Result<Vec<(PathBuf, crate::workspace::Discovery)>, String>,
    },
    /// The store was listed: each crate's newest artifact and manifest.
    StoreListed {
        generation: u64,
        listing: Result<Vec<super::model::StoreEntry>, String>,
    },
    /// The saved config was resolved against the crate's facts (`None`:
    /// no facts to resolve against).
    Settings {
        crate_dir: PathBuf,
        generation: u64,
        settings:
            Result<Option<Result<crate::plan::BuildSettings, crate::status::SetupProblem>>, String>,
        /// The artifact whose settings completed the config, if any.
        borrowed: Option<String>,
    },
    /// The index re-read changed paths; whether any input changed.
    Refreshed {
        crate_dir: PathBuf,
        generation: u64,
        refreshed: Result<Box<(super::live::Live, bool)>, String>,
    },
    /// The files an artifact's input manifest names were hashed.
    Digests {
        crate_dir: PathBuf,
        epoch: u64,
        digests: Result<Vec<(PathBuf, String)>, String>,
    },
    /// A config file was checked: its diagnostics and the buffer version.
    ConfigChecked {
        path: PathBuf,
        uri: tower_lsp::lsp_types::Url,
        checked: Result<(Vec<tower_lsp::lsp_types::Diagnostic>, Option<i32>), String>,
    },
    /// Nothing happened; the loop looks at its deadlines (parked requests).
    Tick,
    /// A build or package ended.
    BuildFinished(Finished),
    /// A container of `arca.run` started or exited.
    Run(super::runs::RunChange),
    /// Time to recompute the whole-tree fingerprint (if still wanted).
    RefingerprintDue { crate_dir: PathBuf, generation: u64 },
    /// The whole-tree fingerprint of the current tree was recomputed.
    Refingerprinted {
        crate_dir: PathBuf,
        generation: u64,
        fingerprint: Result<String, String>,
    },
}

/// What a finished build or package hands back to the loop.
pub struct Finished {
    pub crate_dir: PathBuf,
    /// The operation's generation (a report of a replaced one is dropped).
    pub generation: u64,
    /// Compiler diagnostics of this build per file, converted off the
    /// loop (empty when it never compiled).
    pub diagnostics: DiagnosticsByFile,
    /// Whether cargo ran (so the previous diagnostics are replaced).
    pub compiled: bool,
}
