-- :checkhealth arca: finds the arca binary, prints `arca --version`,
-- validates the setup() options and checks the current crate's config with
-- `arca check` for every open crate.
local M = {}

local function reporter()
  local h = vim.health or require("health")
  return {
    start = h.start or h.report_start,
    ok = h.ok or h.report_ok,
    info = h.info or h.report_info,
    warn = h.warn or h.report_warn,
    error = h.error or h.report_error,
  }
end

local function run(argv)
  local output = vim.fn.system(argv)
  return vim.v.shell_error, vim.trim(output or "")
end

function M.check()
  local report = reporter()
  local config = require("arca.config")
  local paths = require("arca.paths")

  report.start("arca: setup")
  local ok, err = pcall(config.set, config.options)
  if ok then
    report.ok("options are valid: cmd = " .. table.concat(config.options.cmd, " "))
  else
    report.error("invalid options: " .. tostring(err))
  end
  if not vim.tbl_contains(config.options.cmd, "lsp") then
    report.warn("cmd does not run `lsp`; the server is started as `arca lsp`", { "setup({ cmd = { 'arca', 'lsp' } })" })
  end
  if vim.lsp.start then
    report.info("Neovim starts the client with vim.lsp.start")
  else
    report.info("Neovim " .. tostring(vim.version().major) .. "." .. tostring(vim.version().minor)
      .. ": the client starts with vim.lsp.start_client")
  end

  report.start("arca: binary")
  local exe = config.options.cmd[1]
  local path = vim.fn.exepath(exe)
  if path == "" then
    report.error(string.format("`%s` is not executable or not on PATH", exe), {
      "Install it with `cargo install --path .` in the Arca repository",
      "or pass require('arca').setup({ cmd = { '/path/to/arca', 'lsp' } })",
    })
    return
  end
  report.ok("found " .. path)
  local code, version = run({ path, "--version" })
  if code == 0 and version ~= "" then
    report.ok("version: " .. version)
  else
    report.error(string.format("`%s --version` failed (exit %d): %s", path, code, version), {
      "Rebuild or reinstall arca",
    })
  end

  local clients = require("arca.client").clients()
  report.info(string.format("%d arca language server(s) running", #clients))

  report.start("arca: crate configs")
  -- :checkhealth runs in its own buffer: check the crates of the running
  -- servers and of the buffer the user came from.
  local roots, seen = {}, {}
  local function add(root)
    if root and not seen[root] then
      seen[root] = true
      table.insert(roots, root)
    end
  end
  for _, name in ipairs({ vim.api.nvim_buf_get_name(0), vim.fn.expand("#:p") }) do
    if name ~= "" and not name:match("^health:") then
      add(paths.cargo_root(name))
    end
  end
  for _, client in ipairs(clients) do
    add(client.config.root_dir)
  end
  if #roots == 0 then
    report.info("no crate open: open a Rust file or .arca/config.toml and run :checkhealth arca again")
    return
  end
  for _, root in ipairs(roots) do
    local check_code, findings = run({ path, "check", root })
    if check_code == 0 then
      report.ok(root .. ": `arca check` found no errors" .. (findings ~= "" and ("\n" .. findings) or ""))
    else
      report.warn(root .. ": `arca check` reports problems:\n" .. findings, {
        "Open .arca/config.toml to see the diagnostics and quick fixes",
      })
    end
  end
end

return M
