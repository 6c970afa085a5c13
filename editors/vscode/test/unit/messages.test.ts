// Unit tests of the notification wording (src/messages.ts).

import assert from "node:assert/strict";
import { test } from "node:test";
import { forNotification, isCancellation, plain, serverLogLine, withoutCliHints } from "../../src/messages";

test("backticks become quotes in notifications", () => {
  assert.equal(plain("Cargo could not build `hello`: `x` is unknown"), "Cargo could not build 'hello': 'x' is unknown");
});

test("'shown above' points at the Problems view instead", () => {
  const text = forNotification("Cargo could not build `hello`: mismatched types. Fix the error shown above and build again.");
  assert.doesNotMatch(text, /above|`/);
  assert.match(text, /Problems view/);
  assert.match(text, /'hello'/);
});

test("CLI hints are dropped next to a button that does the same", () => {
  assert.equal(
    withoutCliHints("No image of demo has been built yet. Build one with `arca build rust /w/demo`."),
    "No image of demo has been built yet.",
  );
  assert.equal(withoutCliHints("Nothing to drop here."), "Nothing to drop here.");
});

test("a JSON-RPC RequestCancelled is a cancellation, other errors are not", () => {
  assert.equal(isCancellation({ code: -32800, message: "Build cancelled" }), true);
  assert.equal(isCancellation({ code: -32803, message: "failed" }), false);
  assert.equal(isCancellation(new Error("x")), false);
});

test("server log lines keep their level", () => {
  assert.deepEqual(serverLogLine("2026-12-01T02:57:11.336101Z  INFO crate found: /w/hello"), {
    level: "info",
    text: "crate found: /w/hello",
  });
  assert.deepEqual(serverLogLine("\x1b[2m2026-12-01T02:57:11Z\x1b[0m \x1b[33m WARN\x1b[0m slow"), { level: "warn", text: "slow" });
  assert.deepEqual(serverLogLine("thread 'main' panicked"), { level: "error", text: "thread 'main' panicked" });
});
