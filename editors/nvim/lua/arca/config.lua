-- Options for require("arca").setup(), with defaults.
local M = {}

M.defaults = {
  --- the server command; `arca` must be on PATH unless this names it
  cmd = { "arca", "lsp" },
  --- extra environment for the server, e.g. { ARCA_HOME = "...", DOCKER_HOST = "..." }
  cmd_env = nil,
  --- called as on_attach(client, bufnr) for every attached buffer
  on_attach = nil,
  --- extra client capabilities merged over Neovim's
  capabilities = nil,
  --- start the server automatically for Rust buffers and .arca/config.toml
  autostart = true,
}

M.options = vim.deepcopy(M.defaults)

--- Validates and stores `opts`; returns the merged options or raises a
--- message that names the bad key.
function M.set(opts)
  opts = opts or {}
  vim.validate({
    cmd = { opts.cmd, "table", true },
    cmd_env = { opts.cmd_env, "table", true },
    on_attach = { opts.on_attach, "function", true },
    capabilities = { opts.capabilities, "table", true },
    autostart = { opts.autostart, "boolean", true },
  })
  if opts.cmd and (#opts.cmd == 0 or type(opts.cmd[1]) ~= "string") then
    error("arca.setup: cmd must be a list like { '/path/to/arca', 'lsp' }")
  end
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  if opts.cmd then
    M.options.cmd = vim.deepcopy(opts.cmd)
  end
  return M.options
end

return M
