import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TurnInfo } from '../../src/protocol.generated';
import type { ChatSnapshot, PendingAnswer } from '../../src/shared/webviewProtocol';
import {
  canRetryStronger,
  displayedTurns,
  initialState,
  orderedModels,
  reduce,
  selectedModel,
  serverAcceptsMessages,
  type ChatAction,
  type ChatViewState,
} from '../../webview/chat/state';
import { chatResult, MODELS, route, usage } from './fixtures';

function snapshot(overrides: Partial<ChatSnapshot> = {}): ChatSnapshot {
  return {
    workspaceUri: 'file:///ws', server: { state: 'running' }, hasApiKey: true, models: MODELS, selected: 'auto',
    usage: usage(), conversation: null, pending: null, thinkingBudgetTokens: 8000, ...overrides,
  };
}

function pending(overrides: Partial<PendingAnswer> = {}): PendingAnswer {
  return { requestId: 'r1', prompt: 'hi', context: [], retryOf: null, modelId: 'auto', route: null, fallback: false, text: '', thinking: '', ...overrides };
}

const run = (s: ChatViewState, ...actions: ChatAction[]) => actions.reduce(reduce, s);

describe('chat view reducer', () => {
  it('loads a snapshot with its conversation', () => {
    const s = reduce(initialState(), {
      type: 'state/snapshot',
      data: snapshot({
        conversation: {
          id: 'c1', title: 'Greeting', createdAt: '', updatedAt: '',
          turns: [
            { id: 't1', role: 'user', text: 'hi', thinking: null, modelId: null, routedModel: null, routeReason: null, credits: 0, status: 'complete', createdAt: '', usage: null, context: [], error: null, retryOf: null },
            { id: 't2', role: 'assistant', text: 'hello', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5', routeReason: 'short', credits: 0.1, status: 'complete', createdAt: '', usage: null, context: [], error: null, retryOf: null },
          ],
        },
      }),
    });
    assert.equal(s.conversationId, 'c1');
    assert.equal(s.title, 'Greeting');
    assert.equal(s.turns.length, 2);
    assert.equal(s.usage?.remainingCredits, 812.5);
  });

  it('streams route, text and thinking into the pending answer, then finishes', () => {
    let s = run(
      reduce(initialState(), { type: 'state/snapshot', data: snapshot() }),
      { type: 'chat/started', data: pending() },
      { type: 'chat/route', data: { requestId: 'r1', route: route() } },
      { type: 'chat/thinking', data: { requestId: 'r1', text: 'hmm' } },
      { type: 'chat/text', data: { requestId: 'r1', text: 'Hel' } },
      { type: 'chat/text', data: { requestId: 'r1', text: 'lo' } },
    );
    assert.equal(s.pending?.text, 'Hello');
    assert.equal(s.pending?.thinking, 'hmm');
    const shown = displayedTurns(s);
    assert.deepEqual(shown.map((t) => [t.role, t.status]), [['user', 'complete'], ['assistant', 'streaming']]);
    assert.equal(shown[1]!.routedModel, 'claude-haiku-4.5');
    s = reduce(s, { type: 'chat/finished', data: { requestId: 'r1', result: chatResult() } });
    assert.equal(s.pending, null);
    assert.equal(s.conversationId, 'c1');
    assert.deepEqual(s.turns.map((t) => t.id), ['r1-prompt', 't2']);
    assert.equal(s.turns[1]!.credits, 0.12);
    assert.equal(s.turns[1]!.routeReason, 'Short question: Haiku answers it well');
    assert.equal(s.turns[1]!.costUsd, null, 'signed in (or no price): no dollar figure');
    s = reduce(s, { type: 'chat/started', data: { ...pending(), requestId: 'r2' } });
    s = reduce(s, { type: 'chat/finished', data: { requestId: 'r2', result: chatResult({ turnId: 't3', costUsd: 0.0031 }) } });
    assert.equal(s.turns.at(-1)!.costUsd, 0.0031, 'own key: the list price of the answer');
    // the reload from the server that follows every answer keeps the price (the transcript has none)
    const turn = (id: string): TurnInfo => ({
      id, role: 'assistant', text: 'x', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5', routeReason: 'r',
      credits: 0.1, status: 'complete', error: null, retryOf: null, context: [], createdAt: '', usage: null,
    });
    s = reduce(s, { type: 'conversation/loaded', data: { id: 'c1', title: 'Greeting', createdAt: '', updatedAt: '', turns: [turn('t2'), turn('t3')] } });
    assert.deepEqual(s.turns.map((t) => t.costUsd), [null, 0.0031]);
  });

  it('ignores events of another request', () => {
    const s = run(initialState(), { type: 'chat/started', data: pending() }, { type: 'chat/text', data: { requestId: 'other', text: 'x' } });
    assert.equal(s.pending?.text, '');
  });

  it('marks a fallback route', () => {
    const s = run(initialState(), { type: 'chat/started', data: pending() }, { type: 'chat/route', data: { requestId: 'r1', route: route() } }, {
      type: 'chat/route',
      data: { requestId: 'r1', route: route({ routedModel: 'claude-sonnet-4.5', fallback: true }) },
    });
    assert.equal(s.pending?.fallback, true);
    assert.equal(displayedTurns(s).at(-1)!.routedModel, 'claude-sonnet-4.5');
  });

  it('keeps a stopped answer with what streamed so far', () => {
    const s = run(initialState(), { type: 'chat/started', data: pending() }, { type: 'chat/text', data: { requestId: 'r1', text: 'partial' } }, { type: 'chat/cancelled', data: { requestId: 'r1' } });
    assert.equal(s.pending, null);
    assert.equal(s.turns.at(-1)!.status, 'cancelled');
    assert.equal(s.turns.at(-1)!.text, 'partial');
  });

  it('shows a failure inline with the prompt kept for Retry', () => {
    const error = { code: 1004, kind: 'auth' as const, title: 'key', message: 'm', actions: [{ id: 'setApiKey' as const, label: 'Set API key' }] };
    const s = run(initialState(), { type: 'chat/started', data: pending({ prompt: 'explain this', context: [{ uri: 'file:///a.ts', text: 'x' }] }) }, { type: 'chat/failed', data: { requestId: 'r1', error, conversation: null, retryTurnId: null } });
    assert.equal(s.inlineError?.prompt, 'explain this');
    assert.equal(s.inlineError?.context.length, 1);
    assert.equal(s.turns.at(-1)!.role, 'user');
    assert.equal(reduce(s, { type: 'local/dismissError' }).inlineError, null);
    const retracted = reduce(s, { type: 'local/retractFailed' });
    assert.equal(retracted.inlineError, null);
    assert.equal(retracted.turns.length, 0, 'the failed prompt is taken back before it is sent again');
    assert.equal(reduce(s, { type: 'chat/started', data: pending({ requestId: 'r2' }) }).inlineError, null);
  });

  it('shows the server’s record of a failed exchange and retries the failed answer', () => {
    const error = { code: 1003, kind: 'upstream' as const, title: 'Anthropic API error (529)', message: 'overloaded', actions: [{ id: 'retry' as const, label: 'Retry' }] };
    const turn = (id: string, role: 'user' | 'assistant', status: 'complete' | 'failed', retryOf: string | null = null) => ({
      id, role, text: role === 'user' ? 'summarise' : '', thinking: null, modelId: 'auto' as const, routedModel: null, routeReason: null,
      credits: 0, status, createdAt: '', usage: null, context: [], error: status === 'failed' ? 'HTTP 529' : null, retryOf,
    });
    const conversation = { id: 'c1', title: 't', createdAt: '', updatedAt: '', turns: [turn('u1', 'user', 'complete'), turn('a1', 'assistant', 'failed')] };
    const s = run(initialState(), { type: 'chat/started', data: pending({ prompt: 'summarise' }) }, { type: 'chat/failed', data: { requestId: 'r1', error, conversation, retryTurnId: 'a1' } });
    assert.equal(s.conversationId, 'c1');
    assert.equal(s.inlineError?.retryOf, 'a1');
    assert.equal(s.inlineError?.modelId, 'auto');
    assert.deepEqual(displayedTurns(s).map((t) => t.id), ['u1'], 'the error card stands for the failed answer');
    const retried = { ...conversation, turns: [...conversation.turns, { ...turn('a2', 'assistant', 'complete', 'a1'), text: 'ok' }] };
    const after = reduce(reduce(s, { type: 'local/retractFailed' }), { type: 'conversation/loaded', data: retried });
    assert.deepEqual(displayedTurns(after).map((t) => t.id), ['u1', 'a2'], 'a retried failure is hidden');
  });

  it('a retry adds an answer without a new prompt', () => {
    const base = run(initialState(), { type: 'chat/started', data: pending() }, { type: 'chat/finished', data: { requestId: 'r1', result: chatResult() } });
    const s = run(base, { type: 'chat/started', data: pending({ requestId: 'r2', prompt: '', retryOf: 't2' }) });
    assert.deepEqual(displayedTurns(s).map((t) => t.role), ['user', 'assistant', 'assistant']);
    const done = reduce(s, { type: 'chat/finished', data: { requestId: 'r2', result: chatResult({ turnId: 't3', modelId: 'claude-sonnet-4.5', routedModel: 'claude-sonnet-4.5' }) } });
    assert.equal(done.turns.at(-1)!.retryOf, 't2');
    assert.equal(done.turns.length, 3);
  });

  it('new chat clears the transcript; model and usage updates apply', () => {
    let s = run(initialState(), { type: 'chat/started', data: pending() }, { type: 'chat/finished', data: { requestId: 'r1', result: chatResult() } });
    s = reduce(s, { type: 'conversation/loaded', data: null });
    assert.equal(s.turns.length, 0);
    assert.equal(s.conversationId, null);
    s = reduce(s, { type: 'state/selected', data: { selected: 'claude-haiku-4.5', notice: 'Haiku is 0.4x' } });
    assert.equal(s.selected, 'claude-haiku-4.5');
    assert.equal(s.notice?.message, 'Haiku is 0.4x');
    s = reduce(s, { type: 'state/usage', data: usage({ remainingCredits: 800 }) });
    assert.equal(s.usage?.remainingCredits, 800);
  });

  it('orders Auto first and offers a stronger retry except from the top model', () => {
    assert.equal(orderedModels([...MODELS].reverse())[0]!.id, 'auto');
    const turn = { id: 't2', role: 'assistant' as const, text: 'x', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5', routeReason: null, credits: 1, status: 'complete' as const, error: null, retryOf: null, context: [] };
    const prompt = { ...turn, id: 't1', role: 'user' as const };
    const later = [prompt, turn, { ...prompt, id: 't3' }, { ...turn, id: 't4' }];
    assert.equal(canRetryStronger(turn, [prompt, turn], MODELS), true);
    assert.equal(canRetryStronger(turn, later, MODELS), false, 'only the latest answer can be retried');
    assert.equal(canRetryStronger(later[3]!, later, MODELS), true);
    assert.equal(canRetryStronger(turn, [prompt, turn, { ...prompt, id: 't3' }], MODELS), false, 'not once a newer prompt is waiting');
    const opus = { ...turn, routedModel: 'claude-opus-4.5' };
    assert.equal(canRetryStronger(opus, [prompt, opus], MODELS), false);
    const sonnet = { ...turn, routedModel: 'claude-sonnet-4.5' };
    assert.equal(canRetryStronger(sonnet, [prompt, sonnet], MODELS), false, 'Sonnet is the strongest model a plan without Opus allows');
    const unlocked = MODELS.map((m) => ({ ...m, available: true }));
    assert.equal(canRetryStronger(sonnet, [prompt, sonnet], unlocked), true);
    assert.equal(canRetryStronger({ ...turn, status: 'streaming' }, [prompt, turn], MODELS), false);
  });

  it('finds the selected model once the server listed it', () => {
    assert.equal(selectedModel({ models: MODELS, selected: 'claude-haiku-4.5' })?.name, 'Claude Haiku 4.5');
    assert.equal(selectedModel({ models: [], selected: 'auto' }), undefined);
  });

  it('takes messages unless the server failed or stopped (a starting one queues them)', () => {
    assert.deepEqual(
      (['starting', 'running', 'stopped'] as const).map((state) => serverAcceptsMessages({ server: { state } })),
      [true, true, false],
    );
    assert.equal(serverAcceptsMessages({ server: { state: 'failed', message: 'exited with 1' } }), false);
  });
});
