//! Conversions between Arca's byte spans and LSP's UTF-16 positions, and
//! from config findings to LSP diagnostics and quick fixes.
//!
//! **The only module that turns byte offsets into LSP positions.** LSP
//! counts columns in UTF-16 code units; a byte offset inside a character is
//! clamped to the character's start.

use std::collections::HashMap;
use std::ops::Range;

use tower_lsp::lsp_types::{
    self, CodeAction, CodeActionKind, Diagnostic, DiagnosticSeverity, NumberOrString, Position,
    Url, WorkspaceEdit,
};

use crate::config::{Finding, Fix, Severity};
use crate::server::model::activity::ProgressToken;

/// The `source` of every diagnostic Arca publishes.
pub const SOURCE: &str = "arca";

/// Byte offset ↔ line/UTF-16 column for one text.
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Self { text, line_starts }
    }

    /// The LSP position of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let start = self.line_starts[line];
        let character: usize = self.text[start..offset].chars().map(char::len_utf16).sum();
        Position::new(to_u32(line), to_u32(character))
    }

    /// The byte offset of an LSP position; positions past the end of a line
    /// or of the text are clamped, as the specification asks.
    pub fn offset(&self, position: Position) -> usize {
        let Some(&start) = self.line_starts.get(position.line as usize) else {
            return self.text.len();
        };
        let end = self.line_end(position.line as usize);
        let mut units = 0usize;
        for (index, ch) in self.text[start..end].char_indices() {
            if units >= position.character as usize {
                return start + index;
            }
            units += ch.len_utf16();
        }
        end
    }

    /// Where line `line` ends, before its `\n` or `\r\n`.
    fn line_end(&self, line: usize) -> usize {
        let end = self
            .line_starts
            .get(line + 1)
            .map_or(self.text.len(), |next| next - 1);
        let start = self.line_starts.get(line).copied().unwrap_or(end);
        if end > start && self.text.as_bytes()[end - 1] == b'\r' {
            end - 1
        } else {
            end
        }
    }

    /// The LSP position of a 0-based line and character (Unicode scalar)
    /// column, as rustc reports them; clamped to the line's end.
    pub fn char_position(&self, line: u32, column: u32) -> Position {
        let Some(&start) = self
            .line_starts
            .get(line as usize)
            .filter(|_| !self.text.is_empty())
        else {
            // The text is unknown: character columns are the best guess.
            return Position::new(line, column);
        };
        let end = self.line_end(line as usize);
        let units: usize = self.text[start..end]
            .chars()
            .take(column as usize)
            .map(char::len_utf16)
            .sum();
        Position::new(line, to_u32(units))
    }

    pub fn range(&self, span: &Range<usize>) -> lsp_types::Range {
        lsp_types::Range::new(self.position(span.start), self.position(span.end))
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn severity(severity: Severity) -> DiagnosticSeverity {
    match severity {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Information => DiagnosticSeverity::INFORMATION,
    }
}

/// A config finding as an LSP diagnostic.
pub fn diagnostic(index: &LineIndex<'_>, finding: &Finding) -> Diagnostic {
    Diagnostic {
        range: index.range(&finding.span),
        severity: Some(severity(finding.severity)),
        code: Some(NumberOrString::String(finding.code.as_str().to_owned())),
        source: Some(SOURCE.to_owned()),
        message: finding.message.clone(),
        ..Diagnostic::default()
    }
}

/// A finding's fix as a `quickfix` code action on `uri`.
pub fn quick_fix(
    uri: &Url,
    index: &LineIndex<'_>,
    finding: &Finding,
    fix: &Fix,
    preferred: bool,
) -> CodeAction {
    let edits = fix
        .edits
        .iter()
        .map(|edit| lsp_types::TextEdit::new(index.range(&edit.span), edit.new_text.clone()))
        .collect();
    CodeAction {
        title: fix.title.clone(),
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic(index, finding)]),
        edit: Some(WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), edits)])),
            ..WorkspaceEdit::default()
        }),
        is_preferred: Some(preferred),
        ..CodeAction::default()
    }
}

/// Whether two LSP ranges overlap or touch (a zero-width request range at a
/// diagnostic's edge counts).
pub fn ranges_touch(left: &lsp_types::Range, right: &lsp_types::Range) -> bool {
    left.start <= right.end && right.start <= left.end
}

impl From<ProgressToken> for NumberOrString {
    fn from(token: ProgressToken) -> Self {
        match token {
            ProgressToken::Number(number) => NumberOrString::Number(number),
            ProgressToken::String(text) => NumberOrString::String(text),
        }
    }
}

impl From<NumberOrString> for ProgressToken {
    fn from(token: NumberOrString) -> Self {
        match token {
            NumberOrString::Number(number) => ProgressToken::Number(number),
            NumberOrString::String(text) => ProgressToken::String(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one converter between byte offsets and LSP positions (it
    /// replaces a second copy that lived in `config::assist`).
    #[test]
    fn lsp_positions_count_utf16_units_and_round_trip_over_crlf() {
        let text = "a = \"é😀x\"\r\nb = 1\n\nlast";
        let index = LineIndex::new(text);
        let cases = [
            (0, (0, 0)),
            (5, (0, 5)),
            (7, (0, 6)),
            (11, (0, 8)),
            (12, (0, 9)),
            (text.find('b').unwrap(), (1, 0)),
            (text.len(), (3, 4)),
        ];
        for (offset, (line, character)) in cases {
            assert_eq!(
                index.position(offset),
                Position::new(line, character),
                "offset {offset}"
            );
            assert_eq!(index.offset(Position::new(line, character)), offset);
        }
        // Inside the emoji's bytes: its start.
        assert_eq!(index.position(9), Position::new(0, 6));
        // Past the line end: the end of the line, before \r\n.
        assert_eq!(index.offset(Position::new(0, 99)), text.find('\r').unwrap());
        assert_eq!(index.offset(Position::new(2, 5)), text.rfind('\n').unwrap());
        assert_eq!(index.offset(Position::new(99, 0)), text.len());
        assert_eq!(LineIndex::new("").position(10), Position::new(0, 0));
        // rustc's character columns, clamped before \r\n.
        assert_eq!(index.char_position(0, 7), Position::new(0, 8));
        assert_eq!(index.char_position(0, 99), Position::new(0, 10));
    }

    #[test]
    fn positions_count_utf16_units() {
        let text = "a = \"é😀\"\nb = 1\n";
        let index = LineIndex::new(text);
        let b = text.find('b').unwrap();
        assert_eq!(index.position(b), Position::new(1, 0));
        let quote = text.rfind('"').unwrap();
        // a, space, =, space, ", é (1 unit), 😀 (2 units)
        assert_eq!(index.position(quote), Position::new(0, 8));
        assert_eq!(index.offset(Position::new(0, 8)), quote);
        assert_eq!(index.offset(Position::new(1, 0)), b);
    }

    #[test]
    fn offsets_inside_a_character_clamp_to_its_start() {
        let text = "😀x";
        let index = LineIndex::new(text);
        assert_eq!(index.position(2), Position::new(0, 0));
        assert_eq!(index.position(4), Position::new(0, 2));
        assert_eq!(index.offset(Position::new(0, 1)), 4);
    }

    #[test]
    fn positions_past_the_end_clamp() {
        let text = "ab\ncd";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(Position::new(0, 99)), 2);
        assert_eq!(index.offset(Position::new(9, 0)), text.len());
        assert_eq!(index.position(99), Position::new(1, 2));
    }
}
