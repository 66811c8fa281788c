// One message of the transcript: the user's prompt with its context chips, or Claude's answer (the
// thought process, "is answering…" while nothing has streamed yet, the sanitized Markdown, the error).
import { answeredByLabel } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import { contextLabel } from '../draft';
import type { ChatIntents } from '../intents';
import type { MarkdownRenderer } from '../markdown';
import type { ChatViewState, ViewTurn } from '../state';
import { addCodeActions } from './codeBlocks';
import { turnFooter } from './turnFooter';

export type AnswerIntents = Pick<ChatIntents, 'retryStronger' | 'rate' | 'copyCode' | 'insertCode'>;

export function userTurn(t: ViewTurn): HTMLElement {
  return h(
    'article',
    { class: 'msg user', 'data-turn-id': t.id, 'aria-label': 'You' },
    h('div', { class: 'msg-body' }, t.text),
    t.context.length
      ? h('div', { class: 'msg-context' }, ...t.context.map((c) => h('span', { class: 'chip small', title: c.uri }, icon(c.range ? 'selection' : 'file'), contextLabel(c))))
      : null,
  );
}

export function assistantTurn(t: ViewTurn, chat: ChatViewState, markdown: MarkdownRenderer, intents: AnswerIntents): HTMLElement {
  const streaming = t.status === 'streaming';
  const waiting = streaming && !t.text;
  const el = h('article', { class: `msg assistant${streaming ? ' streaming' : ''}`, 'data-turn-id': t.id, 'aria-label': 'Claude', 'aria-busy': streaming ? 'true' : 'false' });
  if (t.thinking) el.append(thoughtProcess(t.thinking, waiting));
  if (waiting) el.append(typingIndicator(chat));
  else if (t.text || t.status === 'complete') el.append(answerBody(t.text, markdown, intents));
  if (t.error && t.status === 'failed') el.append(h('div', { class: 'turn-error' }, icon('error'), t.error));
  el.append(turnFooter(t, chat, intents));
  return el;
}

function thoughtProcess(thinking: string, stillThinking: boolean): HTMLElement {
  return h(
    'details',
    { class: 'thinking', open: stillThinking ? true : undefined },
    h('summary', {}, icon('lightbulb'), stillThinking ? 'Thinking…' : 'Thought process'),
    h('div', { class: 'thinking-body' }, thinking),
  );
}

function typingIndicator(chat: ChatViewState): HTMLElement {
  const route = chat.pending?.route;
  const label = route ? route.message || `${answeredByLabel(route.modelId, route.routedModel, chat.models)} is answering` : 'Routing your message';
  return h('div', { class: 'typing' }, h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', {}, label));
}

/** Model output goes through markdown.ts (markdown-it without raw HTML, then DOMPurify) and nowhere else. */
function answerBody(text: string, markdown: MarkdownRenderer, intents: AnswerIntents): HTMLElement {
  const body = h('div', { class: 'msg-body markdown' });
  body.innerHTML = markdown.render(text || '_(empty answer)_');
  addCodeActions(body, intents);
  return body;
}
