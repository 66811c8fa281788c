// The line under an answer: which model answered (and why, on hover), fallback/retry/stopped/failed
// tags, the credits it cost (and its dollar cost with the user's own key), thumbs up/down on a stored
// answer, and "Retry with a stronger model" on the latest answer.
import { answeredByLabel, creditsLabel, formatCostUsd } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import { canRate, canRetryStronger, type ChatViewState, type ViewTurn } from '../state';

export type FooterIntents = Pick<ChatIntents, 'retryStronger' | 'rate'>;

export function turnFooter(t: ViewTurn, chat: ChatViewState, intents: FooterIntents): HTMLElement {
  const streaming = t.status === 'streaming';
  const footer = h('div', { class: 'msg-footer' });
  if (t.routedModel || t.modelId) footer.append(answeredBy(t, chat));
  if (t.fallback) footer.append(h('span', { class: 'tag warn', title: 'Auto switched models while answering' }, 'fallback'));
  if (t.retryOf) footer.append(h('span', { class: 'tag' }, 'retry'));
  if (!streaming && t.chargePending) {
    footer.append(h('span', { class: 'credits pending', title: 'Switchboard Cloud has not reported the charge for this stopped answer yet' }, 'charge pending'));
  } else if (!streaming) {
    footer.append(h('span', { class: 'credits', title: 'Credits charged for this answer' }, creditsLabel(t.credits)));
  }
  if (!streaming && t.costUsd != null) {
    footer.append(h('span', { class: 'cost-usd', title: 'What this answer cost your Anthropic key, at list price' }, formatCostUsd(t.costUsd)));
  }
  if (t.status === 'cancelled') footer.append(h('span', { class: 'tag warn' }, icon('debug-stop'), 'Stopped'));
  if (t.status === 'failed') footer.append(h('span', { class: 'tag error' }, 'Failed'));
  const retry = !streaming && t.status !== 'failed' && !chat.pending && canRetryStronger(t, chat.turns, chat.models);
  if (canRate(t) || retry) footer.append(h('span', { class: 'spacer' }));
  if (canRate(t)) footer.append(thumbs(t, intents));
  if (retry) footer.append(retryButton(t.id, intents));
  return footer;
}

/** Two toggle buttons: pressing the pressed one clears the rating. */
function thumbs(t: ViewTurn, intents: FooterIntents): HTMLElement {
  const button = (rating: 'up' | 'down', label: string) => {
    const pressed = t.rating === rating;
    return h(
      'button',
      {
        class: `icon-btn rate-btn${pressed ? ' pressed' : ''}`,
        type: 'button',
        'data-rate': rating,
        'aria-pressed': pressed ? 'true' : 'false',
        'aria-label': label,
        title: pressed ? `${label} (click again to clear)` : label,
        onclick: () => intents.rate(t.id, pressed ? null : rating),
      },
      icon(`thumbs${rating}${pressed ? '-filled' : ''}`),
    );
  };
  return h(
    'span',
    { class: 'rating', role: 'group', 'aria-label': 'Rate this answer' },
    button('up', 'Good answer'),
    button('down', 'Bad answer'),
  );
}

function answeredBy(t: ViewTurn, chat: ChatViewState): HTMLElement {
  const label = answeredByLabel(t.modelId, t.routedModel, chat.models);
  return h(
    'span',
    { class: 'answered-by', title: t.routeReason ?? '', tabindex: t.routeReason ? '0' : undefined, 'aria-label': `Answered by ${label}${t.routeReason ? `. ${t.routeReason}` : ''}` },
    icon(t.modelId === 'auto' ? 'sparkle' : 'hubot'),
    h('span', { class: 'answered-label' }, label),
  );
}

function retryButton(turnId: string, intents: Pick<ChatIntents, 'retryStronger'>): HTMLButtonElement {
  return h(
    'button',
    { class: 'link-btn retry-btn', title: 'Answer this again with a stronger model (both answers are kept)', onclick: () => intents.retryStronger(turnId) },
    icon('arrow-up'),
    'Retry with a stronger model',
  );
}
