// Run Image's output: one terminal per crate, fed by `arca/output`
// notifications through a Pseudoterminal. Ctrl-C in it, or closing it,
// stops the container (`arca.stop`).

import * as vscode from "vscode";
import type { OutputParams } from "./protocol";

const RED = "\x1b[31m";
const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/** A terminal showing one crate's runs. */
class RunTerminal implements vscode.Disposable {
  readonly terminal: vscode.Terminal;
  private readonly writer = new vscode.EventEmitter<string>();
  private readonly closer = new vscode.EventEmitter<number | void>();
  private opened = false;
  private readonly pending: string[] = [];
  closed = false;

  constructor(name: string, private readonly onStop: () => void) {
    const pty: vscode.Pseudoterminal = {
      onDidWrite: this.writer.event,
      onDidClose: this.closer.event,
      open: () => {
        this.opened = true;
        for (const text of this.pending.splice(0)) {
          this.writer.fire(text);
        }
      },
      close: () => {
        this.closed = true;
        this.onStop();
      },
      handleInput: (data) => {
        if (data === "\x03") {
          this.write(`${DIM}^C — stopping…${RESET}\r\n`);
          this.onStop();
        }
      },
    };
    this.terminal = vscode.window.createTerminal({ name, pty, iconPath: new vscode.ThemeIcon("play") });
  }

  write(text: string): void {
    if (this.opened) {
      this.writer.fire(text);
    } else {
      this.pending.push(text);
    }
  }

  line(text: string, stderr = false): void {
    const escaped = text.replace(/\r?\n/g, "\r\n");
    this.write(stderr ? `${RED}${escaped}${RESET}\r\n` : `${escaped}\r\n`);
  }

  dispose(): void {
    this.terminal.dispose();
    this.writer.dispose();
    this.closer.dispose();
  }
}

/** The run terminals of all crates, by crate URI. */
export class RunTerminals implements vscode.Disposable {
  private readonly terminals = new Map<string, RunTerminal>();

  constructor(private readonly stop: (crateUri: string) => void) {}

  /** The crate's terminal (a new one when there is none or it was closed), shown. */
  open(crateUri: string, name: string): RunTerminal {
    let terminal = this.terminals.get(crateUri);
    if (!terminal || terminal.closed) {
      terminal = new RunTerminal(`Arca: ${name}`, () => this.stop(crateUri));
      this.terminals.set(crateUri, terminal);
    }
    terminal.terminal.show(true);
    return terminal;
  }

  /** Writes a status line (dimmed) into the crate's terminal. */
  note(crateUri: string, text: string): void {
    this.terminals.get(crateUri)?.write(`${DIM}${text}${RESET}\r\n`);
  }

  /** One `arca/output` notification. */
  output(params: OutputParams): void {
    const terminal = this.terminals.get(params.crate);
    if (!terminal) {
      return;
    }
    if (params.text !== undefined) {
      terminal.line(params.text, params.stream === "stderr");
    } else if (params.exitCode !== undefined) {
      terminal.write(`${DIM}[the program exited with code ${params.exitCode}; its container was removed]${RESET}\r\n`);
    }
  }

  dispose(): void {
    for (const terminal of this.terminals.values()) {
      terminal.dispose();
    }
    this.terminals.clear();
  }
}
