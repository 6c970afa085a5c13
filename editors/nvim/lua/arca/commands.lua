-- The user-facing commands: build image (arca.package), build binary
-- (arca.build), cancel (arca.cancel), run and stop (arca.run / arca.stop,
-- the program's output in a terminal buffer) and status (the arca/status
-- request), sent through workspace/executeCommand with
-- `[ { crate = <uri> } ]`. Failures reach the user through vim.notify with
-- the server's wording (backticks dropped: a notification is plain text).
local client_mod = require("arca.client")
local paths = require("arca.paths")
local state = require("arca.state")

local M = {}

local ERROR = vim.log.levels.ERROR
local INFO = vim.log.levels.INFO

local function notify(message, level)
  vim.notify(message, level or INFO, { title = "arca" })
end

local function plain(text)
  return (tostring(text):gsub("`([^`]*)`", "'%1'"))
end

local function error_text(err)
  if type(err) == "table" then
    return plain(err.message or vim.inspect(err))
  end
  return plain(err)
end

--- LSP RequestCancelled: the user's own cancel, not a failure.
local function is_cancellation(err)
  return type(err) == "table" and err.code == -32800
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

--- A crate whose status is `error` cannot build: say why at once.
local function refuse_broken(uri)
  local status = state.crates[uri]
  if status and status.state == "error" then
    notify(string.format("arca: cannot build %s: %s", status.name or "?", plain(status.message or "")), ERROR)
    return true
  end
  return false
end

--- Sends `command` for the current buffer's crate; `on_result(result)` on
--- success, `on_error(err, uri)` (default: notify) on failure; `before(uri)`
--- may refuse by returning false; `extra` (optional) adds fields to the
--- argument object.
local function execute(command, bufnr, on_result, on_error, before, extra)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = client_or_notify(bufnr)
  if not client then
    return
  end
  with_crate(bufnr, function(uri)
    if before and before(uri) == false then
      return
    end
    local argument = vim.tbl_extend("force", { crate = uri }, extra or {})
    local params = { command = command, arguments = { argument } }
    client_mod.request(client, "workspace/executeCommand", params, function(err, result)
      if err then
        if on_error then
          on_error(err, uri)
        elseif is_cancellation(err) then
          local name = state.crates[uri] and state.crates[uri].name or "the crate"
          notify(string.format("arca: the build of %s was cancelled; nothing was stored", name))
        else
          notify("arca: " .. error_text(err), ERROR)
        end
        return
      end
      if on_result then
        on_result(result, uri)
      end
    end, bufnr)
  end)
end

local function not_broken(uri)
  return not refuse_broken(uri)
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
  end, nil, not_broken)
end

function M.build_binary(bufnr)
  execute("arca.build", bufnr, function(result)
    if type(result) == "table" and result.binary then
      notify("arca: built " .. result.binary)
    end
  end, nil, not_broken)
end

--- `arca.push`: pushes the crate's newest image to `to` (REGISTRY/REPOSITORY[:TAG])
--- or to the crate's `push_to`; progress arrives as $/progress.
function M.push(bufnr, to)
  local extra = (to ~= nil and to ~= "") and { to = to } or nil
  execute("arca.push", bufnr, function(result)
    if type(result) == "table" and result.ref then
      notify(string.format("arca: pushed %s (%s bytes sent)\n%s", tostring(result.tag), tostring(result.bytesSent), tostring(result.ref)))
    end
  end, nil, not_broken, extra)
end

function M.cancel(bufnr)
  local building = false
  for _, uri in ipairs(state.uris()) do
    building = building or state.crates[uri].state == "building"
  end
  if not building then
    notify("arca: no build is running, so there is nothing to cancel")
    return
  end
  execute("arca.cancel", bufnr, function()
    notify("arca: cancel requested")
  end)
end

--- The crate's Run terminal (a terminal buffer fed by arca/output), shown
--- in a split; Ctrl-C in it stops the container.
local function open_terminal(uri, bufnr)
  local existing = state.terminals[uri]
  if existing and vim.api.nvim_buf_is_valid(existing.buf) then
    if vim.fn.bufwinid(existing.buf) == -1 then
      vim.cmd("botright split")
      vim.api.nvim_win_set_buf(0, existing.buf)
    end
    return existing
  end
  local name = state.crates[uri] and state.crates[uri].name or "crate"
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  local terminal = { buf = buf }
  terminal.chan = vim.api.nvim_open_term(buf, {
    on_input = function(_, _, _, data)
      if data:find("\3", 1, true) then
        vim.api.nvim_chan_send(terminal.chan, "^C - stopping...\r\n")
        M.stop(bufnr, uri)
      end
    end,
  })
  pcall(vim.api.nvim_buf_set_name, buf, "arca://run/" .. name)
  state.terminals[uri] = terminal
  return terminal
end

local function term_line(uri, text)
  local terminal = state.terminals[uri]
  if terminal and vim.api.nvim_buf_is_valid(terminal.buf) then
    vim.api.nvim_chan_send(terminal.chan, (tostring(text):gsub("\r?\n", "\r\n")) .. "\r\n")
  end
end

--- One arca/output notification into the crate's terminal.
function M.terminal_output(params)
  if params.text ~= nil then
    term_line(params.crate, params.text)
  elseif params.exitCode ~= nil then
    term_line(params.crate, string.format("[the program exited with code %d; its container was removed]", params.exitCode))
  end
end

--- Builds the crate's image if stale, then runs it; output in a terminal buffer.
--- `live`: every change that makes the crate stale updates the running
--- container (`arca.run` with `live`).
function M.run(bufnr, live)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  execute("arca.run", bufnr, function(result, uri)
    if type(result) == "table" and result.container then
      local how = live and "live; saving a change updates it" or "Ctrl-C stops it"
      term_line(uri, string.format("Running %s (container %s), %s.", tostring(result.image), result.container:sub(1, 12), how))
    end
  end, function(err, uri)
    term_line(uri, error_text(err))
    notify("arca: " .. error_text(err), ERROR)
  end, function(uri)
    if refuse_broken(uri) then
      return false
    end
    local status = state.crates[uri]
    if status and type(status.running) == "table" then
      notify("arca: " .. (status.name or "the crate") .. " is already running; stop it with :ArcaStop first")
      return false
    end
    local current = vim.api.nvim_get_current_win()
    open_terminal(uri, bufnr)
    term_line(uri, status and status.state == "fresh" and "Starting..." or "Building, then running...")
    vim.api.nvim_set_current_win(current)
  end, live and { live = true } or nil)
end

--- Stops the running container of the current buffer's crate (or `uri`).
function M.stop(bufnr, uri)
  if uri then
    local client = client_mod.for_buffer(bufnr) or client_mod.clients()[1]
    if client then
      client_mod.request(client, "workspace/executeCommand", { command = "arca.stop", arguments = { { crate = uri } } }, function() end, bufnr)
    end
    return
  end
  if #state.running() == 0 then
    notify("arca: nothing is running")
    return
  end
  execute("arca.stop", bufnr, function(_, crate_uri)
    term_line(crate_uri, "Stopping...")
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

--- Opens the current crate's last build log (kept by the server on disk).
function M.build_log(bufnr)
  execute("arca.buildLog", bufnr, function(result, uri)
    if type(result) == "table" and type(result.path) == "string" then
      vim.cmd("edit " .. vim.fn.fnameescape(result.path))
    else
      local name = state.crates[uri] and state.crates[uri].name or "the crate"
      notify("arca: " .. name .. " has no build log yet; :ArcaBuildImage writes one")
    end
  end)
end

--- Opens the current crate's newest image's SBOM (SPDX JSON, or
--- CycloneDX with `format = "cyclonedx"`) in a scratch buffer.
function M.sbom(bufnr, format)
  execute("arca.sbom", bufnr, function(result, uri)
    if type(result) ~= "table" or type(result.document) ~= "string" then
      notify("arca: the server sent no SBOM", ERROR)
      return
    end
    vim.cmd("botright new")
    local buf = vim.api.nvim_get_current_buf()
    vim.bo[buf].buftype = "nofile"
    vim.bo[buf].bufhidden = "wipe"
    vim.bo[buf].swapfile = false
    local name = state.crates[uri] and state.crates[uri].name or "crate"
    vim.api.nvim_buf_set_name(buf, "arca://sbom/" .. name .. "/" .. tostring(result.artifact))
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(result.document, "\n", { plain = true }))
    vim.bo[buf].filetype = "json"
    vim.bo[buf].modifiable = false
  end, nil, nil, { format = format or "spdx" })
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
