// Which crate a command acts on: the crate whose directory holds the active
// file (the innermost one when crates nest), the only crate, or a choice for
// the user. Pure: no `vscode` import.

import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { CrateStatus } from "./status";

export type CrateChoice =
  | { kind: "one"; crate: CrateStatus }
  | { kind: "pick"; crates: CrateStatus[] }
  | { kind: "none" };

/** The directory of a crate URI (`file:///abs/dir`), or undefined for other schemes. */
export function crateDir(uri: string): string | undefined {
  try {
    return uri.startsWith("file:") ? path.resolve(fileURLToPath(uri)) : undefined;
  } catch {
    return undefined;
  }
}

/** The innermost crate whose directory contains `filePath`. */
export function crateForFile(filePath: string, crates: CrateStatus[]): CrateStatus | undefined {
  const file = path.resolve(filePath);
  let best: { crate: CrateStatus; depth: number } | undefined;
  for (const crate of crates) {
    const dir = crateDir(crate.crate);
    if (dir === undefined || !isInside(file, dir)) {
      continue;
    }
    if (best === undefined || dir.length > best.depth) {
      best = { crate, depth: dir.length };
    }
  }
  return best?.crate;
}

/** The crate a command should act on, given the active file (if any). */
export function chooseCrate(activeFile: string | undefined, crates: CrateStatus[]): CrateChoice {
  if (activeFile !== undefined) {
    const crate = crateForFile(activeFile, crates);
    if (crate) {
      return { kind: "one", crate };
    }
  }
  if (crates.length === 0) {
    return { kind: "none" };
  }
  if (crates.length === 1) {
    return { kind: "one", crate: crates[0] };
  }
  return { kind: "pick", crates: crates.slice().sort((a, b) => a.name.localeCompare(b.name) || a.crate.localeCompare(b.crate)) };
}

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}
