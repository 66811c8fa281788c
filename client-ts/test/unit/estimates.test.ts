import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { EstimateView } from '../../src/shared/webviewProtocol';
import { ESTIMATE_DELAY_MS, EstimateScheduler, estimateIsStale } from '../../webview/chat/estimates';
import { initialState } from '../../webview/chat/state';
import { estimate } from './fixtures';

/** A question to the extension that the test answers (or fails) when it chooses. */
function pendingAnswers() {
  const asked: { resolve: (v: EstimateView | null) => void; reject: (e: Error) => void }[] = [];
  const ask = () => new Promise<EstimateView | null>((resolve, reject) => asked.push({ resolve, reject }));
  return { asked, ask };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('estimate scheduling', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('asks once the user pauses typing', () => {
    const { asked, ask } = pendingAnswers();
    const scheduler = new EstimateScheduler(ask, () => {});
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS - 1);
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS - 1);
    assert.equal(asked.length, 0);
    mock.timers.tick(1);
    assert.equal(asked.length, 1);
  });

  it('keeps only the answer to the latest question', async () => {
    const { asked, ask } = pendingAnswers();
    const received: (number | null)[] = [];
    const scheduler = new EstimateScheduler(ask, (e) => received.push(e ? e.estimate.estimatedCredits : null));
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS);
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS);
    asked[1]!.resolve(estimate({ estimatedCredits: 2 }));
    asked[0]!.resolve(estimate({ estimatedCredits: 1 }));
    await settle();
    assert.deepEqual(received, [2], 'the older answer arrived last and is dropped');
  });

  it('passes on an empty estimate and drops a failed one', async () => {
    const { asked, ask } = pendingAnswers();
    const received: (EstimateView | null)[] = [];
    const scheduler = new EstimateScheduler(ask, (e) => received.push(e));
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS);
    asked[0]!.resolve(null);
    await settle();
    scheduler.schedule();
    mock.timers.tick(ESTIMATE_DELAY_MS);
    asked[1]!.reject(new Error('server restarting'));
    await settle();
    assert.deepEqual(received, [null]);
  });

  it('is stale when the conversation, the model or the transcript changes', () => {
    const s = initialState();
    assert.equal(estimateIsStale(s, { ...s, notice: { message: 'hi' } }), false);
    assert.equal(estimateIsStale(s, { ...s, selected: 'claude-haiku-4.5' }), true);
    assert.equal(estimateIsStale(s, { ...s, conversationId: 'c1' }), true);
    const turn = { id: 't', role: 'user' as const, text: 'x', thinking: null, modelId: null, routedModel: null, routeReason: null, credits: 0, status: 'complete' as const, error: null, retryOf: null, context: [] };
    assert.equal(estimateIsStale(s, { ...s, turns: [turn] }), true);
  });
});
