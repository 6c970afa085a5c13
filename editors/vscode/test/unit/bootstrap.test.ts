// Unit tests of finding the server binary (src/bootstrap.ts), on real files.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { findServer, NOT_FOUND_MESSAGE, serverEnv } from "../../src/bootstrap";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "arca-bootstrap-"));
}

function executable(dir: string, name = "arca"): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, "#!/bin/sh\n", { mode: 0o755 });
  return file;
}

test("the setting wins and must point at an executable", () => {
  const root = tempDir();
  const configured = executable(path.join(root, "custom"));
  const onPath = executable(path.join(root, "bin"));
  assert.equal(findServer({ configured, pathEnv: path.dirname(onPath), home: root }), configured);
  assert.throws(
    () => findServer({ configured: path.join(root, "nope"), pathEnv: path.dirname(onPath), home: root }),
    /arca\.server\.path is set to .*nope.*not an executable file/,
  );
});

test("a setting with ~ expands to the home directory", () => {
  const root = tempDir();
  const file = executable(path.join(root, "tools"));
  assert.equal(findServer({ configured: "~/tools/arca", home: root }), file);
});

test("PATH is searched in order, skipping non-executables", () => {
  const root = tempDir();
  const plain = path.join(root, "a");
  fs.mkdirSync(plain);
  fs.writeFileSync(path.join(plain, "arca"), "not executable", { mode: 0o644 });
  const found = executable(path.join(root, "b"));
  executable(path.join(root, "c"));
  const pathEnv = [plain, path.dirname(found), path.join(root, "c")].join(path.delimiter);
  assert.equal(findServer({ pathEnv, home: root }), found);
});

test("~/.cargo/bin is the last resort, then a message that says how to fix it", () => {
  const root = tempDir();
  assert.throws(() => findServer({ pathEnv: "", home: root }), { message: NOT_FOUND_MESSAGE });
  assert.match(NOT_FOUND_MESSAGE, /cargo install --path \./);
  assert.match(NOT_FOUND_MESSAGE, /arca\.server\.path/);
  const cargo = executable(path.join(root, ".cargo", "bin"));
  assert.equal(findServer({ pathEnv: "", home: root }), cargo);
});

test("extraEnv adds, overrides and removes variables", () => {
  const env = serverEnv({ KEEP: "1", DROP: "2", OVER: "3" }, { DROP: null, OVER: "x", NEW: "y" });
  assert.deepEqual(env, { KEEP: "1", OVER: "x", NEW: "y" });
  assert.deepEqual(serverEnv({ A: "1" }, null), { A: "1" });
});
