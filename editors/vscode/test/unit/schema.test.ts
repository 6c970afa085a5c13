// The contributed TOML schema: wired into package.json, and naming the keys
// PROTOCOL.md defines for `.arca/config.toml`.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { absolutizeTomlValidation } from "../../src/schema";

const root = path.resolve(__dirname, "..", "..", "..");

function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(root, file), "utf8"));
}

test("tomlValidation points at the schema for .arca/config.toml", () => {
  const manifest = readJson("package.json");
  const [entry] = manifest.contributes.tomlValidation;
  assert.equal(entry.fileMatch, ".arca/config.toml");
  assert.ok(fs.existsSync(path.join(root, entry.url)), `${entry.url} exists`);
});

test("relative schema URLs become file:// URIs inside the installed extension", () => {
  const manifest = readJson("package.json");
  const urls = absolutizeTomlValidation(manifest, "/opt/ext/arca-0.1.0");
  assert.deepEqual(urls, ["file:///opt/ext/arca-0.1.0/schemas/arca-config.schema.json"]);
  assert.equal(manifest.contributes.tomlValidation[0].url, urls[0]);
  assert.deepEqual(absolutizeTomlValidation(manifest, "/elsewhere"), urls, "absolute URLs stay");
  assert.deepEqual(absolutizeTomlValidation({}, "/x"), []);
});

test("the schema documents every [rust] key", () => {
  const schema = readJson("schemas/arca-config.schema.json");
  const rust = schema.properties.rust;
  assert.deepEqual(Object.keys(rust.properties).sort(), ["base_image", "bin", "env", "features", "init", "packages", "platforms", "profile", "proxy", "push_to", "toolchain"]);
  for (const [key, value] of Object.entries<any>(rust.properties)) {
    assert.ok(value.description.length > 20, `${key} has a description`);
  }
  assert.equal(rust.additionalProperties, false);
  assert.equal(rust.properties.features.type, "array");
  assert.equal(rust.properties.platforms.type, "array");
  assert.ok(rust.properties.platforms.items.enum.includes("linux/arm64"), "platforms are an enum");
});

test("every contributed command is in the command table and none collides with a server command", () => {
  const manifest = readJson("package.json");
  const ids: string[] = manifest.contributes.commands.map((c: any) => c.command);
  const main = fs.readFileSync(path.join(root, "src", "main.ts"), "utf8");
  for (const id of ids) {
    assert.ok(id.startsWith("arca.client."), id);
    assert.ok(main.includes(`"${id}"`), `${id} is registered in main.ts`);
  }
  assert.deepEqual(
    manifest.contributes.commands.map((c: any) => c.title),
    ["Build Image", "Build Binary", "Push Image", "Cancel Build", "Run Image", "Run Image (Live)", "Stop", "Show Output", "Show Last Build Log", "Show SBOM", "Restart Server"],
  );
});

test("the schema documents every [run] key the server checks", () => {
  const schema = readJson("schemas/arca-config.schema.json");
  const run = schema.properties.run;
  assert.deepEqual(Object.keys(run.properties).sort(), ["args", "env", "gpus", "ports"]);
  const server = fs.readFileSync(path.join(root, "..", "..", "src", "config", "run.rs"), "utf8");
  for (const key of Object.keys(run.properties)) {
    assert.ok(server.includes(`name: "${key}"`), `${key} is a server key`);
  }
  assert.equal(run.additionalProperties, false);
});
