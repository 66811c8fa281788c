// What the composer shows about cost before sending, as plain data (pure, unit-tested): the estimate
// for the draft, how full the context window is, and the credits left.
import type { ModelInfo, UsageReport } from '../../src/protocol.generated';
import { creditsLabel, formatTokens, modelName, usageLevel, type UsageLevel } from '../../src/shared/format';
import type { EstimateView } from '../../src/shared/webviewProtocol';

/** The window assumed before the server has said anything about the model. */
const DEFAULT_CONTEXT_WINDOW = 200_000;

export interface EstimateLine {
  text: string;
  title: string;
  warn: boolean;
}

export function estimateLine(estimate: EstimateView | null, draftText: string, answering: boolean, models: readonly ModelInfo[]): EstimateLine {
  const est = estimate?.estimate;
  if (!est || !draftText.trim()) return { text: answering ? 'Answering…' : '', title: '', warn: false };
  const refusal = !est.allowed ? ' · not on your plan' : !est.fitsContext ? ' · too large for the context window' : '';
  return {
    text: `≈ ${creditsLabel(est.estimatedCredits)}${refusal}`,
    title: `Estimated for this message on ${modelName(est.modelId, models)}: ${formatTokens(est.inputTokens)} input tokens, ~${formatTokens(est.estimatedOutputTokens)} output tokens`,
    warn: refusal !== '',
  };
}

export interface ContextMeter {
  /** 0-100, rounded. */
  percent: number;
  /** The fill's CSS width: at least a sliver once anything is used. */
  fillWidth: string;
  level: 'ok' | 'warn' | 'error';
  label: string;
  title: string;
}

export function contextMeter(estimate: EstimateView | null, selected: ModelInfo | undefined): ContextMeter {
  const windowSize = estimate?.estimate.contextWindow ?? selected?.contextWindow ?? DEFAULT_CONTEXT_WINDOW;
  const used = estimate?.estimate.inputTokens ?? 0;
  const fraction = Math.min(1, used / windowSize);
  const percent = Math.round(fraction * 100);
  return {
    percent,
    fillWidth: `${Math.max(fraction > 0 ? 2 : 0, percent)}%`,
    level: fraction >= 0.95 ? 'error' : fraction >= 0.75 ? 'warn' : 'ok',
    label: `${formatTokens(used)} / ${formatTokens(windowSize)}`,
    title: `Context window: ${formatTokens(used)} of ${formatTokens(windowSize)} tokens (${percent}%) for this conversation and message`,
  };
}

export function creditsLeft(usage: UsageReport): { text: string; level: UsageLevel } {
  return { text: `${creditsLabel(Math.max(0, usage.remainingCredits))} left`, level: usageLevel(usage) };
}
