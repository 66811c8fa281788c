import assert from 'node:assert/strict';
import { before, describe, it, mock } from 'node:test';
import { JSDOM } from 'jsdom';
import { initialState, type ChatViewState } from '../../webview/chat/state';
import type { UiError } from '../../src/shared/errors';
import type { ChatModel } from '../../webview/chat/store';

before(() => {
  const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>');
  Object.assign(globalThis, { document: window.document, HTMLElement: window.HTMLElement });
});

/** A notice view over a mutable model, counting the dismissals its timer asks for. */
async function noticeOver(notice: ChatViewState['notice']) {
  const { createNotice } = await import('../../webview/chat/views/notice');
  const model = { chat: { ...initialState(), notice } } as unknown as { chat: ChatViewState } & ChatModel;
  const dismissed: number[] = [];
  const view = createNotice(model, { runAction: () => undefined, dismissNotice: () => dismissed.push(Date.now()) });
  return { view, model, dismissed };
}

describe('the transient notice', () => {
  it('goes six seconds after it appeared, however often the panel redraws meanwhile', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const { view, dismissed } = await noticeOver({ message: 'Switched to Claude Haiku 4.5' });
      view.render();
      assert.equal(view.el.hidden, false);
      for (let t = 0; t < 5; t++) {
        mock.timers.tick(1000);
        view.render(); // a streamed answer or a usage update redraws every view
      }
      assert.deepEqual(dismissed, [], 'still shown after five seconds');
      mock.timers.tick(1000);
      assert.deepEqual(dismissed, [6000], 'dismissed six seconds after it appeared, not after the last redraw');
    } finally {
      mock.timers.reset();
    }
  });

  it('starts a fresh countdown for a new notice, and none for an error', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const { view, model, dismissed } = await noticeOver({ message: 'first' });
      view.render();
      mock.timers.tick(4000);
      (model as { chat: ChatViewState }).chat = { ...model.chat, notice: { message: 'second' } };
      view.render();
      assert.match(view.el.textContent ?? '', /second/);
      mock.timers.tick(4000);
      assert.deepEqual(dismissed, [], 'the second notice gets its own six seconds');
      mock.timers.tick(2000);
      assert.deepEqual(dismissed, [10000]);

      const error: UiError = { code: 1003, kind: 'upstream', title: 'Anthropic is unavailable', message: 'Try again.', actions: [] };
      (model as { chat: ChatViewState }).chat = { ...model.chat, notice: { message: '', error } };
      view.render();
      mock.timers.tick(60_000);
      assert.deepEqual(dismissed, [10000], 'an error stays until dismissed');
      assert.match(view.el.textContent ?? '', /Anthropic is unavailable/);
    } finally {
      mock.timers.reset();
    }
  });
});
