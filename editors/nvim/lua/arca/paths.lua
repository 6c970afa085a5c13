-- Paths and URIs: the crate root of a file (nearest directory with a
-- Cargo.toml), whether a file is Arca's config, and which known crate holds
-- a file. Works on Neovim 0.7 (no vim.fs).
local M = {}

local uv = vim.loop

local function exists(path)
  return uv.fs_stat(path) ~= nil
end

--- Absolute, normalized path without a trailing slash.
function M.normalize(path)
  local full = vim.fn.fnamemodify(path, ":p")
  if #full > 1 then
    full = full:gsub("/+$", "")
  end
  return full
end

function M.parent(path)
  local parent = vim.fn.fnamemodify(path, ":h")
  if parent == path then
    return nil
  end
  return parent
end

--- The nearest directory at or above `path` holding a Cargo.toml, or nil.
function M.cargo_root(path)
  local dir = M.normalize(path)
  if not exists(dir) or vim.fn.isdirectory(dir) == 0 then
    dir = M.parent(dir)
  end
  while dir do
    if exists(dir .. "/Cargo.toml") then
      return dir
    end
    dir = M.parent(dir)
  end
  return nil
end

--- True for `<crate>/.arca/config.toml`.
function M.is_arca_config(path)
  return path:match("/%.arca/config%.toml$") ~= nil
end

--- True when `path` is `dir` or inside it.
function M.is_inside(path, dir)
  if path == dir then
    return true
  end
  local prefix = dir == "/" and "/" or dir .. "/"
  return path:sub(1, #prefix) == prefix
end

function M.uri_to_path(uri)
  local ok, path = pcall(vim.uri_to_fname, uri)
  if ok then
    return path
  end
  return nil
end

function M.path_to_uri(path)
  return vim.uri_from_fname(path)
end

--- The innermost crate (a key of `crates`, a directory URI) holding `path`.
function M.crate_for_path(path, crate_uris)
  local best, best_len
  for _, uri in ipairs(crate_uris) do
    local dir = M.uri_to_path(uri)
    if dir and M.is_inside(path, dir) and (not best_len or #dir > best_len) then
      best, best_len = uri, #dir
    end
  end
  return best
end

return M
