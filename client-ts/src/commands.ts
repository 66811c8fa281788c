// The command palette: Select Model, New/Open Chat, Show Usage, Enable Overage…, Set API Key, Sign In,
// Show Server Logs (and a few helpers).
import * as vscode from 'vscode';
import type { AccountController } from './account';
import type { ChatController } from './chat';
import type { ChatViewProvider } from './chatView';
import { SECRET_API_KEY, type SwitchboardClient } from './client';
import type { ModelEstimate, SelectModelResult, UsageReport } from './protocol.generated';
import { describeError } from './shared/errors';
import { formatUsd, modelName } from './shared/format';
import { modelPickEntries } from './shared/presentation';
import type { UsagePanel } from './usagePanel';

interface Deps {
  ctx: vscode.ExtensionContext;
  client: SwitchboardClient;
  chat: ChatController;
  chatView: ChatViewProvider;
  usagePanel: UsagePanel;
  account: AccountController;
}

type ModelQuickPickItem = vscode.QuickPickItem & { modelId?: string };

/** Show a server error as a notification with the buttons that fix it. */
export async function showErrorWithActions(client: SwitchboardClient, err: unknown): Promise<void> {
  const ui = describeError(err, client.models);
  const buttons = ui.actions.filter((a) => a.id !== 'retry' && a.id !== 'retryWithModel' && a.id !== 'newChat');
  const choice = await vscode.window.showWarningMessage(`${ui.title}. ${ui.message}`, ...buttons.map((a) => a.label));
  const action = buttons.find((a) => a.label === choice);
  if (!action) return;
  const commands: Record<string, string> = {
    setApiKey: 'switchboard.setApiKey',
    signIn: 'switchboard.signIn',
    upgrade: 'switchboard.upgrade',
    enableOverage: 'switchboard.enableOverage',
    raiseOverageBudget: 'switchboard.enableOverage',
    showUsage: 'switchboard.showUsage',
    showLogs: 'switchboard.showLogs',
    restartServer: 'switchboard.restartServer',
  };
  if (action.id === 'useAuto') await vscode.commands.executeCommand('switchboard.selectModel', 'auto');
  else if (commands[action.id]) await vscode.commands.executeCommand(commands[action.id]!);
}

const ESTIMATE_WAIT_MS = 400;

export function registerCommands(deps: Deps): vscode.Disposable[] {
  const { ctx, client, chat, chatView, usagePanel, account } = deps;
  const reg = (id: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, fn);

  async function pickModel(): Promise<SelectModelResult | undefined> {
    if (client.status.state !== 'running') await client.start();
    if (!client.models.length) await client.refresh();
    const qp = vscode.window.createQuickPick<ModelQuickPickItem>();
    qp.title = 'Switchboard: Select Model';
    qp.placeholder = `Model for the next message (now: ${modelName(client.selected, client.models)}) — credits are charged × the multiplier`;
    qp.matchOnDescription = true;
    qp.matchOnDetail = true;
    const build = (estimates: readonly ModelEstimate[] = []) => {
      const items: ModelQuickPickItem[] = modelPickEntries(client.models, client.selected, estimates).map((e) =>
        e.kind === 'separator'
          ? { label: e.label, kind: vscode.QuickPickItemKind.Separator }
          : {
              label: e.label,
              description: e.description,
              detail: e.detail,
              iconPath: new vscode.ThemeIcon(e.icon ?? 'blank'),
              modelId: e.modelId,
            },
      );
      qp.items = items;
      const current = items.find((i) => i.modelId === client.selected);
      if (current) qp.activeItems = [current];
    };
    // Each model's estimate for the draft conversation, if it comes quickly; the list shows without it
    // otherwise. Replacing the items once the user is typing or choosing would swap the rows under the
    // keyboard (an Enter on a replaced row selects nothing), so a late estimate only fills a list that
    // is still untouched.
    const estimate = chat.estimate('', []);
    const early = await Promise.race([estimate, new Promise<null>((r) => setTimeout(() => r(null), ESTIMATE_WAIT_MS))]);
    build(early?.all);
    let touched = false;
    qp.onDidChangeValue(() => (touched = true));
    qp.onDidChangeActive(() => (touched = touched || qp.activeItems[0]?.modelId !== client.selected));
    qp.show();
    if (!early) {
      void estimate.then((e) => {
        if (e && !touched && qp.items.length) build(e.all);
      });
    }
    const chosen = await new Promise<ModelQuickPickItem | undefined>((resolve) => {
      qp.onDidAccept(() => resolve(qp.selectedItems[0] ?? qp.activeItems[0]));
      qp.onDidHide(() => resolve(undefined));
    });
    qp.dispose();
    if (!chosen?.modelId) return undefined;
    return select(chosen.modelId, false);
  }

  async function select(modelId: string, quiet: boolean): Promise<SelectModelResult | undefined> {
    try {
      const result = await client.selectModel(modelId);
      // Chosen in the chat panel (quiet), a notice (a model Anthropic retires) is said there, not in a toast.
      if (result.notice && quiet) chat.post('notice', { message: result.notice });
      else if (result.notice) void vscode.window.showInformationMessage(result.notice);
      return result;
    } catch (err) {
      if (quiet) chat.post('notice', { message: describeError(err, client.models).title, error: describeError(err, client.models) });
      else void showErrorWithActions(client, err);
      return undefined;
    }
  }

  async function signInWithToken(token: string): Promise<UsageReport | undefined> {
    try {
      return await account.signInWithToken(token);
    } catch (err) {
      void showErrorWithActions(client, err);
      return undefined;
    }
  }

  async function setOverage(enabled: boolean): Promise<UsageReport | undefined> {
    let budgetUsd: number | undefined;
    if (enabled) {
      const usage = client.usage;
      if (usage && !usage.overage.available) {
        const choice = await vscode.window.showWarningMessage(
          `Overage isn’t available on the ${usage.planName} plan. Upgrade to a paid plan to keep going past your included credits.`,
          'Upgrade',
        );
        if (choice === 'Upgrade') await vscode.commands.executeCommand('switchboard.upgrade');
        return undefined;
      }
      const raising = usage?.overage.enabled === true; // on already: what is asked for is a new budget
      const input = await vscode.window.showInputBox({
        title: raising ? 'Switchboard: Overage Budget' : 'Switchboard: Enable Overage',
        prompt: raising
          ? `Monthly overage budget in USD${usage.overage.budgetUsd != null ? ` (now ${formatUsd(usage.overage.budgetUsd)})` : ''}: raise it to keep going past your included credits. Leave empty for no cap.`
          : 'Optional monthly budget in USD for usage past your included credits. Leave empty for no cap.',
        placeHolder: 'e.g. 20',
        value: usage?.overage.budgetUsd != null ? String(usage.overage.budgetUsd) : '',
        ignoreFocusOut: true,
        validateInput: (v) => {
          if (!v.trim()) return undefined;
          const n = Number(v.replace(/^\$/, ''));
          return Number.isFinite(n) && n > 0 && n <= 1_000_000 ? undefined : 'Enter a positive amount in USD, or leave empty.';
        },
      });
      if (input === undefined) return undefined;
      budgetUsd = input.trim() ? Number(input.trim().replace(/^\$/, '')) : undefined;
    }
    try {
      const usage = await client.request('switchboard/setOverage', budgetUsd !== undefined ? { enabled, budgetUsd } : { enabled });
      client.setUsage(usage);
      void vscode.window.showInformationMessage(
        enabled
          ? `Switchboard: overage is on${budgetUsd !== undefined ? ` with a ${formatUsd(budgetUsd)} monthly budget` : ' (no budget cap)'}.`
          : 'Switchboard: overage is off.',
      );
      return usage;
    } catch (err) {
      void showErrorWithActions(client, err);
      return undefined;
    }
  }

  return [
    reg('switchboard.openChat', () => chatView.reveal()),
    reg('switchboard.newChat', async () => {
      await chat.newChat();
      await chatView.reveal();
    }),
    reg('switchboard.showHistory', async () => {
      await chatView.reveal();
      await chatView.postToView('ui/history', {});
    }),
    reg('switchboard.selectModel', async (modelId?: unknown, opts?: { quiet?: boolean }) => {
      if (typeof modelId === 'string' && modelId) return select(modelId, Boolean(opts?.quiet));
      return pickModel();
    }),
    reg('switchboard.showUsage', () => usagePanel.show()),
    reg('switchboard.enableOverage', () => setOverage(true)),
    reg('switchboard.disableOverage', () => setOverage(false)),
    reg('switchboard.setApiKey', async () => {
      const key = await vscode.window.showInputBox({
        title: 'Switchboard: Set Anthropic API Key',
        prompt: 'Your Anthropic API key. It is kept in VS Code’s secret storage and only passed to the Switchboard server.',
        placeHolder: 'sk-ant-…',
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim().length < 8 ? 'That looks too short for an API key.' : undefined),
      });
      if (!key) return false;
      await ctx.secrets.store(SECRET_API_KEY, key.trim());
      await client.applySecrets(); // restarts the server with the new key (once)
      void vscode.window.showInformationMessage('Switchboard: API key saved.');
      return true;
    }),
    reg('switchboard.clearApiKey', async () => {
      await ctx.secrets.delete(SECRET_API_KEY);
      await client.applySecrets();
      void vscode.window.showInformationMessage('Switchboard: API key removed.');
    }),
    reg('switchboard.signIn', async (tokenArg?: unknown) => {
      // A string argument is an entitlement token (scripts and tests); otherwise the device flow.
      if (typeof tokenArg === 'string' && tokenArg.trim()) return signInWithToken(tokenArg.trim());
      return account.signIn();
    }),
    reg('switchboard.signInWithToken', async () => {
      const token = await vscode.window.showInputBox({
        title: 'Switchboard: Enter an Entitlement Token',
        prompt: 'Paste an entitlement token for your Switchboard plan (development and offline use; from `switchboard dev-issuer`).',
        placeHolder: 'eyJ…',
        password: true,
        ignoreFocusOut: true,
      });
      return token?.trim() ? signInWithToken(token.trim()) : undefined;
    }),
    reg('switchboard.signOut', () => account.signOut()),
    reg('switchboard.manageAccount', () => account.openAccount()),
    reg('switchboard.upgrade', () => account.upgrade()),
    reg('switchboard.showLogs', () => client.log.show(true)),
    reg('switchboard.restartServer', () => client.restart()),
    reg('switchboard.addSelectionToChat', async () => {
      const chip = chat.contextFromEditor('selection');
      if (!chip) return;
      await chatView.reveal();
      await chatView.postToView('context/added', chip);
    }),
    reg('switchboard.addFileToChat', async () => {
      const chip = chat.contextFromEditor('file');
      if (!chip) return;
      await chatView.reveal();
      await chatView.postToView('context/added', chip);
    }),
  ];
}
