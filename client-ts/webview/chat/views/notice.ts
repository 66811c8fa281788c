// The notice under the transcript: a transient message (gone after a few seconds), or an error not
// tied to a message, with its actions.
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { ChatModel } from '../store';
import { actionButton } from './actionButton';
import type { View } from './view';

const NOTICE_MS = 6000;

export function createNotice(model: ChatModel, intents: Pick<ChatIntents, 'runAction' | 'dismissNotice'>): View {
  const el = h('div', { class: 'notice', id: 'notice', role: 'status', hidden: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let shown: ChatModel['chat']['notice'] = null;
  return {
    el,
    render() {
      const n = model.chat.notice;
      // Every state change redraws; the same notice keeps its countdown (and its buttons keep focus).
      if (n === shown) return;
      shown = n;
      clearTimeout(timer);
      el.hidden = !n;
      el.replaceChildren();
      if (!n) return;
      el.className = `notice${n.error ? ' error' : ''}`;
      el.append(icon(n.error ? (n.error.kind === 'plan' ? 'lock' : 'warning') : 'info'), h('span', { class: 'notice-text' }, n.error ? `${n.error.title}. ${n.error.message}` : n.message));
      for (const [i, a] of (n.error?.actions ?? []).entries()) el.append(actionButton(a, () => intents.runAction(a), i === 0));
      el.append(h('button', { class: 'icon-btn', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: () => intents.dismissNotice() }, icon('close')));
      if (!n.error) timer = setTimeout(() => intents.dismissNotice(), NOTICE_MS);
    },
  };
}
