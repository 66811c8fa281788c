// The chat panel: a webview view (secondary side bar) wired to the ChatController.
import * as vscode from 'vscode';
import type { ChatController } from './chat';
import type { SwitchboardClient } from './client';
import { postEvent, serveRequests } from './messenger';
import type { ChatEvents, ChatRequests } from './shared/webviewProtocol';
import { webviewHtml } from './webviewHtml';

export const CHAT_VIEW_ID = 'switchboard.chat';

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private viewDisposables: vscode.Disposable[] = [];
  /** Events for a view that isn't there yet (e.g. "add selection" before the panel ever opened). */
  private queued: { event: keyof ChatEvents; data: unknown }[] = [];

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: SwitchboardClient,
    private readonly chat: ChatController,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.viewDisposables.forEach((d) => d.dispose());
    this.view = view;
    const webview = view.webview;
    webview.options = {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'webview')],
    };
    webview.html = webviewHtml(webview, this.ctx.extensionUri, { title: 'Switchboard Chat', script: 'chat.js', styles: ['chat.css'] });
    const chat = this.chat;
    this.viewDisposables = [
      serveRequests<ChatRequests>(
        webview,
        {
          init: async () => {
            const snapshot = await chat.snapshot();
            setTimeout(() => this.flushQueue(), 0);
            return snapshot;
          },
          'chat/send': async (p) => {
            void chat.send({ prompt: p.prompt, context: p.context, thinking: p.thinking, modelId: p.modelId });
          },
          'chat/stop': () => chat.stop(),
          'chat/retry': async (p) => {
            void chat.retry(p.turnId, p.modelId);
          },
          'chat/new': () => chat.newChat(),
          'chat/rate': (p) => chat.rate(p.turnId, p.rating),
          'model/select': async (p) => {
            await vscode.commands.executeCommand('switchboard.selectModel', p.modelId, { quiet: true });
          },
          estimate: (p) => chat.estimate(p.prompt, p.context),
          'history/list': () => chat.list(),
          'history/open': (p) => chat.open(p.conversationId),
          'history/delete': (p) => chat.delete(p.conversationId),
          'context/add': (p) => chat.contextFromEditor(p.kind),
          'code/copy': async (p) => {
            await vscode.env.clipboard.writeText(p.code);
            vscode.window.setStatusBarMessage('$(check) Copied code to the clipboard', 2500);
          },
          'code/insert': (p) => chat.insertCode(p.code),
          'action/run': async (p) => {
            void chat.runAction(p.action, { modelId: p.modelId, prompt: p.prompt, context: p.context, retryOf: p.retryOf });
          },
        },
        this.client.log,
      ),
      chat.attach((event, data) => {
        void postEvent<ChatEvents, typeof event>(webview, event, data);
      }),
      view.onDidDispose(() => {
        if (this.view === view) this.view = undefined;
        this.viewDisposables.forEach((d) => d.dispose());
        this.viewDisposables = [];
      }),
    ];
  }

  private flushQueue(): void {
    const view = this.view;
    if (!view) return;
    for (const q of this.queued.splice(0)) void view.webview.postMessage({ kind: 'event', event: q.event, data: q.data });
  }

  /** Post an event to the view, opening it first if needed. */
  async postToView<K extends keyof ChatEvents>(event: K, data: ChatEvents[K]): Promise<void> {
    if (this.view) {
      await postEvent<ChatEvents, K>(this.view.webview, event, data);
    } else {
      this.queued.push({ event, data });
    }
  }

  /** Reveal and focus the chat (Ctrl/Cmd+L). */
  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
    this.view?.show(false);
    if (vscode.workspace.getConfiguration('switchboard').get<boolean>('chat.includeCurrentFile')) {
      const chip = this.chat.contextFromEditor('file', { quiet: true });
      if (chip) await this.postToView('context/added', chip); // the view ignores a chip it already has
    }
    await this.postToView('ui/focus', {});
  }

  get visible(): boolean {
    return this.view?.visible ?? false;
  }

  dispose(): void {
    this.viewDisposables.forEach((d) => d.dispose());
  }
}
