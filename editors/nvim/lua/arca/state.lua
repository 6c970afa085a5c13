-- Per-crate status from `arca/status` notifications, the latest build
-- progress, and the server's log lines. The only place that stores them.
local paths = require("arca.paths")

local M = {
  --- crate URI -> the PROTOCOL.md status object
  crates = {},
  --- crate URIs in the order first reported
  order = {},
  --- latest progress: { title, message, percentage, done }
  progress = nil,
  --- window/logMessage lines, newest last
  log = {},
  --- crate URI -> { buf, chan } of its Run terminal
  terminals = {},
}

local LOG_MAX = 2000

function M.update(status)
  if type(status) ~= "table" or type(status.crate) ~= "string" then
    return false
  end
  if not M.crates[status.crate] then
    table.insert(M.order, status.crate)
  end
  M.crates[status.crate] = status
  return true
end

--- The crate left the workspace (`arca/removed`): forget it.
function M.remove(uri)
  if not M.crates[uri] then
    return false
  end
  M.crates[uri] = nil
  for i, known in ipairs(M.order) do
    if known == uri then
      table.remove(M.order, i)
      break
    end
  end
  return true
end

--- Crates whose status shows a running container.
function M.running()
  local uris = {}
  for _, uri in ipairs(M.order) do
    if type(M.crates[uri].running) == "table" then
      table.insert(uris, uri)
    end
  end
  return uris
end

function M.append_log(line)
  table.insert(M.log, line)
  if #M.log > LOG_MAX then
    table.remove(M.log, 1)
  end
end

function M.uris()
  return vim.deepcopy(M.order)
end

--- The status object of the crate holding `path`, or nil.
function M.for_path(path)
  if not path or path == "" then
    return nil
  end
  local uri = paths.crate_for_path(paths.normalize(path), M.order)
  return uri and M.crates[uri] or nil
end

--- A short statusline string for `status` ("arca: fresh"), "" for nil.
function M.format(status)
  if not status then
    return ""
  end
  return "arca: " .. tostring(status.state)
end

--- A multi-line description for :ArcaStatus.
function M.describe(status)
  local lines = { string.format("%s: %s", status.name or "?", status.state or "?") }
  if status.message and status.message ~= "" then
    table.insert(lines, "  " .. status.message)
  end
  if status.state == "stale" and type(status.reasons) == "table" then
    for _, reason in ipairs(status.reasons) do
      table.insert(lines, "  - " .. reason)
    end
  end
  if type(status.artifact) == "table" and status.artifact.tag then
    table.insert(lines, "  image: " .. status.artifact.tag)
  end
  if type(status.running) == "table" then
    table.insert(lines, "  running in container " .. tostring(status.running.container):sub(1, 12))
  end
  return table.concat(lines, "\n")
end

function M.reset()
  M.crates, M.order, M.progress, M.log, M.terminals = {}, {}, nil, {}, {}
end

return M
