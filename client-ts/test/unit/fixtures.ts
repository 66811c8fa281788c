// Protocol-shaped fixtures for the unit tests (typed against the generated protocol).
import type { ChatResult, ModelEstimate, ModelInfo, RouteReport, UsageReport } from '../../src/protocol.generated';
import type { EstimateView } from '../../src/shared/webviewProtocol';

export const MODELS: ModelInfo[] = [
  {
    id: 'auto', name: 'Auto', description: 'Picks the best-value Claude model for each message.', benefits: [],
    creditMultiplier: 1, available: true, unavailableReason: null, contextWindow: 200_000, maxOutputTokens: 64_000,
    supportsThinking: true, recommended: true, anthropicModel: null, retiresOn: null,
  },
  {
    id: 'claude-haiku-4.5', name: 'Claude Haiku 4.5', description: 'The fastest and cheapest Claude.', benefits: [],
    creditMultiplier: 0.4, available: true, unavailableReason: null, contextWindow: 200_000, maxOutputTokens: 64_000,
    supportsThinking: true, recommended: false, anthropicModel: 'claude-haiku-4-5-20251001', retiresOn: null,
  },
  {
    id: 'claude-sonnet-4.5', name: 'Claude Sonnet 4.5', description: 'The best balance.', benefits: [],
    creditMultiplier: 1.3, available: true, unavailableReason: null, contextWindow: 200_000, maxOutputTokens: 64_000,
    supportsThinking: true, recommended: false, anthropicModel: 'claude-sonnet-4-5-20250929', retiresOn: null,
  },
  {
    id: 'claude-opus-4.5', name: 'Claude Opus 4.5', description: 'The most capable Claude.', benefits: [],
    creditMultiplier: 2.2, available: false, unavailableReason: 'Claude Opus 4.5 needs Pro, Pro+ or Power',
    contextWindow: 200_000, maxOutputTokens: 64_000, supportsThinking: true, recommended: false,
    anthropicModel: 'claude-opus-4-5-20251101', retiresOn: '2027-01-22',
  },
];

export function usage(overrides: Partial<UsageReport> = {}): UsageReport {
  return {
    plan: 'pro',
    planName: 'Pro',
    planReason: 'Signed in as dev@example.com',
    account: 'dev@example.com',
    periodStart: '2025-11-01',
    periodEnd: '2025-12-01',
    includedCredits: 1000,
    usedCredits: 187.5,
    remainingCredits: 812.5,
    reserved: 0,
    overage: { available: true, enabled: false, budgetUsd: null, credits: 0, costUsd: 0 },
    byModel: [
      { modelId: 'auto', routedModel: 'claude-haiku-4.5', turns: 12, credits: 40.25 },
      { modelId: 'claude-sonnet-4.5', routedModel: 'claude-sonnet-4.5', turns: 30, credits: 147.25 },
    ],
    daily: [
      { date: '2025-11-03', credits: 20, byModel: [] },
      { date: '2025-11-04', credits: 167.5, byModel: [] },
    ],
    alerts: [],
    accountInfo: { mode: 'local', email: null, gatewayUrl: null, accountUrl: null, upgradeUrl: null },
    autoForYou: null,
    ...overrides,
  };
}

export function route(overrides: Partial<RouteReport> = {}): RouteReport {
  return {
    kind: 'report', type: 'route', modelId: 'auto', routedModel: 'claude-haiku-4.5',
    routeReason: 'Short question: Haiku answers it well', message: 'Auto → Claude Haiku 4.5', fallback: false,
    conversationId: 'c1', turnId: 't2',
    ...overrides,
  };
}

export function chatResult(overrides: Partial<ChatResult> = {}): ChatResult {
  return {
    conversationId: 'c1', turnId: 't2', modelId: 'auto', routedModel: 'claude-haiku-4.5',
    routeReason: 'Short question: Haiku answers it well', text: 'Hello **there**', thinking: null,
    stopReason: 'end_turn', usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheCreationInputTokens: 0 },
    credits: 0.12, droppedTurns: 0, costUsd: null,
    ...overrides,
  };
}

export function estimate(overrides: Partial<ModelEstimate> = {}): EstimateView {
  const selected: ModelEstimate = {
    modelId: 'auto', allowed: true, fitsContext: true, contextWindow: 200_000, inputTokens: 1_500,
    estimatedOutputTokens: 800, estimatedCredits: 0.42,
    ...overrides,
  };
  return { estimate: selected, all: [selected, { ...selected, modelId: 'claude-haiku-4.5', estimatedCredits: 0.17 }] };
}
