// The line under an answer: which model answered (and why, on hover), fallback/retry/stopped/failed
// tags, the credits it cost, and "Retry with a stronger model" on the latest answer.
import { answeredByLabel, creditsLabel, formatCostUsd } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import { canRetryStronger, type ChatViewState, type ViewTurn } from '../state';

export function turnFooter(t: ViewTurn, chat: ChatViewState, intents: Pick<ChatIntents, 'retryStronger'>): HTMLElement {
  const streaming = t.status === 'streaming';
  const footer = h('div', { class: 'msg-footer' });
  if (t.routedModel || t.modelId) footer.append(answeredBy(t, chat));
  if (t.fallback) footer.append(h('span', { class: 'tag warn', title: 'Auto switched models while answering' }, 'fallback'));
  if (t.retryOf) footer.append(h('span', { class: 'tag' }, 'retry'));
  if (!streaming) footer.append(h('span', { class: 'credits', title: 'Credits charged for this answer' }, creditsLabel(t.credits)));
  if (!streaming && t.costUsd != null) {
    footer.append(h('span', { class: 'cost-usd', title: 'What this answer cost your Anthropic key, at list price' }, formatCostUsd(t.costUsd)));
  }
  if (t.status === 'cancelled') footer.append(h('span', { class: 'tag warn' }, icon('debug-stop'), 'Stopped'));
  if (t.status === 'failed') footer.append(h('span', { class: 'tag error' }, 'Failed'));
  if (!streaming && t.status !== 'failed' && !chat.pending && canRetryStronger(t, chat.turns, chat.models)) {
    footer.append(h('span', { class: 'spacer' }), retryButton(t.id, intents));
  }
  return footer;
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
