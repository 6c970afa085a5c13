// The client side of PROTOCOL.md: the `arca/status` notification and request,
// the `arca.*` commands, and a per-crate status store. Written against
// `vscode-languageserver-protocol` types only, so the same code runs inside
// VS Code (over a `LanguageClient`) and in tests (over a plain
// `vscode-jsonrpc` connection to the real `arca lsp`).

import {
  CancellationToken,
  Disposable,
  ExecuteCommandRequest,
  NotificationHandler,
  ProtocolNotificationType,
  ProtocolRequestType,
  ResponseError,
} from "vscode-languageserver-protocol";
import type { CrateStatus } from "./status";

/** `arca/status`, server to client: one crate's status changed. */
export const StatusNotification = new ProtocolNotificationType<CrateStatus, void>("arca/status");

/** `arca/removed`, server to client: the crate left the workspace (PROTOCOL.md additions). */
export const RemovedNotification = new ProtocolNotificationType<{ crate: string }, void>("arca/removed");

/** One line a running container printed, or (with `exitCode`, no `text`) its end. */
export interface OutputParams {
  crate: string;
  container: string;
  stream?: "stdout" | "stderr";
  text?: string;
  exitCode?: number;
}

/** `arca/output`, server to client (PROTOCOL.md additions). */
export const OutputNotification = new ProtocolNotificationType<OutputParams, void>("arca/output");

export interface StatusParams {
  crate?: string;
}

/** `arca/status`, client to server: the status of one crate, or of all. */
export const StatusRequest = new ProtocolRequestType<StatusParams, CrateStatus[], never, void, void>("arca/status");

/** Server command ids (PROTOCOL.md, "Commands"). */
export const ServerCommand = {
  build: "arca.build",
  package: "arca.package",
  cancel: "arca.cancel",
  setDefaults: "arca.setDefaults",
  push: "arca.push",
  run: "arca.run",
  stop: "arca.stop",
  buildLog: "arca.buildLog",
  sbom: "arca.sbom",
} as const;

/** The answer of `arca.sbom` (additive). */
export interface SbomResult {
  artifact: string;
  format: string;
  packages: number | null;
  document: string;
}

/** The answer of `arca.push`. */
export interface PushResult {
  ref: string;
  tag: string;
  bytesSent: number;
}

export interface RunResult {
  container: string;
  image: string;
  /** True for a live run (`arca.run` with `live`). */
  live?: boolean;
}

export interface BuildResult {
  binary: string;
}

export interface PackageResult {
  artifactId: string;
  localTag: string;
  /** `null` unless a standalone archive exists (asked for with `archive`). */
  archivePath: string | null;
  fingerprint: string;
  upToDate: boolean;
  /** The image's config digest (`sha256:…`); `null` for original-CLI records. */
  imageId?: string | null;
}

/** Optional settings that override the crate's config for one build. */
export interface BuildOptions {
  profile?: string;
  features?: string[];
  bin?: string;
  baseImage?: string;
  hostBuild?: boolean;
  force?: boolean;
}

/** What both `LanguageClient` and a `vscode-jsonrpc` `MessageConnection` offer. */
export interface Peer {
  sendRequest<P, R, PR, E, RO>(
    type: ProtocolRequestType<P, R, PR, E, RO>,
    params: P,
    token?: CancellationToken,
  ): Promise<R>;
  onNotification<P, RO>(type: ProtocolNotificationType<P, RO>, handler: NotificationHandler<P>): Disposable;
}

/** Keeps the latest status of every crate the server reported. */
export class ArcaSession implements Disposable {
  private readonly statuses = new Map<string, CrateStatus>();
  private readonly listeners = new Set<(status: CrateStatus) => void>();
  private readonly subscriptions: Disposable[];

  constructor(private readonly peer: Peer) {
    this.subscriptions = [
      peer.onNotification(StatusNotification, (status) => this.update(status)),
      peer.onNotification(RemovedNotification, ({ crate }) => this.remove(crate)),
    ];
  }

  /** All crates, in the order the server first reported them. */
  crates(): CrateStatus[] {
    return [...this.statuses.values()];
  }

  status(crateUri: string): CrateStatus | undefined {
    return this.statuses.get(crateUri);
  }

  /** Calls `listener` for every status update (notification or refresh). */
  onDidChange(listener: (status: CrateStatus) => void): Disposable {
    this.listeners.add(listener);
    return Disposable.create(() => this.listeners.delete(listener));
  }

  /** Asks the server for the status of one crate (or all) and stores it. */
  async refresh(crateUri?: string): Promise<CrateStatus[]> {
    const statuses = await this.peer.sendRequest(StatusRequest, crateUri === undefined ? {} : { crate: crateUri });
    for (const status of statuses) {
      this.update(status);
    }
    return statuses;
  }

  /** `arca.package`: builds the crate's image. */
  packageImage(crateUri: string, options: BuildOptions = {}, token?: CancellationToken): Promise<PackageResult> {
    return this.execute<PackageResult>(ServerCommand.package, { crate: crateUri, ...options }, token);
  }

  /** `arca.build`: compiles the crate's binary. */
  buildBinary(crateUri: string, options: Omit<BuildOptions, "force"> = {}, token?: CancellationToken): Promise<BuildResult> {
    return this.execute<BuildResult>(ServerCommand.build, { crate: crateUri, ...options }, token);
  }

  /** `arca.push`: pushes the crate's newest image to `to`, or to its `push_to`. */
  pushImage(crateUri: string, to?: string, token?: CancellationToken): Promise<PushResult> {
    return this.execute<PushResult>(ServerCommand.push, to ? { crate: crateUri, to } : { crate: crateUri }, token);
  }

  /** `arca.cancel`: stops the crate's running build, if any. */
  async cancel(crateUri: string): Promise<void> {
    await this.execute<null>(ServerCommand.cancel, { crate: crateUri });
  }

  /** `arca.run`: packages the crate if stale and starts its image; output arrives as `arca/output`. */
  run(crateUri: string, args?: string[], token?: CancellationToken, live = false): Promise<RunResult> {
    const params: { crate: string; args?: string[]; live?: boolean } = { crate: crateUri };
    if (args) {
      params.args = args;
    }
    if (live) {
      params.live = true;
    }
    return this.execute<RunResult>(ServerCommand.run, params, token);
  }

  /** `arca.buildLog`: where the crate's last build log is (null: none yet). */
  buildLog(crateUri: string): Promise<{ path: string | null }> {
    return this.execute<{ path: string | null }>(ServerCommand.buildLog, { crate: crateUri });
  }

  /** `arca.sbom`: the newest image's SBOM (SPDX as stored, or CycloneDX). */
  sbom(crateUri: string, format: "spdx" | "cyclonedx" = "spdx"): Promise<SbomResult> {
    return this.execute<SbomResult>(ServerCommand.sbom, { crate: crateUri, format });
  }

  /** `arca.stop`: stops and removes the crate's running container, if any. */
  async stopRun(crateUri: string): Promise<void> {
    await this.execute<null>(ServerCommand.stop, { crate: crateUri });
  }

  dispose(): void {
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
    this.listeners.clear();
  }

  private async execute<R>(command: string, argument: object, token?: CancellationToken): Promise<R> {
    return (await this.peer.sendRequest(ExecuteCommandRequest.type, { command, arguments: [argument] }, token)) as R;
  }

  private remove(crateUri: string): void {
    const status = this.statuses.get(crateUri);
    if (status && this.statuses.delete(crateUri)) {
      for (const listener of this.listeners) {
        listener(status);
      }
    }
  }

  private update(status: CrateStatus): void {
    this.statuses.set(status.crate, status);
    for (const listener of this.listeners) {
      listener(status);
    }
  }
}

/** The message to show for a failed request: the server's own wording. */
export function errorMessage(error: unknown): string {
  if (error instanceof ResponseError) {
    return error.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** A one-line summary of a finished `arca.package`. */
export function describePackage(result: PackageResult): string {
  return result.upToDate
    ? `Image ${result.localTag} is already up to date.`
    : `Built image ${result.localTag} (artifact ${result.artifactId}).`;
}
