// "Switchboard: Show Usage": the month's credits by day (stacked by model) and totals per model.
import * as vscode from 'vscode';
import type { SwitchboardClient } from './client';
import { postEvent, serveRequests } from './messenger';
import type { UsageEvents, UsageRequests } from './shared/webviewProtocol';
import { webviewHtml } from './webviewHtml';

export class UsagePanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private disposables: vscode.Disposable[] = [];

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: SwitchboardClient,
  ) {}

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal(undefined, false);
      void this.client.request('switchboard/usage', {}).then((u) => this.client.setUsage(u), () => undefined);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      'switchboard.usage',
      'Switchboard Usage',
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
      {
        enableScripts: true,
        retainContextWhenHidden: false,
        localResourceRoots: [vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'webview')],
      },
    );
    panel.iconPath = vscode.Uri.joinPath(this.ctx.extensionUri, 'media', 'usage.svg');
    this.panel = panel;
    const webview = panel.webview;
    webview.html = webviewHtml(webview, this.ctx.extensionUri, { title: 'Switchboard Usage', script: 'usage.js', styles: ['usage.css'] });
    this.disposables = [
      serveRequests<UsageRequests>(
        webview,
        {
          init: async () => {
            try {
              const usage = await this.client.request('switchboard/usage', {});
              this.client.setUsage(usage);
              return { usage, models: this.client.models };
            } catch {
              return { usage: this.client.usage ?? null, models: this.client.models };
            }
          },
          'overage/set': async (p) => {
            await vscode.commands.executeCommand(p.enabled ? 'switchboard.enableOverage' : 'switchboard.disableOverage');
          },
          'model/select': async () => {
            await vscode.commands.executeCommand('switchboard.selectModel');
          },
          'account/run': async ({ action }) => {
            const commands = { signIn: 'switchboard.signIn', signOut: 'switchboard.signOut', manageAccount: 'switchboard.manageAccount', upgrade: 'switchboard.upgrade' };
            if (Object.hasOwn(commands, action)) await vscode.commands.executeCommand(commands[action]);
          },
        },
        this.client.log,
      ),
      this.client.onDidChangeUsage((u) => void postEvent<UsageEvents, 'state/usage'>(webview, 'state/usage', u)),
      this.client.onDidChangeModels(
        () => void postEvent<UsageEvents, 'state/models'>(webview, 'state/models', { models: this.client.models, selected: this.client.selected }),
      ),
      panel.onDidDispose(() => {
        this.panel = undefined;
        this.disposables.forEach((d) => d.dispose());
        this.disposables = [];
      }),
    ];
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
