// Pure mapping from `arca/status` objects to what the status bar and the
// language status item show: text, codicon, tooltip, severity. No `vscode`
// import, so it runs under `node --test`.

import type { CrateState, CrateStatus } from "./status";

export type Severity = "information" | "warning" | "error";

export interface StatusView {
  /** Status bar text, with a `$(codicon)` prefix. */
  text: string;
  /** Markdown tooltip. */
  tooltip: string;
  severity: Severity;
  /** True while a build runs: the language status item shows as busy. */
  busy: boolean;
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
  const lines = [`**${escapeMarkdown(status.name)}**: ${status.state}`, "", SUMMARY[status.state]];
  if (status.message && status.message !== SUMMARY[status.state]) {
    lines.push("", escapeMarkdown(status.message));
  }
  if (status.state === "stale" && status.reasons.length > 0) {
    lines.push("", ...status.reasons.map((reason) => `- ${escapeMarkdown(reason)}`));
  }
  if (status.artifact) {
    lines.push("", `Image: \`${status.artifact.tag}\``);
  }
  lines.push("", status.state === "building" ? "Click to show the build output." : "Click to build the image.");
  return {
    text: `${ICONS[status.state]} arca: ${status.state}`,
    tooltip: lines.join("\n"),
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
    .map((s) => `- **${escapeMarkdown(s.name)}**: ${s.state}${s.message ? ` (${escapeMarkdown(s.message)})` : ""}`);
  return {
    text: `${ICONS[worst]} arca: ${count}/${statuses.length} ${worst}`,
    tooltip: [`${statuses.length} crates`, "", ...lines].join("\n"),
    severity: SEVERITY[worst],
    busy: statuses.some((s) => s.state === "building"),
    click: "buildImage",
  };
}

/** The view while the server is not running (not found, crashed, starting). */
export function serverView(kind: "starting" | "stopped", detail: string): StatusView {
  return kind === "starting"
    ? {
        text: "$(loading~spin) arca",
        tooltip: "Starting the Arca language server…",
        severity: "information",
        busy: true,
        click: "showOutput",
      }
    : {
        text: "$(error) arca: server stopped",
        tooltip: escapeMarkdown(detail),
        severity: "error",
        busy: false,
        click: "showOutput",
      };
}

function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_{}[\]()#+\-!|<>])/g, "\\$1");
}
