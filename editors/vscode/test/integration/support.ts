// Test support: the real `arca lsp` ($ARCA_BIN, default <repo>/target/debug/arca)
// over stdio with vscode-jsonrpc, answering server requests the way
// vscode-languageclient does, and temp crates copied from examples/hello.

import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import {
  ClientCapabilities,
  ConfigurationRequest,
  Diagnostic,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  LogMessageNotification,
  LogMessageParams,
  MessageConnection,
  ProgressToken,
  PublishDiagnosticsNotification,
  RegistrationRequest,
  ShutdownRequest,
  UnregistrationRequest,
  WorkDoneProgressBegin,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from "vscode-languageserver-protocol";

export const repoRoot = path.resolve(__dirname, "..", "..", "..", "..", "..");
export const arcaBin = process.env.ARCA_BIN || path.join(repoRoot, "target", "debug", "arca");

export function uriOf(file: string): string {
  return pathToFileURL(file).href.replace(/\/$/, "");
}

/** A temp folder with an ARCA_HOME and crates copied from examples/hello. */
export class Fixture {
  readonly root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "arca-vscode-")));
  readonly home = path.join(this.root, "home");
  readonly workspace = path.join(this.root, "ws");

  constructor() {
    fs.mkdirSync(this.home);
    fs.mkdirSync(this.workspace);
  }

  /** Copies examples/hello to ws/<name> with `config` as its .arca/config.toml. */
  crate(name: string, config: string): string {
    const dir = path.join(this.workspace, name);
    fs.cpSync(path.join(repoRoot, "examples", "hello"), dir, {
      recursive: true,
      filter: (source) => path.basename(source) !== "target",
    });
    // The package (and its binary) takes the folder's name.
    for (const file of ["Cargo.toml", "Cargo.lock"]) {
      const manifest = path.join(dir, file);
      if (fs.existsSync(manifest)) {
        fs.writeFileSync(manifest, fs.readFileSync(manifest, "utf8").replace('name = "hello"', `name = "${name}"`));
      }
    }
    fs.mkdirSync(path.join(dir, ".arca"), { recursive: true });
    fs.writeFileSync(path.join(dir, ".arca", "config.toml"), config);
    return dir;
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

type ProgressValue = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

/** What VS Code's client advertises, trimmed to what Arca uses. */
const capabilities: ClientCapabilities = {
  window: { workDoneProgress: true, showMessage: { messageActionItem: { additionalPropertiesSupport: true } } },
  workspace: {
    applyEdit: true,
    workspaceEdit: { documentChanges: true },
    configuration: true,
    workspaceFolders: true,
    didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
    executeCommand: { dynamicRegistration: true },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true },
    publishDiagnostics: { relatedInformation: true, codeDescriptionSupport: true, dataSupport: true },
    codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ["quickfix"] } } },
    completion: { completionItem: { snippetSupport: true } },
    hover: { contentFormat: ["markdown", "plaintext"] },
  },
  general: { positionEncodings: ["utf-16"] },
};

/** The running server and everything it sent. */
export class Server {
  readonly connection: MessageConnection;
  readonly diagnostics = new Map<string, Diagnostic[]>();
  readonly logs: LogMessageParams[] = [];
  readonly progress: { token: ProgressToken; value: ProgressValue }[] = [];
  readonly createdTokens: ProgressToken[] = [];
  stderr = "";
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  constructor(env: NodeJS.ProcessEnv) {
    if (!fs.existsSync(arcaBin)) {
      throw new Error(`${arcaBin} does not exist: run \`cargo build\` in ${repoRoot} or set ARCA_BIN`);
    }
    this.child = spawn(arcaBin, ["lsp"], { env, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr?.on("data", (chunk) => (this.stderr += chunk.toString()));
    this.connection = createMessageConnection(
      new StreamMessageReader(this.child.stdout!),
      new StreamMessageWriter(this.child.stdin!),
    );
    const c = this.connection;
    c.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      this.createdTokens.push(params.token);
    });
    c.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => null));
    c.onRequest(RegistrationRequest.type, () => undefined);
    c.onRequest(UnregistrationRequest.type, () => undefined);
    c.onNotification(PublishDiagnosticsNotification.type, (params) => {
      this.diagnostics.set(params.uri, params.diagnostics);
      this.poke();
    });
    c.onNotification(LogMessageNotification.type, (params) => {
      this.logs.push(params);
      this.poke();
    });
    // No progress handler is registered per token, so every $/progress lands here.
    c.onUnhandledProgress((params) => {
      this.progress.push({ token: params.token, value: params.value as ProgressValue });
      this.poke();
    });
    c.listen();
  }

  async initialize(folders: string[]): Promise<void> {
    try {
      await this.initializeOrThrow(folders);
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      throw new Error(`\`${arcaBin} lsp\` did not initialize: ${String(error)}; server stderr:\n${this.stderr.slice(-2000)}`);
    }
  }

  private async initializeOrThrow(folders: string[]): Promise<void> {
    await this.connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: "Visual Studio Code", version: "1.91.0" },
      rootUri: uriOf(folders[0]),
      capabilities,
      workspaceFolders: folders.map((folder) => ({ uri: uriOf(folder), name: path.basename(folder) })),
    });
    await this.connection.sendNotification(InitializedNotification.type, {});
  }

  /** Resolves once `condition()` holds, re-checked on every message; rejects after `ms`. */
  async until<T>(what: string, condition: () => T | undefined | false, ms = 20000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = condition();
      if (value) {
        return value;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${ms} ms waiting for ${what}; server stderr:\n${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Lets waiters re-check after something outside the server changed (e.g. a status listener). */
  poke(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) {
      wake();
    }
  }

  async shutdown(): Promise<void> {
    try {
      await Promise.race([
        this.connection.sendRequest(ShutdownRequest.type),
        new Promise((resolve) => setTimeout(resolve, 3000)),
      ]);
      await this.connection.sendNotification(ExitNotification.type);
    } catch {
      // the process may already be gone
    }
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolve();
      }, 3000);
      this.child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.connection.dispose();
  }
}
