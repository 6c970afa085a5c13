// Owns the language client, the status bar item, the language status item
// and the output channel. The only module besides main.ts that knows `vscode`;
// everything it decides is delegated to the pure modules (state, crates,
// protocol, bootstrap).

import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions, State } from "vscode-languageclient/node";
import { findServer, serverEnv, ServerNotFound } from "./bootstrap";
import { chooseCrate, crateForFile } from "./crates";
import * as readline from "node:readline";
import type { Readable } from "node:stream";
import { forNotification, isCancellation, serverLogLine } from "./messages";
import { showProgressAsNotifications } from "./progress";
import { ArcaSession, describePackage, errorMessage, OutputNotification } from "./protocol";
import { noCrateView, serverView, SHOW_BUILD_LOG, SHOW_SBOM, StatusView, viewFor } from "./state";
import type { CrateStatus } from "./status";
import { RunTerminals } from "./terminal";

const BUILD_IMAGE = "arca.client.buildImage";
const SHOW_OUTPUT = "arca.client.showOutput";

/** The scheme of the read-only SBOM documents Arca: Show SBOM opens. */
const SBOM_SCHEME = "arca-sbom";

export class Ctx implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  private client: LanguageClient | undefined;
  private session: ArcaSession | undefined;
  private readonly statusBar: vscode.StatusBarItem;
  private readonly languageStatus: vscode.LanguageStatusItem;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly terminals: RunTerminals;
  /** Closes the "server not found" notification (once the server runs). */
  private dismissNotFound: (() => void) | undefined;
  /** SBOMs opened with Arca: Show SBOM, by `arca-sbom:` URI (read-only documents). */
  private readonly sboms = new Map<string, string>();
  private readonly sbomChanged = new vscode.EventEmitter<vscode.Uri>();

  constructor() {
    this.output = vscode.window.createOutputChannel("Arca", { log: true });
    this.statusBar = vscode.window.createStatusBarItem("arca.status", vscode.StatusBarAlignment.Left, 0);
    this.statusBar.name = "Arca image status";
    this.languageStatus = vscode.languages.createLanguageStatusItem("arca.status", [
      { language: "rust" },
      { pattern: "**/.arca/config.toml" },
    ]);
    this.languageStatus.name = "Arca";
    this.terminals = new RunTerminals((crateUri) => void this.session?.stopRun(crateUri).catch(() => undefined));
    this.disposables.push(
      this.output,
      this.statusBar,
      this.languageStatus,
      this.terminals,
      this.sbomChanged,
      vscode.workspace.registerTextDocumentContentProvider(SBOM_SCHEME, {
        onDidChange: this.sbomChanged.event,
        provideTextDocumentContent: (uri) => this.sboms.get(uri.toString()) ?? "",
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.render()),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("arca.server")) {
          void this.restart();
        }
      }),
    );
  }

  /** Finds the binary and starts `arca lsp`; a missing binary is reported, not thrown. */
  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration("arca");
    let command: string;
    try {
      command = findServer({ configured: config.get<string | null>("server.path"), pathEnv: process.env.PATH });
    } catch (error) {
      if (!(error instanceof ServerNotFound)) {
        throw error;
      }
      this.show(serverView("stopped", error.message));
      this.output.error(error.message);
      this.showNotFound(error.message);
      return;
    }
    this.dismissNotFound?.();
    // The server logs to stderr, which the client copies into the Arca
    // output channel; `info` shows what it found (crates, failures).
    const env = serverEnv({ RUST_LOG: "info", ...process.env }, config.get<Record<string, string | null> | null>("server.extraEnv"));
    const serverOptions: ServerOptions = { command, args: ["lsp"], options: { env } };
    this.output.info(`Starting ${command} lsp`);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "rust" },
        { scheme: "file", pattern: "**/.arca/config.toml" },
      ],
      outputChannel: this.output,
      traceOutputChannel: this.output,
      // The server logs to stderr with a level per line; keep that level
      // (the default files every stderr line under [error]).
      stdioOptions: {
        stdout: (input, channel) => lines(input, (line) => channel.info(line)),
        stderr: (input, channel) =>
          lines(input, (line) => {
            const { level, text } = serverLogLine(line);
            channel[level](text);
          }),
      },
    };
    const client = new LanguageClient("arca", "Arca", serverOptions, clientOptions);
    const session = new ArcaSession(client);
    this.client = client;
    this.session = session;
    session.onDidChange(() => this.render());
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        this.output.warn("The Arca language server stopped.");
        this.show(serverView("stopped", "The Arca language server stopped. Run Arca: Restart Server; the Arca output has its log."));
      }
    });
    this.show(serverView("starting", ""));
    try {
      await client.start();
      this.disposables.push(
        showProgressAsNotifications(client),
        client.onNotification(OutputNotification, (params) => this.terminals.output(params)),
      );
      const statuses = await session.refresh();
      this.output.info(`The Arca language server is running; ${statuses.length} crate(s) in the workspace.`);
      this.render();
    } catch (error) {
      const message = errorMessage(error);
      this.output.error(`The Arca language server failed to start: ${message}`);
      this.show(serverView("stopped", message));
      void vscode.window
        .showErrorMessage(`Arca language server failed to start: ${forNotification(message)}`, "Show Output")
        .then((choice) => choice && this.output.show());
    }
  }

  /** A dismissable "not found" notification with a link to the setting; closed once the server starts. */
  private showNotFound(message: string): void {
    this.dismissNotFound?.();
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          this.dismissNotFound = () => {
            this.dismissNotFound = undefined;
            resolve();
          };
          token.onCancellationRequested(() => this.dismissNotFound?.());
          const link = `command:workbench.action.openSettings?${encodeURIComponent(JSON.stringify(["arca.server.path"]))}`;
          progress.report({ message: `${forNotification(message)} [Open Settings](${link})` });
        }),
    );
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.session?.dispose();
    this.session = undefined;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      await client.stop();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** `arca.package` on the active crate, with the result or the server's error shown. */
  async buildImage(): Promise<void> {
    await this.onActiveCrate({ refuseBroken: true }, async (session, crate) => {
      const result = await session.packageImage(crate.crate);
      this.output.info(describePackage(result));
      void vscode.window.showInformationMessage(`Arca: ${forNotification(describePackage(result))}`);
    });
  }

  /** `arca.push` on the active crate; asks for a destination when the crate has no `push_to`. */
  async pushImage(): Promise<void> {
    await this.onActiveCrate({ refuseBroken: false }, async (session, crate) => {
      let result;
      try {
        result = await session.pushImage(crate.crate);
      } catch (error) {
        if (!errorMessage(error).startsWith("No destination")) {
          throw error;
        }
        const to = await vscode.window.showInputBox({
          prompt: "Push to REGISTRY/REPOSITORY[:TAG] (set push_to in .arca/config.toml to skip this)",
          placeHolder: "registry.example.com/team/demo",
        });
        if (!to) {
          return;
        }
        result = await session.pushImage(crate.crate, to);
      }
      void vscode.window.showInformationMessage(`Arca: pushed ${result.tag} (${result.bytesSent} bytes sent): ${result.ref}`);
    });
  }

  /** `arca.run` on the active crate, its output in a terminal; `live`: every
   * change that makes the crate stale updates the running container. */
  async runImage(live = false): Promise<void> {
    await this.onActiveCrate({ refuseBroken: true }, async (session, crate) => {
      if (crate.running) {
        this.terminals.open(crate.crate, crate.name);
        void vscode.window.showInformationMessage(
          `Arca: ${crate.name} is already running. Stop it with Arca: Stop before running it again.`,
        );
        return;
      }
      this.terminals.open(crate.crate, crate.name);
      this.terminals.note(crate.crate, crate.state === "fresh" ? `Starting ${crate.name}…` : `Building ${crate.name}, then running it…`);
      try {
        const result = await session.run(crate.crate, undefined, undefined, live);
        this.output.info(`Running ${result.image} in container ${result.container}${live ? " (live)" : ""}`);
        this.terminals.note(
          crate.crate,
          live
            ? `Running ${result.image} live (container ${result.container.slice(0, 12)}): saving a change updates it. Ctrl-C stops it.`
            : `Running ${result.image} (container ${result.container.slice(0, 12)}). Ctrl-C stops it.`,
        );
      } catch (error) {
        this.terminals.note(crate.crate, forNotification(errorMessage(error)));
        throw error;
      }
    });
  }

  /** Opens the crate's last build log (kept by the server after the build ended). */
  async showBuildLog(): Promise<void> {
    await this.onActiveCrate({ refuseBroken: false }, async (session, crate) => {
      const { path } = await session.buildLog(crate.crate);
      if (!path) {
        void vscode.window.showInformationMessage(`Arca: ${crate.name} has no build log yet. Build Image writes one.`);
        return;
      }
      await vscode.window.showTextDocument(vscode.Uri.file(path), { preview: true });
    });
  }

  /** Opens the newest image's SBOM (SPDX JSON, as stored with the image) in an untitled editor. */
  async showSbom(): Promise<void> {
    await this.onActiveCrate({ refuseBroken: false }, async (session, crate) => {
      const answer = await session.sbom(crate.crate);
      // Stored compact (its digest is the image label's); shown indented,
      // read-only (a content provider's document, never dirty).
      const uri = vscode.Uri.from({ scheme: SBOM_SCHEME, path: `/${crate.name}-${answer.artifact}.spdx.json` });
      this.sboms.set(uri.toString(), JSON.stringify(JSON.parse(answer.document), null, 2));
      this.sbomChanged.fire(uri);
      const document = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(document, { preview: true });
    });
  }

  /** `arca.stop`: stops the running container of the active (or only running) crate. */
  async stopRun(): Promise<void> {
    const session = this.session;
    if (!session) {
      return;
    }
    const running = session.crates().filter((crate) => crate.running);
    if (running.length === 0) {
      void vscode.window.showInformationMessage("Arca: nothing is running.");
      return;
    }
    const target = running.length === 1 ? ([session, running[0]] as const) : await this.targetCrate();
    if (!target) {
      return;
    }
    try {
      this.terminals.note(target[1].crate, "Stopping…");
      await target[0].stopRun(target[1].crate);
    } catch (error) {
      this.showError(target[1], error);
    }
  }

  /** A crate whose status is `error` cannot build: say why at once, naming the file. */
  private refuseBroken(crate: CrateStatus): boolean {
    // Only a Cargo.toml that cannot be read is refused here (the server has
    // no crate facts to answer with); any other error, a config error
    // included, goes to the server, which refuses naming the file and line.
    if (crate.state !== "error" || !(crate.message ?? "").includes("Cargo.toml")) {
      return false;
    }
    const message = `Arca cannot build ${crate.name}: ${forNotification(crate.message || "its Cargo.toml cannot be read.")}`;
    this.output.error(message);
    void vscode.window.showErrorMessage(message, "Open Cargo.toml").then((choice) => {
      if (choice) {
        void vscode.window.showTextDocument(vscode.Uri.joinPath(vscode.Uri.parse(crate.crate), "Cargo.toml"));
      }
    });
    return true;
  }

  /** `arca.build` on the active crate. */
  async buildBinary(): Promise<void> {
    await this.onActiveCrate({ refuseBroken: true }, async (session, crate) => {
      const result = await session.buildBinary(crate.crate);
      void vscode.window.showInformationMessage(`Arca: built ${result.binary}`);
    });
  }

  /**
   * Runs a command's `action` on the active crate: nothing when no crate is
   * chosen, refused at once (when asked) for a crate whose Cargo.toml cannot
   * be read, and any error shown with the crate.
   */
  private async onActiveCrate(
    options: { refuseBroken: boolean },
    action: (session: ArcaSession, crate: CrateStatus) => Promise<void>,
  ): Promise<void> {
    const target = await this.targetCrate();
    if (!target) {
      return;
    }
    const [session, crate] = target;
    if (options.refuseBroken && this.refuseBroken(crate)) {
      return;
    }
    try {
      await action(session, crate);
    } catch (error) {
      this.showError(crate, error);
    }
  }

  /** `arca.cancel` on the building crate (or the active one). */
  async cancelBuild(): Promise<void> {
    const session = this.session;
    if (!session) {
      return;
    }
    const building = session.crates().filter((crate) => crate.state === "building");
    if (building.length === 0) {
      void vscode.window.showInformationMessage("Arca: no build is running, so there is nothing to cancel.");
      return;
    }
    const target = building.length === 1 ? ([session, building[0]] as const) : await this.targetCrate();
    if (!target) {
      return;
    }
    try {
      await target[0].cancel(target[1].crate);
    } catch (error) {
      this.showError(target[1], error);
    }
  }

  dispose(): void {
    void this.stop();
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }

  private async targetCrate(): Promise<readonly [ArcaSession, CrateStatus] | undefined> {
    const session = this.session;
    if (!session) {
      void vscode.window.showErrorMessage("The Arca language server is not running. Run Arca: Restart Server.");
      return undefined;
    }
    const choice = chooseCrate(activeFile(), session.crates());
    switch (choice.kind) {
      case "one":
        return [session, choice.crate];
      case "none":
        void vscode.window.showErrorMessage(
          "Arca found no crate in this workspace. Open a folder whose Cargo.toml has a [package] with a binary target; if it has one, check that Cargo.toml is valid (the Arca output says what the server found).",
        );
        return undefined;
      case "pick": {
        const picked = await vscode.window.showQuickPick(
          choice.crates.map((crate) => ({
            label: crate.name,
            description: crate.state,
            detail: vscode.Uri.parse(crate.crate).fsPath,
            crate,
          })),
          { placeHolder: "Which crate?" },
        );
        return picked ? [session, picked.crate] : undefined;
      }
    }
  }

  private showError(crate: CrateStatus, error: unknown): void {
    if (isCancellation(error)) {
      this.output.info(`${crate.name}: build cancelled`);
      void vscode.window.showInformationMessage(`Arca: the build of ${crate.name} was cancelled; nothing was stored.`);
      return;
    }
    const message = forNotification(errorMessage(error));
    this.output.error(`${crate.name}: ${errorMessage(error)}`);
    void vscode.window.showErrorMessage(`Arca (${crate.name}): ${message}`, "Show Build Log", "Show Output").then((choice) => {
      if (choice === "Show Build Log") {
        void this.showBuildLog();
      } else if (choice) {
        this.output.show();
      }
    });
  }

  private render(): void {
    const session = this.session;
    if (!session) {
      return;
    }
    const crates = session.crates();
    const file = activeFile();
    const view = viewFor(crates, file === undefined ? undefined : crateForFile(file, crates));
    // No crate (none found, or its Cargo.toml went away): say so rather
    // than letting the item vanish.
    this.show(view ?? noCrateView());
  }

  private show(view: StatusView): void {
    this.statusBar.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    tooltip.isTrusted = { enabledCommands: [SHOW_BUILD_LOG, SHOW_SBOM] };
    this.statusBar.tooltip = tooltip;
    this.statusBar.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
    const command = view.click === "buildImage" ? BUILD_IMAGE : SHOW_OUTPUT;
    this.statusBar.command = command;
    this.statusBar.show();
    this.languageStatus.text = view.text;
    this.languageStatus.detail = view.detail;
    this.languageStatus.severity =
      view.severity === "error"
        ? vscode.LanguageStatusSeverity.Error
        : view.severity === "warning"
          ? vscode.LanguageStatusSeverity.Warning
          : vscode.LanguageStatusSeverity.Information;
    this.languageStatus.busy = view.busy;
    this.languageStatus.command =
      view.click === "buildImage"
        ? { title: "Build Image", command: BUILD_IMAGE }
        : { title: "Show Output", command: SHOW_OUTPUT };
  }
}

function lines(input: Readable, each: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", each);
}

function activeFile(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === "file" ? uri.fsPath : undefined;
}
