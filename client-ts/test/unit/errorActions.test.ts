import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actionRunParams, retractsFailedMessage } from '../../webview/chat/errorActions';
import type { InlineError } from '../../webview/chat/state';

const failed = (retryOf: string | null): InlineError => ({
  error: { code: 1003, kind: 'upstream', title: 'Anthropic API error (529)', message: 'overloaded', actions: [] },
  prompt: 'summarise',
  context: [{ uri: 'file:///ws/a.py', text: 'x' }],
  retryOf,
  modelId: 'claude-sonnet-4.5',
});

describe('error actions', () => {
  it('retries a recorded failed answer on the model first asked for', () => {
    assert.deepEqual(actionRunParams({ id: 'retry', label: 'Retry' }, failed('a1')), {
      action: 'retry', modelId: 'claude-sonnet-4.5', prompt: 'summarise', context: [{ uri: 'file:///ws/a.py', text: 'x' }], retryOf: 'a1',
    });
  });

  it('re-sends an unrecorded message on the current selection, or on a suggested model', () => {
    assert.equal(actionRunParams({ id: 'retry', label: 'Retry' }, failed(null)).modelId, undefined);
    assert.equal(actionRunParams({ id: 'retryWithModel', label: 'Use Haiku', modelId: 'claude-haiku-4.5' }, failed('a1')).modelId, 'claude-haiku-4.5');
  });

  it('runs an action without a failed message (banner, welcome card, notice)', () => {
    assert.deepEqual(actionRunParams({ id: 'restartServer', label: 'Restart' }), {
      action: 'restartServer', modelId: undefined, prompt: undefined, context: undefined, retryOf: undefined,
    });
  });

  it('takes the failed message back only for a retry', () => {
    assert.equal(retractsFailedMessage({ id: 'retry', label: 'Retry' }), true);
    assert.equal(retractsFailedMessage({ id: 'retryWithModel', label: 'Use Haiku', modelId: 'claude-haiku-4.5' }), true);
    assert.equal(retractsFailedMessage({ id: 'setApiKey', label: 'Set API key' }), false);
  });
});
