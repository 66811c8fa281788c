// Copy and Insert buttons on the code blocks of a rendered answer (markdown.ts draws the blocks).
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';

const COPIED_MS = 1500;

export function addCodeActions(root: HTMLElement, intents: Pick<ChatIntents, 'copyCode' | 'insertCode'>): void {
  for (const block of Array.from(root.querySelectorAll<HTMLElement>('.code-block'))) {
    const header = block.querySelector('.code-header');
    if (!header) continue;
    const code = block.querySelector('code')?.textContent ?? '';
    header.append(h('span', { class: 'spacer' }), copyButton(code, intents), insertButton(code, intents));
  }
}

function copyButton(code: string, intents: Pick<ChatIntents, 'copyCode'>): HTMLButtonElement {
  const button = h('button', { class: 'code-btn', title: 'Copy', 'aria-label': 'Copy code' }, icon('copy'), h('span', {}, 'Copy'));
  button.addEventListener('click', async () => {
    await intents.copyCode(code);
    button.replaceChildren(icon('check'), h('span', {}, 'Copied'));
    setTimeout(() => button.replaceChildren(icon('copy'), h('span', {}, 'Copy')), COPIED_MS);
  });
  return button;
}

function insertButton(code: string, intents: Pick<ChatIntents, 'insertCode'>): HTMLButtonElement {
  return h('button', { class: 'code-btn', title: 'Insert at cursor', 'aria-label': 'Insert code at cursor', onclick: () => intents.insertCode(code) }, icon('insert'), h('span', {}, 'Insert'));
}
