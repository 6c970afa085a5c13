// The extension's protocol code (ArcaSession, the state mapping, crate
// selection) against the real `arca lsp` over stdio, with VS Code's client
// capabilities. The engine is unreachable (DOCKER_HOST=tcp://127.0.0.1:1).

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import {
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ErrorCodes,
  ResponseError,
} from "vscode-languageserver-protocol";
import { chooseCrate } from "../../src/crates";
import { ArcaSession, describePackage, errorMessage } from "../../src/protocol";
import { viewOf } from "../../src/state";
import type { CrateStatus } from "../../src/status";
import { arcaBin, Fixture, Server, uriOf } from "./support";

const GOOD = '[rust]\nprofile = "release"\nfeatures = []\nbase_image = "debian:bookworm-slim"\n';
const NO_IMAGE = '[rust]\nprofile = "release"\nfeatures = []\n';
const BROKEN = '[rust]\nprofile = "release"\nfeatures = "shout"\nbase_image = "debian:bookworm-slim"\ncolour = "blue"\n';

const fixture = new Fixture();
const hello = fixture.crate("hello", GOOD);
const noimage = fixture.crate("noimage", NO_IMAGE);
const broken = fixture.crate("broken", BROKEN);
const brokenConfig = path.join(broken, ".arca", "config.toml");
let server: Server;
let session: ArcaSession;

before(async () => {
  server = new Server({ ...process.env, ARCA_HOME: fixture.home, DOCKER_HOST: "tcp://127.0.0.1:1", RUST_LOG: "info" });
  session = new ArcaSession(server.connection);
  session.onDidChange(() => server.poke());
  await server.initialize([fixture.workspace]);
});

after(async () => {
  session?.dispose();
  await server?.shutdown();
  fixture.remove();
});

function statusOf(dir: string): CrateStatus | undefined {
  return session.status(uriOf(dir));
}

test(`arca/status arrives for every crate after initialized (${arcaBin})`, { timeout: 30000 }, async () => {
  const missing = await server.until("hello's status", () => statusOf(hello));
  assert.equal(missing.name, "hello");
  assert.equal(missing.state, "missing");
  assert.equal(missing.artifact, null);
  assert.equal(viewOf(missing).text, "$(circle-slash) arca: missing");
  const unconfigured = await server.until("noimage's status", () => statusOf(noimage));
  assert.equal(unconfigured.state, "unconfigured");
  assert.equal(viewOf(unconfigured).severity, "warning");
  assert.match(unconfigured.message, /base_image/);
  await server.until("broken's status", () => statusOf(broken));
});

test("the arca/status request returns all crates, one crate, or InvalidParams", { timeout: 30000 }, async () => {
  const all = await session.refresh();
  assert.deepEqual(all.map((s) => s.name).sort(), ["broken", "hello", "noimage"]);
  const one = await session.refresh(uriOf(hello));
  assert.deepEqual(one.map((s) => s.crate), [uriOf(hello)]);
  await assert.rejects(session.refresh(uriOf(path.join(fixture.workspace, "nope"))), (error: unknown) => {
    assert.ok(error instanceof ResponseError, String(error));
    assert.equal(error.code, ErrorCodes.InvalidParams);
    return true;
  });
});

test("crate selection picks the crate of the active file among the server's crates", () => {
  const choice = chooseCrate(path.join(hello, "src", "main.rs"), session.crates());
  assert.equal(choice.kind === "one" && choice.crate.name, "hello");
  assert.equal(chooseCrate(undefined, session.crates()).kind, "pick");
});

test("diagnostics on a broken config: published on startup, cleared by a fixing didChange", { timeout: 30000 }, async () => {
  const uri = uriOf(brokenConfig);
  const diagnostics = await server.until("diagnostics for the broken config", () => {
    const list = server.diagnostics.get(uri);
    return list && list.length >= 2 ? list : undefined;
  });
  const codes = diagnostics.map((d) => String(d.code)).sort();
  assert.ok(codes.includes("invalid-type"), codes.join(","));
  assert.ok(codes.includes("unknown-key"), codes.join(","));
  for (const d of diagnostics) {
    assert.equal(d.source, "arca");
  }
  const unknown = diagnostics.find((d) => d.code === "unknown-key")!;
  assert.equal(unknown.range.start.line, 4);
  assert.match(typeof unknown.message === "string" ? unknown.message : unknown.message.value, /colour/);

  await server.connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: "toml", version: 1, text: BROKEN },
  });
  await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
    textDocument: { uri, version: 2 },
    contentChanges: [{ text: GOOD }],
  });
  await server.until("an empty diagnostics list after the fix", () => server.diagnostics.get(uri)?.length === 0);
});

test("arca.package with no engine fails with a clear error and leaves no build running", { timeout: 60000 }, async (t) => {
  const crate = uriOf(hello);
  assert.equal(statusOf(hello)?.state, "missing", "a configured crate, so only the engine can fail");
  await assert.rejects(session.packageImage(crate), (error: unknown) => {
    assert.ok(error instanceof ResponseError, String(error));
    const message = errorMessage(error);
    // the CLI's wording: "Cannot reach the Docker engine at tcp://127.0.0.1:1: ..."
    assert.match(message, /cannot reach|127\.0\.0\.1:1/i, message);
    return true;
  });
  const status = await server.until("hello back out of building", () => {
    const s = statusOf(hello);
    return s && s.state !== "building" ? s : undefined;
  });
  assert.equal(status.state, "missing");
  // Any progress the server began for the build must have ended.
  const begun = server.progress.filter((p) => p.value.kind === "begin").map((p) => p.token);
  for (const token of begun) {
    await server.until(`the end of progress ${String(token)}`, () =>
      server.progress.some((p) => p.token === token && p.value.kind === "end"),
    );
    assert.ok(server.createdTokens.includes(token), "progress tokens are created by window/workDoneProgress/create");
  }
  for (const p of server.progress) {
    if (p.value.kind === "begin") {
      assert.equal(p.value.cancellable, true, "a build's progress offers cancel");
    }
  }
  t.diagnostic(`progress: ${begun.length} begun and ended; ${server.logs.length} log lines`);
});

test("arca.build (in the builder container) with no engine fails with the same clear error", { timeout: 60000 }, async () => {
  await assert.rejects(session.buildBinary(uriOf(hello)), (error: unknown) => {
    assert.ok(error instanceof ResponseError, String(error));
    assert.match(errorMessage(error), /cannot reach|127\.0\.0\.1:1/i, errorMessage(error));
    return true;
  });
  await server.until("hello back out of building", () => statusOf(hello)?.state === "missing");
});

test("arca.cancel with nothing running is not an error", { timeout: 30000 }, async () => {
  await session.cancel(uriOf(hello));
});

test("arca.push before any artifact exists fails with the server's message", { timeout: 30000 }, async () => {
  await assert.rejects(session.pushImage(uriOf(hello), "localhost:5000/hello"), (error: unknown) => {
    assert.match(errorMessage(error), /has no artifact to push/);
    return true;
  });
});

test("a matching artifact record turns the crate fresh; a saved edit turns it stale and back", { timeout: 60000 }, async () => {
  const live = (await session.refresh(uriOf(hello)))[0];
  assert.match(live.fingerprint ?? "", /^[0-9a-f]{64}$/);
  writeRecord(fixture.home, hello, "vstest01", live.fingerprint!);
  const fresh = await server.until("hello fresh", () => (statusOf(hello)?.state === "fresh" ? statusOf(hello) : undefined));
  assert.equal(fresh.artifact?.id, "vstest01");
  assert.equal(viewOf(fresh).text, "$(check) arca: fresh");
  const upToDate = await session.packageImage(uriOf(hello));
  assert.equal(upToDate.upToDate, true);
  assert.equal(upToDate.artifactId, "vstest01");
  assert.equal(describePackage(upToDate), "Image arca-local:hello-vstest01 is already up to date.");
  const main = path.join(hello, "src", "main.rs");
  const original = fs.readFileSync(main, "utf8");
  fs.writeFileSync(main, original + "\n// edited by the vscode test\n");
  const stale = await server.until("hello stale", () => (statusOf(hello)?.state === "stale" ? statusOf(hello) : undefined));
  assert.ok(stale.reasons.length > 0, "stale names a reason");
  // The reason and the tag are named once (the server's message has both).
  const tooltip = viewOf(stale).tooltip;
  assert.equal(tooltip.split("src/main.rs changed").length, 2, tooltip);
  assert.equal(tooltip.split("vstest01").length, 2, tooltip);
  fs.writeFileSync(main, original);
  await server.until("hello fresh again", () => statusOf(hello)?.state === "fresh");
});

function writeRecord(home: string, crateDir: string, id: string, fingerprint: string): void {
  const dir = path.join(home, "containers", id);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "image.tar"), "");
  fs.writeFileSync(
    path.join(dir, "metadata.toml"),
    [
      "schema_version = 3",
      `artifact_id = "${id}"`,
      `remote_tag = "hello-${id}"`,
      `build_fingerprint = "${fingerprint}"`,
      'kind = "rust"',
      `created_at_epoch_ms = ${Date.now()}`,
      'crate_name = "hello"',
      'crate_version = "0.1.0"',
      'binary_name = "hello"',
      `source_path = ${JSON.stringify(crateDir)}`,
      `manifest_path = ${JSON.stringify(path.join(crateDir, "Cargo.toml"))}`,
      'cargo_profile = "release"',
      "cargo_features = []",
      'base_image = "debian:bookworm-slim"',
      'runtime = "docker"',
      `local_tag = "arca-local:hello-${id}"`,
      'archive_file = "image.tar"',
      "",
    ].join("\n"),
  );
}
