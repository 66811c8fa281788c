// Switchboard for VS Code: a thin client. It starts `switchboard serve` (Python, LSP over stdio) and
// turns the server's protocol into UI; everything that decides anything stays in the server.
import * as vscode from 'vscode';
import { AccountController } from './account';
import { ChatController } from './chat';
import { CHAT_VIEW_ID, ChatViewProvider } from './chatView';
import { GATEWAY_SETTING, SwitchboardClient } from './client';
import { registerCommands } from './commands';
import { StatusBar } from './statusBar';
import { UsagePanel } from './usagePanel';

/** What activate() returns: used by the extension-host tests (and by other extensions, if ever). */
export interface SwitchboardApi {
  client: SwitchboardClient;
  chat: ChatController;
  statusBar: StatusBar;
  usagePanel: UsagePanel;
  chatView: ChatViewProvider;
  account: AccountController;
}

let client: SwitchboardClient | undefined;

export async function activate(ctx: vscode.ExtensionContext): Promise<SwitchboardApi> {
  const log = vscode.window.createOutputChannel('Switchboard', { log: true });
  ctx.subscriptions.push(log);
  client = new SwitchboardClient(ctx, log);
  const chat = new ChatController(ctx, client);
  const chatView = new ChatViewProvider(ctx, client, chat);
  const statusBar = new StatusBar(client);
  const usagePanel = new UsagePanel(ctx, client);
  const account = new AccountController(ctx, client);
  ctx.subscriptions.push(
    client,
    account,
    chat,
    chatView,
    statusBar,
    usagePanel,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, chatView, { webviewOptions: { retainContextWhenHidden: true } }),
    ...registerCommands({ ctx, client, chat, chatView, usagePanel, account }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      // Another gateway is another account: the server starts again, and resumes a stored session there.
      if (e.affectsConfiguration(GATEWAY_SETTING)) {
        client?.log.info('the gateway setting changed: restarting the server');
        await client?.restart();
        return;
      }
      if (e.affectsConfiguration('switchboard.server')) {
        const choice = await vscode.window.showInformationMessage(
          'Switchboard: the server settings changed. Restart the server to apply them?',
          'Restart',
        );
        if (choice === 'Restart') await client?.restart();
      }
    }),
  );
  // Start in the background: activation must not wait for Python.
  void client.start();
  return { client, chat, statusBar, usagePanel, chatView, account };
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
