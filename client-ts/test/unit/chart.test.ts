import type { DailyUsage } from '../../src/protocol.generated';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dailyStacks, niceScale, stackedBarChart } from '../../webview/usage/chart';
import { MODELS, usage } from './fixtures';

describe('usage chart', () => {
  it('picks nice axis steps', () => {
    assert.deepEqual(niceScale(0), { max: 1, step: 0.25 });
    assert.deepEqual(niceScale(9), { max: 10, step: 2.5 });
    assert.deepEqual(niceScale(167.5), { max: 200, step: 50 });
    assert.deepEqual(niceScale(0.3), { max: 0.3, step: 0.1 });
    assert.deepEqual(niceScale(0.31), { max: 0.4, step: 0.1 });
  });
  it('zero-fills every day of the period', () => {
    const { series, days } = dailyStacks(usage(), MODELS);
    assert.equal(days.length, 30);
    assert.equal(days[0]!.date, '2025-11-01');
    assert.equal(days.at(-1)!.date, '2025-11-30');
    assert.deepEqual(days[2]!.values, { total: 20 });
    assert.deepEqual(days[0]!.values, {});
    assert.deepEqual(series.map((s) => s.label), ['Credits']);
  });
  it('stacks by model when the server breaks days down', () => {
    const u = usage();
    const daily: DailyUsage[] = [
      { date: '2025-11-03', credits: 3, byModel: [{ modelId: 'auto', routedModel: 'claude-haiku-4.5', credits: 1 }, { modelId: 'claude-sonnet-4.5', routedModel: 'claude-sonnet-4.5', credits: 2 }] },
    ];
    const { series, days } = dailyStacks({ ...u, daily }, MODELS);
    assert.deepEqual(series.map((s) => s.label), ['Claude Sonnet 4.5', 'Auto → Claude Haiku 4.5']);
    assert.deepEqual(days[2]!.values, { 'auto>claude-haiku-4.5': 1, 'claude-sonnet-4.5': 2 });
    const svg = stackedBarChart(series, days);
    assert.equal((svg.match(/<rect class="bar /g) ?? []).length, 2);
    assert.match(svg, /<title>Nov 3 · Auto → Claude Haiku 4\.5: 1 credits<\/title>/);
  });
  it('draws an accessible SVG with grid, labels and bars', () => {
    const { series, days } = dailyStacks(usage(), MODELS);
    const svg = stackedBarChart(series, days, { today: '2025-11-04' });
    assert.match(svg, /^<svg class="chart"[^>]+role="img" aria-label="Credits used per day this period"/);
    assert.equal((svg.match(/<rect class="bar /g) ?? []).length, 2);
    assert.match(svg, /class="today"/);
    assert.match(svg, />Nov 1</);
    assert.doesNotMatch(svg, /style=/);
    assert.doesNotMatch(svg, /NaN/);
  });
  it('escapes labels', () => {
    const svg = stackedBarChart([{ key: 'k', label: '<b>x</b>', className: 'series-blue' }], [{ date: '2025-11-01', values: { k: 1 } }]);
    assert.doesNotMatch(svg, /<b>/);
    assert.match(svg, /&lt;b&gt;/);
  });
});
