//! tower-lsp's `LanguageServer`: forwards every message, in arrival order,
//! into the main loop's channel and waits for the loop's answer.
//!
//! **No state and no logic here.** tower-lsp runs handlers concurrently and
//! they interleave at every `.await` (tower-lsp issue 284); each handler
//! sends its message before its first `.await`, so the loop sees them in
//! the order tower-lsp read them.

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_lsp::LanguageServer;
use tower_lsp::jsonrpc::{Error, Result};
use tower_lsp::lsp_types::{
    CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse,
    DidChangeTextDocumentParams, DidChangeWatchedFilesParams, DidChangeWorkspaceFoldersParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    ExecuteCommandParams, Hover, HoverParams, InitializeParams, InitializeResult,
    InitializedParams, WorkDoneProgressCancelParams,
};

use super::event::{Event, LspMessage, Reply};
use super::ext::StatusParams;
use crate::status::CrateStatus;

pub struct Adapter {
    events: mpsc::UnboundedSender<Event>,
}

impl Adapter {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Self {
        Self { events }
    }

    fn notify(&self, message: LspMessage) {
        if self.events.send(Event::Lsp(message)).is_err() {
            tracing::error!("the main loop has stopped; dropping a notification");
        }
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> LspMessage) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let message = make(tx);
        let method = message.method();
        if self.events.send(Event::Lsp(message)).is_err() {
            return Err(loop_gone(method));
        }
        rx.await.unwrap_or_else(|_| Err(loop_gone(method)))
    }

    /// `window/workDoneProgress/cancel`, which tower-lsp 0.20 does not
    /// route itself.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        self.notify(LspMessage::ProgressCancel(params));
    }

    /// `arca/status` (client → server).
    pub async fn status(&self, params: StatusParams) -> Result<Vec<CrateStatus>> {
        self.request(|reply| LspMessage::Status(params, reply))
            .await
    }
}

fn loop_gone(method: &str) -> Error {
    let mut error = Error::internal_error();
    error.message = format!(
        "arca's language server stopped its main loop before answering {method}; restart the server and report this."
    )
    .into();
    error
}

#[tower_lsp::async_trait]
impl LanguageServer for Adapter {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        self.request(|reply| LspMessage::Initialize(Box::new(params), reply))
            .await
    }

    async fn initialized(&self, _: InitializedParams) {
        self.notify(LspMessage::Initialized);
    }

    async fn shutdown(&self) -> Result<()> {
        self.request(LspMessage::Shutdown).await
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        self.notify(LspMessage::DidOpen(params));
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        self.notify(LspMessage::DidChange(params));
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.notify(LspMessage::DidSave(params));
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.notify(LspMessage::DidClose(params));
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        self.notify(LspMessage::DidChangeWorkspaceFolders(params));
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        self.notify(LspMessage::DidChangeWatchedFiles(params));
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.request(|reply| LspMessage::Completion(params, reply))
            .await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        self.request(|reply| LspMessage::Hover(params, reply)).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.request(|reply| LspMessage::CodeAction(params, reply))
            .await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        self.request(|reply| LspMessage::ExecuteCommand(params, reply))
            .await
    }
}
