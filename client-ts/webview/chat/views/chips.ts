// The context chips attached to the next message (selection or file), each removable.
import { h, icon } from '../../shared/dom';
import type { ChatModel } from '../store';
import type { View } from './view';

export function createChips(model: ChatModel, remove: (chipId: string) => void): View {
  const el = h('div', { class: 'chips', id: 'chips', 'aria-label': 'Context attached to the next message' });
  return {
    el,
    render() {
      const { chips } = model.draft;
      el.replaceChildren(
        ...chips.map((c) =>
          h(
            'span',
            { class: 'chip', title: c.item.uri },
            icon(c.kind === 'selection' ? 'selection' : 'file'),
            h('span', { class: 'chip-label' }, c.label),
            h('button', { class: 'chip-remove', 'aria-label': `Remove ${c.label}`, title: 'Remove', onclick: () => remove(c.id) }, icon('close')),
          ),
        ),
      );
      el.hidden = chips.length === 0;
    },
  };
}
