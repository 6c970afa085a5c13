// Turns the server's messages (written for a terminal, shared with the CLI)
// into text for notifications and tooltips: no literal backticks, no
// "shown above" (a notification has nothing above it), no CLI hints next to
// a button that does the same. Pure: no `vscode` import.

/** `code` spans become plain text in quotes; notifications do not render markdown. */
export function plain(message: string): string {
  return message.replace(/`([^`]*)`/g, "'$1'");
}

/**
 * The server's message as a notification shows it: plain text, with the
 * CLI's "see above" wording pointing at where an editor shows the same thing.
 */
export function forNotification(message: string): string {
  return plain(
    message
      .replace(/Fix the errors? shown above and build again\./, "The Problems view shows where; fix it and build again.")
      .replace(/;? ?see its output above\.?/, ". The Arca output has cargo's output.")
      .replace(/Run `arca check [^`]*` to see every problem\.?/, "The Problems view lists every problem."),
  ).trim();
}

/** Drops sentences that tell the user to run an `arca` command in a terminal. */
export function withoutCliHints(message: string): string {
  return message
    .split(/(?<=\.)\s+/)
    .filter((sentence) => !/`arca [^`]*`/.test(sentence))
    .join(" ")
    .trim();
}

/** Whether a JSON-RPC error is a cancellation (LSP `RequestCancelled`, -32800). */
export function isCancellation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === -32800;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/**
 * One line of the server's stderr log (`<timestamp>  INFO message`, as
 * tracing writes it) as a level and the message; a line in another shape
 * (a panic, a plain print) is an error.
 */
export function serverLogLine(line: string): { level: LogLevel; text: string } {
  const match = /^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(.*)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, ""));
  if (!match) {
    return { level: "error", text: line };
  }
  return { level: match[1].toLowerCase() as LogLevel, text: match[2] };
}
