// Serving a webview's typed requests (see shared/webviewProtocol.ts) and posting typed events to it.
import * as vscode from 'vscode';
import { isRequestEnvelope, type EventEnvelope, type RequestMap, type ResponseEnvelope } from './shared/webviewProtocol';

export type Handlers<R extends RequestMap<R>> = {
  [K in keyof R]: (params: R[K]['params']) => Promise<R[K]['result']> | R[K]['result'];
};

export function serveRequests<R extends RequestMap<R>>(
  webview: vscode.Webview,
  handlers: Handlers<R>,
  log: vscode.LogOutputChannel,
): vscode.Disposable {
  return webview.onDidReceiveMessage(async (msg: unknown) => {
    if (!isRequestEnvelope(msg)) return;
    const handler = (handlers as Record<string, ((p: unknown) => unknown) | undefined>)[msg.method];
    let reply: ResponseEnvelope;
    try {
      if (!handler) throw new Error(`unknown webview request ${msg.method}`);
      reply = { kind: 'response', id: msg.id, result: await handler(msg.params) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn(`webview request ${msg.method} failed: ${message}`);
      reply = { kind: 'response', id: msg.id, error: { message } };
    }
    void webview.postMessage(reply);
  });
}

export function postEvent<E, K extends keyof E & string>(webview: vscode.Webview, event: K, data: E[K]): Thenable<boolean> {
  const envelope: EventEnvelope<E, K> = { kind: 'event', event, data };
  return webview.postMessage(envelope);
}
