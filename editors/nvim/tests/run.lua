-- Docker-backed tests: the plugin in headless Neovim against the real
-- `arca lsp` ($ARCA_BIN) and the real engine, on a copy of examples/hello
-- with its own ARCA_HOME: a build reported as progress and a user's cancel
-- (not an error), :ArcaRun with the program's output in a terminal buffer,
-- :ArcaStop, a broken Cargo.toml showing `error` and recovering. Without an
-- engine and the fixture images the suite is skipped, unless
-- ARCA_REQUIRE_DOCKER=1 (then it fails).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
package.path = here .. "?.lua;" .. package.path
local H = require("harness")

local WAIT = tonumber(vim.env.ARCA_TEST_WAIT_MS or "") or 20000
local BUILD_WAIT = 600000
local repo = vim.fn.simplify(vim.fn.fnamemodify(here .. "../../..", ":p")):gsub("/$", "")
local bin = (vim.env.ARCA_BIN and vim.env.ARCA_BIN ~= "") and vim.env.ARCA_BIN or repo .. "/target/debug/arca"
local RUNTIME_BASE = "nvidia/cuda:12.8.1-runtime-ubuntu24.04"

local function sh(argv)
  local output = vim.fn.system(argv)
  return vim.v.shell_error, output
end

local code = sh({ "docker", "image", "inspect", RUNTIME_BASE, "nvidia/cuda:12.8.1-devel-ubuntu24.04" })
if code ~= 0 then
  if vim.env.ARCA_REQUIRE_DOCKER == "1" then
    H.test("a Docker engine with the fixture images", function()
      error("ARCA_REQUIRE_DOCKER=1 but docker or the fixture images are missing; run .ci/docker-up.sh and .ci/fixtures.sh")
    end)
  else
    H.out("# skipped: no Docker engine with the fixture images (run .ci/docker-up.sh and .ci/fixtures.sh)")
  end
  H.finish()
  return
end

local root = vim.fn.tempname()
local home = root .. "/home"
vim.fn.mkdir(home, "p")
local crate = root .. "/hello"
assert(sh({ "cp", "-R", repo .. "/examples/hello", crate }) == 0)
vim.fn.delete(crate .. "/target", "rf")
crate = vim.fn.resolve(crate)
local main_rs = crate .. "/src/main.rs"
local main_text = vim.fn.readfile(main_rs)
local cargo_text = vim.fn.readfile(crate .. "/Cargo.toml")

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
local state = require("arca.state")
arca.setup({ cmd = { bin, "lsp" }, cmd_env = { ARCA_HOME = home } })

local function status_is(wanted, timeout)
  return H.wait(timeout or WAIT, function()
    vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
    return arca.status() == wanted
  end, function()
    return "statusline '" .. wanted .. "' (now " .. vim.inspect(arca.status()) .. "; notes: " .. notes_text() .. ")"
  end)
end

local function terminal_text()
  for _, terminal in pairs(state.terminals) do
    if vim.api.nvim_buf_is_valid(terminal.buf) then
      return table.concat(vim.api.nvim_buf_get_lines(terminal.buf, 0, -1, false), "\n")
    end
  end
  return ""
end

local function terminal_shows(pattern, timeout)
  H.wait(timeout or WAIT, function()
    return terminal_text():find(pattern) ~= nil
  end, function()
    return "the terminal to show " .. pattern .. " (it shows " .. vim.inspect(terminal_text()) .. "; notes: " .. notes_text() .. ")"
  end)
end

local function remove_images()
  for _, record in ipairs(vim.fn.glob(home .. "/containers/*/metadata.toml", false, true)) do
    for _, line in ipairs(vim.fn.readfile(record)) do
      local tag = line:match('^local_tag = "(.*)"$')
      if tag then
        sh({ "docker", "image", "rm", "-f", tag })
      end
    end
  end
end

H.test("the crate reads missing once the server runs", function()
  H.abort = "the arca server did not start"
  status_is("arca: missing")
  H.abort = nil
end)

-- A build script that sleeps keeps the build running long enough to cancel.
local SLOW_BUILD = { "fn main() {", "    std::thread::sleep(std::time::Duration::from_secs(120));", "}" }

H.test(":ArcaCancel during a build cancels it and says so, not as an error", function()
  vim.fn.writefile(SLOW_BUILD, crate .. "/build.rs")
  notes = {}
  vim.cmd("ArcaBuildImage")
  status_is("arca: building")
  H.wait(BUILD_WAIT, function()
    local p = state.progress
    return p and not p.done and p.message and p.message:find("builder container")
  end, "the compile stage in the progress")
  vim.cmd("ArcaCancel")
  H.wait(BUILD_WAIT, function()
    return find_note(vim.log.levels.INFO, "was cancelled")
  end, function()
    return "a cancelled notification (notes: " .. notes_text() .. ")"
  end)
  H.ok(not find_note(vim.log.levels.ERROR), "no error: " .. notes_text())
  vim.fn.delete(crate .. "/build.rs")
  status_is("arca: missing")
end)

H.test(":ArcaRun builds the image and shows the program's output in a terminal buffer", function()
  notes = {}
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaRun")
  terminal_shows("Hello from hello 0%.1%.0!", BUILD_WAIT)
  terminal_shows("exited with code 0")
  status_is("arca: fresh")
  H.ok(not find_note(vim.log.levels.ERROR), "no error: " .. notes_text())
end)

H.test(":ArcaBuildLog opens the last build's full log", function()
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaBuildLog")
  H.wait(WAIT, function()
    return vim.api.nvim_buf_get_name(0):find("/logs/") ~= nil
  end, "the log buffer")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.matches(text, "Compiling hello", "the log")
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
end)

H.test(":ArcaSbom opens the image's SBOM, :ArcaSbom cyclonedx its CycloneDX form", function()
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaSbom")
  H.wait(WAIT, function()
    return vim.api.nvim_buf_get_name(0):find("arca://sbom/") ~= nil
  end, "the SBOM buffer")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.matches(text, '"spdxVersion":"SPDX%-2%.3"', "the SPDX document")
  H.matches(text, "pkg:cargo/hello@0%.1%.0", "the crate's purl")
  vim.cmd("bwipeout")
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaSbom cyclonedx")
  H.wait(WAIT, function()
    return vim.api.nvim_buf_get_name(0):find("arca://sbom/") ~= nil
  end, "the CycloneDX buffer")
  text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.matches(text, '"bomFormat": "CycloneDX"', "the CycloneDX BOM")
  vim.cmd("bwipeout")
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
end)

H.test(":ArcaStop stops a running program", function()
  vim.fn.writefile({
    "fn main() {",
    "    loop {",
    '        println!("tick");',
    "        std::thread::sleep(std::time::Duration::from_millis(200));",
    "    }",
    "}",
  }, main_rs)
  status_is("arca: stale")
  notes = {}
  vim.cmd("ArcaRun")
  terminal_shows("tick", BUILD_WAIT)
  H.wait(WAIT, function()
    return #state.running() == 1
  end, "running in the status")
  vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaStop")
  terminal_shows("exited with code 143")
  H.wait(WAIT, function()
    return #state.running() == 0
  end, "running cleared")
  vim.fn.writefile(main_text, main_rs)
end)

local function versioned(version)
  return {
    "fn main() {",
    '    println!("version: ' .. version .. '");',
    "    loop {",
    "        std::thread::sleep(std::time::Duration::from_secs(1));",
    "    }",
    "}",
  }
end

H.test(":ArcaRunLive follows a saved change in the same container; :ArcaStop ends it", function()
  vim.fn.writefile(versioned("one"), main_rs)
  notes = {}
  vim.cmd("edit! " .. vim.fn.fnameescape(main_rs))
  vim.cmd("ArcaRunLive")
  terminal_shows("version: one", BUILD_WAIT)
  local first = H.wait(WAIT, function()
    local uri = state.running()[1]
    return uri and state.crates[uri].running.live == true and state.crates[uri].running.container
  end, "running live in the status")
  vim.cmd("edit! " .. vim.fn.fnameescape(main_rs))
  vim.api.nvim_buf_set_lines(0, 0, -1, false, versioned("two"))
  vim.cmd("write")
  terminal_shows("rebuilt after src/main.rs changed", BUILD_WAIT)
  terminal_shows("version: two", BUILD_WAIT)
  local uri = state.running()[1]
  H.ok(state.crates[uri].running.container == first, "the same container")
  vim.cmd("ArcaStop")
  terminal_shows("exited with code 143")
  H.wait(WAIT, function()
    return #state.running() == 0
  end, "running cleared")
  H.ok(not find_note(vim.log.levels.ERROR), "no error: " .. notes_text())
  vim.fn.writefile(main_text, main_rs)
  vim.cmd("edit! " .. vim.fn.fnameescape(main_rs))
end)

H.test("a broken Cargo.toml shows error, refuses a build naming it, and recovers", function()
  local broken = vim.deepcopy(cargo_text)
  table.insert(broken, "[dependencies")
  vim.fn.writefile(broken, crate .. "/Cargo.toml")
  status_is("arca: error")
  notes = {}
  vim.cmd("ArcaBuildImage")
  local note = H.wait(WAIT, function()
    return find_note(vim.log.levels.ERROR)
  end, "an error notification")
  H.matches(note.msg, "Cargo%.toml", "the message names Cargo.toml")
  H.ok(not note.msg:find("`"), "no backticks: " .. note.msg)
  vim.fn.writefile(cargo_text, crate .. "/Cargo.toml")
  H.wait(WAIT, function()
    vim.cmd("edit " .. vim.fn.fnameescape(main_rs))
    return arca.status() ~= "arca: error" and arca.status() ~= ""
  end, "the crate recovers")
end)

for _, client in ipairs((vim.lsp.get_clients or vim.lsp.get_active_clients)()) do
  client.stop()
end
vim.wait(2000, function()
  return #(vim.lsp.get_clients or vim.lsp.get_active_clients)() == 0
end, 50)
remove_images()
vim.fn.delete(root, "rf")
H.finish()
