// Unit tests of the status bar mapping (src/state.ts).

import assert from "node:assert/strict";
import { test } from "node:test";
import { noCrateView, serverView, viewFor, viewOf } from "../../src/state";
import type { CrateState, CrateStatus } from "../../src/status";

function status(state: CrateState, extra: Partial<CrateStatus> = {}): CrateStatus {
  return {
    crate: "file:///work/demo",
    name: "demo",
    state,
    fingerprint: "a".repeat(64),
    artifact: null,
    reasons: [],
    message: "",
    ...extra,
  };
}

test("every state gets its own icon and text", () => {
  const expected: Record<CrateState, string> = {
    fresh: "$(check) arca: fresh",
    stale: "$(warning) arca: stale",
    building: "$(sync~spin) arca: building",
    missing: "$(circle-slash) arca: missing",
    unconfigured: "$(gear) arca: unconfigured",
    error: "$(error) arca: error",
  };
  for (const [state, text] of Object.entries(expected) as [CrateState, string][]) {
    assert.equal(viewOf(status(state)).text, text);
  }
});

test("stale lists its reasons in the tooltip, escaped for markdown", () => {
  const view = viewOf(status("stale", { reasons: ["src/main.rs changed", "features changed"] }));
  assert.equal(view.severity, "warning");
  assert.match(view.tooltip, /^- src\/main\.rs changed$/m);
  assert.match(view.tooltip, /^- features changed$/m);
  assert.match(view.tooltip, /Click to build the image\./);
});

test("reasons are only listed for stale", () => {
  const view = viewOf(status("fresh", { reasons: ["leftover"] }));
  assert.doesNotMatch(view.tooltip, /leftover/);
});

test("building is busy and a click shows the output instead of building again", () => {
  const view = viewOf(status("building"));
  assert.equal(view.busy, true);
  assert.equal(view.click, "showOutput");
  assert.match(view.tooltip, /Click to show the build output\./);
  assert.doesNotMatch(view.tooltip, /Click to build/);
  assert.equal(viewOf(status("fresh")).busy, false);
  assert.equal(viewOf(status("stale")).click, "buildImage");
});

test("error carries the server's message and the error severity", () => {
  const view = viewOf(status("error", { fingerprint: null, message: "Cargo.toml: expected `]`" }));
  assert.equal(view.severity, "error");
  // `code` renders as code: no escaped (literal) backticks.
  assert.match(view.tooltip, /Cargo\.toml: expected `\]`/);
  assert.doesNotMatch(view.tooltip, /\\`/);
});

test("the artifact tag is shown", () => {
  const artifact = { id: "ab12cd34", tag: "arca-local:demo-ab12cd34", fingerprint: "b".repeat(64), createdAt: 1 };
  assert.match(viewOf(status("fresh", { artifact })).tooltip, /`arca-local:demo-ab12cd34`/);
});

test("the active crate wins over the summary", () => {
  const a = status("fresh", { crate: "file:///a", name: "a" });
  const b = status("error", { crate: "file:///b", name: "b" });
  assert.equal(viewFor([a, b], a)?.text, "$(check) arca: fresh");
});

test("without an active crate, several crates summarize the worst state", () => {
  const a = status("fresh", { crate: "file:///a", name: "a" });
  const b = status("stale", { crate: "file:///b", name: "b" });
  const c = status("stale", { crate: "file:///c", name: "c" });
  const view = viewFor([a, b, c], undefined);
  assert.equal(view?.text, "$(warning) arca: 2/3 stale");
  assert.equal(view?.severity, "warning");
  assert.match(view?.tooltip ?? "", /^- \*\*a\*\*: fresh$/m);
});

test("a single crate shows directly; no crate shows nothing", () => {
  assert.equal(viewFor([status("missing")], undefined)?.text, "$(circle-slash) arca: missing");
  assert.equal(viewFor([], undefined), undefined);
});

test("a stopped server says why", () => {
  const view = serverView("stopped", "Arca language server not found.");
  assert.equal(view.severity, "error");
  assert.equal(view.tooltip, "Arca language server not found.");
});

test("the tooltip says the tag and the reasons once, without CLI hints", () => {
  const artifact = { id: "ab12cd34", tag: "arca-local:demo-ab12cd34", fingerprint: "b".repeat(64), createdAt: 1 };
  const stale = viewOf(
    status("stale", {
      artifact,
      reasons: ["src/main.rs changed"],
      message: "arca-local:demo-ab12cd34 is stale: src/main.rs changed.",
    }),
  );
  assert.equal(stale.tooltip.split("src/main.rs changed").length, 2, stale.tooltip);
  assert.equal(stale.tooltip.split("ab12cd34").length, 2, stale.tooltip);
  const missing = viewOf(
    status("missing", { message: "No image of demo has been built yet. Build one with `arca build rust /w/demo`." }),
  );
  assert.doesNotMatch(missing.tooltip, /arca build rust/);
  assert.match(missing.tooltip, /No image of demo has been built yet\./);
  assert.match(missing.tooltip, /Click to build the image\./);
});

test("a running container shows in the text and the tooltip", () => {
  const view = viewOf(status("fresh", { running: { container: "0123456789abcdef", image: "x:y", startedAt: 1 } }));
  assert.match(view.text, /\$\(play\)/);
  assert.match(view.tooltip, /Running in container `0123456789ab`/);
});

test("no crate is said, not hidden, and points at Cargo.toml and the output", () => {
  const view = noCrateView();
  assert.equal(view.text, "$(circle-slash) arca: no crate");
  assert.match(view.detail, /Cargo\.toml/);
  assert.equal(view.click, "showOutput");
});

test("a fresh image's tooltip counts its SBOM's packages and links to it", () => {
  const sbom = { digest: `sha256:${"b".repeat(64)}`, packages: 7 };
  const fresh = viewOf(status("fresh", { sbom }));
  assert.match(fresh.tooltip, /^SBOM: 7 packages · \[Show the SBOM\]\(command:arca\.client\.showSbom\)$/m);
  assert.match(viewOf(status("fresh", { sbom: { ...sbom, packages: 1 } })).tooltip, /SBOM: 1 package ·/);
  // Stale: the SBOM describes an image that is not what the code builds.
  assert.doesNotMatch(viewOf(status("stale", { sbom })).tooltip, /SBOM/);
  assert.doesNotMatch(viewOf(status("fresh", { sbom: null })).tooltip, /SBOM/);
});

test("a multi-platform image's tooltip lists its platforms; a single-platform one says nothing", () => {
  const both = viewOf(status("fresh", { platforms: ["linux/amd64", "linux/arm64"] }));
  assert.match(both.tooltip, /^Platforms: linux\/amd64, linux\/arm64$/m);
  assert.doesNotMatch(viewOf(status("fresh", {})).tooltip, /Platforms/);
});
