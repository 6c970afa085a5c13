//! Editing help on `.arca/config.toml`: completion, hover and quick fixes.
//! The knowledge lives in `config` (checker and assist); this file only
//! converts between LSP positions and byte offsets.
//!
//! Each request is split in two: [`gather`] takes what it needs from the
//! loop's state (the open document's text, the crate's facts), and the
//! handlers below do the work (a read of a file not open, the check of a
//! possibly large config) off the loop, on the blocking pool.

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeActionOrCommand, CodeActionParams, CodeActionResponse, CompletionItem, CompletionItemKind,
    CompletionParams, CompletionResponse, CompletionTextEdit, Documentation, Hover, HoverContents,
    HoverParams, InsertTextFormat, MarkupContent, MarkupKind, TextEdit, Url,
};

use crate::config;
use crate::config::assist::CompletionKind;
use crate::server::convert::{self, LineIndex};
use crate::server::state::{State, config_owner};
use crate::workspace::CrateFacts;

/// A request's share of the loop's state, taken on the loop.
pub struct Gathered {
    path: std::path::PathBuf,
    /// The editor's text when the document is open.
    open_text: Option<String>,
    facts: Option<CrateFacts>,
    snippets: bool,
}

impl Gathered {
    /// The config's current text: the editor's, else the file's.
    fn text(&self) -> Option<String> {
        if let Some(text) = &self.open_text {
            return Some(text.clone());
        }
        let bytes = crate::fsread::read(&self.path, crate::fsread::Kind::Config).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// What a request on `uri` needs from the state; `None` when `uri` is no
/// crate's `.arca/config.toml`.
pub fn gather(state: &State, uri: &Url) -> Option<Gathered> {
    let path = uri.to_file_path().ok()?;
    config_owner(&path)?;
    let open_text = state
        .documents
        .get(&path)
        .map(|document| document.text.to_string());
    let facts = state
        .crate_of_config(&path)
        .and_then(|entry| entry.facts())
        .cloned();
    Some(Gathered {
        path,
        open_text,
        facts,
        snippets: state.client_snippets,
    })
}

pub fn completion(
    gathered: Gathered,
    params: CompletionParams,
) -> jsonrpc::Result<Option<CompletionResponse>> {
    let position = params.text_document_position;
    let Some(text) = gathered.text() else {
        return Ok(None);
    };
    let index = LineIndex::new(&text);
    let offset = index.offset(position.position);
    let facts = gathered.facts.as_ref();
    let snippets = gathered.snippets;
    let items = config::assist::completions(&text, offset, facts)
        .into_iter()
        .map(|completion| {
            let (insert, format) = match (&completion.snippet, snippets) {
                (Some(snippet), true) => (snippet.clone(), InsertTextFormat::SNIPPET),
                _ => (completion.insert_text.clone(), InsertTextFormat::PLAIN_TEXT),
            };
            let text_edit = completion.replace_span.as_ref().map(|span| {
                CompletionTextEdit::Edit(TextEdit::new(index.range(span), insert.clone()))
            });
            CompletionItem {
                label: completion.label,
                kind: Some(match completion.kind {
                    CompletionKind::Key => CompletionItemKind::PROPERTY,
                    CompletionKind::Value => CompletionItemKind::VALUE,
                    CompletionKind::Table => CompletionItemKind::MODULE,
                }),
                detail: Some(completion.detail),
                documentation: (!completion.documentation.is_empty()).then_some(
                    Documentation::MarkupContent(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: completion.documentation,
                    }),
                ),
                insert_text: text_edit.is_none().then_some(insert),
                insert_text_format: Some(format),
                text_edit,
                ..CompletionItem::default()
            }
        })
        .collect();
    Ok(Some(CompletionResponse::Array(items)))
}

pub fn hover(gathered: Gathered, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let Some(text) = gathered.text() else {
        return Ok(None);
    };
    let index = LineIndex::new(&text);
    let offset = index.offset(position.position);
    let facts = gathered.facts.as_ref();
    Ok(
        config::assist::hover(&text, offset, facts).map(|hover| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: hover.markdown,
            }),
            range: Some(index.range(&hover.span)),
        }),
    )
}

/// Quick fixes for the findings under the requested range.
pub fn code_action(
    gathered: Gathered,
    params: CodeActionParams,
) -> jsonrpc::Result<Option<CodeActionResponse>> {
    let uri = params.text_document.uri;
    let Some(text) = gathered.text() else {
        return Ok(None);
    };
    let facts = gathered.facts.as_ref();
    let index = LineIndex::new(&text);
    let mut actions = Vec::new();
    for finding in config::checker::check(&text, facts) {
        let range = index.range(&finding.span);
        if !convert::ranges_touch(&range, &params.range) {
            continue;
        }
        for (rank, fix) in finding.fixes.iter().enumerate() {
            actions.push(CodeActionOrCommand::CodeAction(convert::quick_fix(
                &uri,
                &index,
                &finding,
                fix,
                rank == 0,
            )));
        }
    }
    Ok(Some(actions))
}
