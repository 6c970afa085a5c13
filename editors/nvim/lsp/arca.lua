-- Neovim 0.11+ config for vim.lsp.config / vim.lsp.enable("arca"):
-- Rust buffers and .arca/config.toml, rooted at the nearest Cargo.toml.
return {
  cmd = { "arca", "lsp" },
  filetypes = { "rust", "toml" },
  root_markers = { "Cargo.toml" },
  root_dir = function(bufnr, on_dir)
    local paths = require("arca.paths")
    local file = vim.api.nvim_buf_get_name(bufnr)
    if vim.bo[bufnr].filetype == "toml" and not paths.is_arca_config(file) then
      return
    end
    local root = paths.cargo_root(file)
    if root then
      on_dir(root)
    end
  end,
  capabilities = { window = { workDoneProgress = true } },
  handlers = require("arca.handlers").table(),
}
