-- LSP handlers for the server's notifications: `arca/status` (per-crate
-- state, redraws the statusline), `arca/removed` (forgets a crate),
-- `arca/output` (a running image's lines into its :ArcaRun terminal),
-- `$/progress` (echoes build progress) and `window/logMessage` (keeps
-- build output for :ArcaLog). Each wraps Neovim's default handler where
-- one exists.
local state = require("arca.state")

local M = {}

local function redraw()
  vim.schedule(function()
    pcall(vim.cmd, "redrawstatus!")
  end)
end

local function status_handler(err, result)
  if err or not state.update(result) then
    return
  end
  if vim.api.nvim_exec_autocmds then
    pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "ArcaStatus", modeline = false })
  else
    pcall(vim.cmd, "doautocmd <nomodeline> User ArcaStatus")
  end
  redraw()
end

local function removed_handler(err, result)
  if err or type(result) ~= "table" or not state.remove(result.crate) then
    return
  end
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "ArcaStatus", modeline = false })
  redraw()
end

local function output_handler(err, result)
  if err or type(result) ~= "table" then
    return
  end
  vim.schedule(function()
    require("arca.commands").terminal_output(result)
  end)
end

local function progress_line(value)
  local title = value.title or (state.progress and state.progress.title) or "arca"
  if value.kind == "end" then
    return string.format("arca: %s: %s", title, value.message or "done"), title
  end
  local line = "arca: " .. title
  if value.message and value.message ~= "" then
    line = line .. ": " .. value.message
  end
  if value.percentage then
    line = string.format("%s (%d%%)", line, value.percentage)
  end
  return line, title
end

local function progress_handler(err, result, ctx, config)
  local default = vim.lsp.handlers["$/progress"]
  if default and ctx and vim.lsp.get_client_by_id(ctx.client_id) then
    pcall(default, err, result, ctx, config)
  end
  local value = result and result.value
  if type(value) ~= "table" or not value.kind then
    return
  end
  local line, title = progress_line(value)
  state.progress = {
    title = title,
    message = value.message,
    percentage = value.percentage,
    done = value.kind == "end",
    line = line,
  }
  vim.schedule(function()
    vim.api.nvim_echo({ { line } }, false, {})
    -- Neovim drops a RequestCancelled answer without calling back, so a
    -- user's cancel is told from the progress's end.
    if value.kind == "end" and value.message == "Cancelled" then
      vim.notify(string.format("arca: %s was cancelled; nothing was stored", title), vim.log.levels.INFO, { title = "arca" })
    end
  end)
end

local function log_handler(err, result, ctx, config)
  if result and result.message then
    for line in tostring(result.message):gmatch("[^\n]+") do
      state.append_log(line)
    end
  end
  local default = vim.lsp.handlers["window/logMessage"]
  if default then
    return default(err, result, ctx, config)
  end
end

--- The handler table to pass to the client config.
function M.table()
  return {
    ["arca/status"] = status_handler,
    ["arca/removed"] = removed_handler,
    ["arca/output"] = output_handler,
    ["$/progress"] = progress_handler,
    ["window/logMessage"] = log_handler,
  }
end

return M
