-- Starting `arca lsp` and attaching buffers: `vim.lsp.start` where it exists
-- (Neovim 0.8+), `vim.lsp.start_client` + `vim.lsp.buf_attach_client` on
-- Neovim 0.7. One client per crate root; a buffer inside a running client's
-- root reuses it.
local config = require("arca.config")
local handlers = require("arca.handlers")
local paths = require("arca.paths")

local M = {}

local NAME = "arca"

-- Client methods became `client:method()` in Neovim 0.11; 0.7-0.10 use
-- closures called as `client.method()`.
local methods = vim.fn.has("nvim-0.11") == 1

local function is_stopped(client)
  if methods then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- Sends a request through `client`, on every supported Neovim.
function M.request(client, method, params, handler, bufnr)
  if methods then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients

--- Ids of the clients this plugin started. Neovim 0.7 lists a client in
--- get_active_clients() only once it is initialized; this also covers the
--- ones still starting, so two buffers opened at once share one server.
local started = {}

--- Running arca clients (initialized or starting).
function M.clients()
  local found, seen = {}, {}
  local function add(client)
    if client and client.name == NAME and not seen[client.id] and not is_stopped(client) then
      seen[client.id] = true
      table.insert(found, client)
    end
  end
  for _, id in ipairs(started) do
    add(vim.lsp.get_client_by_id(id))
  end
  for _, client in pairs(get_clients()) do
    add(client)
  end
  return found
end

--- The arca client attached to `bufnr`, else the one whose root holds the
--- buffer's file, else the only running one.
function M.for_buffer(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local clients = M.clients()
  for _, client in ipairs(clients) do
    if vim.lsp.buf_is_attached(bufnr, client.id) then
      return client
    end
  end
  local file = vim.api.nvim_buf_get_name(bufnr)
  if file ~= "" then
    file = paths.normalize(file)
    for _, client in ipairs(clients) do
      if client.config.root_dir and paths.is_inside(file, client.config.root_dir) then
        return client
      end
    end
  end
  if #clients == 1 then
    return clients[1]
  end
  return nil
end

--- True for buffers arca serves: Rust sources and .arca/config.toml.
function M.wants(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  if file == "" or vim.bo[bufnr].buftype ~= "" then
    return false
  end
  return vim.bo[bufnr].filetype == "rust" or file:match("%.rs$") ~= nil or paths.is_arca_config(file)
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.window = caps.window or {}
  caps.window.workDoneProgress = true
  if config.options.capabilities then
    caps = vim.tbl_deep_extend("force", caps, config.options.capabilities)
  end
  return caps
end

local function client_config(root)
  local opts = config.options
  return {
    name = NAME,
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = paths.path_to_uri(root), name = root } },
    capabilities = capabilities(),
    handlers = handlers.table(),
    on_attach = opts.on_attach,
    on_exit = function(code, signal)
      if code ~= 0 and signal ~= 15 then
        vim.schedule(function()
          vim.notify(
            string.format("arca: the language server exited with code %d; see :LspLog and :checkhealth arca", code),
            vim.log.levels.ERROR
          )
        end)
      end
    end,
  }
end

local warned_missing = false

local function executable_or_notify()
  local exe = config.options.cmd[1]
  if vim.fn.executable(exe) == 1 then
    return true
  end
  if warned_missing then
    return false
  end
  warned_missing = true
  vim.notify(
    string.format(
      "arca: `%s` not found. Install it with `cargo install --path .` in the Arca repository, "
        .. "or pass require('arca').setup({ cmd = { '/path/to/arca', 'lsp' } }).",
      exe
    ),
    vim.log.levels.ERROR
  )
  return false
end

--- Attaches `bufnr` to an arca client for its crate root, starting one if
--- needed. Returns the client id, or nil when the buffer is not arca's.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not M.wants(bufnr) then
    return nil
  end
  local file = paths.normalize(vim.api.nvim_buf_get_name(bufnr))
  local root = paths.cargo_root(file)
  if not root then
    return nil
  end
  for _, client in ipairs(M.clients()) do
    if client.config.root_dir and paths.is_inside(file, client.config.root_dir) then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  if not executable_or_notify() then
    return nil
  end
  local cfg = client_config(root)
  if vim.lsp.start then
    local id = vim.lsp.start(cfg, {
      bufnr = bufnr,
      reuse_client = function(client, conf)
        return client.name == conf.name and client.config.root_dir ~= nil and paths.is_inside(file, client.config.root_dir)
      end,
    })
    if id and not vim.tbl_contains(started, id) then
      table.insert(started, id)
    end
    return id
  end
  local id = vim.lsp.start_client(cfg)
  if id then
    table.insert(started, id)
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

return M
