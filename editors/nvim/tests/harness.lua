-- A tiny test harness for headless Neovim: named tests run in order, each
-- failure printed with its reason, TAP-like output on stdout and a nonzero
-- exit status when anything failed.
local H = { passed = 0, failed = 0 }

function H.out(line)
  io.stdout:write(line .. "\n")
  io.stdout:flush()
end

--- When set (a reason), the remaining tests fail at once with it, so a
--- server that never starts costs one timeout, not one per test.
H.abort = nil

function H.test(name, fn)
  local ok, err
  if H.abort then
    ok, err = false, "not run: " .. H.abort
  else
    ok, err = xpcall(fn, debug.traceback)
  end
  if ok then
    H.passed = H.passed + 1
    H.out("ok - " .. name)
  else
    H.failed = H.failed + 1
    H.out("not ok - " .. name)
    for line in tostring(err):gmatch("[^\n]+") do
      H.out("#   " .. line)
    end
  end
end

function H.eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    error(string.format("%s: expected %s, got %s", what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.ok(cond, what)
  if not cond then
    error(what or "assertion failed", 2)
  end
end

function H.matches(text, pattern, what)
  if type(text) ~= "string" or not text:find(pattern) then
    error(string.format("%s: %s does not match %q", what or "text", vim.inspect(text), pattern), 2)
  end
end

--- Waits up to `ms` for `cond()` to return a truthy value; raises `what` on timeout.
function H.wait(ms, cond, what)
  local value
  local done = vim.wait(ms, function()
    value = cond()
    return value and true or false
  end, 50)
  if not done then
    if type(what) == "function" then
      what = what()
    end
    error(string.format("timed out after %d ms waiting for %s", ms, what or "a condition"), 2)
  end
  return value
end

--- Prints the summary and exits Neovim: status 0 only when nothing failed.
function H.finish()
  H.out(string.format("# pass %d", H.passed))
  H.out(string.format("# fail %d", H.failed))
  if H.failed > 0 then
    vim.cmd("cquit 1")
  else
    vim.cmd("qall!")
  end
end

return H
