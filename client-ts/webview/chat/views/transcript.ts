// The transcript: the conversation's messages (an answer's element is reused while it is unchanged),
// the welcome card when it is empty, the error card of a failed message, and following the stream.
import { h } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { MarkdownRenderer } from '../markdown';
import { canRetryStronger, displayedTurns, type ChatViewState, type ViewTurn } from '../state';
import type { ChatModel } from '../store';
import { errorCard } from './errorCard';
import { assistantTurn, userTurn, type AnswerIntents } from './turns';
import { welcomeCard } from './welcome';
import type { View } from './view';

/** Within this many pixels of the bottom, new content keeps the transcript scrolled to the end. */
const FOLLOW_PX = 80;

export type TranscriptIntents = AnswerIntents & Pick<ChatIntents, 'runAction' | 'dismissError'>;

export function createTranscript(model: ChatModel, markdown: MarkdownRenderer, intents: TranscriptIntents): View {
  const el = h('main', { class: 'transcript', id: 'transcript', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
  const cache = new Map<string, { key: string; el: HTMLElement }>();

  function turnElement(t: ViewTurn, chat: ChatViewState): HTMLElement {
    const key = renderKey(t, chat);
    const cached = cache.get(t.id);
    if (cached && cached.key === key) return cached.el;
    const turnEl = t.role === 'user' ? userTurn(t) : assistantTurn(t, chat, markdown, intents);
    cache.set(t.id, { key, el: turnEl });
    return turnEl;
  }

  return {
    el,
    render() {
      const { chat } = model;
      const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < FOLLOW_PX;
      const turns = displayedTurns(chat);
      const children: HTMLElement[] = [];
      if (!turns.length && !chat.inlineError) children.push(welcomeCard(chat, intents));
      children.push(...turns.map((t) => turnElement(t, chat)));
      const shown = new Set(turns.map((t) => t.id));
      for (const id of [...cache.keys()]) if (!shown.has(id)) cache.delete(id);
      if (chat.inlineError) children.push(errorCard(chat.inlineError, intents));
      const focused = focusedRating(el);
      el.replaceChildren(...children);
      if (focused) el.querySelector<HTMLElement>(`[data-turn-id="${CSS.escape(focused.turnId)}"] [data-rate="${focused.rate}"]`)?.focus();
      if (nearBottom || chat.pending) el.scrollTop = el.scrollHeight;
    },
  };
}

/** A thumbs button that has the focus: a rating re-renders its answer, and the focus must stay on it. */
function focusedRating(transcript: HTMLElement): { turnId: string; rate: string } | null {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || !transcript.contains(active) || !active.dataset.rate) return null;
  const turnId = active.closest<HTMLElement>('[data-turn-id]')?.dataset.turnId;
  return turnId ? { turnId, rate: active.dataset.rate } : null;
}

/** Everything a turn's element depends on: when it is unchanged, the element is reused. */
function renderKey(t: ViewTurn, chat: ChatViewState): string {
  const retry = t.role === 'assistant' && !chat.pending && canRetryStronger(t, chat.turns, chat.models);
  return [t.status, t.text.length, t.thinking?.length ?? 0, t.credits, t.chargePending, t.costUsd, t.rating, t.routedModel, t.error, chat.models.length, t.fallback, retry].join('|');
}
