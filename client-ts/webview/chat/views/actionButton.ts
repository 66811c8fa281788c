// A button for one of an error's actions ("Set API key", "Retry", "Show logs"…).
import type { ErrorAction } from '../../../src/shared/errors';
import { h } from '../../shared/dom';

export function actionButton(action: ErrorAction, run: () => void, primary = false): HTMLButtonElement {
  return h('button', { class: primary ? 'btn primary' : 'btn secondary', 'data-action': action.id, onclick: run }, action.label);
}
