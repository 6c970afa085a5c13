// Unit tests of crate selection (src/crates.ts).

import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseCrate, crateDir, crateForFile } from "../../src/crates";
import type { CrateStatus } from "../../src/status";

function crate(uri: string, name: string): CrateStatus {
  return { crate: uri, name, state: "missing", fingerprint: null, artifact: null, reasons: [], message: "" };
}

const outer = crate("file:///ws/app", "app");
const inner = crate("file:///ws/app/tools/helper", "helper");
const other = crate("file:///ws/other", "other");
const all = [outer, inner, other];

test("crate URIs map to directories", () => {
  assert.equal(crateDir("file:///ws/app"), "/ws/app");
  assert.equal(crateDir("file:///ws/with%20space"), "/ws/with space");
  assert.equal(crateDir("untitled:foo"), undefined);
});

test("the innermost crate holding the file wins", () => {
  assert.equal(crateForFile("/ws/app/src/main.rs", all), outer);
  assert.equal(crateForFile("/ws/app/tools/helper/src/main.rs", all), inner);
  assert.equal(crateForFile("/ws/app/tools/helper/.arca/config.toml", all), inner);
});

test("a sibling with a common prefix is not a match", () => {
  assert.equal(crateForFile("/ws/application/src/main.rs", all), undefined);
  assert.equal(crateForFile("/ws/otherwise.rs", all), undefined);
});

test("chooseCrate: active file, single crate, none, or a pick sorted by name", () => {
  assert.deepEqual(chooseCrate("/ws/other/src/lib.rs", all), { kind: "one", crate: other });
  assert.deepEqual(chooseCrate(undefined, [other]), { kind: "one", crate: other });
  assert.deepEqual(chooseCrate("/elsewhere/x.rs", [other]), { kind: "one", crate: other });
  assert.deepEqual(chooseCrate(undefined, []), { kind: "none" });
  const pick = chooseCrate("/elsewhere/x.rs", all);
  assert.equal(pick.kind, "pick");
  assert.deepEqual(pick.kind === "pick" && pick.crates.map((c) => c.name), ["app", "helper", "other"]);
});
