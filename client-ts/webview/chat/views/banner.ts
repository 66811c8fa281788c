// The banner above the transcript while the server is starting, has failed or is stopped.
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { ChatModel } from '../store';
import { actionButton } from './actionButton';
import type { View } from './view';

export function createBanner(model: ChatModel, intents: Pick<ChatIntents, 'runAction'>): View {
  const el = h('div', { class: 'banner', id: 'banner', role: 'status', hidden: true });
  const button = (id: 'restartServer' | 'showLogs', label: string) => {
    const action = { id, label };
    return actionButton(action, () => intents.runAction(action));
  };
  function content(): HTMLElement | null {
    const s = model.chat.server;
    switch (s.state) {
      case 'starting':
        return h('div', { class: 'banner-row' }, icon('loading', 'codicon-modifier-spin'), h('span', {}, `Starting the Switchboard server${s.detail ? ` (${s.detail})` : ''}…`));
      case 'failed':
        return h('div', { class: 'banner-row error' }, icon('error'), h('span', {}, s.message), button('restartServer', 'Restart'), button('showLogs', 'Show logs'));
      case 'stopped':
        return h('div', { class: 'banner-row' }, icon('debug-disconnect'), h('span', {}, 'The Switchboard server is stopped.'), button('restartServer', 'Start'));
      case 'running':
        return null;
    }
  }
  return {
    el,
    render() {
      const row = content();
      el.replaceChildren();
      el.hidden = !row;
      if (row) el.append(row);
    },
  };
}
