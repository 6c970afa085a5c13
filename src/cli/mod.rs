//! The command line: `arca build rust`, `status`, `check`, `list`, `prune`, `lsp`.

use std::process::ExitCode;

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    eprintln!("arca: not yet wired");
    ExitCode::FAILURE
}
