// What the status bar and the model QuickPick show, as plain data (pure and unit-tested; the
// vscode-specific glue lives in statusBar.ts and commands.ts).
import type { ModelEstimate, ModelId, ModelInfo, UsageReport } from '../protocol.generated';
import { accountLine, accountOf, isHosted } from './account';
import { planName } from './errors';
import {
  answeredByLabel,
  creditsLabel,
  formatCredits,
  formatDate,
  formatMultiplier,
  formatUsd,
  modelLabel,
  modelName,
  retirementText,
  statusText,
  usageLevel,
  usedFraction,
  type UsageLevel,
} from './format';

export interface StatusBarView {
  /** With codicons, e.g. "$(sparkle) Auto · 812.5 credits". */
  text: string;
  level: UsageLevel | 'starting' | 'failed';
  /** Markdown for the tooltip. */
  tooltip: string;
  accessibilityLabel: string;
}

export function overageSummary(usage: UsageReport): string {
  const o = usage.overage;
  if (!o.available) return `Overage: not available on the ${usage.planName} plan`;
  if (!o.enabled) return 'Overage: off';
  const budget = o.budgetUsd != null ? `, budget ${formatUsd(o.budgetUsd)}` : ', no budget cap';
  return `Overage: on${budget} · ${creditsLabel(o.credits)} (${formatUsd(o.costUsd)}) this month`;
}

/** A 10-cell text bar: "▰▰▰▰▰▰▱▱▱▱". */
export function textBar(fraction: number, cells = 10): string {
  const filled = Math.max(0, Math.min(cells, Math.round(fraction * cells)));
  return '▰'.repeat(filled) + '▱'.repeat(cells - filled);
}

function mdEscape(s: string): string {
  return s.replace(/[\\`*_[\]|<>]/g, (c) => `\\${c}`);
}

export function usageTooltip(usage: UsageReport, selected: ModelId, models: readonly ModelInfo[]): string {
  const used = usedFraction(usage);
  const pct = Math.round(used * 100);
  const lines: string[] = [];
  const info = accountOf(usage);
  const hosted = isHosted(info);
  lines.push(
    hosted
      ? `**Switchboard Cloud** · ${mdEscape(usage.planName)} plan`
      : `**Switchboard** · ${mdEscape(usage.planName)} plan${usage.account ? ` · ${mdEscape(usage.account)}` : ''}`,
  );
  lines.push('');
  lines.push(`$(${hosted ? 'cloud' : 'device-desktop'}) ${mdEscape(accountLine(info))}`);
  lines.push('');
  lines.push(
    `${textBar(used)} ${formatCredits(usage.usedCredits)} of ${formatCredits(usage.includedCredits)} credits used (${pct}%) · **${creditsLabel(Math.max(0, usage.remainingCredits))} left**`,
  );
  lines.push('');
  lines.push(`Resets ${formatDate(usage.periodEnd)} · ${mdEscape(overageSummary(usage))}`);
  lines.push('');
  lines.push(`Model for the next message: **${mdEscape(modelName(selected, models))}**`);
  if (usage.planReason) {
    lines.push('');
    lines.push(`_${mdEscape(usage.planReason)}_`);
  }
  for (const alert of usage.alerts) {
    lines.push('');
    lines.push(`$(warning) ${mdEscape(alert)}`);
  }
  if (usage.byModel.length) {
    lines.push('');
    lines.push('| Credits by model | Messages | Credits |');
    lines.push('|:--|--:|--:|');
    for (const m of [...usage.byModel].sort((a, b) => b.credits - a.credits)) {
      lines.push(`| ${mdEscape(answeredByLabel(m.modelId, m.routedModel, models))} | ${m.turns} | ${formatCredits(m.credits)} |`);
    }
  }
  lines.push('');
  const account = hosted
    ? '[$(account) Manage account](command:switchboard.manageAccount) · [$(sign-out) Sign out](command:switchboard.signOut)'
    : '[$(sign-in) Sign in](command:switchboard.signIn)';
  lines.push(`[$(graph) Show usage](command:switchboard.showUsage) · [$(chip) Select model](command:switchboard.selectModel) · ${account}`);
  return lines.join('\n');
}

export function statusBarView(
  server: { state: string; message?: string; detail?: string },
  selected: ModelId,
  usage: UsageReport | undefined,
  models: readonly ModelInfo[],
): StatusBarView {
  if (server.state === 'failed') {
    return {
      text: '$(error) Switchboard',
      level: 'failed',
      tooltip: `**Switchboard server failed**\n\n${mdEscape(server.message ?? '')}\n\n[$(output) Show logs](command:switchboard.showLogs) · [$(refresh) Restart](command:switchboard.restartServer)`,
      accessibilityLabel: 'Switchboard server failed. Show logs.',
    };
  }
  if (server.state !== 'running' && !usage) {
    return {
      text: '$(loading~spin) Switchboard',
      level: 'starting',
      tooltip: `Switchboard is ${server.detail ? mdEscape(server.detail) : 'starting its server'}…`,
      accessibilityLabel: 'Switchboard is starting',
    };
  }
  const text = statusText(selected, usage, models);
  const level = usage ? usageLevel(usage) : 'ok';
  // Signed in, the figures are the gateway's: a cloud and the plan say so at a glance.
  const hosted = usage !== undefined && isHosted(accountOf(usage));
  const okIcon = hosted ? '$(cloud)' : '$(sparkle)';
  const icon = level === 'error' ? '$(circle-slash)' : level === 'warning' ? '$(warning)' : okIcon;
  return {
    text: hosted ? `${icon} ${usage.planName} · ${text}` : `${icon} ${text}`,
    level,
    tooltip: usage ? usageTooltip(usage, selected, models) : `Model: ${mdEscape(modelName(selected, models))}`,
    accessibilityLabel: usage
      ? `Switchboard${hosted ? ` Cloud, ${usage.planName} plan` : ''}: ${modelName(selected, models)}, ${creditsLabel(Math.max(0, usage.remainingCredits))} left of ${formatCredits(usage.includedCredits)}. Open usage.`
      : `Switchboard: ${modelName(selected, models)}`,
  };
}

// --- the model QuickPick --------------------------------------------------------------------------

export interface ModelPickEntry {
  kind: 'item' | 'separator';
  label: string;
  modelId?: ModelId;
  description?: string;
  detail?: string;
  /** Codicon name for the item's icon. */
  icon?: string;
  current?: boolean;
  available?: boolean;
}

/**
 * The QuickPick's entries: Auto first (recommended), then the models available on the plan, then the
 * locked ones with the reason; a model Anthropic retires says when (`today`: the UTC day, YYYY-MM-DD).
 * The current model is checked; estimates add the message's cost.
 */
export function modelPickEntries(
  models: readonly ModelInfo[],
  selected: ModelId,
  estimates: readonly ModelEstimate[] = [],
  today?: string,
): ModelPickEntry[] {
  const entry = (m: ModelInfo): ModelPickEntry => {
    const est = estimates.find((e) => e.modelId === m.id);
    const bits: string[] = [];
    if (m.id === selected) bits.push('current');
    if (m.recommended || m.id === 'auto') bits.push('recommended');
    if (est && m.available) bits.push(`≈ ${creditsLabel(est.estimatedCredits)} per reply here`);
    const retirement = retirementText(m.retiresOn, today);
    if (retirement) bits.push(retirement);
    if (!m.available) bits.push(m.unavailableReason ?? 'not on your plan');
    const detail = m.available ? m.description : `${m.description} — Upgrade your plan to use it.`;
    return {
      kind: 'item',
      label: modelLabel(m),
      modelId: m.id,
      description: bits.join(' · '),
      detail,
      icon: m.id === selected ? 'check' : m.available ? (m.id === 'auto' ? 'sparkle' : 'blank') : 'lock',
      current: m.id === selected,
      available: m.available,
    };
  };
  const auto = models.filter((m) => m.id === 'auto');
  const available = models.filter((m) => m.id !== 'auto' && m.available);
  const locked = models.filter((m) => m.id !== 'auto' && !m.available);
  const out: ModelPickEntry[] = [];
  out.push(...auto.map(entry));
  if (available.length) out.push({ kind: 'separator', label: 'Models' }, ...available.map(entry));
  if (locked.length) out.push({ kind: 'separator', label: 'Needs an upgrade' }, ...locked.map(entry));
  return out;
}

export { formatMultiplier, planName };
