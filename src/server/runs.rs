//! The runs the server started (`arca.run`): one handle per crate, and the
//! changes a run's task reports to the loop. Plain data, so the loop's
//! state and events hold them without importing the handlers.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::status::RunningContainer;

/// A run of one crate: packaging, or its container running.
pub struct RunHandle {
    pub generation: u64,
    /// Cancelled by `arca.stop` (and at shutdown).
    pub stop: CancellationToken,
    pub running: Option<RunningContainer>,
}

/// What a run task reports to the loop.
pub enum RunChange {
    Started {
        crate_dir: PathBuf,
        generation: u64,
        running: RunningContainer,
    },
    Ended {
        crate_dir: PathBuf,
        generation: u64,
    },
    /// A live run rebuilt the binary: cargo's diagnostics per file, and
    /// when the new binary went into the container (epoch ms; `None` when
    /// it did not, e.g. a compile error).
    LiveCompiled {
        crate_dir: PathBuf,
        generation: u64,
        diagnostics: LspDiagnosticsByFile,
        updated_at: Option<u64>,
    },
}

/// LSP diagnostics per source file.
pub type LspDiagnosticsByFile =
    std::collections::BTreeMap<tower_lsp::lsp_types::Url, Vec<tower_lsp::lsp_types::Diagnostic>>;
