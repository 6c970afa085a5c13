//! `arca.setDefaults`: saves settings into the crate's
//! `.arca/config.toml` through `workspace/applyEdit`, keeping the file's
//! comments and layout (the edit itself comes from `config::edit`).

use std::collections::HashMap;
use std::path::Path;

use futures_util::FutureExt;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CreateFile, CreateFileOptions, DocumentChangeOperation, DocumentChanges, OneOf,
    OptionalVersionedTextDocumentIdentifier, Position, Range, ResourceOp, TextDocumentEdit,
    TextEdit, Url, WorkspaceEdit,
};

use super::{failed, invalid_params};
use crate::config::{self, RustConfig};
use crate::plan::normalize_features;
use crate::server::convert::LineIndex;
use crate::server::event::Answer;
use crate::server::ext::SetDefaultsArgs;
use crate::server::state::{State, config_text};

pub fn set_defaults(
    state: &mut State,
    dir: &Path,
    args: SetDefaultsArgs,
) -> jsonrpc::Result<Answer> {
    let wanted = RustConfig {
        profile: args.profile,
        features: args
            .features
            .map(|features| normalize_features(&features.into_values())),
        bin: args.bin,
        base_image: args.base_image,
    };
    if wanted == RustConfig::default() {
        return Err(invalid_params(
            "`arca.setDefaults` needs at least one of `profile`, `features`, `bin`, `baseImage`.",
        ));
    }
    let path = config::config_path(dir);
    if !state.client_apply_edit {
        return Err(failed(format!(
            "This editor did not declare the `workspace.applyEdit` capability, so Arca cannot edit {} through it. Edit the file by hand, or run `arca build rust {} --set-default` with the settings in a terminal.",
            path.display(),
            dir.display()
        )));
    }
    let uri = match state.documents.get(&path) {
        Some(document) => document.uri.clone(),
        None => Url::from_file_path(&path)
            .map_err(|()| failed(format!("{} is not a valid file URI.", path.display())))?,
    };
    let existing = config_text(state, &path);
    let exists = existing.is_some();
    let (old_text, version) = existing.unwrap_or_default();
    let new_text = config::edit::set_defaults(&old_text, &wanted)
        .map_err(|error| failed(format!("Cannot update {}: {error:#}", path.display())))?;
    let index = LineIndex::new(&old_text);
    let whole = Range::new(Position::new(0, 0), index.position(old_text.len()));
    let text_edit = TextDocumentEdit {
        text_document: OptionalVersionedTextDocumentIdentifier {
            uri: uri.clone(),
            version,
        },
        edits: vec![OneOf::Left(TextEdit::new(whole, new_text))],
    };
    let mut operations = Vec::new();
    if !exists {
        operations.push(DocumentChangeOperation::Op(ResourceOp::Create(
            CreateFile {
                uri: uri.clone(),
                options: Some(CreateFileOptions {
                    overwrite: Some(false),
                    ignore_if_exists: Some(true),
                }),
                annotation_id: None,
            },
        )));
    }
    operations.push(DocumentChangeOperation::Edit(text_edit));
    let edit = WorkspaceEdit {
        changes: None::<HashMap<Url, Vec<TextEdit>>>,
        document_changes: Some(DocumentChanges::Operations(operations)),
        change_annotations: None,
    };
    let client = state.client.clone();
    Ok(Answer::Later(
        async move {
            let response = client.apply_edit(edit).await.map_err(|error| {
                failed(format!(
                    "The editor did not answer the edit of {}: {}",
                    path.display(),
                    error.message
                ))
            })?;
            if response.applied {
                Ok(None)
            } else {
                Err(failed(format!(
                    "The editor refused to edit {}{}. Edit the file by hand or save pending changes and retry.",
                    path.display(),
                    response
                        .failure_reason
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default()
                )))
            }
        }
        .boxed(),
    ))
}
