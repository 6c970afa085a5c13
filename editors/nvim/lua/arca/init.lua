-- Arca for Neovim: require("arca").setup(opts) starts `arca lsp` for Rust
-- buffers and .arca/config.toml; require("arca").status() is a statusline
-- component ("arca: fresh", "arca: stale", ...).
local M = {}

local config = require("arca.config")
local state = require("arca.state")

local group

--- Starts the server for matching buffers (now and later). See
--- lua/arca/config.lua for the options.
function M.setup(opts)
  config.set(opts)
  local client = require("arca.client")
  group = vim.api.nvim_create_augroup("arca", { clear = true })
  if not config.options.autostart then
    return
  end
  vim.api.nvim_create_autocmd({ "FileType", "BufReadPost", "BufNewFile" }, {
    group = group,
    callback = function(args)
      client.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      client.attach(bufnr)
    end
  end
end

--- Attaches the current (or given) buffer by hand, e.g. with autostart = false.
function M.attach(bufnr)
  return require("arca.client").attach(bufnr)
end

--- Short status of the current buffer's crate, "" when arca knows none.
function M.status(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  return state.format(state.for_path(vim.api.nvim_buf_get_name(bufnr)))
end

--- The full status object of the current (or given) buffer's crate, or nil.
function M.crate_status(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  return state.for_path(vim.api.nvim_buf_get_name(bufnr))
end

M.build_image = function(bufnr)
  require("arca.commands").build_image(bufnr)
end
M.build = function(bufnr)
  require("arca.commands").build_binary(bufnr)
end
M.cancel = function(bufnr)
  require("arca.commands").cancel(bufnr)
end
M.show_status = function(bufnr)
  require("arca.commands").status(bufnr)
end

return M
