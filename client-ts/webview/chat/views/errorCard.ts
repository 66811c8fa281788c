// The error card at the end of the transcript when a message failed: what happened, what to do.
import type { ErrorKind } from '../../../src/shared/errors';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import type { InlineError } from '../state';
import { actionButton } from './actionButton';

const ICONS: Partial<Record<ErrorKind, string>> = { auth: 'key', plan: 'lock', credits: 'credit-card' };

export function errorCard(failed: InlineError, intents: Pick<ChatIntents, 'runAction' | 'dismissError'>): HTMLElement {
  const { error } = failed;
  return h(
    'div',
    { class: `error-card kind-${error.kind}`, role: 'alert', 'data-code': String(error.code) },
    icon(ICONS[error.kind] ?? 'error', 'error-icon'),
    h(
      'div',
      { class: 'error-content' },
      h('div', { class: 'error-title' }, error.title),
      h('div', { class: 'error-message' }, error.message),
      h('div', { class: 'error-actions' }, ...error.actions.map((a, i) => actionButton(a, () => intents.runAction(a, failed), i === 0))),
    ),
    h('button', { class: 'icon-btn dismiss', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => intents.dismissError() }, icon('close')),
  );
}
