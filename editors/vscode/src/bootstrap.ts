// Finds the `arca` binary: the `arca.server.path` setting, then `PATH`, then
// `~/.cargo/bin` (where `cargo install` puts it, and which a desktop-launched
// VS Code often lacks on `PATH`). Fails with a message that says how to fix
// it. No `vscode` import, so it runs under `node --test`.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const NOT_FOUND_MESSAGE =
  "Arca language server not found. Install it with `cargo install --path .` in the Arca repository " +
  "(or put `arca` on your PATH), or set `arca.server.path` to the `arca` binary " +
  "(in Remote settings when VS Code runs remotely: code-server, SSH, WSL, containers).";

export class ServerNotFound extends Error {}

export interface Lookup {
  /** The `arca.server.path` setting, if set. */
  configured?: string | null;
  /** `PATH` of the extension host. */
  pathEnv?: string;
  home?: string;
  platform?: NodeJS.Platform;
}

/** The absolute path of the `arca` binary to run, or throws [`ServerNotFound`]. */
export function findServer(lookup: Lookup): string {
  const home = lookup.home ?? os.homedir();
  const platform = lookup.platform ?? process.platform;
  const exe = platform === "win32" ? "arca.exe" : "arca";
  const configured = lookup.configured?.trim();
  if (configured) {
    const resolved = path.resolve(expandHome(configured, home));
    if (!isExecutable(resolved)) {
      throw new ServerNotFound(
        `arca.server.path is set to \`${configured}\`, but ${resolved} is not an executable file. ` +
          "Fix the setting or clear it to look `arca` up on PATH.",
      );
    }
    return resolved;
  }
  const dirs = (lookup.pathEnv ?? "").split(path.delimiter).filter((dir) => dir !== "");
  dirs.push(path.join(home, ".cargo", "bin"));
  for (const dir of dirs) {
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate)) {
      return candidate;
    }
  }
  throw new ServerNotFound(NOT_FOUND_MESSAGE);
}

/** The server's environment: the host's, with `arca.server.extraEnv` applied (`null` removes). */
export function serverEnv(
  base: NodeJS.ProcessEnv,
  extra: Record<string, string | null> | null | undefined,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === null) {
      delete env[key];
    } else {
      env[key] = String(value);
    }
  }
  return env;
}

function expandHome(file: string, home: string): string {
  return file === "~" || file.startsWith("~/") ? path.join(home, file.slice(1)) : file;
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
