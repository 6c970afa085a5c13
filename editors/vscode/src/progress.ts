// Shows the server's work-done progress (`$/progress` on tokens the server
// creates with `window/workDoneProgress/create`) as a notification with the
// build's title, its stage as message, the percentage where known and a
// Cancel button that sends `window/workDoneProgress/cancel`. The language
// client's own handler would show it only as a small status bar entry.

import * as vscode from "vscode";
import {
  LanguageClient,
  ProgressToken,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";

type Value = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

/** Takes over `window/workDoneProgress/create` on a started client. */
export function showProgressAsNotifications(client: LanguageClient): vscode.Disposable {
  return client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    track(client, token);
  });
}

function track(client: LanguageClient, token: ProgressToken): void {
  let report: ((value: Value) => void) | undefined;
  const early: Value[] = [];
  const subscription = client.onProgress(WorkDoneProgress.type, token, (value: Value) => {
    if (report) {
      report(value);
    } else if (value.kind === "begin") {
      begin(value);
    } else {
      early.push(value);
    }
  });
  const begin = (first: WorkDoneProgressBegin): void => {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: first.title, cancellable: first.cancellable ?? false },
      (progress, cancel) =>
        new Promise<void>((resolve) => {
          let shown = 0;
          cancel.onCancellationRequested(() => {
            void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
          });
          report = (value) => {
            if (value.kind === "end") {
              subscription.dispose();
              resolve();
              return;
            }
            const percentage = value.percentage;
            const increment = percentage !== undefined && percentage > shown ? percentage - shown : undefined;
            if (percentage !== undefined) {
              shown = Math.max(shown, percentage);
            }
            const message = value.message && percentage !== undefined ? `${value.message} (${percentage}%)` : value.message;
            progress.report({ message, increment });
          };
          report(first as unknown as WorkDoneProgressReport);
          for (const value of early.splice(0)) {
            report(value);
          }
        }),
    );
  };
}
