//! Server → client notifications, sent in the order the loop queued them
//! by one task, so the loop itself never waits on the client.

use tokio::sync::mpsc;
use tower_lsp::Client;
use tower_lsp::lsp_types::{Diagnostic, MessageType, ProgressParams, Url, notification};

use super::ext::{RemovedNotification, RemovedParams, StatusNotification};
use crate::status::CrateStatus;

pub enum Outgoing {
    Diagnostics(Url, Vec<Diagnostic>, Option<i32>),
    Status(Box<CrateStatus>),
    /// `arca/removed` for the crate URI.
    Removed(String),
    Log(MessageType, String),
    Progress(ProgressParams),
}

/// A cheap handle for queueing notifications.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl Outbox {
    /// Starts the sending task for `client`.
    pub fn spawn(client: Client) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                match message {
                    Outgoing::Diagnostics(uri, diagnostics, version) => {
                        client.publish_diagnostics(uri, diagnostics, version).await;
                    }
                    Outgoing::Status(status) => {
                        client
                            .send_notification::<StatusNotification>(*status)
                            .await;
                    }
                    Outgoing::Removed(uri) => {
                        client
                            .send_notification::<RemovedNotification>(RemovedParams {
                                crate_uri: uri,
                            })
                            .await;
                    }
                    Outgoing::Log(kind, text) => client.log_message(kind, text).await,
                    Outgoing::Progress(params) => {
                        client
                            .send_notification::<notification::Progress>(params)
                            .await;
                    }
                }
            }
        });
        Self { tx }
    }

    pub fn send(&self, message: Outgoing) {
        // The task only ends with the runtime: nothing to do if it is gone.
        let _ = self.tx.send(message);
    }

    pub fn log(&self, kind: MessageType, text: impl Into<String>) {
        self.send(Outgoing::Log(kind, text.into()));
    }
}
