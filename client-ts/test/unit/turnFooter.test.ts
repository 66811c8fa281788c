import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import type { TurnInfo } from '../../src/protocol.generated';
import { initialState, reduce, turnFromInfo, type ChatViewState, type ViewTurn } from '../../webview/chat/state';
import { MODELS } from './fixtures';

// The views build real DOM nodes: give them a document.
before(() => {
  const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>');
  Object.assign(globalThis, { document: window.document, HTMLElement: window.HTMLElement });
});

function answer(overrides: Partial<ViewTurn> = {}): ViewTurn {
  return {
    id: 'a1', role: 'assistant', text: 'hi', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5',
    routeReason: 'Short request → Claude Haiku 4.5', credits: 0.4, status: 'complete', error: null, retryOf: null,
    context: [], rating: null, costUsd: null, ...overrides,
  };
}

const chat = (turns: ViewTurn[]): ChatViewState => ({ ...initialState(), models: MODELS, turns });

async function footer(t: ViewTurn, rated: [string, string | null][] = []): Promise<HTMLElement> {
  const { turnFooter } = await import('../../webview/chat/views/turnFooter');
  return turnFooter(t, chat([t]), { retryStronger: () => undefined, rate: (id, r) => rated.push([id, r]) });
}

describe('answer footer: thumbs and cost', () => {
  it('offers two toggle buttons, neither pressed, on a stored answer', async () => {
    const el = await footer(answer());
    const buttons = [...el.querySelectorAll<HTMLButtonElement>('button[data-rate]')];
    assert.deepEqual(buttons.map((b) => [b.getAttribute('aria-label'), b.getAttribute('aria-pressed'), b.type]), [
      ['Good answer', 'false', 'button'],
      ['Bad answer', 'false', 'button'],
    ]);
    assert.ok(buttons.every((b) => !b.hasAttribute('tabindex')), 'reachable with Tab like any button');
    assert.equal(el.querySelector('[role="group"]')?.getAttribute('aria-label'), 'Rate this answer');
  });

  it('shows the stored rating pressed; pressing it again clears it, the other one replaces it', async () => {
    const rated: [string, string | null][] = [];
    const el = await footer(answer({ rating: 'up' }), rated);
    const up = el.querySelector<HTMLButtonElement>('[data-rate="up"]')!;
    const down = el.querySelector<HTMLButtonElement>('[data-rate="down"]')!;
    assert.equal(up.getAttribute('aria-pressed'), 'true');
    assert.ok(up.querySelector('.codicon-thumbsup-filled'));
    assert.equal(down.getAttribute('aria-pressed'), 'false');
    up.click();
    down.click();
    assert.deepEqual(rated, [['a1', null], ['a1', 'down']]);
  });

  it('has no thumbs while streaming, on a local placeholder, or on a failed answer', async () => {
    for (const t of [answer({ status: 'streaming' }), answer({ id: 'r1-answer', status: 'cancelled' }), answer({ status: 'failed' })]) {
      assert.equal((await footer(t)).querySelectorAll('[data-rate]').length, 0, t.status);
    }
  });

  it('states the dollar cost next to the credits when the server knows it', async () => {
    const priced = await footer(answer({ costUsd: 0.0021 }));
    assert.equal(priced.querySelector('.credits')?.textContent, '0.4 credits');
    assert.equal(priced.querySelector('.cost-usd')?.textContent, '$0.0021');
    assert.equal((await footer(answer())).querySelector('.cost-usd'), null);
  });
});

describe('ratings in the chat state', () => {
  const info = (rating: TurnInfo['rating']): TurnInfo => ({
    id: 'a1', role: 'assistant', text: 'hi', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5',
    routeReason: null, credits: 0.4, status: 'complete', createdAt: '', usage: null, context: [], error: null,
    retryOf: null, rating, costUsd: 0.0021,
  });

  it('a reloaded conversation keeps the stored rating and cost', () => {
    assert.deepEqual([turnFromInfo(info('down')).rating, turnFromInfo(info('down')).costUsd], ['down', 0.0021]);
  });

  it('chat/rated sets (and clears) the rating of that answer only', () => {
    const s = chat([answer(), answer({ id: 'a2' })]);
    const up = reduce(s, { type: 'chat/rated', data: { turnId: 'a2', rating: 'up' } });
    assert.deepEqual(up.turns.map((t) => t.rating), [null, 'up']);
    const cleared = reduce(up, { type: 'chat/rated', data: { turnId: 'a2', rating: null } });
    assert.deepEqual(cleared.turns.map((t) => t.rating), [null, null]);
  });
});

describe('a stopped signed-in answer: its charge comes later', () => {
  const stored = (credits: number): TurnInfo => ({
    id: 't2', role: 'assistant', text: 'partial', thinking: null, modelId: 'auto', routedModel: 'claude-haiku-4.5',
    routeReason: null, credits, status: 'cancelled', createdAt: '', usage: null, context: [], error: null,
    retryOf: null, rating: null, costUsd: null,
  });
  const conversation = (credits: number) => ({ id: 'c1', title: 't', createdAt: '', updatedAt: '', turns: [stored(credits)] });

  it('shows the charge as pending, not the server estimate, until turnCharged brings the gateway figure', async () => {
    const { turnFooter } = await import('../../webview/chat/views/turnFooter');
    const footerOf = (s: ChatViewState) => turnFooter(s.turns.at(-1)!, s, { retryStronger: () => undefined, rate: () => undefined });
    // The controller marks the turn pending as the cancel is answered; the reload brings the server's estimate.
    let s = reduce({ ...initialState(), models: MODELS }, { type: 'chat/charge', data: { turnId: 't2', credits: null } });
    s = reduce(s, { type: 'conversation/loaded', data: conversation(0.12) });
    assert.equal(s.turns[0]!.chargePending, true);
    assert.equal(footerOf(s).querySelector('.credits')?.textContent, 'charge pending');
    s = reduce(s, { type: 'chat/charge', data: { turnId: 't2', credits: 0.57 } });
    assert.equal(footerOf(s).querySelector('.credits')?.textContent, '0.57 credits');
    // A later reload (the stored turn now holds the same figure) keeps it.
    s = reduce(s, { type: 'conversation/loaded', data: conversation(0.57) });
    assert.deepEqual([s.turns[0]!.credits, s.turns[0]!.chargePending], [0.57, false]);
  });

  it('marks the stopped placeholder pending too, and a charge that came first is not pending', () => {
    const pending = { requestId: 'r1', prompt: 'hi', context: [], retryOf: null, modelId: 'auto', fallback: false, text: 'p', thinking: '' };
    const base = reduce(initialState(), { type: 'chat/started', data: { ...pending, route: null } });
    const routed = reduce(base, { type: 'chat/route', data: { requestId: 'r1', route: { kind: 'report', type: 'route', modelId: 'auto', routedModel: 'claude-haiku-4.5', routeReason: 'r', message: 'r', fallback: false, conversationId: 'c1', turnId: 't2' } } });
    const waiting = reduce(reduce(routed, { type: 'chat/charge', data: { turnId: 't2', credits: null } }), { type: 'chat/cancelled', data: { requestId: 'r1' } });
    assert.equal(waiting.turns.at(-1)!.chargePending, true);
    const known = reduce(reduce(routed, { type: 'chat/charge', data: { turnId: 't2', credits: 0.3 } }), { type: 'chat/cancelled', data: { requestId: 'r1' } });
    assert.equal(known.turns.at(-1)!.chargePending, false);
  });
});
