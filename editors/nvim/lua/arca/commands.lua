-- The user-facing commands: build image (arca.package), build binary
-- (arca.build), cancel (arca.cancel) and status (the arca/status request),
-- sent through workspace/executeCommand with `[ { crate = <uri> } ]`.
-- Failures reach the user through vim.notify with the server's wording.
local client_mod = require("arca.client")
local paths = require("arca.paths")
local state = require("arca.state")

local M = {}

local ERROR = vim.log.levels.ERROR
local INFO = vim.log.levels.INFO

local function notify(message, level)
  vim.notify(message, level or INFO, { title = "arca" })
end

local function error_text(err)
  if type(err) == "table" then
    return err.message or vim.inspect(err)
  end
  return tostring(err)
end

--- Calls `callback(crate_uri)` with the crate of the current buffer: the
--- innermost known crate holding its file, the only crate, or one the user
--- picks. Returns false when no crate can be chosen.
local function with_crate(bufnr, callback)
  local uris = state.uris()
  local file = vim.api.nvim_buf_get_name(bufnr)
  if file ~= "" then
    local uri = paths.crate_for_path(paths.normalize(file), uris)
    if uri then
      return callback(uri)
    end
  end
  if #uris == 1 then
    return callback(uris[1])
  end
  if #uris == 0 then
    notify("arca: no crate with a binary target is known yet; open a file of the crate and try again", ERROR)
    return
  end
  vim.ui.select(uris, {
    prompt = "Which crate?",
    format_item = function(uri)
      local status = state.crates[uri]
      return string.format("%s (%s) %s", status.name, status.state, paths.uri_to_path(uri) or uri)
    end,
  }, function(choice)
    if choice then
      callback(choice)
    end
  end)
end

local function client_or_notify(bufnr)
  local client = client_mod.for_buffer(bufnr)
  if not client then
    notify("arca: the language server is not running for this buffer; open a Rust file of a crate (see :checkhealth arca)", ERROR)
  end
  return client
end

--- Sends `command` for the current buffer's crate; `on_result(result)` on success.
--- `extra` (optional) adds fields to the argument object.
local function execute(command, bufnr, on_result, extra)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = client_or_notify(bufnr)
  if not client then
    return
  end
  with_crate(bufnr, function(uri)
    local argument = vim.tbl_extend("force", { crate = uri }, extra or {})
    local params = { command = command, arguments = { argument } }
    client_mod.request(client, "workspace/executeCommand", params, function(err, result)
      if err then
        notify("arca: " .. error_text(err), ERROR)
        return
      end
      if on_result then
        on_result(result, uri)
      end
    end, bufnr)
  end)
end

function M.build_image(bufnr)
  execute("arca.package", bufnr, function(result)
    if type(result) ~= "table" then
      return
    end
    if result.upToDate then
      notify(string.format("arca: image %s is already up to date", tostring(result.localTag)))
    else
      notify(string.format("arca: built image %s (artifact %s)", tostring(result.localTag), tostring(result.artifactId)))
    end
  end)
end

function M.build_binary(bufnr)
  execute("arca.build", bufnr, function(result)
    if type(result) == "table" and result.binary then
      notify("arca: built " .. result.binary)
    end
  end)
end

--- `arca.push`: pushes the crate's newest image to `to` (REGISTRY/REPOSITORY[:TAG])
--- or to the crate's `push_to`; progress arrives as $/progress.
function M.push(bufnr, to)
  local extra = (to ~= nil and to ~= "") and { to = to } or nil
  execute("arca.push", bufnr, function(result)
    if type(result) == "table" and result.ref then
      notify(string.format("arca: pushed %s (%s bytes sent)\n%s", tostring(result.tag), tostring(result.bytesSent), tostring(result.ref)))
    end
  end, extra)
end

function M.cancel(bufnr)
  execute("arca.cancel", bufnr, function()
    notify("arca: cancel requested")
  end)
end

--- Asks the server for every crate's status and shows it.
function M.status(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = client_or_notify(bufnr)
  if not client then
    return
  end
  client_mod.request(client, "arca/status", vim.empty_dict(), function(err, result)
    if err then
      notify("arca: " .. error_text(err), ERROR)
      return
    end
    local lines = {}
    for _, status in ipairs(result or {}) do
      state.update(status)
      table.insert(lines, state.describe(status))
    end
    notify(#lines > 0 and table.concat(lines, "\n") or "arca: no crates found")
  end, bufnr)
end

--- Opens the server's log lines (build output) in a scratch buffer.
function M.show_log()
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  vim.api.nvim_buf_set_name(buf, "arca://log")
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, state.log)
  vim.bo[buf].modifiable = false
end

return M
