import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContextChip } from '../../src/shared/webviewProtocol';
import { contextLabel, draftFromSaved, persistedDraft, reduceDraft, type Draft } from '../../webview/chat/draft';
import { estimate } from './fixtures';

const selection = (start: number, end: number, uri = 'file:///ws/src/fib.py'): ContextChip => ({
  id: `${uri}#${start}`,
  kind: 'selection',
  label: `fib.py:${start + 1}-${end + 1}`,
  item: { uri, text: 'def fib', range: { start: { line: start, character: 0 }, end: { line: end, character: 4 } } },
});
const file: ContextChip = { id: 'f', kind: 'file', label: 'README.md', item: { uri: 'file:///ws/README.md', text: '# Demo' } };

describe('the draft of the next message', () => {
  it('comes back from the persisted webview state, without an estimate', () => {
    const d = draftFromSaved({ draft: 'half a question', chips: [file], thinking: true });
    assert.deepEqual(d, { text: 'half a question', chips: [file], thinking: true, estimate: null });
    assert.deepEqual(persistedDraft({ ...d, estimate: estimate() }), { draft: 'half a question', chips: [file], thinking: true });
    assert.deepEqual(draftFromSaved(undefined), { text: '', chips: [], thinking: false, estimate: null });
  });

  it('attaches a piece of context once', () => {
    let d = reduceDraft(draftFromSaved(undefined), { type: 'attach', chip: selection(0, 9) });
    d = reduceDraft(d, { type: 'attach', chip: file });
    const again = reduceDraft(d, { type: 'attach', chip: { ...selection(0, 9), id: 'other-id' } });
    assert.equal(again, d, 'the same file and range is not attached twice');
    const otherRange = reduceDraft(d, { type: 'attach', chip: selection(2, 4) });
    assert.deepEqual(otherRange.chips.map((c) => c.label), ['fib.py:1-10', 'README.md', 'fib.py:3-5']);
    assert.deepEqual(reduceDraft(otherRange, { type: 'detach', chipId: 'f' }).chips.map((c) => c.label), ['fib.py:1-10', 'fib.py:3-5']);
  });

  it('sending clears the text, the chips and the estimate but keeps Think', () => {
    let d: Draft = { text: 'explain', chips: [file], thinking: false, estimate: estimate() };
    d = reduceDraft(d, { type: 'toggleThinking' });
    const sent = reduceDraft(d, { type: 'sent' });
    assert.deepEqual(sent, { text: '', chips: [], thinking: true, estimate: null });
  });

  it('keeps the latest estimate, and an empty one', () => {
    const d = reduceDraft(draftFromSaved(undefined), { type: 'estimated', estimate: estimate({ estimatedCredits: 3 }) });
    assert.equal(d.estimate?.estimate.estimatedCredits, 3);
    assert.equal(reduceDraft(d, { type: 'estimated', estimate: null }).estimate, null);
  });

  it('restores a message that could not be sent, with its context as chips', () => {
    const failed = { prompt: 'Explain this code', context: [selection(0, 9).item, file.item] };
    const d = reduceDraft(draftFromSaved({ draft: '  \n', chips: [], thinking: false }), { type: 'restore', ...failed });
    assert.equal(d.text, 'Explain this code');
    assert.deepEqual(
      d.chips.map((c) => [c.id, c.kind, c.label]),
      [['restored-0', 'selection', 'fib.py:1-10'], ['restored-1', 'file', 'README.md']],
    );
    const typing = draftFromSaved({ draft: 'a new question', chips: [], thinking: false });
    assert.equal(reduceDraft(typing, { type: 'restore', ...failed }), typing, 'a new message is not overwritten');
  });

  it('labels context by file name and lines', () => {
    assert.equal(contextLabel(selection(11, 29).item), 'fib.py:12-30');
    assert.equal(contextLabel({ uri: 'file:///ws/my%20notes.md', text: '' }), 'my notes.md');
    assert.equal(contextLabel({ uri: 'untitled', text: '' }), 'untitled');
    assert.equal(contextLabel({ uri: 'file:///ws/100%.md', text: '' }), '100%.md');
    assert.equal(contextLabel({ uri: 'file:///ws/bad%E0%A4%A.md', text: '' }), 'bad%E0%A4%A.md');
  });
});
