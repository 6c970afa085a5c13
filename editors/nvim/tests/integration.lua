-- Integration tests: the plugin in headless Neovim against the real
-- `arca lsp` ($ARCA_BIN). Each crate lives in a temp dir with its own
-- ARCA_HOME; the engine is unreachable (DOCKER_HOST=tcp://127.0.0.1:1), so
-- builds must fail with the server's clear error. Every wait has a timeout.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
package.path = here .. "?.lua;" .. package.path
local H = require("harness")

local WAIT = tonumber(vim.env.ARCA_TEST_WAIT_MS or "") or 20000
local bin = vim.env.ARCA_BIN
local repo = vim.fn.simplify(vim.fn.fnamemodify(here .. "../../..", ":p")):gsub("/$", "")
if not bin or bin == "" then
  bin = repo .. "/target/debug/arca"
end

local root = vim.fn.tempname()
local home = root .. "/home"
vim.fn.mkdir(home, "p")
vim.env.ARCA_HOME = home
vim.env.DOCKER_HOST = "tcp://127.0.0.1:1"

local function sh(argv)
  local output = vim.fn.system(argv)
  return vim.v.shell_error, output
end

local function write(path, lines)
  vim.fn.mkdir(vim.fn.fnamemodify(path, ":h"), "p")
  vim.fn.writefile(lines, path)
end

--- A copy of examples/hello at root/<name>, with `config` as its .arca/config.toml.
local function make_crate(name, config)
  local dir = root .. "/" .. name
  local code, out = sh({ "cp", "-R", repo .. "/examples/hello", dir })
  assert(code == 0, "cp failed: " .. out)
  vim.fn.delete(dir .. "/target", "rf")
  -- the package (and its binary) takes the folder's name
  for _, file in ipairs({ "Cargo.toml", "Cargo.lock" }) do
    local manifest = dir .. "/" .. file
    if vim.fn.filereadable(manifest) == 1 then
      local lines = vim.fn.readfile(manifest)
      for i, line in ipairs(lines) do
        if line == 'name = "hello"' then
          lines[i] = string.format('name = "%s"', name)
        end
      end
      vim.fn.writefile(lines, manifest)
    end
  end
  if config then
    write(dir .. "/.arca/config.toml", config)
  end
  return vim.fn.resolve(dir)
end

local hello = make_crate("hello", {
  "[rust]",
  'profile = "release"',
  "features = []",
  'base_image = "debian:bookworm-slim"',
})
local noimage = make_crate("noimage", { "[rust]", 'profile = "release"', "features = []" })
local broken = make_crate("broken", {
  "[rust]",
  'profile = "release"',
  'features = "shout"',
  'base_image = "debian:bookworm-slim"',
  'colour = "blue"',
})

-- vim.notify is where the plugin reports to the user: record every call.
local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = tostring(msg), level = level })
end

local function find_note(level, pattern)
  for _, note in ipairs(notes) do
    if note.level == level and (not pattern or note.msg:find(pattern)) then
      return note
    end
  end
end

local function notes_text()
  local lines = {}
  for _, note in ipairs(notes) do
    table.insert(lines, string.format("[%s] %s", tostring(note.level), note.msg))
  end
  return table.concat(lines, "\n")
end

local arca = require("arca")
arca.setup({ cmd = { bin, "lsp" }, cmd_env = { ARCA_HOME = home, DOCKER_HOST = "tcp://127.0.0.1:1" } })

local function statusline_of(file)
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  return arca.status()
end

local function cli_status(dir)
  local code, out = sh({ bin, "status", "--json", dir })
  assert(code == 0, "arca status --json failed: " .. out)
  return vim.fn.json_decode(out)
end

local function client_ready(bufnr)
  for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if client.name == "arca" and client.initialized then
      return client
    end
  end
end

local function diagnostics_of(bufnr)
  local list = vim.diagnostic.get(bufnr)
  local codes = {}
  for _, d in ipairs(list) do
    if d.source == "arca" then
      table.insert(codes, tostring(d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)))
    end
  end
  table.sort(codes)
  return codes, list
end

local hello_main = hello .. "/src/main.rs"
local main_text = vim.fn.readfile(hello_main)

H.test("the server starts and attaches to a Rust buffer", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  local bufnr = vim.api.nvim_get_current_buf()
  H.abort = "the arca server did not start (" .. bin .. " lsp); see the first failure"
  local client = H.wait(WAIT, function()
    return client_ready(bufnr)
  end, function()
    return "an initialized arca client (notes: " .. notes_text() .. ")"
  end)
  H.abort = nil
  H.eq(client.config.root_dir, hello, "root_dir")
end)

H.test("statusline reads missing on a fresh ARCA_HOME (as `arca status` says)", function()
  H.eq(cli_status(hello).state, "missing", "arca status --json")
  H.wait(WAIT, function()
    return statusline_of(hello_main) == "arca: missing"
  end, function()
    return "statusline 'arca: missing' (now " .. vim.inspect(arca.status()) .. ")"
  end)
end)

H.test("statusline reads unconfigured for a crate without base_image", function()
  H.wait(WAIT, function()
    return statusline_of(noimage .. "/src/main.rs") == "arca: unconfigured"
  end, "statusline 'arca: unconfigured'")
  H.eq(statusline_of(hello_main), "arca: missing", "the other crate keeps its own state")
end)

H.test(":ArcaBuildImage reports the unreachable engine to the user", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  H.wait(WAIT, function()
    return arca.status() == "arca: missing"
  end, function()
    return "a configured crate, so only the engine can fail (now " .. vim.inspect(arca.status()) .. ")"
  end)
  notes = {}
  vim.cmd("ArcaBuildImage")
  local note = H.wait(WAIT * 3, function()
    return find_note(vim.log.levels.ERROR)
  end, function()
    return "an error notification (notes so far: " .. notes_text() .. ")"
  end)
  H.matches(note.msg, "^arca: ", "the message names arca")
  -- the CLI's wording: "Cannot reach the Docker engine at tcp://127.0.0.1:1: ..."
  H.ok(note.msg:lower():find("cannot reach") or note.msg:find("127.0.0.1:1", 1, true),
    "the error says the engine at DOCKER_HOST cannot be reached: " .. note.msg)
  H.out("#   the user saw: " .. note.msg:gsub("\n", " "))
  -- the server's $/progress for the build was echoed, and it ended
  local progress = H.wait(WAIT, function()
    local p = require("arca.state").progress
    return p and p.done and p
  end, "the build's $/progress to end")
  H.matches(progress.line, "^arca: ", "echoed progress line")
  H.out("#   last progress line: " .. progress.line)
  H.wait(WAIT, function()
    return arca.status() ~= "arca: building"
  end, "the crate leaves the building state")
end)

-- A schema-3 record whose fingerprint is the crate's live one, as the
-- original CLI would have written it (no input manifest).
local function write_record(dir, id, fingerprint)
  local name = vim.fn.fnamemodify(dir, ":t")
  write(home .. "/containers/" .. id .. "/metadata.toml", {
    "schema_version = 3",
    string.format('artifact_id = "%s"', id),
    string.format('remote_tag = "hello-%s"', id),
    string.format('build_fingerprint = "%s"', fingerprint),
    'kind = "rust"',
    string.format("created_at_epoch_ms = %d", os.time() * 1000),
    'crate_name = "hello"',
    'crate_version = "0.1.0"',
    'binary_name = "hello"',
    string.format('source_path = "%s"', dir),
    string.format('manifest_path = "%s/Cargo.toml"', dir),
    'cargo_profile = "release"',
    "cargo_features = []",
    'base_image = "debian:bookworm-slim"',
    'runtime = "docker"',
    string.format('local_tag = "arca-local:hello-%s"', id),
    'archive_file = "image.tar"',
  })
  write(home .. "/containers/" .. id .. "/image.tar", {})
  return name
end

H.test("statusline turns fresh when a matching artifact appears in the store", function()
  local live = cli_status(hello).fingerprint
  H.ok(type(live) == "string" and #live == 64, "arca status gives a fingerprint: " .. vim.inspect(live))
  write_record(hello, "edtest01", live)
  H.eq(cli_status(hello).state, "fresh", "arca status --json after the record")
  H.wait(WAIT, function()
    return statusline_of(hello_main) == "arca: fresh"
  end, function()
    return "statusline 'arca: fresh' (now " .. vim.inspect(arca.status()) .. ")"
  end)
end)

H.test(":ArcaBuildImage on a fresh crate says the image is up to date", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  H.eq(arca.status(), "arca: fresh", "precondition")
  notes = {}
  vim.cmd("ArcaBuildImage")
  local note = H.wait(WAIT, function()
    return find_note(vim.log.levels.INFO, "up to date")
  end, function()
    return "an 'up to date' notification (notes: " .. notes_text() .. ")"
  end)
  H.matches(note.msg, "arca%-local:hello%-edtest01", "names the existing image")
end)

H.test("a saved source edit turns it stale, reverting turns it fresh", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { "// edited by the editor test" })
  vim.cmd("write")
  H.wait(WAIT, function()
    return arca.status() == "arca: stale"
  end, function()
    return "statusline 'arca: stale' (now " .. vim.inspect(arca.status()) .. ")"
  end)
  local status = arca.crate_status()
  H.ok(#status.reasons > 0, "stale names a reason")
  vim.api.nvim_buf_set_lines(0, 0, -1, false, main_text)
  vim.cmd("write")
  H.wait(WAIT, function()
    return arca.status() == "arca: fresh"
  end, function()
    return "statusline back to 'arca: fresh' (now " .. vim.inspect(arca.status()) .. ")"
  end)
end)

H.test("diagnostics appear on a broken config and clear when it is fixed", function()
  vim.cmd("edit " .. vim.fn.fnameescape(broken .. "/.arca/config.toml"))
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait(WAIT, function()
    return client_ready(bufnr)
  end, "the arca client on the config buffer")
  local codes = H.wait(WAIT, function()
    local c = diagnostics_of(bufnr)
    return #c >= 2 and c
  end, "arca diagnostics on the broken config")
  H.ok(vim.tbl_contains(codes, "invalid-type"), "invalid-type in " .. vim.inspect(codes))
  H.ok(vim.tbl_contains(codes, "unknown-key"), "unknown-key in " .. vim.inspect(codes))
  local _, list = diagnostics_of(bufnr)
  for _, d in ipairs(list) do
    if d.code == "unknown-key" then
      H.eq(d.lnum, 4, "unknown-key line")
      H.eq(d.severity, vim.diagnostic.severity.WARN, "unknown-key severity")
    end
  end
  -- fix it in the unsaved buffer: didChange alone must clear the list
  vim.api.nvim_buf_set_lines(bufnr, 2, 5, false, { 'features = ["shout"]', 'base_image = "debian:bookworm-slim"' })
  H.wait(WAIT, function()
    return #diagnostics_of(bufnr) == 0
  end, "diagnostics cleared after the fix")
end)

H.test(":ArcaStatus asks the server and shows every crate", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  notes = {}
  vim.cmd("ArcaStatus")
  local note = H.wait(WAIT, function()
    return find_note(vim.log.levels.INFO, "hello")
  end, function()
    return "the status notification (notes: " .. notes_text() .. ")"
  end)
  H.matches(note.msg, "hello: %a+")
end)

H.test(":ArcaCancel with nothing running is not an error", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  notes = {}
  vim.cmd("ArcaCancel")
  H.wait(WAIT, function()
    return #notes > 0
  end, "a reply to the cancel")
  H.ok(not find_note(vim.log.levels.ERROR), "no error: " .. notes_text())
end)

H.test(":ArcaPush DEST shows the server's error when the artifact cannot be pushed", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  notes = {}
  vim.cmd("ArcaPush localhost:5000/hello")
  H.wait(WAIT, function()
    return find_note(vim.log.levels.ERROR) ~= nil
  end, "an error notification")
  local note = find_note(vim.log.levels.ERROR)
  H.ok(note.msg:find("^arca: ") and note.msg:lower():find("artifact"), "the server's message: " .. note.msg)
end)

H.test(":checkhealth arca finds the binary and prints its version", function()
  vim.cmd("edit " .. vim.fn.fnameescape(hello_main))
  vim.cmd("checkhealth arca")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.matches(text, "found " .. vim.pesc(vim.fn.exepath(bin)), "health report")
  local _, version = sh({ bin, "--version" })
  H.matches(text, "version: " .. vim.pesc(vim.trim(version)), "health report")
  H.ok(not text:find("ERROR"), "no errors in the health report:\n" .. text)
end)

for _, client in ipairs(vim.lsp.get_active_clients()) do
  client.stop()
end
vim.wait(2000, function()
  return #vim.lsp.get_active_clients() == 0
end, 50)
vim.fn.delete(root, "rf")
H.finish()
