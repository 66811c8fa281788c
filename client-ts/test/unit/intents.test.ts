import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatEvents, ChatRequests } from '../../src/shared/webviewProtocol';
import type { Messenger } from '../../webview/shared/messenger';
import { EstimateScheduler } from '../../webview/chat/estimates';
import { createIntents } from '../../webview/chat/intents';
import { ChatStore } from '../../webview/chat/store';
import { draftFromSaved } from '../../webview/chat/draft';

/** The extension's side of the webview channel, failing every request the way its messenger does. */
function failingExtension(message: string): { messenger: Messenger<ChatRequests, ChatEvents>; asked: string[] } {
  const asked: string[] = [];
  const messenger = {
    request: (method: string) => {
      asked.push(method);
      return Promise.reject(new Error(message));
    },
  } as unknown as Messenger<ChatRequests, ChatEvents>;
  return { messenger, asked };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('chat intents that nobody awaits', () => {
  it('show a failed request in the notice instead of dropping it', async () => {
    const { messenger, asked } = failingExtension('the Switchboard server is not running');
    const store = new ChatStore(draftFromSaved(undefined), () => undefined);
    const intents = createIntents(messenger, store, new EstimateScheduler(async () => null, () => undefined));

    intents.rate('t1', 'up');
    await settle();
    assert.deepEqual(asked, ['chat/rate']);
    assert.equal(store.chat.notice?.message, 'Could not save your rating: the Switchboard server is not running');

    intents.selectModel('claude-haiku-4.5');
    await settle();
    assert.equal(store.chat.notice?.message, 'Could not switch the model: the Switchboard server is not running');
  });
});
