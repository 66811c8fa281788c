// The history pane: the workspace's conversations, newest first, to open or delete (asks once more).
import type { ConversationSummary } from '../../../src/protocol.generated';
import { relativeTime, truncate } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { ChatModel } from '../store';
import type { View } from './view';

/** How long "Delete?" waits for the confirming click. */
const CONFIRM_MS = 3000;

export type HistoryIntents = Pick<ChatIntents, 'toggleHistory' | 'openConversation' | 'deleteConversation'>;

export function createHistoryPane(model: ChatModel, intents: HistoryIntents): View {
  const el = h('section', { class: 'history', id: 'history', 'aria-label': 'Conversations in this workspace', hidden: true });
  return {
    el,
    render() {
      const { open, items } = model.history;
      el.hidden = !open;
      if (!open) return;
      el.replaceChildren(
        h(
          'div',
          { class: 'history-header' },
          h('span', {}, 'Conversations in this workspace'),
          h('button', { class: 'icon-btn', title: 'Close', 'aria-label': 'Close history', onclick: () => void intents.toggleHistory(false) }, icon('close')),
        ),
      );
      if (items === null) el.append(h('div', { class: 'history-empty' }, icon('loading', 'codicon-modifier-spin'), ' Loading…'));
      else if (!items.length) el.append(h('div', { class: 'history-empty' }, 'No conversations yet.'));
      else el.append(h('ul', { class: 'history-list', role: 'list' }, ...items.map((c) => row(c, c.id === model.chat.conversationId, intents))));
    },
  };
}

function row(c: ConversationSummary, current: boolean, intents: HistoryIntents): HTMLLIElement {
  const open = h(
    'button',
    { class: `history-item${current ? ' current' : ''}`, 'aria-label': `Open “${c.title}”`, onclick: () => void intents.openConversation(c.id) },
    h('span', { class: 'history-title' }, truncate(c.title || 'Untitled', 80)),
    h('span', { class: 'history-meta' }, `${relativeTime(c.updatedAt)} · ${c.turnCount} ${c.turnCount === 1 ? 'message' : 'messages'}`),
  );
  return h('li', { class: 'history-row' }, open, deleteButton(c, intents));
}

function deleteButton(c: ConversationSummary, intents: HistoryIntents): HTMLButtonElement {
  const button = h('button', { class: 'icon-btn history-delete', title: 'Delete conversation', 'aria-label': `Delete “${c.title}”` }, icon('trash'));
  let armed = false;
  button.addEventListener('click', (ev) => {
    ev.stopPropagation();
    if (armed) {
      void intents.deleteConversation(c.id);
      return;
    }
    armed = true;
    button.classList.add('armed');
    button.replaceChildren(h('span', {}, 'Delete?'));
    setTimeout(() => {
      armed = false;
      button.classList.remove('armed');
      button.replaceChildren(icon('trash'));
    }, CONFIRM_MS);
  });
  return button;
}
