// Pure mapping from `arca/status` objects to what the status bar and the
// language status item show: text, codicon, tooltip, severity. No `vscode`
// import, so it runs under `node --test`.

import { plain, withoutCliHints } from "./messages";
import type { CrateState, CrateStatus } from "./status";

/** The extension commands the tooltip links to. */
export const SHOW_BUILD_LOG = "arca.client.showBuildLog";
export const SHOW_SBOM = "arca.client.showSbom";

export type Severity = "information" | "warning" | "error";

export interface StatusView {
  /** Status bar text, with a `$(codicon)` prefix. */
  text: string;
  /** Markdown tooltip. */
  tooltip: string;
  severity: Severity;
  /** True while a build runs: the language status item shows as busy. */
  busy: boolean;
  /** One plain-text line for the language status item. */
  detail: string;
  /** What a click does: build the image, or (while building) show the build output. */
  click: "buildImage" | "showOutput";
}

const ICONS: Record<CrateState, string> = {
  fresh: "$(check)",
  stale: "$(warning)",
  building: "$(sync~spin)",
  missing: "$(circle-slash)",
  unconfigured: "$(gear)",
  error: "$(error)",
};

const SEVERITY: Record<CrateState, Severity> = {
  fresh: "information",
  stale: "warning",
  building: "information",
  missing: "information",
  unconfigured: "warning",
  error: "error",
};

const SUMMARY: Record<CrateState, string> = {
  fresh: "The image is up to date.",
  stale: "The image is out of date.",
  building: "A build is running.",
  missing: "No image has been built yet.",
  unconfigured: "`.arca/config.toml` is missing settings a build needs.",
  error: "The image status cannot be computed.",
};

/** Worst first: the state a summary of several crates shows. */
const PRIORITY: CrateState[] = ["error", "building", "stale", "unconfigured", "missing", "fresh"];

/** The status bar view of one crate. */
export function viewOf(status: CrateStatus): StatusView {
  // The server's message already names the tag and the reasons: say each once.
  const message = withoutCliHints(status.message);
  const lines = [`**${escapeMarkdown(status.name)}**: ${status.state}`, "", escapeMarkdown(message || SUMMARY[status.state])];
  if (status.state === "stale") {
    const unnamed = status.reasons.filter((reason) => !message.includes(reason));
    if (unnamed.length > 0) {
      lines.push("", ...unnamed.map((reason) => `- ${escapeMarkdown(reason)}`));
    }
  }
  if (status.artifact && !message.includes(status.artifact.tag)) {
    lines.push("", `Image: \`${status.artifact.tag}\``);
  }
  if (status.platforms && status.platforms.length > 0) {
    lines.push("", `Platforms: ${status.platforms.map(escapeMarkdown).join(", ")}`);
  }
  if (status.running) {
    lines.push("", `Running in container \`${status.running.container.slice(0, 12)}\`.`);
  }
  if (status.state === "fresh" && status.sbom) {
    const count = status.sbom.packages;
    lines.push("", `SBOM: ${count} ${count === 1 ? "package" : "packages"} · [Show the SBOM](command:${SHOW_SBOM})`);
  }
  lines.push("", status.state === "building" ? "Click to show the build output." : "Click to build the image.");
  if (status.state !== "building") {
    lines.push("", `[Show the last build log](command:${SHOW_BUILD_LOG})`);
  }
  return {
    text: `${ICONS[status.state]} arca: ${status.state}${status.running ? " $(play)" : ""}`,
    tooltip: lines.join("\n"),
    detail: plain(message || SUMMARY[status.state]),
    severity: SEVERITY[status.state],
    busy: status.state === "building",
    click: status.state === "building" ? "showOutput" : "buildImage",
  };
}

/**
 * The view for the status bar: the crate of the active file when there is
 * one, otherwise a summary of all crates (worst state first), or nothing
 * when the server reported no crate.
 */
export function viewFor(statuses: CrateStatus[], active: CrateStatus | undefined): StatusView | undefined {
  if (active) {
    return viewOf(active);
  }
  if (statuses.length === 0) {
    return undefined;
  }
  if (statuses.length === 1) {
    return viewOf(statuses[0]);
  }
  const worst = PRIORITY.find((state) => statuses.some((s) => s.state === state)) ?? "fresh";
  const count = statuses.filter((s) => s.state === worst).length;
  const lines = statuses
    .slice()
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => `- **${escapeMarkdown(s.name)}**: ${s.state}${s.message ? ` (${escapeMarkdown(withoutCliHints(s.message))})` : ""}`);
  return {
    text: `${ICONS[worst]} arca: ${count}/${statuses.length} ${worst}`,
    tooltip: [`${statuses.length} crates`, "", ...lines].join("\n"),
    detail: `${count} of ${statuses.length} crates ${worst}`,
    severity: SEVERITY[worst],
    busy: statuses.some((s) => s.state === "building"),
    click: "buildImage",
  };
}

/** The view while the server runs but reports no crate (none, or all removed). */
export function noCrateView(): StatusView {
  const detail =
    "Arca found no crate with a binary target in this workspace. If the folder has one, check that its Cargo.toml is valid; the Arca output has the server's log.";
  return {
    text: "$(circle-slash) arca: no crate",
    tooltip: detail,
    detail,
    severity: "warning",
    busy: false,
    click: "showOutput",
  };
}

/** The view while the server is not running (not found, crashed, starting). */
export function serverView(kind: "starting" | "stopped", detail: string): StatusView {
  return kind === "starting"
    ? {
        text: "$(loading~spin) arca",
        tooltip: "Starting the Arca language server…",
        detail: "Starting the Arca language server…",
        severity: "information",
        busy: true,
        click: "showOutput",
      }
    : {
        text: "$(error) arca: server stopped",
        tooltip: escapeMarkdown(detail),
        detail: plain(detail),
        severity: "error",
        busy: false,
        click: "showOutput",
      };
}

/** Escapes markdown, except that `code` spans stay code (rendered, not shown as backticks). */
function escapeMarkdown(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part, index) => (index % 2 === 1 ? part : part.replace(/([\\`*_{}[\]()#+\-!|<>])/g, "\\$1")))
    .join("");
}
