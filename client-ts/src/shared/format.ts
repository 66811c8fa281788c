// Pure formatting helpers shared by the extension host and the webviews (no `vscode`, no DOM).
import type { ModelInfo, ModelId, UsageReport } from '../protocol.generated';

/** "812.5", "1,000", "0.04": credits are metered to 0.01, trailing zeros dropped. */
export function formatCredits(value: number): string {
  const rounded = Math.round(value * 100) / 100;
  return rounded.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 0 });
}

/** "1 credit", "0.4 credits", "812.5 credits". */
export function creditsLabel(value: number): string {
  const text = formatCredits(value);
  return `${text} ${text === '1' ? 'credit' : 'credits'}`;
}

/** "0.4x", "1x", "2.2x". */
export function formatMultiplier(multiplier: number): string {
  return `${Number(multiplier.toFixed(2))}x`;
}

/** "Claude Haiku 4.5 · 0.4x". */
export function modelLabel(model: Pick<ModelInfo, 'name' | 'creditMultiplier'>): string {
  return `${model.name} · ${formatMultiplier(model.creditMultiplier)}`;
}

/** "12.3k", "200k", "1.2M", "950". */
export function formatTokens(n: number): string {
  if (n >= 1_000_000) return `${Number((n / 1_000_000).toFixed(1))}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${Number((n / 1000).toFixed(1))}k`;
  return String(Math.round(n));
}

/** Known display names, used before the model list has arrived. */
const FALLBACK_NAMES: Record<string, string> = {
  auto: 'Auto',
  'claude-haiku-4.5': 'Claude Haiku 4.5',
  'claude-sonnet-4.0': 'Claude Sonnet 4.0',
  'claude-sonnet-4.5': 'Claude Sonnet 4.5',
  'claude-opus-4.5': 'Claude Opus 4.5',
};

/**
 * When Anthropic retires (or retired) a model, as a picker says it; undefined when no day is announced.
 * `today` is a UTC day (YYYY-MM-DD), like `retiresOn`.
 */
export function retirementText(retiresOn: string | null, today: string = new Date().toISOString().slice(0, 10)): string | undefined {
  if (!retiresOn) return undefined;
  return retiresOn <= today ? `Anthropic retired it on ${retiresOn}: it can no longer answer` : `Anthropic retires it on ${retiresOn}`;
}

export function modelName(id: string | null | undefined, models: readonly Pick<ModelInfo, 'id' | 'name'>[] = []): string {
  if (!id) return 'Unknown model';
  return models.find((m) => m.id === id)?.name ?? FALLBACK_NAMES[id] ?? id;
}

/** "Auto → Claude Haiku 4.5" when Auto routed, else just the model's name. */
export function answeredByLabel(
  modelId: string | null | undefined,
  routedModel: string | null | undefined,
  models: readonly Pick<ModelInfo, 'id' | 'name'>[] = [],
): string {
  if (modelId === 'auto' && routedModel) return `Auto → ${modelName(routedModel, models)}`;
  return modelName(routedModel ?? modelId, models);
}

/** The status bar text without the icon: "Auto · 812.5 credits". */
export function statusText(selected: ModelId | string | undefined, usage: UsageReport | undefined, models: readonly Pick<ModelInfo, 'id' | 'name'>[] = []): string {
  const name = selected ? modelName(selected, models) : 'Switchboard';
  if (!usage) return name;
  return `${name} · ${creditsLabel(Math.max(0, usage.remainingCredits))}`;
}

export type UsageLevel = 'ok' | 'warning' | 'error';

/** Share of the month's included credits used, 0..∞ (1 = all used). */
export function usedFraction(usage: Pick<UsageReport, 'usedCredits' | 'includedCredits' | 'remainingCredits'>): number {
  if (usage.includedCredits <= 0) return usage.remainingCredits > 0 ? 0 : 1;
  return usage.usedCredits / usage.includedCredits;
}

/**
 * The status bar colour: warning from 80% of the included credits used, error at 100% (nothing left).
 * With overage switched on, messages keep working past 100%, so that stays a warning.
 */
export function usageLevel(
  usage: Pick<UsageReport, 'usedCredits' | 'includedCredits' | 'remainingCredits'> & {
    overage?: { enabled: boolean };
  },
): UsageLevel {
  const used = usedFraction(usage);
  const exhausted = used >= 1 || usage.remainingCredits <= 0;
  if (exhausted) return usage.overage?.enabled ? 'warning' : 'error';
  if (used >= 0.8) return 'warning';
  return 'ok';
}

/** "Dec 1" from "2025-12-01" or a full ISO timestamp (UTC, so the day doesn't shift with the viewer's zone). */
export function formatDay(iso: string): string {
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

/** "Dec 1, 2025". */
export function formatDate(iso: string): string {
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', year: 'numeric', timeZone: 'UTC' });
}

/** "$12.50". */
export function formatUsd(value: number): string {
  return value.toLocaleString('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** An answer's cost at list price: "$0.0031" below a cent (two significant digits), else "$0.12". */
export function formatCostUsd(value: number): string {
  if (value > 0 && value < 0.01) {
    const decimals = Math.min(20, 1 - Math.floor(Math.log10(value))); // two significant digits
    return `$${value.toFixed(decimals).replace(/0+$/, '')}`;
  }
  return formatUsd(value);
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "Dec 1". */
export function relativeTime(iso: string, now: Date = new Date()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (now.getTime() - t) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 2 * 86_400) return 'yesterday';
  return formatDay(iso);
}

/** "a few words" → at most `max` characters, on a word boundary, with an ellipsis. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** "12" or "12-30" (1-based) for a range; a selection that ends at the start of a line doesn't count that line. */
export function lineSpanLabel(range: { start: { line: number }; end: { line: number; character: number } }): string {
  const first = range.start.line + 1;
  const endLine = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
  const last = endLine + 1;
  return first === last ? `${first}` : `${first}-${last}`;
}
