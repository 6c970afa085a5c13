//! What a run's task (`arca.run`) reports to the loop. Plain data, so the
//! loop's events hold it without importing the handlers; the run itself
//! is part of the crate's [`crate::server::model::activity::Activity`].

use std::path::PathBuf;

use crate::status::RunningContainer;

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
