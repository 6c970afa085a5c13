// Extension entry point: a table of commands over one `Ctx`.

import * as vscode from "vscode";
import { Ctx } from "./ctx";
import { absolutizeTomlValidation } from "./schema";

let ctx: Ctx | undefined;

const COMMANDS: Record<string, (ctx: Ctx) => Promise<void> | void> = {
  "arca.client.buildImage": (ctx) => ctx.buildImage(),
  "arca.client.buildBinary": (ctx) => ctx.buildBinary(),
  "arca.client.pushImage": (ctx) => ctx.pushImage(),
  "arca.client.cancelBuild": (ctx) => ctx.cancelBuild(),
  "arca.client.runImage": (ctx) => ctx.runImage(),
  "arca.client.runImageLive": (ctx) => ctx.runImage(true),
  "arca.client.stop": (ctx) => ctx.stopRun(),
  "arca.client.showBuildLog": (ctx) => ctx.showBuildLog(),
  "arca.client.showSbom": (ctx) => ctx.showSbom(),
  "arca.client.showOutput": (ctx) => ctx.output.show(),
  "arca.client.restartServer": (ctx) => ctx.restart(),
};

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  absolutizeTomlValidation(context.extension.packageJSON, context.extensionUri.fsPath);
  const current = new Ctx();
  ctx = current;
  context.subscriptions.push(current);
  for (const [id, run] of Object.entries(COMMANDS)) {
    context.subscriptions.push(vscode.commands.registerCommand(id, () => run(current)));
  }
  await current.start();
}

export async function deactivate(): Promise<void> {
  await ctx?.stop();
  ctx = undefined;
}
