import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/protocol.generated';
import { ClientErrorCode, describeError, isCancellation } from '../../src/shared/errors';
import { MODELS } from './fixtures';

const ids = (e: { actions: { id: string }[] }) => e.actions.map((a) => a.id);

describe('server errors become actionable messages', () => {
  it('1004 missing key → set key', () => {
    const e = describeError({ code: ErrorCode.AUTH_REQUIRED, message: 'No API key', data: { reason: 'missing_key' } });
    assert.equal(e.kind, 'auth');
    assert.deepEqual(ids(e), ['setApiKey']);
    assert.match(e.title, /API key is needed/);
  });
  it('1004 missing key with a gateway configured → sign in first, then set key', () => {
    const e = describeError({
      code: ErrorCode.AUTH_REQUIRED,
      message: 'Not signed in to Switchboard Cloud (https://cloud.example) and no Anthropic API key',
      data: { reason: 'missing_key', gatewayUrl: 'https://cloud.example' },
    });
    assert.equal(e.kind, 'auth');
    assert.deepEqual(ids(e), ['signIn', 'setApiKey']);
    assert.match(e.title, /sign in/i);
    assert.match(e.message, /Sign in to Switchboard Cloud \(https:\/\/cloud\.example\)/);
    assert.match(e.message, /API key/);
    // Without a gateway, the key alone (as before).
    assert.deepEqual(ids(describeError({ code: 1004, message: '', data: { reason: 'missing_key', gatewayUrl: null } })), ['setApiKey']);
  });
  it('1004 rejected key → update key', () => {
    const e = describeError({ code: 1004, message: 'rejected', data: { reason: 'rejected_key' } });
    assert.equal(e.actions[0]!.label, 'Update API key');
  });
  it('1001 plan forbids the model → upgrade or Auto, with the reason', () => {
    const e = describeError(
      { code: 1001, message: 'Claude Opus 4.5 needs Pro, Pro+ or Power', data: { modelId: 'claude-opus-4.5', plan: 'free', allowedPlans: ['pro', 'pro_plus', 'power'] } },
      MODELS,
    );
    assert.equal(e.kind, 'plan');
    assert.equal(e.title, 'Claude Opus 4.5 isn’t included in your plan');
    assert.equal(e.message, 'Claude Opus 4.5 needs Pro, Pro+ or Power');
    assert.deepEqual(ids(e), ['upgrade', 'useAuto']);
    assert.equal(e.actions[0]!.label, 'Upgrade to Pro');
  });
  it('1002 credits exhausted → overage when available, else upgrade', () => {
    assert.deepEqual(ids(describeError({ code: 1002, message: '', data: { plan: 'pro', remainingCredits: 0, overageAvailable: true } })), ['enableOverage', 'showUsage']);
    assert.deepEqual(ids(describeError({ code: 1002, message: '', data: { plan: 'free', remainingCredits: 0, overageAvailable: false } })), ['upgrade', 'showUsage']);
  });

  it('1002 with overage on (its budget reached) → raise the budget, not "Enable overage"', () => {
    const ui = describeError({
      code: 1002,
      message: 'You’ve reached your $20.00 overage budget for this month. Raise the budget to keep going, or wait until your credits reset on Dec 1.',
      data: { plan: 'pro', remainingCredits: 0, overageAvailable: true, overageEnabled: true, neededCredits: null },
    });
    assert.equal(ui.kind, 'credits');
    assert.deepEqual(ids(ui), ['raiseOverageBudget', 'showUsage']);
    assert.equal(ui.actions[0]!.label, 'Raise the overage budget');
    assert.match(ui.title, /overage budget/);
    assert.doesNotMatch(ui.actions.map((a) => a.label).join(' '), /Enable overage/);
    // Overage off: still the offer to turn it on.
    assert.deepEqual(ids(describeError({ code: 1002, message: '', data: { plan: 'pro', remainingCredits: 0, overageAvailable: true, overageEnabled: false } })), ['enableOverage', 'showUsage']);
  });

  it('1002 with credits left is not "out of credits": the answer does not fit, try a cheaper model', () => {
    const ui = describeError({ code: 1002, message: 'This answer could cost up to 16 credits and 1.94 are left', data: { plan: 'pro', remainingCredits: 1.94, overageAvailable: true, neededCredits: 16 } });
    assert.equal(ui.title, 'Not enough credits left for this answer');
    assert.doesNotMatch(ui.title, /out of credits/i);
    assert.deepEqual(ids(ui), ['retryWithModel', 'showUsage']);
    assert.equal(ui.actions[0]!.modelId, 'claude-haiku-4.5');
  });
  it('1004 about the gateway session → sign in again, not the API key', () => {
    for (const reason of ['expired', 'denied', 'no_gateway', 'unreachable']) {
      const e = describeError({ code: 1004, message: 'Your session ended', data: { reason } });
      assert.equal(e.title, 'Sign in to Switchboard Cloud again', reason);
      assert.deepEqual(ids(e), ['signIn']);
    }
    assert.deepEqual(ids(describeError({ code: 1004, message: '', data: { reason: 'missing_key' } })), ['setApiKey']);
  });
  it('1003 upstream → retry and the suggested model', () => {
    const e = describeError({ code: 1003, message: 'overloaded', data: { status: 529, type: 'overloaded_error', retryable: true, suggestedModel: 'claude-sonnet-4.5' } }, MODELS);
    assert.equal(e.title, 'Anthropic API error (529)');
    assert.deepEqual(ids(e), ['retry', 'retryWithModel']);
    assert.equal(e.actions[1]!.label, 'Try Claude Sonnet 4.5');
    assert.equal(e.actions[1]!.modelId, 'claude-sonnet-4.5');
    const fatal = describeError({ code: 1003, message: 'bad request', data: { status: 400, type: 'invalid_request_error', retryable: false, suggestedModel: null } });
    assert.deepEqual(ids(fatal), ['showLogs']);
  });
  it('1005, 1006, -32602, -32800 and unknown codes', () => {
    assert.deepEqual(ids(describeError({ code: 1005, message: 'gone', data: { conversationId: 'x' } })), ['newChat']);
    const big = describeError({ code: 1006, message: 'Prompt too large', data: { modelId: 'claude-haiku-4.5', inputTokens: 250_000, contextWindow: 200_000 } }, MODELS);
    assert.match(big.message, /250k tokens; Claude Haiku 4\.5 takes 200k/);
    const bad = describeError({ code: -32602, message: "Unknown model 'x'", data: { modelId: 'x', errors: [] } });
    assert.equal(bad.title, 'Unknown model “x”');
    assert.deepEqual(ids(bad), ['useAuto']);
    const strongest = describeError({ code: -32602, message: 'Claude Sonnet 4.5 is already the strongest model your plan allows.', data: { modelId: 'claude-sonnet-4.5', errors: [] } });
    assert.equal(strongest.title, 'The server refused the request');
    assert.match(strongest.message, /already the strongest/);
    assert.equal(describeError({ code: -32800, message: 'cancelled' }).kind, 'cancelled');
    assert.ok(isCancellation({ code: -32800, message: 'x' }));
    assert.ok(!isCancellation(new Error('x')));
    assert.deepEqual(ids(describeError({ code: ClientErrorCode.SERVER_UNAVAILABLE, message: 'not running' })), ['restartServer', 'showLogs']);
    assert.equal(describeError(new Error('boom')).kind, 'unknown');
    assert.equal(describeError('weird').message, 'weird');
  });
});
