//! Plain handler functions over the server state, one file per method
//! family. Each takes `&mut State` and the params and returns the answer;
//! none awaits.

pub mod assist;
pub mod commands;
pub mod documents;
pub mod lifecycle;
pub mod push;
pub mod run;
pub mod sbom;
pub mod set_defaults;
pub mod status;
pub mod workspace;

use tower_lsp::jsonrpc;

/// An `InvalidParams` error with a message.
pub fn invalid_params(message: impl Into<String>) -> jsonrpc::Error {
    jsonrpc::Error::invalid_params(message.into())
}

/// A request failure whose message says what went wrong and what to do.
pub fn failed(message: impl Into<String>) -> jsonrpc::Error {
    // LSP 3.17 `RequestFailed`.
    let mut error = jsonrpc::Error::new(jsonrpc::ErrorCode::ServerError(-32803));
    error.message = message.into().into();
    error
}
