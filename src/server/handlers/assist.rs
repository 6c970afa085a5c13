//! Editing help on `.arca/config.toml`: completion, hover and quick fixes.
//! The knowledge lives in `config` (checker and assist); this file only
//! converts between LSP positions and byte offsets.

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeActionOrCommand, CodeActionParams, CodeActionResponse, CompletionParams,
    CompletionResponse, Hover, HoverParams,
};

use crate::config;
use crate::server::convert::{self, LineIndex};
use crate::server::state::{State, config_owner};

pub fn completion(
    state: &mut State,
    params: CompletionParams,
) -> jsonrpc::Result<Option<CompletionResponse>> {
    let _ = (state, params);
    Ok(None)
}

pub fn hover(state: &mut State, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
    let _ = (state, params);
    Ok(None)
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
