//! Editing help on `.arca/config.toml`: completion, hover and quick fixes.
//! The knowledge lives in `config` (checker and assist); this file only
//! converts between LSP positions and byte offsets.

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

pub fn completion(
    state: &mut State,
    params: CompletionParams,
) -> jsonrpc::Result<Option<CompletionResponse>> {
    let position = params.text_document_position;
    let Some((path, text)) = config_document(state, &position.text_document.uri) else {
        return Ok(None);
    };
    let index = LineIndex::new(&text);
    let offset = index.offset(position.position);
    let facts = state.crate_of_config(&path).and_then(|entry| entry.facts());
    let snippets = state.client_snippets;
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

pub fn hover(state: &mut State, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let Some((path, text)) = config_document(state, &position.text_document.uri) else {
        return Ok(None);
    };
    let index = LineIndex::new(&text);
    let offset = index.offset(position.position);
    let facts = state.crate_of_config(&path).and_then(|entry| entry.facts());
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

/// The path and current text of a `.arca/config.toml` document.
fn config_document(state: &State, uri: &Url) -> Option<(std::path::PathBuf, String)> {
    let path = uri.to_file_path().ok()?;
    config_owner(&path)?;
    let (text, _) = super::documents::config_text(state, &path)?;
    Some((path, text))
}

/// Quick fixes for the findings under the requested range.
pub fn code_action(
    state: &mut State,
    params: CodeActionParams,
) -> jsonrpc::Result<Option<CodeActionResponse>> {
    let uri = params.text_document.uri;
    let Ok(path) = uri.to_file_path() else {
        return Ok(None);
    };
    if config_owner(&path).is_none() {
        return Ok(None);
    }
    let Some((text, _)) = super::documents::config_text(state, &path) else {
        return Ok(None);
    };
    let facts = state.crate_of_config(&path).and_then(|entry| entry.facts());
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
