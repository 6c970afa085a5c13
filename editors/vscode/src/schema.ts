// The `.arca/config.toml` JSON schema contributed through `tomlValidation`.
// Even Better TOML (taplo) reads every extension's `tomlValidation` from its
// in-memory package.json and passes `url` to its server verbatim, so a
// relative path would not resolve: at activation the entries are rewritten
// to absolute `file://` URIs inside the installed extension. Pure: no
// `vscode` import.

import { pathToFileURL } from "node:url";
import * as path from "node:path";

interface TomlValidation {
  fileMatch?: string | string[];
  regexMatch?: string | string[];
  url?: string;
}

/** Rewrites relative `url`s of `packageJSON.contributes.tomlValidation` against `extensionDir`; returns the new URLs. */
export function absolutizeTomlValidation(packageJSON: unknown, extensionDir: string): string[] {
  const entries = (packageJSON as { contributes?: { tomlValidation?: TomlValidation[] } })?.contributes?.tomlValidation;
  if (!Array.isArray(entries)) {
    return [];
  }
  const urls: string[] = [];
  for (const entry of entries) {
    if (typeof entry?.url !== "string") {
      continue;
    }
    if (!/^[a-z][a-z0-9+.-]*:/i.test(entry.url)) {
      entry.url = pathToFileURL(path.resolve(extensionDir, entry.url)).href;
    }
    urls.push(entry.url);
  }
  return urls;
}
