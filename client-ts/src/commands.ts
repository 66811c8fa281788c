// The command palette: Select Model, New/Open Chat, Show Usage, Enable Overage…, Set API Key, Sign In,
// Show Server Logs (and a few helpers).
import * as vscode from 'vscode';
import type { ChatController } from './chat';
import type { ChatViewProvider } from './chatView';
import { SECRET_API_KEY, SECRET_ENTITLEMENT, type SwitchboardClient } from './client';
import type { ModelEstimate, SelectModelResult, UsageReport } from './protocol.generated';
import { describeError } from './shared/errors';
import { creditsLabel, formatDate, formatUsd, modelName } from './shared/format';
import { modelPickEntries } from './shared/presentation';
import type { UsagePanel } from './usagePanel';

interface Deps {
  ctx: vscode.ExtensionContext;
  client: SwitchboardClient;
  chat: ChatController;
  chatView: ChatViewProvider;
  usagePanel: UsagePanel;
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
    enableOverage: 'switchboard.enableOverage',
    showUsage: 'switchboard.showUsage',
    showLogs: 'switchboard.showLogs',
    restartServer: 'switchboard.restartServer',
  };
  if (action.id === 'useAuto') await vscode.commands.executeCommand('switchboard.selectModel', 'auto');
  else if (commands[action.id]) await vscode.commands.executeCommand(commands[action.id]!);
}

const ESTIMATE_WAIT_MS = 400;

export function registerCommands(deps: Deps): vscode.Disposable[] {
  const { ctx, client, chat, chatView, usagePanel } = deps;
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
      if (result.notice && !quiet) void vscode.window.showInformationMessage(result.notice);
      return result;
    } catch (err) {
      if (quiet) chat.post('notice', { message: describeError(err, client.models).title, error: describeError(err, client.models) });
      else void showErrorWithActions(client, err);
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
          'Sign In',
        );
        if (choice === 'Sign In') await vscode.commands.executeCommand('switchboard.signIn');
        return undefined;
      }
      const input = await vscode.window.showInputBox({
        title: 'Switchboard: Enable Overage',
        prompt: 'Optional monthly budget in USD for usage past your included credits. Leave empty for no cap.',
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
      const token =
        typeof tokenArg === 'string' && tokenArg
          ? tokenArg
          : await vscode.window.showInputBox({
              title: 'Switchboard: Sign In',
              prompt: 'Paste the entitlement token for your Switchboard plan (from your account page or `switchboard dev-issuer`).',
              placeHolder: 'eyJ…',
              password: true,
              ignoreFocusOut: true,
            });
      if (!token?.trim()) return undefined;
      try {
        const { usage } = await client.request('switchboard/signIn', { token: token.trim() });
        client.setUsage(usage);
        if (!usage.account) {
          // A token that does not verify is not an error: the server says why in planReason.
          void vscode.window.showWarningMessage(`Switchboard: that token didn't sign you in. ${usage.planReason}`);
          return usage;
        }
        await ctx.secrets.store(SECRET_ENTITLEMENT, token.trim());
        await client.refresh();
        void vscode.window.showInformationMessage(
          `Switchboard: signed in as ${usage.account} — ${usage.planName} plan, ${creditsLabel(usage.remainingCredits)} left until ${formatDate(usage.periodEnd)}.`,
        );
        return usage;
      } catch (err) {
        void showErrorWithActions(client, err);
        return undefined;
      }
    }),
    reg('switchboard.signOut', async () => {
      await ctx.secrets.delete(SECRET_ENTITLEMENT);
      await client.restart();
      void vscode.window.showInformationMessage('Switchboard: signed out.');
    }),
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
