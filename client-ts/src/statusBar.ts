// The status bar item: "Auto · 812.5 credits", coloured by how much of the month is used.
import * as vscode from 'vscode';
import type { SwitchboardClient } from './client';
import { statusBarView } from './shared/presentation';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly client: SwitchboardClient) {
    this.item = vscode.window.createStatusBarItem('switchboard.status', vscode.StatusBarAlignment.Right, 1000);
    this.item.name = 'Switchboard credits';
    this.disposables.push(
      this.item,
      client.onDidChangeStatus(() => this.update()),
      client.onDidChangeUsage(() => this.update()),
      client.onDidChangeModel(() => this.update()),
      client.onDidChangeModels(() => this.update()),
    );
    this.update();
    this.item.show();
  }

  /** The current text (for tests). */
  get text(): string {
    return this.item.text;
  }

  update(): void {
    const view = statusBarView(this.client.status, this.client.selected, this.client.usage, this.client.models);
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    tooltip.isTrusted = {
      enabledCommands: [
        'switchboard.showUsage',
        'switchboard.selectModel',
        'switchboard.showLogs',
        'switchboard.restartServer',
        'switchboard.signIn',
        'switchboard.signOut',
        'switchboard.manageAccount',
      ],
    };
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label: view.accessibilityLabel, role: 'button' };
    this.item.command = view.level === 'failed' ? 'switchboard.showLogs' : 'switchboard.showUsage';
    this.item.backgroundColor =
      view.level === 'error' || view.level === 'failed'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.level === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }
}
