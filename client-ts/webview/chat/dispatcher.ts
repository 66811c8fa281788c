// Events from the extension, wired to the store: every event goes through the reducer, and a few
// also move the draft, the history pane or the focus.
import type { ChatEvents, ChatRequests } from '../../src/shared/webviewProtocol';
import type { Messenger } from '../shared/messenger';
import type { EstimateScheduler } from './estimates';
import type { ChatIntents } from './intents';
import type { ChatAction, InlineError } from './state';
import type { ChatStore } from './store';

export interface DispatcherDeps {
  store: ChatStore;
  intents: Pick<ChatIntents, 'attachChip' | 'toggleHistory'>;
  estimates: EstimateScheduler;
  focusPrompt(): void;
}

export function dispatchExtensionEvents(messenger: Messenger<ChatRequests, ChatEvents>, deps: DispatcherDeps): void {
  const { store, intents, estimates, focusPrompt } = deps;
  messenger.onAny((event, data) => {
    const authError = store.chat.inlineError?.error.kind === 'auth' ? store.chat.inlineError : null;
    store.dispatch({ type: event, data } as ChatAction);
    if (authError && event === 'state/server' && (data as ChatEvents['state/server']).hasApiKey) {
      restoreAfterKeySet(authError);
    }
  });
  // A key was just set: clear the "set a key" card and put the message back, ready to send again.
  function restoreAfterKeySet(failed: InlineError): void {
    store.dispatch({ type: 'local/retractFailed' });
    if (store.updateDraft({ type: 'restore', prompt: failed.prompt, context: failed.context })) focusPrompt();
  }
  messenger.on('context/added', (chip) => intents.attachChip(chip));
  messenger.on('ui/focus', () => {
    void intents.toggleHistory(false);
    focusPrompt();
  });
  messenger.on('ui/history', () => void intents.toggleHistory(true));
  messenger.on('chat/finished', () => estimates.schedule());
  messenger.on('conversation/loaded', () => {
    void intents.toggleHistory(false);
    estimates.schedule();
  });
}
