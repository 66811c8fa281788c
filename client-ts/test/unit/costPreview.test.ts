import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contextMeter, creditsLeft, estimateLine } from '../../webview/chat/costPreview';
import { estimate, MODELS, usage } from './fixtures';

const haiku = MODELS.find((m) => m.id === 'claude-haiku-4.5')!;

describe('cost preview in the composer', () => {
  it('shows the estimate of a draft with what it is based on', () => {
    const line = estimateLine(estimate({ modelId: 'claude-haiku-4.5' }), 'Explain this', false, MODELS);
    assert.equal(line.text, '≈ 0.42 credits');
    assert.equal(line.title, 'Estimated for this message on Claude Haiku 4.5: 1.5k input tokens, ~800 output tokens');
    assert.equal(line.warn, false);
  });

  it('warns when the plan or the context window refuses the message', () => {
    const locked = estimateLine(estimate({ allowed: false, fitsContext: false }), 'x', false, MODELS);
    assert.equal(locked.text, '≈ 0.42 credits · not on your plan');
    assert.equal(locked.warn, true);
    const tooLarge = estimateLine(estimate({ fitsContext: false }), 'x', false, MODELS);
    assert.equal(tooLarge.text, '≈ 0.42 credits · too large for the context window');
    assert.equal(tooLarge.warn, true);
  });

  it('shows no estimate for an empty draft, and "Answering…" while an answer streams', () => {
    assert.deepEqual(estimateLine(estimate(), '  ', false, MODELS), { text: '', title: '', warn: false });
    assert.deepEqual(estimateLine(null, 'x', true, MODELS), { text: 'Answering…', title: '', warn: false });
  });

  it('measures the context window from the estimate, else the selected model', () => {
    const m = contextMeter(estimate({ inputTokens: 50_000, contextWindow: 100_000 }), haiku);
    assert.deepEqual(m, {
      percent: 50,
      fillWidth: '50%',
      level: 'ok',
      label: '50k / 100k',
      title: 'Context window: 50k of 100k tokens (50%) for this conversation and message',
    });
    const empty = contextMeter(null, { ...haiku, contextWindow: 1_000_000 });
    assert.equal(empty.label, '0 / 1M');
    assert.equal(empty.fillWidth, '0%');
    assert.equal(contextMeter(null, undefined).label, '0 / 200k', 'before the server listed the models');
  });

  it('shows a sliver for a little use and warns as the window fills', () => {
    assert.equal(contextMeter(estimate({ inputTokens: 100 }), undefined).fillWidth, '2%');
    const level = (inputTokens: number) => contextMeter(estimate({ inputTokens, contextWindow: 1000 }), undefined).level;
    assert.deepEqual([level(749), level(750), level(949), level(950), level(5000)], ['ok', 'warn', 'warn', 'error', 'error']);
    assert.equal(contextMeter(estimate({ inputTokens: 5000, contextWindow: 1000 }), undefined).percent, 100);
  });

  it('shows the credits left, never below zero', () => {
    assert.deepEqual(creditsLeft(usage()), { text: '812.5 credits left', level: 'ok' });
    assert.deepEqual(creditsLeft(usage({ usedCredits: 1010, remainingCredits: -10 })), { text: '0 credits left', level: 'error' });
  });
});
