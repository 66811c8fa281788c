// The header: the conversation's title, and the buttons for history and a new chat.
import { truncate } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { ChatModel } from '../store';
import type { View } from './view';

export function createHeader(model: ChatModel, intents: Pick<ChatIntents, 'toggleHistory' | 'newChat'>): View {
  const title = h('div', { class: 'chat-title', id: 'chat-title' }, 'New chat');
  const historyButton = h(
    'button',
    { class: 'icon-btn', id: 'history-btn', title: 'Chat history', 'aria-label': 'Chat history', 'aria-expanded': 'false', onclick: () => void intents.toggleHistory() },
    icon('history'),
  );
  const newButton = h('button', { class: 'icon-btn', id: 'new-chat-btn', title: 'New chat', 'aria-label': 'New chat', onclick: () => intents.newChat() }, icon('add'));
  const el = h('header', { class: 'chat-header' }, title, h('div', { class: 'header-actions' }, historyButton, newButton));
  return {
    el,
    render() {
      const { chat, history } = model;
      title.textContent = chat.title ? truncate(chat.title, 60) : 'New chat';
      title.title = chat.title ?? '';
      historyButton.setAttribute('aria-expanded', String(history.open));
      historyButton.classList.toggle('on', history.open);
    },
  };
}
