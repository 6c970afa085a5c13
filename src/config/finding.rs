//! What the checks report: a finding (code, severity, byte span, message,
//! fixes) and the text edits a fix makes. No LSP types: the server converts.

use std::ops::Range;
use std::path::Path;

use serde::Serialize;

/// How serious a finding is (the LSP severities Arca uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "info",
        }
    }
}

/// The diagnostic codes of PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Code {
    TomlSyntax,
    InvalidType,
    UnknownKey,
    EmptyValue,
    UnknownProfile,
    UnknownFeature,
    UnknownBinary,
    AmbiguousBinary,
    InvalidImage,
    /// A builder setting (`packages`, `toolchain`, `env`) or a `platforms`
    /// entry with a value Arca refuses, or (a warning) a platform listed
    /// twice (additive to PROTOCOL.md).
    InvalidValue,
    MissingSetting,
    CudaBuilder,
}

impl Code {
    /// The wire name, e.g. `unknown-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TomlSyntax => "toml-syntax",
            Code::InvalidType => "invalid-type",
            Code::UnknownKey => "unknown-key",
            Code::EmptyValue => "empty-value",
            Code::UnknownProfile => "unknown-profile",
            Code::UnknownFeature => "unknown-feature",
            Code::UnknownBinary => "unknown-binary",
            Code::AmbiguousBinary => "ambiguous-binary",
            Code::InvalidImage => "invalid-image",
            Code::InvalidValue => "invalid-value",
            Code::MissingSetting => "missing-setting",
            Code::CudaBuilder => "cuda-builder",
        }
    }
}

/// One replacement of a byte range of the config text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextEdit {
    pub span: Range<usize>,
    pub new_text: String,
}

/// A quick fix: a title for the menu and the edits that apply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<TextEdit>,
}

/// One problem (or note) in a config text, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// Byte range of the offending key, value or token in the text.
    pub span: Range<usize>,
    pub message: String,
    /// Quick fixes, best first.
    pub fixes: Vec<Fix>,
}

impl Finding {
    /// `path:line:col` (1-based, columns in characters) of the finding's start.
    pub fn location(&self, path: &Path, text: &str) -> String {
        let (line, col) = line_col(text, self.span.start);
        format!("{}:{}:{}", path.display(), line + 1, col + 1)
    }

    /// The CLI's one-line form: `file:line:col: severity[code]: message`.
    pub fn render(&self, path: &Path, text: &str) -> String {
        format!(
            "{}: {}[{}]: {}",
            self.location(path, text),
            self.severity.as_str(),
            self.code.as_str(),
            self.message
        )
    }
}

/// Zero-based line and character column of a byte offset (clamped to the
/// text, and to a character boundary).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    (line, before[line_start..].chars().count())
}

/// An `invalid-type` error at `span` (a one-key table's wrong value or
/// shape).
pub fn invalid_type(span: Range<usize>, message: String) -> Finding {
    Finding {
        code: Code::InvalidType,
        severity: Severity::Error,
        span,
        message,
        fixes: Vec::new(),
    }
}

/// `span`, else the key's, clamped to `text`.
pub fn span_or_key(span: Option<Range<usize>>, key: &toml_edit::Key, text: &str) -> Range<usize> {
    let span = span.or_else(|| key.span()).unwrap_or(0..0);
    span.start.min(text.len())..span.end.min(text.len())
}
