//! Cargo's JSON messages (`--message-format=json`): compiler diagnostics
//! kept as structured data, with paths mapped back to the host, and the
//! rendered text to show the user.
//!
//! Why `json` and not `json-render-diagnostics`: the latter makes Cargo
//! render diagnostics itself and drop them from the JSON stream, so the
//! language server would get no structured diagnostics. With `json` every
//! diagnostic carries its `rendered` text, which is what gets shown.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::source;

/// One compiler diagnostic (error, warning, ...), paths on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompilerDiagnostic {
    /// `error`, `warning`, `note`, `help`, `failure-note`, `error: internal compiler error`.
    pub level: String,
    pub message: String,
    /// The lint or error code (`E0308`, `unused_variables`).
    pub code: Option<String>,
    /// The compiler's own rendering (what the terminal shows).
    pub rendered: Option<String>,
    pub spans: Vec<DiagnosticSpan>,
    /// Cargo's package id of the crate being compiled.
    pub package_id: String,
}

/// Where a diagnostic points; lines and columns are 1-based, as rustc
/// reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticSpan {
    pub file: PathBuf,
    pub line_start: u32,
    pub line_end: u32,
    pub column_start: u32,
    pub column_end: u32,
    pub is_primary: bool,
    pub label: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    reason: String,
    #[serde(default)]
    package_id: String,
    message: Option<RawDiagnostic>,
    success: Option<bool>,
    executable: Option<String>,
}

#[derive(Deserialize)]
struct RawDiagnostic {
    message: String,
    level: String,
    code: Option<RawCode>,
    rendered: Option<String>,
    #[serde(default)]
    spans: Vec<RawSpan>,
}

#[derive(Deserialize)]
struct RawCode {
    code: String,
}

#[derive(Deserialize)]
struct RawSpan {
    file_name: String,
    line_start: u32,
    line_end: u32,
    column_start: u32,
    column_end: u32,
    is_primary: bool,
    label: Option<String>,
}

/// Cargo's own progress, from its stderr progress line (`Building [==> ]
/// 120/310: serde, tokio`), which it prints when `CARGO_TERM_PROGRESS_WHEN`
/// is `always`: units finished, units in the build, what is compiling now.
/// (Cargo's JSON messages report finished units but never the total.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoProgress {
    pub current: u64,
    pub total: u64,
    pub active: String,
}

/// The variables that make cargo print its progress line without a
/// terminal (width: enough for the counts and a few crate names).
pub const PROGRESS_ENV: [(&str, &str); 2] = [
    ("CARGO_TERM_PROGRESS_WHEN", "always"),
    ("CARGO_TERM_PROGRESS_WIDTH", "100"),
];

/// Parses one progress line of cargo's stderr; `None` for any other line.
pub fn parse_progress(line: &str) -> Option<CargoProgress> {
    let rest = line.trim().strip_prefix("Building [")?;
    let (_, rest) = rest.split_once("] ")?;
    let (counts, active) = match rest.split_once(':') {
        Some((counts, active)) => (counts, active.trim()),
        None => (rest, ""),
    };
    let (current, total) = counts.trim().split_once('/')?;
    Some(CargoProgress {
        current: current.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        active: active.to_owned(),
    })
}

/// Reads Cargo's stdout line by line.
pub struct CargoMessages {
    source_root: PathBuf,
    workspace_root: PathBuf,
    pub diagnostics: Vec<CompilerDiagnostic>,
    /// From the final `build-finished` message.
    pub success: Option<bool>,
    /// Executables Cargo reported (paths as Cargo saw them).
    pub executables: Vec<String>,
}

impl CargoMessages {
    /// The diagnostics, each once (a build for several platforms compiles
    /// the crate once per platform and repeats each warning), in order.
    pub fn take_unique_diagnostics(&mut self) -> Vec<CompilerDiagnostic> {
        let mut unique = Vec::new();
        for diagnostic in std::mem::take(&mut self.diagnostics) {
            if !unique.contains(&diagnostic) {
                unique.push(diagnostic);
            }
        }
        unique
    }

    /// `source_root` is what `/work/source` maps to (for a host build, the
    /// paths are host paths already and nothing maps).
    pub fn new(source_root: &Path, workspace_root: &Path) -> Self {
        Self {
            source_root: source_root.to_path_buf(),
            workspace_root: workspace_root.to_path_buf(),
            diagnostics: Vec::new(),
            success: None,
            executables: Vec::new(),
        }
    }

    /// Takes one stdout line; returns the text to show for it, if any.
    pub fn handle_line(&mut self, line: &str) -> Option<String> {
        let Ok(raw) = serde_json::from_str::<RawMessage>(line) else {
            return Some(line.to_owned());
        };
        match raw.reason.as_str() {
            "compiler-message" => {
                let diagnostic = raw.message?;
                let shown = diagnostic
                    .rendered
                    .as_deref()
                    .map(|text| text.trim_end().to_owned());
                self.diagnostics.push(CompilerDiagnostic {
                    level: diagnostic.level,
                    message: diagnostic.message,
                    code: diagnostic.code.map(|code| code.code),
                    rendered: diagnostic.rendered,
                    spans: diagnostic
                        .spans
                        .into_iter()
                        .map(|span| DiagnosticSpan {
                            file: source::host_path(
                                &self.source_root,
                                &self.workspace_root,
                                &span.file_name,
                            ),
                            line_start: span.line_start,
                            line_end: span.line_end,
                            column_start: span.column_start,
                            column_end: span.column_end,
                            is_primary: span.is_primary,
                            label: span.label,
                        })
                        .collect(),
                    package_id: raw.package_id,
                });
                shown
            }
            "compiler-artifact" => {
                if let Some(executable) = raw.executable {
                    self.executables.push(executable);
                }
                None
            }
            "build-finished" => {
                self.success = raw.success;
                None
            }
            _ => None,
        }
    }

    /// The errors among the diagnostics.
    pub fn errors(&self) -> impl Iterator<Item = &CompilerDiagnostic> {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.level.starts_with("error"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_repeated_by_each_platform_are_kept_once_in_order() {
        let diagnostic = |message: &str| CompilerDiagnostic {
            level: "warning".into(),
            message: message.into(),
            code: None,
            rendered: None,
            spans: Vec::new(),
            package_id: "hello".into(),
        };
        let mut messages = CargoMessages::new(Path::new("/src"), Path::new("/src"));
        messages.diagnostics = vec![
            diagnostic("b"),
            diagnostic("a"),
            diagnostic("b"),
            diagnostic("a"),
        ];
        let unique = messages.take_unique_diagnostics();
        assert_eq!(unique, vec![diagnostic("b"), diagnostic("a")]);
        assert!(messages.diagnostics.is_empty());
    }

    #[test]
    fn cargo_progress_lines_give_counts_and_other_lines_none() {
        assert_eq!(
            parse_progress("    Building [=====>          ] 120/310: serde, tokio(build)     "),
            Some(CargoProgress {
                current: 120,
                total: 310,
                active: "serde, tokio(build)".into()
            })
        );
        assert_eq!(
            parse_progress("    Building [                ] 0/1"),
            Some(CargoProgress {
                current: 0,
                total: 1,
                active: String::new()
            })
        );
        assert_eq!(parse_progress("   Compiling serde v1.0.0"), None);
        assert_eq!(parse_progress("    Building [==] x/y: a"), None);
    }

    #[test]
    fn compiler_messages_become_structured_diagnostics_on_host_paths() {
        let mut messages = CargoMessages::new(Path::new("/h/ws"), Path::new("/h/ws/app"));
        let line = r#"{"reason":"compiler-message","package_id":"path+file:///work/source/app#hello@0.1.0","manifest_path":"/work/source/app/Cargo.toml","target":{},"message":{"rendered":"error[E0308]: mismatched types\n --> src/main.rs:1:26\n","$message_type":"diagnostic","children":[],"level":"error","message":"mismatched types","spans":[{"byte_end":29,"byte_start":26,"column_end":29,"column_start":26,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":"expected `u32`, found `&str`","line_end":1,"line_start":1,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}],"code":{"code":"E0308","explanation":"..."}}}"#;
        let shown = messages.handle_line(line).unwrap();
        assert_eq!(
            shown,
            "error[E0308]: mismatched types\n --> src/main.rs:1:26"
        );
        let diagnostic = &messages.diagnostics[0];
        assert_eq!(diagnostic.code.as_deref(), Some("E0308"));
        assert_eq!(
            diagnostic.spans[0].file,
            PathBuf::from("/h/ws/app/src/main.rs")
        );
        assert_eq!(messages.errors().count(), 1);
        assert_eq!(
            messages.handle_line(r#"{"reason":"build-finished","success":false}"#),
            None
        );
        assert_eq!(messages.success, Some(false));
        assert_eq!(
            messages.handle_line("plain text").as_deref(),
            Some("plain text")
        );
    }
}
