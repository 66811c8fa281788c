import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  answeredByLabel, creditsLabel, formatCostUsd, formatCredits, formatDay, formatMultiplier, formatTokens, modelLabel, modelName,
  lineSpanLabel, relativeTime, statusText, truncate, usageLevel, usedFraction,
} from '../../src/shared/format';
import { MODELS, usage } from './fixtures';

describe('cost at list price', () => {
  it('keeps two significant digits below a cent, cents above', () => {
    assert.equal(formatCostUsd(0.0031234), '$0.0031');
    assert.equal(formatCostUsd(0.0004), '$0.0004');
    assert.equal(formatCostUsd(0.0000123), '$0.000012');
    assert.equal(formatCostUsd(0.123), '$0.12');
    assert.equal(formatCostUsd(0), '$0.00');
  });
});

describe('credit and model formatting', () => {
  it('formats credits to at most two decimals with grouping', () => {
    assert.equal(formatCredits(812.5), '812.5');
    assert.equal(formatCredits(1000), '1,000');
    assert.equal(formatCredits(0.04), '0.04');
    assert.equal(formatCredits(0.125), '0.13');
    assert.equal(formatCredits(12.999), '13');
    assert.equal(creditsLabel(1), '1 credit');
    assert.equal(creditsLabel(0.4), '0.4 credits');
  });
  it('formats multipliers and picker labels', () => {
    assert.equal(formatMultiplier(0.4), '0.4x');
    assert.equal(formatMultiplier(1), '1x');
    assert.equal(formatMultiplier(2.2), '2.2x');
    assert.equal(modelLabel(MODELS[1]!), 'Claude Haiku 4.5 · 0.4x');
  });
  it('shows the status bar text "Auto · 812.5 credits"', () => {
    assert.equal(statusText('auto', usage(), MODELS), 'Auto · 812.5 credits');
    assert.equal(statusText('claude-haiku-4.5', usage({ remainingCredits: 1 }), MODELS), 'Claude Haiku 4.5 · 1 credit');
    assert.equal(statusText('auto', usage({ remainingCredits: -3 }), MODELS), 'Auto · 0 credits');
    assert.equal(statusText('auto', undefined, MODELS), 'Auto');
  });
  it('names the model that answered, with Auto routing', () => {
    assert.equal(answeredByLabel('auto', 'claude-haiku-4.5', MODELS), 'Auto → Claude Haiku 4.5');
    assert.equal(answeredByLabel('claude-sonnet-4.5', 'claude-sonnet-4.5', MODELS), 'Claude Sonnet 4.5');
    assert.equal(modelName('claude-sonnet-4.0', []), 'Claude Sonnet 4.0');
    assert.equal(modelName('mystery-model', []), 'mystery-model');
  });
  it('formats token counts compactly', () => {
    assert.equal(formatTokens(950), '950');
    assert.equal(formatTokens(1234), '1.2k');
    assert.equal(formatTokens(200_000), '200k');
    assert.equal(formatTokens(1_200_000), '1.2M');
  });
  it('formats days and relative times in UTC', () => {
    assert.equal(formatDay('2025-12-01'), 'Dec 1');
    const now = new Date('2025-11-20T12:00:00Z');
    assert.equal(relativeTime('2025-11-20T11:59:30Z', now), 'just now');
    assert.equal(relativeTime('2025-11-20T11:00:00Z', now), '1 h ago');
    assert.equal(relativeTime('2025-11-19T10:00:00Z', now), 'yesterday');
    assert.equal(relativeTime('2025-11-01T10:00:00Z', now), 'Nov 1');
  });
  it('truncates on word boundaries', () => {
    assert.equal(truncate('short', 10), 'short');
    assert.equal(truncate('How do I read a file in Python quickly?', 20), 'How do I read a…');
  });
});

describe('status colour thresholds', () => {
  it('is ok below 80% used', () => {
    assert.equal(usageLevel(usage({ usedCredits: 799.99, remainingCredits: 200.01 })), 'ok');
  });
  it('warns from 80% used', () => {
    assert.equal(usageLevel(usage({ usedCredits: 800, remainingCredits: 200 })), 'warning');
    assert.equal(usageLevel(usage({ usedCredits: 999, remainingCredits: 1 })), 'warning');
  });
  it('is an error at 100% (nothing left)', () => {
    assert.equal(usageLevel(usage({ usedCredits: 1000, remainingCredits: 0 })), 'error');
    assert.equal(usageLevel(usage({ usedCredits: 1200, remainingCredits: 0 })), 'error');
  });
  it('stays a warning past 100% while overage is on', () => {
    const u = usage({ usedCredits: 1000, remainingCredits: 0 });
    assert.equal(usageLevel({ ...u, overage: { ...u.overage, enabled: true } }), 'warning');
  });
  it('handles a plan with no included credits', () => {
    assert.equal(usedFraction({ usedCredits: 0, includedCredits: 0, remainingCredits: 0 }), 1);
  });
});

describe('selection labels', () => {
  const r = (a: number, b: number, ch: number) => ({ start: { line: a, character: 0 }, end: { line: b, character: ch } });
  it('labels line spans 1-based and ignores a trailing line start', () => {
    assert.equal(lineSpanLabel(r(0, 0, 5)), '1');
    assert.equal(lineSpanLabel(r(0, 9, 4)), '1-10');
    assert.equal(lineSpanLabel(r(0, 10, 0)), '1-10');
    assert.equal(lineSpanLabel(r(3, 3, 0)), '4');
  });
});
