// What the user can do in the chat, carried out: requests to the extension plus the store updates
// that go with them. Views call these and nothing else; they never touch the messenger or the store.
import type { ConversationSummary } from '../../src/protocol.generated';
import type { ErrorAction } from '../../src/shared/errors';
import type { ChatEvents, ChatRequests, ContextChip } from '../../src/shared/webviewProtocol';
import type { Messenger } from '../shared/messenger';
import { actionRunParams, retractsFailedMessage } from './errorActions';
import type { EstimateScheduler } from './estimates';
import { serverAcceptsMessages, type InlineError } from './state';
import type { ChatStore } from './store';

export interface ChatIntents {
  editDraft(text: string): void;
  send(): void;
  stop(): void;
  newChat(): void;
  attachContext(kind: ContextChip['kind']): Promise<void>;
  /** A chip the extension offers (a command, or the current file when the chat opens). */
  attachChip(chip: ContextChip): void;
  detachChip(chipId: string): void;
  toggleThinking(): void;
  selectModel(modelId: string): void;
  retryStronger(turnId: string): void;
  /** Thumbs up or down on an answer; the pressed one again clears it. */
  rate(turnId: string, rating: 'up' | 'down' | null): void;
  runAction(action: ErrorAction, failed?: InlineError): void;
  dismissError(): void;
  dismissNotice(): void;
  copyCode(code: string): Promise<void>;
  insertCode(code: string): void;
  showUsage(): void;
  toggleHistory(open?: boolean): Promise<void>;
  openConversation(conversationId: string): Promise<void>;
  deleteConversation(conversationId: string): Promise<void>;
}

export function createIntents(
  messenger: Messenger<ChatRequests, ChatEvents>,
  store: ChatStore,
  estimates: EstimateScheduler,
): ChatIntents {
  /** A request nobody waits on: if the extension fails it, say so in the notice rather than drop it. */
  const fire = <K extends keyof ChatRequests & string>(method: K, params: ChatRequests[K]['params'], failure: string): void => {
    messenger.request(method, params).catch((err: unknown) => {
      store.dispatch({ type: 'notice', data: { message: `${failure}: ${err instanceof Error ? err.message : String(err)}` } });
    });
  };
  const intents: ChatIntents = {
    editDraft(text) {
      store.updateDraft({ type: 'edit', text });
      estimates.schedule();
    },
    send() {
      const { draft, chat } = store;
      const prompt = draft.text.trim();
      // While the server (re)starts the request waits for it; only a failed or stopped server refuses.
      if (!prompt || chat.pending || !serverAcceptsMessages(chat)) return;
      fire('chat/send', { prompt, context: draft.chips.map((c) => c.item), thinking: draft.thinking }, 'Could not send the message');
      store.updateDraft({ type: 'sent' });
    },
    stop() {
      if (store.chat.pending) fire('chat/stop', {}, 'Could not stop the answer');
    },
    newChat() {
      void intents.toggleHistory(false);
      fire('chat/new', {}, 'Could not start a new chat');
    },
    async attachContext(kind) {
      const chip = await messenger.request('context/add', { kind });
      if (chip) intents.attachChip(chip);
    },
    attachChip(chip) {
      if (store.updateDraft({ type: 'attach', chip })) estimates.schedule();
    },
    detachChip(chipId) {
      store.updateDraft({ type: 'detach', chipId });
      estimates.schedule();
    },
    toggleThinking() {
      store.updateDraft({ type: 'toggleThinking' });
    },
    selectModel(modelId) {
      // Locked models go to the server too: it refuses them with the reason (shown as a notice).
      fire('model/select', { modelId }, 'Could not switch the model');
    },
    retryStronger(turnId) {
      fire('chat/retry', { turnId }, 'Could not retry');
    },
    rate(turnId, rating) {
      fire('chat/rate', { turnId, rating }, 'Could not save your rating');
    },
    runAction(action, failed) {
      if (retractsFailedMessage(action)) store.dispatch({ type: 'local/retractFailed' });
      fire('action/run', actionRunParams(action, failed), 'Could not do that');
    },
    dismissError() {
      store.dispatch({ type: 'local/dismissError' });
    },
    dismissNotice() {
      store.dispatch({ type: 'local/dismissNotice' });
    },
    async copyCode(code) {
      await messenger.request('code/copy', { code });
    },
    insertCode(code) {
      fire('code/insert', { code }, 'Could not insert the code');
    },
    showUsage() {
      fire('action/run', { action: 'showUsage' }, 'Could not open the usage view');
    },
    async toggleHistory(open = !store.history.open) {
      store.updateHistory(open ? { open, items: null } : { open });
      if (!open) return;
      let items: ConversationSummary[];
      try {
        items = await messenger.request('history/list', {});
      } catch {
        items = [];
      }
      store.updateHistory({ items });
    },
    async openConversation(conversationId) {
      await messenger.request('history/open', { conversationId });
      void intents.toggleHistory(false);
    },
    async deleteConversation(conversationId) {
      store.updateHistory({ items: await messenger.request('history/delete', { conversationId }) });
    },
  };
  return intents;
}
