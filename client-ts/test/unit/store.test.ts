import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContextChip } from '../../src/shared/webviewProtocol';
import { draftFromSaved, type PersistedDraft } from '../../webview/chat/draft';
import { ChatStore, type ChangedPart } from '../../webview/chat/store';
import { estimate } from './fixtures';

function storeWithLog(saved?: PersistedDraft) {
  const persisted: PersistedDraft[] = [];
  const changes: ChangedPart[] = [];
  const store = new ChatStore(draftFromSaved(saved), (d) => persisted.push(d));
  store.subscribe((part) => changes.push(part));
  return { store, persisted, changes };
}

const chip: ContextChip = { id: 'f', kind: 'file', label: 'fib.py', item: { uri: 'file:///ws/fib.py', text: 'def fib' } };

describe('chat store', () => {
  it('persists what the user typed and attached, not the estimate', () => {
    const { store, persisted, changes } = storeWithLog({ draft: 'hel', chips: [], thinking: false });
    assert.equal(store.draft.text, 'hel');
    store.updateDraft({ type: 'edit', text: 'hello' });
    store.updateDraft({ type: 'attach', chip });
    store.updateDraft({ type: 'toggleThinking' });
    store.updateDraft({ type: 'estimated', estimate: estimate() });
    assert.deepEqual(persisted, [
      { draft: 'hello', chips: [], thinking: false },
      { draft: 'hello', chips: [chip], thinking: false },
      { draft: 'hello', chips: [chip], thinking: true },
    ]);
    assert.deepEqual(changes, ['draft', 'draft', 'draft', 'draft']);
  });

  it('reports a draft update that changed nothing', () => {
    const { store, persisted, changes } = storeWithLog();
    assert.equal(store.updateDraft({ type: 'attach', chip }), true);
    assert.equal(store.updateDraft({ type: 'attach', chip: { ...chip, id: 'again' } }), false);
    assert.equal(persisted.length, 1);
    assert.deepEqual(changes, ['draft']);
  });

  it('tells listeners about conversation changes with the state before them', () => {
    const { store } = storeWithLog();
    const seen: [ChangedPart, string | null, string | null][] = [];
    store.subscribe((part, before) => seen.push([part, before.title, store.chat.title]));
    store.dispatch({ type: 'conversation/loaded', data: { id: 'c1', title: 'Fibonacci', createdAt: '', updatedAt: '', turns: [] } });
    store.dispatch({ type: 'ui/focus', data: {} });
    assert.deepEqual(seen, [['chat', null, 'Fibonacci']], 'an event the reducer ignores changes nothing');
  });

  it('keeps the history pane open while its list loads', () => {
    const { store, changes } = storeWithLog();
    store.updateHistory({ open: true, items: null });
    store.updateHistory({ items: [] });
    assert.deepEqual(store.history, { open: true, items: [] });
    store.updateHistory({ open: false });
    assert.deepEqual(store.history, { open: false, items: [] });
    assert.deepEqual(changes, ['history', 'history', 'history']);
  });
});
