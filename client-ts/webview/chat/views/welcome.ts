// The card an empty conversation shows: the plan, a call to set the API key, and tips.
import { creditsLabel, formatDate } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { ChatViewState } from '../state';
import { actionButton } from './actionButton';

export function welcomeCard(chat: ChatViewState, intents: Pick<ChatIntents, 'runAction'>): HTMLElement {
  const u = chat.usage;
  const plan = u
    ? `${u.planName} plan · ${creditsLabel(Math.max(0, u.remainingCredits))} left · resets ${formatDate(u.periodEnd)}`
    : 'Connecting to the Switchboard server…';
  const setKey = { id: 'setApiKey', label: 'Set API key' } as const;
  return h(
    'div',
    { class: 'welcome' },
    h('div', { class: 'welcome-logo', 'aria-hidden': 'true' }, icon('sparkle')),
    h('h2', {}, 'Ask Claude about your code'),
    h('p', { class: 'welcome-plan' }, plan),
    !chat.hasApiKey && chat.server.state === 'running'
      ? h('div', { class: 'welcome-cta' }, h('p', {}, 'Add your Anthropic API key to start chatting.'), actionButton(setKey, () => intents.runAction(setKey), true))
      : null,
    h(
      'ul',
      { class: 'welcome-tips' },
      h('li', {}, icon('sparkle'), h('span', {}, h('strong', {}, 'Auto'), ' picks the best-value Claude model for each message and tells you which one answered.')),
      h('li', {}, icon('credit-card'), h('span', {}, 'See the estimated credits before you send, and what each answer cost after.')),
      h('li', {}, icon('selection'), h('span', {}, 'Attach the current selection or file with the buttons below.')),
      h('li', {}, icon('keyboard'), h('span', {}, h('kbd', {}, 'Enter'), ' sends, ', h('kbd', {}, 'Shift+Enter'), ' adds a line, ', h('kbd', {}, 'Esc'), ' stops.')),
    ),
  );
}
