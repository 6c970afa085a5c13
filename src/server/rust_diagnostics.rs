//! Compiler diagnostics from a build, published on the Rust sources (host
//! paths, as `crate::pipeline` maps them back from the container), and
//! cleared by the crate's next build that compiles.
//!
//! [`by_file`] reads the sources (rustc counts characters, LSP counts UTF-16
//! units), so it runs in the build's task; the loop only [`publish`]es.

use std::collections::BTreeSet;
use std::path::Path;

use tower_lsp::lsp_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Range, Url};

use crate::pipeline::{CompilerDiagnostic, DiagnosticSpan};
use crate::server::convert::LineIndex;
use crate::server::outbox::Outgoing;
use crate::server::state::State;

/// `source` of compiler diagnostics.
const SOURCE: &str = "arca (rustc)";

use crate::server::event::DiagnosticsByFile as ByFile;

/// Converts rustc's diagnostics to LSP ones per file. Reads each named
/// source (bounded by `fsread`), so call it off the server's loop.
pub fn by_file(diagnostics: &[CompilerDiagnostic]) -> ByFile {
    let mut by_file = ByFile::new();
    for diagnostic in diagnostics {
        let severity = match diagnostic.level.as_str() {
            level if level.starts_with("error") => DiagnosticSeverity::ERROR,
            "warning" => DiagnosticSeverity::WARNING,
            "note" | "help" => DiagnosticSeverity::INFORMATION,
            _ => continue,
        };
        let Some(span) = diagnostic.spans.iter().find(|span| span.is_primary) else {
            continue;
        };
        let Ok(uri) = Url::from_file_path(&span.file) else {
            continue;
        };
        let message = match &span.label {
            Some(label) if !label.is_empty() => format!("{}\n{label}", diagnostic.message),
            _ => diagnostic.message.clone(),
        };
        by_file.entry(uri).or_default().push(Diagnostic {
            range: range(span),
            severity: Some(severity),
            code: diagnostic.code.clone().map(NumberOrString::String),
            source: Some(SOURCE.to_owned()),
            message,
            ..Diagnostic::default()
        });
    }
    by_file
}

/// Publishes a build's diagnostics and clears the files the crate's
/// previous build reported that this one does not.
pub fn publish(state: &mut State, crate_dir: &Path, by_file: ByFile) {
    let now: BTreeSet<Url> = by_file.keys().cloned().collect();
    let before = state
        .rust_diagnostics
        .insert(crate_dir.to_path_buf(), now.clone())
        .unwrap_or_default();
    for stale in before.difference(&now) {
        state
            .outbox
            .send(Outgoing::Diagnostics(stale.clone(), Vec::new(), None));
    }
    for (uri, diagnostics) in by_file {
        state
            .outbox
            .send(Outgoing::Diagnostics(uri, diagnostics, None));
    }
}

/// Clears every compiler diagnostic the crate's builds published.
pub fn clear(state: &mut State, crate_dir: &Path) {
    for uri in state.rust_diagnostics.remove(crate_dir).unwrap_or_default() {
        state
            .outbox
            .send(Outgoing::Diagnostics(uri, Vec::new(), None));
    }
}

/// rustc's 1-based line and character columns as an LSP range (UTF-16
/// columns, read from the file; character columns if it cannot be read).
fn range(span: &DiagnosticSpan) -> Range {
    let text = crate::fsread::read_to_string(Path::new(&span.file), crate::fsread::Kind::Source)
        .unwrap_or_default();
    let index = LineIndex::new(&text);
    let position = |line: u32, column: u32| {
        index.char_position(line.saturating_sub(1), column.saturating_sub(1))
    };
    Range::new(
        position(span.line_start, span.column_start),
        position(span.line_end, span.column_end),
    )
}
