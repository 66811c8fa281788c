import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modelPickEntries, overageSummary, statusBarView, textBar, usageTooltip } from '../../src/shared/presentation';
import { MODELS, usage } from './fixtures';

describe('status bar view', () => {
  it('shows model and credits with a level', () => {
    const v = statusBarView({ state: 'running' }, 'auto', usage(), MODELS);
    assert.equal(v.text, '$(sparkle) Auto · 812.5 credits');
    assert.equal(v.level, 'ok');
    assert.match(v.accessibilityLabel, /812\.5 credits left of 1,000/);
  });
  it('uses warning and error levels', () => {
    assert.equal(statusBarView({ state: 'running' }, 'auto', usage({ usedCredits: 850, remainingCredits: 150 }), MODELS).level, 'warning');
    const out = statusBarView({ state: 'running' }, 'auto', usage({ usedCredits: 1000, remainingCredits: 0 }), MODELS);
    assert.equal(out.level, 'error');
    assert.equal(out.text, '$(circle-slash) Auto · 0 credits');
  });
  it('signed in to a gateway: a cloud, the plan, and who and where in the tooltip', () => {
    const hosted = usage({
      accountInfo: { mode: 'hosted', email: 'ada@example.com', gatewayUrl: 'https://cloud.example.com', accountUrl: 'https://cloud.example.com/account', upgradeUrl: null },
    });
    const v = statusBarView({ state: 'running' }, 'auto', hosted, MODELS);
    assert.equal(v.text, '$(cloud) Pro · Auto · 812.5 credits');
    assert.match(v.accessibilityLabel, /^Switchboard Cloud, Pro plan: Auto/);
    assert.match(v.tooltip, /Signed in as ada@example\.com via cloud\.example\.com/);
    assert.match(v.tooltip, /command:switchboard\.manageAccount/);
    assert.match(v.tooltip, /command:switchboard\.signOut/);
    assert.doesNotMatch(v.tooltip, /command:switchboard\.signIn\)/);
    // at 100 %, the level icon wins but the plan still says it is the gateway's account
    const over = statusBarView({ state: 'running' }, 'auto', { ...hosted, usedCredits: 1000, remainingCredits: 0 }, MODELS);
    assert.equal(over.text, '$(circle-slash) Pro · Auto · 0 credits');
  });
  it('local: the sparkle, no plan prefix, and a sign-in link', () => {
    const v = statusBarView({ state: 'running' }, 'auto', usage(), MODELS);
    assert.doesNotMatch(v.text, /cloud|Pro ·/);
    assert.match(v.tooltip, /credits are counted on this machine/);
    assert.match(v.tooltip, /command:switchboard\.signIn\)/);
  });
  it('shows starting and failed states', () => {
    assert.equal(statusBarView({ state: 'starting' }, 'auto', undefined, MODELS).level, 'starting');
    const failed = statusBarView({ state: 'failed', message: 'spawn ENOENT' }, 'auto', usage(), MODELS);
    assert.equal(failed.level, 'failed');
    assert.match(failed.tooltip, /Show logs/);
  });
  it('puts plan, reset date, overage and credits by model in the tooltip', () => {
    const t = usageTooltip(usage(), 'claude-haiku-4.5', MODELS);
    assert.match(t, /Pro plan/);
    assert.match(t, /Resets Dec 1, 2025/);
    assert.match(t, /Overage: off/);
    assert.match(t, /Auto → Claude Haiku 4\.5 \| 12 \| 40\.25/);
    assert.match(t, /Claude Sonnet 4\.5 \| 30 \| 147\.25/);
    assert.match(t, /187\.5 of 1,000 credits used \(19%\)/);
    assert.match(t, /command:switchboard\.showUsage/);
  });
  it('summarises overage', () => {
    const u = usage();
    assert.equal(overageSummary({ ...u, overage: { available: false, enabled: false, budgetUsd: null, credits: 0, costUsd: 0 }, planName: 'Free' }), 'Overage: not available on the Free plan');
    assert.equal(
      overageSummary({ ...u, overage: { available: true, enabled: true, budgetUsd: 20, credits: 12.5, costUsd: 0.5 } }),
      'Overage: on, budget $20.00 · 12.5 credits ($0.50) this month',
    );
  });
  it('draws a text bar', () => {
    assert.equal(textBar(0.5), '▰▰▰▰▰▱▱▱▱▱');
    assert.equal(textBar(1.7), '▰▰▰▰▰▰▰▰▰▰');
  });
});

describe('model picker items', () => {
  const entries = modelPickEntries(MODELS, 'claude-haiku-4.5', [
    { modelId: 'claude-haiku-4.5', inputTokens: 100, estimatedOutputTokens: 300, estimatedCredits: 0.12, allowed: true, fitsContext: true, contextWindow: 200_000 },
  ]);
  const items = entries.filter((e) => e.kind === 'item');
  it('lists Auto first, recommended, with multipliers', () => {
    assert.equal(items[0]!.modelId, 'auto');
    assert.equal(items[0]!.label, 'Auto · 1x');
    assert.match(items[0]!.description!, /recommended/);
    assert.deepEqual(items.map((i) => i.label), ['Auto · 1x', 'Claude Haiku 4.5 · 0.4x', 'Claude Sonnet 4.5 · 1.3x', 'Claude Opus 4.5 · 2.2x']);
  });
  it('checks the current model and shows its estimate', () => {
    const haiku = items.find((i) => i.modelId === 'claude-haiku-4.5')!;
    assert.equal(haiku.current, true);
    assert.equal(haiku.icon, 'check');
    assert.match(haiku.description!, /current/);
    assert.match(haiku.description!, /≈ 0\.12 credits per reply here/);
  });
  it('shows locked models last, with the reason and a lock', () => {
    const opus = items.at(-1)!;
    assert.equal(opus.modelId, 'claude-opus-4.5');
    assert.equal(opus.available, false);
    assert.equal(opus.icon, 'lock');
    assert.match(opus.description!, /needs Pro, Pro\+ or Power/);
    assert.match(opus.detail!, /Upgrade/);
    assert.deepEqual(entries.filter((e) => e.kind === 'separator').map((e) => e.label), ['Models', 'Needs an upgrade']);
  });
  it('says when Anthropic retires a model, and once it has', () => {
    const onPro = MODELS.map((m) => (m.id === 'claude-opus-4.5' ? { ...m, available: true, unavailableReason: null } : m));
    const opus = (today: string) => modelPickEntries(onPro, 'auto', [], today).find((e) => e.modelId === 'claude-opus-4.5')!;
    assert.match(opus('2027-01-21').description!, /Anthropic retires it on 2027-01-22/);
    assert.match(opus('2027-01-22').description!, /Anthropic retired it on 2027-01-22: it can no longer answer/);
    const haiku = modelPickEntries(onPro, 'auto', [], '2027-01-22').find((e) => e.modelId === 'claude-haiku-4.5')!;
    assert.doesNotMatch(haiku.description!, /retire/);
  });
});
