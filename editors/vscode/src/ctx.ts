// Owns the language client, the status bar item, the language status item
// and the output channel. The only module besides main.ts that knows `vscode`;
// everything it decides is delegated to the pure modules (state, crates,
// protocol, bootstrap).

import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions, State } from "vscode-languageclient/node";
import { findServer, serverEnv, ServerNotFound } from "./bootstrap";
import { chooseCrate, crateForFile } from "./crates";
import { ArcaSession, describePackage, errorMessage } from "./protocol";
import { serverView, StatusView, viewFor } from "./state";
import type { CrateStatus } from "./status";

const BUILD_IMAGE = "arca.client.buildImage";
const SHOW_OUTPUT = "arca.client.showOutput";

export class Ctx implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  private client: LanguageClient | undefined;
  private session: ArcaSession | undefined;
  private readonly statusBar: vscode.StatusBarItem;
  private readonly languageStatus: vscode.LanguageStatusItem;
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.output = vscode.window.createOutputChannel("Arca", { log: true });
    this.statusBar = vscode.window.createStatusBarItem("arca.status", vscode.StatusBarAlignment.Left, 0);
    this.statusBar.name = "Arca image status";
    this.languageStatus = vscode.languages.createLanguageStatusItem("arca.status", [
      { language: "rust" },
      { pattern: "**/.arca/config.toml" },
    ]);
    this.languageStatus.name = "Arca";
    this.disposables.push(
      this.output,
      this.statusBar,
      this.languageStatus,
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
      // Not awaited: activation must not wait for the user to dismiss it.
      void vscode.window.showErrorMessage(error.message, "Open Settings").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "arca.server.path");
        }
      });
      return;
    }
    const env = serverEnv(process.env, config.get<Record<string, string | null> | null>("server.extraEnv"));
    const serverOptions: ServerOptions = { command, args: ["lsp"], options: { env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "rust" },
        { scheme: "file", pattern: "**/.arca/config.toml" },
      ],
      outputChannel: this.output,
      traceOutputChannel: this.output,
    };
    const client = new LanguageClient("arca", "Arca", serverOptions, clientOptions);
    const session = new ArcaSession(client);
    this.client = client;
    this.session = session;
    session.onDidChange(() => this.render());
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        this.show(serverView("stopped", "The Arca language server stopped. Run `Arca: Restart Server`; details are in the Arca output."));
      }
    });
    this.show(serverView("starting", ""));
    try {
      await client.start();
      await session.refresh();
      this.render();
    } catch (error) {
      this.show(serverView("stopped", errorMessage(error)));
      void vscode.window.showErrorMessage(`Arca language server failed to start: ${errorMessage(error)}`, "Show Output").then(
        (choice) => choice && this.output.show(),
      );
    }
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
    const target = await this.targetCrate();
    if (!target) {
      return;
    }
    const [session, crate] = target;
    try {
      const result = await session.packageImage(crate.crate);
      void vscode.window.showInformationMessage(`Arca: ${describePackage(result)}`);
    } catch (error) {
      this.showError(crate, error);
    }
  }

  /** `arca.push` on the active crate; asks for a destination when the crate has no `push_to`. */
  async pushImage(): Promise<void> {
    const target = await this.targetCrate();
    if (!target) {
      return;
    }
    const [session, crate] = target;
    try {
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
    } catch (error) {
      this.showError(crate, error);
    }
  }

  /** `arca.build` on the active crate. */
  async buildBinary(): Promise<void> {
    const target = await this.targetCrate();
    if (!target) {
      return;
    }
    const [session, crate] = target;
    try {
      const result = await session.buildBinary(crate.crate);
      void vscode.window.showInformationMessage(`Arca: built ${result.binary}`);
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
    const target = building.length === 1 ? [session, building[0]] as const : await this.targetCrate();
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
      void vscode.window.showErrorMessage("The Arca language server is not running. Run `Arca: Restart Server`.");
      return undefined;
    }
    const choice = chooseCrate(activeFile(), session.crates());
    switch (choice.kind) {
      case "one":
        return [session, choice.crate];
      case "none":
        void vscode.window.showErrorMessage(
          "Arca found no crate with a binary target in this workspace. Open a folder with a Cargo.toml that has a [package] and a binary.",
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
    void vscode.window.showErrorMessage(`Arca (${crate.name}): ${errorMessage(error)}`, "Show Output").then(
      (choice) => choice && this.output.show(),
    );
  }

  private render(): void {
    const session = this.session;
    if (!session) {
      return;
    }
    const crates = session.crates();
    const file = activeFile();
    const view = viewFor(crates, file === undefined ? undefined : crateForFile(file, crates));
    if (view) {
      this.show(view);
    } else {
      this.statusBar.hide();
    }
  }

  private show(view: StatusView): void {
    this.statusBar.text = view.text;
    this.statusBar.tooltip = new vscode.MarkdownString(view.tooltip, true);
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
    this.languageStatus.detail = view.tooltip.split("\n").find((line) => line !== "" && !line.startsWith("**"));
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

function activeFile(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === "file" ? uri.fsPath : undefined;
}
