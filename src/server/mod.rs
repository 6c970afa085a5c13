//! The language server. TEMPORARY until the language-server work lands.

/// Runs `arca lsp`.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("`arca lsp` is not implemented in this build of arca yet.")
}
